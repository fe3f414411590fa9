/* One IMAP connection: greeting, STARTTLS, CAPABILITY, login, then EXAMINE and read-only
 * commands, pipelined. Blocking; one user at a time (the pool in imap_backend.c checks
 * connections in and out). Only read-only commands exist here: the command kinds below are
 * the whole vocabulary, and every line is checked against an allow-list before it is written. */
#pragma once
#include <glib.h>
#include "imap_parse.h"
#include "stats.h"

typedef struct mf_imap_conn mf_imap_conn;

/* Called for each untagged data response (FETCH, LIST, SEARCH, ESEARCH, VANISHED, ...) that
 * arrives while the command is outstanding. With several commands in flight the server may interleave
 * their data, so a callback must identify data by its content (UID, origin), not by order.
 * The response is only valid during the call. */
typedef void (*mf_imap_data_cb)(const imap_response *r, gpointer user_data);

typedef struct {
	const char *host;
	guint16 port;
	gboolean implicit_tls;    /* imaps:// */
	gboolean allow_plaintext; /* imap:// without STARTTLS is acceptable */
	const char *user;
	const char *password;     /* used during mf_imap_conn_open only; not kept */
	const char *cafile;
	int timeout_sec;
	mf_stats *stats;
	const char *label;        /* "imap#1" */
	gboolean enable_qresync;  /* ENABLE QRESYNC when offered (RFC 7162), in the ID round trip */
} mf_imap_conn_opts;

/* Connect, negotiate TLS, log in, send ID when advertised. The returned connection is in the
 * authenticated state. Errors: MF_ERR_NET/TIMEOUT/TLS/AUTH/PLAINTEXT/PROTOCOL/THROTTLED. */
mf_imap_conn *mf_imap_conn_open(const mf_imap_conn_opts *o, GError **err);
/* LOGOUT (best effort, unless the connection is dead) and free. NULL is fine. */
void mf_imap_conn_logout(mf_imap_conn *c);
/* Free without LOGOUT. NULL is fine. */
void mf_imap_conn_free(mf_imap_conn *c);

/* TRUE once the connection cannot be used any more (BYE, I/O error, timeout, framing). */
gboolean mf_imap_conn_is_dead(const mf_imap_conn *c);
/* Capability names are compared case-insensitively ("ESEARCH", "AUTH=PLAIN"). */
gboolean mf_imap_conn_has_cap(const mf_imap_conn *c, const char *cap);
const char *mf_imap_conn_label(const mf_imap_conn *c);

/* EXAMINE (never SELECT). On success the connection has `mailbox` selected read-only;
 * on NO it has nothing selected. A mailbox the server does not know gives MF_ERR_NOT_FOUND. */
gboolean mf_imap_conn_examine(mf_imap_conn *c, const char *mailbox, GError **err);
/* EXAMINE for resynchronisation (RFC 7162): with QRESYNC enabled and a known uidvalidity and
 * modseq, the server reports messages expunged since then as "VANISHED (EARLIER) <set>" and
 * changed flags as FETCH, both passed to cb while the command runs (if uidvalidity no longer
 * matches, it ignores them). Without them, "(CONDSTORE)" when the server has CONDSTORE, so
 * HIGHESTMODSEQ is reported; else a plain EXAMINE. */
gboolean mf_imap_conn_examine_since(mf_imap_conn *c, const char *mailbox, guint32 uidvalidity,
				    guint64 modseq, mf_imap_data_cb cb, gpointer user_data,
				    GError **err);
/* The raw name of the EXAMINEd mailbox, or NULL. */
const char *mf_imap_conn_selected(const mf_imap_conn *c);
guint32 mf_imap_conn_uidvalidity(const mf_imap_conn *c);
/* The message count: from EXAMINE, kept current by EXISTS, EXPUNGE and VANISHED. */
guint32 mf_imap_conn_exists(const mf_imap_conn *c);
/* UIDNEXT and HIGHESTMODSEQ as reported by the last EXAMINE; 0 when not reported (or
 * NOMODSEQ). */
guint32 mf_imap_conn_uidnext(const mf_imap_conn *c);
guint64 mf_imap_conn_highestmodseq(const mf_imap_conn *c);
/* TRUE once the server confirmed ENABLE QRESYNC: expunges then arrive as VANISHED. */
gboolean mf_imap_conn_qresync(const mf_imap_conn *c);
/* About one round trip to the server: the quickest single command so far, in microseconds;
 * -1 before any. */
gint64 mf_imap_conn_round_trip_us(const mf_imap_conn *c);

/* The read-only vocabulary available to callers (login and STARTTLS are internal). */
typedef enum {
	MF_IMAP_NOOP,
	MF_IMAP_CAPABILITY,
	MF_IMAP_LIST,       /* args e.g. "\"\" \"*\"" */
	MF_IMAP_UID_SEARCH, /* args e.g. "RETURN (ALL) ALL" */
	MF_IMAP_UID_FETCH,  /* args "<set> (<items>)"; content only through BODY.PEEK[...] */
	MF_IMAP_FETCH,      /* the same by message sequence numbers */
} MfImapCmd;

/* A batch of commands written together (pipelined) and completed together. */
typedef struct mf_imap_batch mf_imap_batch;
mf_imap_batch *mf_imap_batch_new(mf_imap_conn *c);
void mf_imap_batch_free(mf_imap_batch *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(mf_imap_batch, mf_imap_batch_free)
/* Queue one command; args may be NULL. Nothing is written yet. Returns its number in the
 * batch (0 for the first added). Untagged data goes to the callback of the oldest command
 * still running that has one: a server may answer pipelined commands interleaved (Dovecot
 * does, for FETCHes), so a callback cannot tell which command a response answers. */
guint mf_imap_batch_add(mf_imap_batch *b, MfImapCmd cmd, const char *args, mf_imap_data_cb cb,
			gpointer user_data);
/* Commands made while the batch runs: `feed` is called whenever fewer than `window` of its
 * commands are queued or in flight, adds some (mf_imap_batch_add) and returns TRUE, or returns
 * FALSE once it has no more. Lets two connections share out work as each gets to it. */
typedef gboolean (*mf_imap_feed_cb)(mf_imap_batch *b, gpointer user_data);
void mf_imap_batch_set_feed(mf_imap_batch *b, guint window, mf_imap_feed_cb feed,
			    gpointer user_data);
/* `on_done` is told of each command that completed with OK, by its number, as its tagged
 * answer arrives: what it asked for is then all there. */
typedef void (*mf_imap_done_cb)(mf_imap_batch *b, guint i, gpointer user_data);
void mf_imap_batch_set_on_done(mf_imap_batch *b, mf_imap_done_cb on_done, gpointer user_data);
/* Write the queued commands (in windows of a few KiB, so neither side's buffers can fill up
 * and deadlock) and read until each has completed. FALSE with the first command's failure:
 * MF_ERR_SERVER for NO/BAD, MF_ERR_THROTTLED for rate limiting, MF_ERR_NET etc. when the
 * connection died (then mf_imap_conn_is_dead() is TRUE). */
gboolean mf_imap_batch_run(mf_imap_batch *b, GError **err);

/* One command, waited for. */
gboolean mf_imap_conn_run(mf_imap_conn *c, MfImapCmd cmd, const char *args, mf_imap_data_cb cb,
			  gpointer user_data, GError **err);

/* Pure: is this complete command line (tag, verb, arguments, no CRLF) one this program may
 * send? The allow-list every written line passes; exposed for unit tests. */
gboolean mf_imap_line_is_read_only(const char *line);
