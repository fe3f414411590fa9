/* The mailbox as a tree of nodes: folders and messages with stable inode numbers. Knows the
 * backend interface, never FUSE or the wire. Nodes live as long as the mount (the kernel may
 * still hold an inode number of a message that was expunged), so an mf_node* stays valid. */
#pragma once
#include <glib.h>
#include "backend.h"

#define MF_INO_ROOT 1
#define MF_INO_STATUS 2
#define MF_STATUS_NAME ".mailfs-status"

typedef enum { MF_NODE_ROOT, MF_NODE_DIR, MF_NODE_MSG, MF_NODE_STATUS } MfNodeKind;

typedef struct mf_node mf_node;
struct mf_node {
	guint64 ino;
	MfNodeKind kind;
	char *name;
	mf_node *parent;

	/* ROOT and DIR */
	mf_folder *folder;      /* NULL for the root */
	GPtrArray *subdirs;     /* mf_node*, sorted by name */
	GPtrArray *msgs;        /* mf_node*, current messages, ascending uid */
	GHashTable *by_name;    /* name -> mf_node*, current children */
	gboolean loaded;
	gint64 loaded_at;       /* monotonic usec */
	guint32 uidvalidity;
	gboolean size_untrusted;/* tail probes showed the server's sizes are wrong */
	GMutex load_lock;       /* one listing of this folder at a time */
	/* A first listing arriving in the background (see mf_model_open_dir); model lock. */
	gboolean streaming;
	gboolean sizes_known;   /* checked (size_untrusted says how): not checked again */
	gboolean stream_dirty;  /* the stream broke its promises: list again without it */
	GError *load_error;     /* why the background listing failed, for the next readdir */

	/* MSG */
	mf_msg_meta *meta;      /* the pointer is guarded by the model lock; the meta never changes */
	guint32 msg_uidvalidity;
	guint index;            /* position in parent->msgs when last listed */
	char *body_key;         /* cache key of the body: folder, UIDVALIDITY and id */
	gboolean gone;          /* expunged or UIDVALIDITY changed */
};

typedef struct mf_model mf_model;

/* A change the kernel must hear about (sent from a non-FUSE thread by the fs layer). */
typedef enum { MF_NOTIFY_INVAL_INODE, MF_NOTIFY_INVAL_ENTRY } MfNotifyKind;
typedef void (*mf_notify_fn)(MfNotifyKind kind, guint64 parent_ino, guint64 ino, const char *name,
			     gpointer user_data);

mf_model *mf_model_new(mf_backend *b, int refresh_sec);
void mf_model_free(mf_model *m);
void mf_model_set_notify(mf_model *m, mf_notify_fn fn, gpointer user_data);
mf_backend *mf_model_backend(mf_model *m);

/* List the folders (done before daemonizing, so errors reach the terminal). */
gboolean mf_model_load_folders(mf_model *m, GError **err);

/* Check INBOX's sizes now (before daemonizing): it is where a user looks first, and the check
 * costs the server a body access (Dovecot: a scan of the folder, ~12 ms for 10,000 messages)
 * better paid before anyone waits than beside the listing. No-op for backends that cannot. */
void mf_model_check_inbox_sizes(mf_model *m);

/* The node for an inode number, or NULL. */
mf_node *mf_model_get(mf_model *m, guint64 ino);

/* Make sure the message listing of a folder is present; refresh it when older than the refresh
 * interval (or older than max_age_sec when that is >= 0). No-op for non-selectable folders. */
gboolean mf_model_ensure_listing(mf_model *m, mf_node *dir, int max_age_sec, GError **err);

/* Called on opendir. A folder never listed starts listing in the background and readdir
 * serves its entries while envelopes arrive (once a few sizes are checked); otherwise the
 * same as mf_model_ensure_listing. */
gboolean mf_model_open_dir(mf_model *m, mf_node *dir, GError **err);

/* Look a name up in a directory, loading the folder's listing if needed (a saved path must
 * work without a prior readdir). NULL without error: no such entry. */
mf_node *mf_model_lookup(mf_model *m, mf_node *dir, const char *name, GError **err);

/* Snapshot of a directory's children in readdir order (subdirs by name, then messages by uid),
 * each with its stable readdir cookie (the offset of the entry that follows it). */
typedef struct {
	mf_node *node;
	guint64 next_off;
} mf_dirent;
GArray *mf_model_readdir(mf_model *m, mf_node *dir, guint64 from_off, guint max, GError **err);
#define MF_DIROFF_FIRST 16  /* cookies below this are the fs layer's own (".", "..", status) */

/* Message attributes under the model lock. */
guint64 mf_model_msg_size(mf_model *m, mf_node *msg, gboolean *exact);
/* The size, and the time a file shows: INTERNALDATE, else the Date header, else `fallback`. */
guint64 mf_model_msg_stat(mf_model *m, mf_node *msg, gint64 fallback, gint64 *mtime);
/* Record the true size of a message learned from its bytes; tells the kernel if it changed. */
void mf_model_set_exact_size(mf_model *m, mf_node *msg, guint64 size);
/* A reference to the message metadata (for xattrs and the backend, outside the lock). */
mf_msg_meta *mf_model_msg_meta(mf_model *m, mf_node *msg);

/* Messages that follow `msg` in its folder (for read-ahead across files): up to max nodes. */
GPtrArray *mf_model_next_msgs(mf_model *m, mf_node *msg, guint max);

/* Cache key of a message body: folder, UIDVALIDITY and id (a copy of msg->body_key). */
char *mf_model_body_key(mf_node *msg);
