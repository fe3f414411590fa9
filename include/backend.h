/* The one interface between the filesystem and a mail protocol. The FUSE layer sees folders,
 * message metadata and byte ranges; it never sees a command or a socket. Backends are
 * read-only: nothing here can change a mailbox. All operations may be called concurrently from
 * several threads; a backend serialises access to its connections itself. */
#pragma once
#include <glib.h>
#include "msg.h"
#include "stats.h"

typedef struct mf_backend mf_backend;

typedef struct {
	char *path;          /* display path: components made by mf_folder_component, joined by '/' */
	char *raw;           /* the backend's own name for it (IMAP: server mailbox name) */
	gboolean selectable; /* FALSE: a directory that only holds child folders */
} mf_folder;
void mf_folder_free(mf_folder *f);

typedef struct {
	guint32 uidvalidity; /* identity epoch: a change means every message is new */
	GPtrArray *msgs;     /* mf_msg_meta*, ascending uid, owned */
	/* TRUE: msgs is empty because every message went to the sink already, exactly as it
	 * would be listed here (see list_messages_streamed). */
	gboolean all_in_sink;
} mf_listing;
void mf_listing_free(mf_listing *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(mf_listing, mf_listing_free)

enum {
	MF_BACKEND_FOLDERS = 1 << 0, /* more than one folder (else a single INBOX) */
	MF_BACKEND_PARTIAL = 1 << 1, /* fetch() can return a byte range cheaply */
	MF_BACKEND_FLAGS = 1 << 2,   /* mf_msg_meta.flags are meaningful */
};

/* Receives a listing while it arrives, so that a directory can be shown before the last
 * envelope of a big folder is in. `metas` (mf_msg_meta*) and its contents pass to the callee;
 * every call of one listing has the same uidvalidity and UIDs ascending across calls. Called
 * from the listing thread: it must not call back into the backend. */
typedef struct {
	void (*add)(guint32 uidvalidity, GPtrArray *metas, gpointer user_data);
	/* NULL, or called (from any thread, before list_messages_streamed returns) when the
	 * backend checked the sizes it reports against the bytes it serves (a few probes):
	 * `wrong` is a message whose size is wrong, or NULL. Not called: no verdict, check them
	 * yourself. NULL: the caller knows them already, no check is wanted. */
	void (*sizes_checked)(const mf_msg_meta *wrong, gpointer user_data);
	gpointer user_data;
} mf_listing_sink;

/* Called by fetch_many for each body as it arrives (from the calling thread). The callee may
 * keep a reference to body. */
typedef void (*mf_body_cb)(const mf_msg_meta *m, GBytes *body, gpointer user_data);

typedef struct {
	const char *name; /* "imap", "pop3" */
	/* Connect, authenticate and check the account works; called before daemonizing so that a
	 * bad password or certificate is reported on stderr. */
	gboolean (*open)(mf_backend *b, GError **err);
	/* Optional: called once the folders are listed, before daemonizing: what the backend
	 * began in the background at open is finished (threads do not survive the fork). */
	void (*settle)(mf_backend *b);
	/* Optional: called once the process has daemonized, before the first request:
	 * background work may start. */
	void (*start)(mf_backend *b);
	/* mf_folder*, parents before children. */
	GPtrArray *(*list_folders)(mf_backend *b, GError **err);
	/* All messages of one selectable folder, envelopes only, never a body. */
	mf_listing *(*list_messages)(mf_backend *b, const mf_folder *f, GError **err);
	/* Optional (may be NULL): the same, also handing envelopes to `sink` as they arrive when
	 * that is cheap (a first, full listing). Messages given to the sink during a call that
	 * then fails, or is retried, may not all exist: only the returned listing is the truth,
	 * and its all_in_sink says whether the sink already holds exactly it. */
	mf_listing *(*list_messages_streamed)(mf_backend *b, const mf_folder *f,
					      const mf_listing_sink *sink, GError **err);
	/* Bytes [off, off+len) of a message as the server renders it; len == 0 means to the end.
	 * Returns fewer bytes if the message is shorter; never pads. MF_ERR_STALE if uidvalidity is
	 * no longer current, MF_ERR_NOT_FOUND if the message is gone. */
	GBytes *(*fetch)(mf_backend *b, const mf_folder *f, guint32 uidvalidity, const mf_msg_meta *m,
			 guint64 off, guint64 len, GError **err);
	/* Optional (may be NULL): whole bodies of several messages in one pipelined exchange,
	 * for read-ahead across files. */
	gboolean (*fetch_many)(mf_backend *b, const mf_folder *f, guint32 uidvalidity,
			       GPtrArray *metas, mf_body_cb cb, gpointer user_data, GError **err);
	/* Optional (may be NULL): bytes [offs[i], offs[i]+lens[i]) of metas[i] (mf_msg_meta*) for
	 * every i, all in one pipelined exchange; results[i] receives a new GBytes (fewer bytes at
	 * the end of a message, as fetch() does) or NULL if that one fetch failed. FALSE only if
	 * the exchange as a whole failed. Used for the size-honesty probes of a fresh listing. */
	gboolean (*fetch_ranges)(mf_backend *b, const mf_folder *f, guint32 uidvalidity,
				 GPtrArray *metas, const guint64 *offs, const guint64 *lens,
				 GBytes **results, GError **err);
	/* Optional (may be NULL): whether the sizes this backend reports for folder f are those of
	 * the bytes it serves, checked on a few messages. *wrong becomes a message whose size is
	 * wrong, or NULL. FALSE when the check could not be made. */
	gboolean (*check_sizes)(mf_backend *b, const mf_folder *f, mf_msg_meta **wrong,
				GError **err);
	/* Close connections (e.g. before exit); the backend may reopen on the next call. */
	void (*close)(mf_backend *b);
	void (*free)(mf_backend *b);
} mf_backend_ops;

struct mf_backend {
	const mf_backend_ops *ops;
	guint caps;       /* MF_BACKEND_* */
	mf_stats *stats;  /* not owned */
};

/* Everything a backend needs to reach the account; filled by main from URL and options. */
typedef struct {
	char *scheme;         /* "imap", "imaps", "pop3", "pop3s" */
	char *user;           /* decoded */
	char *host;
	guint16 port;
	gboolean implicit_tls;/* imaps/pop3s */
	char *password;       /* never logged; registered with mf_log_add_secret */
	char *cafile;         /* or NULL */
	gboolean allow_plaintext;
	gboolean apop;        /* POP3: use APOP (only when asked for) */
	int connections;      /* pool size */
	int timeout_sec;
	char *state_dir;      /* private directory (0700) where a backend may persist its index of
			       * folders and envelopes between mounts, or NULL for none */
	mf_stats *stats;
} mf_account;

mf_backend *mf_imap_backend_new(const mf_account *a);
mf_backend *mf_pop3_backend_new(const mf_account *a);

/* Parse "imaps://[user@]host[:port][/]" etc. into scheme/user/host/port/implicit_tls.
 * user is percent-decoded and defaults to the local login name. */
gboolean mf_account_parse_url(mf_account *a, const char *url, GError **err);
/* Frees every string field (the password is zeroed first) and zeroes *a. */
void mf_account_clear(mf_account *a);
/* *dst becomes a deep copy of *src (every string field duplicated, stats shared), so that a
 * backend can keep the account after the caller's copy is gone; whatever *dst held is
 * overwritten, not freed. Release it with mf_account_clear. */
void mf_account_copy(mf_account *dst, const mf_account *src);
