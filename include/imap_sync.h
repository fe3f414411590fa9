/* Bringing a folder's remembered listing (mf_imap_index) up to date on one connection, asking
 * the server only for what changed. Cheapest first:
 *
 * - a fresh EXAMINE, with QRESYNC parameters when enabled: expunges since the last time come
 *   back as VANISHED (EARLIER) and changed flags as FETCH in the same round trip;
 * - UIDNEXT, EXISTS and HIGHESTMODSEQ all unchanged: nothing else is sent;
 * - new mail: envelopes for "UID <old UIDNEXT>:*" only (filtered: '*' always matches the last
 *   message);
 * - flags: nothing more with QRESYNC, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE m)" with CONDSTORE,
 *   else "UID FETCH 1:* (FLAGS)", which also gives the UID set;
 * - whenever the message count disagrees with EXISTS: the UID set (ESEARCH when offered) and
 *   envelopes for the UIDs not known.
 *
 * A new UIDVALIDITY (or nothing remembered) means a full listing: one "UID FETCH 1:*" of the
 * envelopes, whatever the folder's size. Given a second connection (mf_imap_helper), a big
 * one is cut into eight UID ranges ("UID FETCH a:b"), taken from the bottom here and from the
 * top there, each connection taking the next as it is ready: the server then works on two
 * processes, and over a long link two TCP streams carry the envelopes. A second connection
 * that comes late takes what is left; one that never comes costs nothing. */
#pragma once
#include <glib.h>
#include "imap_conn.h"
#include "imap_index.h"
#include "backend.h"

/* Lends a second connection for the upper part of a big full listing. */
typedef struct {
	/* An open connection nobody is using; else, if `wait`, one being opened for the pool
	 * (waited for) or a new one if the pool has room; else NULL. Must not wait for a busy
	 * connection: the caller holds one and waits for this one. */
	mf_imap_conn *(*borrow)(const char *mailbox, gboolean wait, gpointer user_data);
	void (*give_back)(mf_imap_conn *c, gpointer user_data);
	gpointer user_data;
	guint32 min_messages; /* a folder smaller than this is listed on one connection */
	/* Round trips (mf_imap_conn_round_trip_us) shorter than this: the server's work is what
	 * takes time, and a second connection still being opened is worth waiting for. Longer:
	 * one stream already fills the link, and one that logs in late would take ranges late,
	 * so only a connection that is ready at once shares the listing. */
	gint64 wait_max_rtt_us;
} mf_imap_helper;

/* Messages the server describes too badly to list are skipped, logged and recorded as the
 * last error in `stats` (may be NULL). On success *idx is current (replaced when the epoch changed; created when NULL) and
 * *changed says whether it differs from before (so is worth saving). On failure *idx may
 * already hold some of the changes, but keeps its old UIDNEXT and HIGHESTMODSEQ, so the next
 * attempt asks for all of them again.
 * `listing` (may be NULL): after a full listing, set to what mf_imap_index_listing(*idx) would
 * return, built while the envelopes arrived; NULL otherwise (the caller then asks the index).
 * `sink` (may be NULL): a full listing's envelopes go to it in batches as they arrive, instead
 * of into `listing`; *all_in_sink (may be NULL) then says whether the sink got exactly the
 * listing (else it got part of it, or a listing that changed while it arrived).
 * `helper` (may be NULL): a second connection for a big full listing; whatever happens to it,
 * the result is the same as without it. */
gboolean mf_imap_sync_folder(mf_imap_conn *c, const char *mailbox, mf_stats *stats,
			     mf_imap_index **idx, gboolean *changed, GPtrArray **listing,
			     const mf_listing_sink *sink, gboolean *all_in_sink,
			     const mf_imap_helper *helper, GError **err);
