/* The IMAP backend: mf_backend_ops over a small pool of mf_imap_conn.
 *
 * Pool: at most a->connections connections, opened lazily. A caller checks one out for a
 * whole operation (EXAMINE + FETCH must run on the same connection) and back in afterwards.
 * Checkout prefers an idle connection that already has the wanted mailbox EXAMINEd, which
 * saves a round trip per read. Every operation is read-only and so idempotent: when the
 * connection turns out to be dead (server restart, autologout, NAT timeout) the operation is
 * retried once on a freshly opened connection, so a dropped link costs one reconnect instead
 * of an error. Throttling and server refusals are never retried here.
 *
 * Listings: each folder's last listing is kept (mf_imap_index) and brought up to date by
 * imap_sync.c, which asks only for what changed; it is also saved in a->state_dir (one file
 * per folder, named by a hash of the raw mailbox name), so that after a remount only the
 * changes since the last mount cross the wire. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "imap_conn.h"
#include "imap_folders.h"
#include "imap_index.h"
#include "imap_parse.h"
#include "imap_sizecheck.h"
#include "imap_sync.h"
#include "threadprio.h"
#include "imap_uidset.h"
#include "log.h"
#include "mailhdr.h"
#include "mferror.h"
#include "version.h"

/* One UID FETCH names at most this many messages, in at most this many bytes of set, so
 * command lines stay under the 8 KiB servers are asked to accept (RFC 7162 §4). */
#define LIST_CHUNK 2000
#define SET_MAX_LEN 7000
/* Large reads are split into pieces of this size sent pipelined. */
#define PIECE ((guint64)1 << 20)
/* Which program decoded the envelopes in an index file (names depend on it). */
#define INDEX_GENERATOR "mailfs " MAILFS_VERSION

typedef struct {
	mf_backend base;
	/* A deep copy with port, password and timeout_sec defaulted. state_dir NULL: listings
	 * are not kept between mounts. */
	mf_account acct;
	guint max_conns;

	GMutex lock;
	GCond cond;
	GPtrArray *idle;  /* mf_imap_conn*, checked in */
	guint total;      /* idle + checked out + being opened */
	/* A second connection opened after mounting, so that a big first listing can be split
	 * without a handshake in its way (see mf_imap_helper). */
	GThread *warm_up;
	gboolean warming; /* it is being opened: a helper waits for it */
	gboolean warm_up_done; /* warm_up_begin ran (once a mount) */
	guint next_id;
	GHashTable *folders; /* raw name -> FolderState*, under lock */
	GThreadPool *saver;  /* one thread writing index files, off the listing's critical path */
	GCond save_cond;     /* signalled when closing: saves wait no longer */
	gboolean closing;
} ImapBackend;

/* What is remembered of one folder. Its own lock serialises listings of the folder, so two
 * threads never both download the same changes. */
typedef struct {
	GMutex lock;
	mf_imap_index *idx;  /* NULL until listed (or loaded) */
	gboolean disk_tried; /* the index file was looked at (once per mount) */
	gboolean save_queued; /* idx changed and a save of it is waiting for the saver */
	gint64 save_due;      /* monotonic time before which the save waits */
} FolderState;

/* A save waits this long after the listing that made it: the listing's reader (ls, cp -r) is
 * busy with the entries just then, and a remount needs the index only later. */
#define SAVE_DELAY_US (1 * G_USEC_PER_SEC)

static void folder_state_free(gpointer p)
{
	FolderState *fs = p;

	mf_imap_index_free(fs->idx);
	g_mutex_clear(&fs->lock);
	g_free(fs);
}

static ImapBackend *imap_backend(mf_backend *b)
{
	return (ImapBackend *)b;
}

/* ---- the pool ------------------------------------------------------------------------ */

static mf_imap_conn *pool_open_conn(ImapBackend *ib, GError **err)
{
	g_mutex_lock(&ib->lock);
	guint id = ++ib->next_id;
	g_mutex_unlock(&ib->lock);
	g_autofree char *label = g_strdup_printf("imap#%u", id);
	mf_imap_conn_opts o = {
		.host = ib->acct.host, .port = ib->acct.port, .implicit_tls = ib->acct.implicit_tls,
		.allow_plaintext = ib->acct.allow_plaintext, .user = ib->acct.user,
		.password = ib->acct.password, .cafile = ib->acct.cafile,
		.timeout_sec = ib->acct.timeout_sec, .stats = ib->base.stats,
		.label = label, .enable_qresync = TRUE,
	};

	return mf_imap_conn_open(&o, err);
}

/* A new connection for a slot already counted in `total`; on failure the slot is given back
 * (and a waiter woken to use it). */
static mf_imap_conn *pool_open_counted(ImapBackend *ib, GError **err)
{
	mf_imap_conn *c = pool_open_conn(ib, err);

	if (!c) {
		g_mutex_lock(&ib->lock);
		ib->total--;
		g_cond_broadcast(&ib->cond);
		g_mutex_unlock(&ib->lock);
	}
	return c;
}

/* An idle connection, preferring one with `mailbox` selected. Lock held, idle not empty. */
static mf_imap_conn *pool_take_idle_locked(ImapBackend *ib, const char *mailbox)
{
	guint pick = ib->idle->len - 1; /* most recently used: least likely timed out */

	for (guint i = 0; mailbox && i < ib->idle->len; i++) {
		const char *sel = mf_imap_conn_selected(ib->idle->pdata[i]);

		if (sel && !strcmp(sel, mailbox))
			pick = i;
	}
	return g_ptr_array_steal_index(ib->idle, pick);
}

/* An idle connection (preferring one with `mailbox` selected), else a new one if the pool
 * has room, else wait. `fresh` asks for a newly opened connection: after a failure the idle
 * ones may be just as dead (a server restart kills them all). */
static mf_imap_conn *pool_checkout(ImapBackend *ib, const char *mailbox, gboolean fresh,
				   GError **err)
{
	mf_imap_conn *c = NULL, *drop = NULL;

	g_mutex_lock(&ib->lock);
	for (;;) {
		if (!fresh && ib->idle->len > 0) {
			c = pool_take_idle_locked(ib, mailbox);
			break;
		}
		if (ib->total < ib->max_conns) {
			ib->total++;
			break;
		}
		if (fresh && ib->idle->len > 0) {
			drop = g_ptr_array_steal_index(ib->idle, 0); /* its slot is reused */
			break;
		}
		g_cond_wait(&ib->cond, &ib->lock);
	}
	g_mutex_unlock(&ib->lock);
	if (c)
		return c;
	mf_imap_conn_logout(drop);
	return pool_open_counted(ib, err);
}

static void pool_checkin(ImapBackend *ib, mf_imap_conn *c)
{
	gboolean dead = mf_imap_conn_is_dead(c);

	g_mutex_lock(&ib->lock);
	if (dead)
		ib->total--;
	else
		g_ptr_array_add(ib->idle, c);
	g_cond_signal(&ib->cond);
	g_mutex_unlock(&ib->lock);
	if (dead)
		mf_imap_conn_free(c);
}

typedef gboolean (*conn_op)(mf_imap_conn *c, gpointer ud, GError **err);

/* Run op on a pooled connection; once more on a new connection if the first one died. */
static gboolean pool_run(ImapBackend *ib, const char *mailbox, conn_op op, gpointer ud,
			 GError **err)
{
	for (int attempt = 0;; attempt++) {
		g_autoptr(GError) e = NULL;
		mf_imap_conn *c = pool_checkout(ib, mailbox, attempt > 0, &e);

		if (!c) {
			g_propagate_error(err, g_steal_pointer(&e));
			return FALSE;
		}
		gboolean ok = op(c, ud, &e);
		gboolean dead = mf_imap_conn_is_dead(c);
		const char *label = mf_imap_conn_label(c);

		if (!ok && dead && attempt == 0 && !g_error_matches(e, MF_ERROR, MF_ERR_THROTTLED)) {
			mf_log_info("%s: %s; reconnecting", label, e ? e->message : "connection lost");
			pool_checkin(ib, c);
			continue;
		}
		pool_checkin(ib, c);
		if (!ok)
			g_propagate_error(err, g_steal_pointer(&e));
		return ok;
	}
}

/* ---- a second connection for big listings -------------------------------------------- */

/* mf_imap_helper.borrow: like pool_checkout, but never waits for a connection in use (the
 * listing that asks holds one, and may hold the last). */
static mf_imap_conn *helper_borrow(const char *mailbox, gboolean wait, gpointer ud)
{
	ImapBackend *ib = ud;
	mf_imap_conn *c = NULL;
	gboolean open = FALSE;

	g_mutex_lock(&ib->lock);
	while (wait && ib->idle->len == 0 && ib->warming)
		g_cond_wait(&ib->cond, &ib->lock);
	if (ib->idle->len > 0) {
		c = pool_take_idle_locked(ib, mailbox);
	} else if (wait && ib->total < ib->max_conns) {
		ib->total++;
		open = TRUE;
	}
	g_mutex_unlock(&ib->lock);
	if (!open)
		return c;
	g_autoptr(GError) e = NULL;

	c = pool_open_counted(ib, &e);
	if (!c)
		mf_log_debug("no second connection for listing %s: %s", mailbox, e->message);
	return c;
}

static void helper_give_back(mf_imap_conn *c, gpointer ud)
{
	pool_checkin(ud, c);
}

/* Below this a listing is over before a second connection would have examined the folder. */
#define SPLIT_MIN_MESSAGES 4000
/* A second connection being opened is waited for only on a link this quick (see
 * mf_imap_helper): on loopback it measured 10-20 ms better for 10,000 messages, through a
 * 20 ms round trip 15-60 ms worse. */
#define SPLIT_WAIT_MAX_RTT_US 5000
/* The first login's exchange quicker than this: the link is quick enough to open the second
 * connection while mounting (Dovecot on loopback answers a login in about 5 ms; through a
 * 20 ms round trip it takes 25). */
#define WARM_UP_AT_MOUNT_MAX_US 12000

static gpointer warm_up_main(gpointer data)
{
	ImapBackend *ib = data;
	g_autoptr(GError) e = NULL;
	mf_imap_conn *c = pool_open_counted(ib, &e);

	/* INBOX is what a mail user lists first. A session's first look at a message costs
	 * Dovecot 4-7 ms more than the next (it opens its cache): paid here, not by the
	 * listing that waits for this connection's first answer. */
	if (c && !(mf_imap_conn_examine(c, "INBOX", &e) &&
		   (mf_imap_conn_exists(c) == 0 ||
		    mf_imap_conn_run(c, MF_IMAP_FETCH, "1 (UID RFC822.SIZE)", NULL, NULL, &e))))
		mf_log_debug("second connection: %s", e->message);
	else if (!c)
		mf_log_debug("no second connection: %s", e->message);
	g_mutex_lock(&ib->lock);
	if (c)
		g_ptr_array_add(ib->idle, c);
	ib->warming = FALSE;
	g_cond_broadcast(&ib->cond);
	g_mutex_unlock(&ib->lock);
	return NULL;
}

static char *index_path(ImapBackend *ib, const char *mailbox);

/* Open the second connection, for INBOX's first listing, on a thread. With INBOX's listing
 * saved from an earlier mount there is none to share, and the pool opens connections as
 * reads need them. */
static void warm_up_begin(ImapBackend *ib)
{
	ib->warm_up_done = TRUE;
	if (ib->acct.state_dir) {
		g_autofree char *saved = index_path(ib, "INBOX");

		if (g_file_test(saved, G_FILE_TEST_EXISTS))
			return;
	}
	g_mutex_lock(&ib->lock);
	if (ib->max_conns >= 2 && ib->total < ib->max_conns && !ib->warm_up) {
		ib->total++;
		ib->warming = TRUE;
		ib->warm_up = g_thread_new("warm-up", warm_up_main, ib);
	}
	g_mutex_unlock(&ib->lock);
}

/* ---- folders ------------------------------------------------------------------------- */

typedef struct {
	GPtrArray *entries; /* imap_list_entry* */
} ListCtx;

static void list_cb(const imap_response *r, gpointer ud)
{
	ListCtx *lc = ud;
	g_autoptr(GError) e = NULL;

	if (strcmp(r->keyword, "LIST") != 0)
		return;
	imap_list_entry *le = imap_list_from_response(r, &e);

	if (le)
		g_ptr_array_add(lc->entries, le);
	else
		mf_log_warn("ignoring a LIST entry: %s", e->message);
}

static gboolean list_op(mf_imap_conn *c, gpointer ud, GError **err)
{
	ListCtx *lc = ud;

	g_ptr_array_set_size(lc->entries, 0);
	return mf_imap_conn_run(c, MF_IMAP_LIST, "\"\" \"*\"", list_cb, lc, err);
}

static GPtrArray *imap_list_folders(mf_backend *b, GError **err)
{
	ImapBackend *ib = imap_backend(b);
	ListCtx lc = { g_ptr_array_new_with_free_func((GDestroyNotify)imap_list_entry_free) };
	GPtrArray *out = NULL;

	if (pool_run(ib, NULL, list_op, &lc, err))
		out = mf_imap_folders_build(lc.entries);
	g_ptr_array_unref(lc.entries);
	return out;
}

/* ---- listings ------------------------------------------------------------------------ */

static FolderState *folder_state(ImapBackend *ib, const char *mailbox)
{
	g_mutex_lock(&ib->lock);
	FolderState *fs = g_hash_table_lookup(ib->folders, mailbox);

	if (!fs) {
		fs = g_new0(FolderState, 1);
		g_mutex_init(&fs->lock);
		g_hash_table_insert(ib->folders, g_strdup(mailbox), fs);
	}
	g_mutex_unlock(&ib->lock);
	return fs;
}

static char *index_path(ImapBackend *ib, const char *mailbox)
{
	g_autofree char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, mailbox, -1);
	g_autofree char *name = g_strdup_printf("imap-%.32s.idx", hash);

	return g_build_filename(ib->acct.state_dir, name, NULL);
}

/* The saved listing, or NULL (none, unreadable, damaged, or from another version: the next
 * save replaces it). */
static mf_imap_index *index_load(ImapBackend *ib, const char *mailbox)
{
	g_autofree char *path = index_path(ib, mailbox);
	g_autofree char *data = NULL;
	g_autoptr(GError) e = NULL;
	gsize len;

	if (!g_file_get_contents(path, &data, &len, &e)) {
		if (!g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			mf_log_warn("cannot read the index of %s: %s", mailbox, e->message);
		return NULL;
	}
	mf_imap_index *x = mf_imap_index_parse((const guint8 *)data, len, mailbox, INDEX_GENERATOR, &e);

	if (!x) {
		if (g_error_matches(e, MF_ERROR, MF_ERR_STALE))
			mf_log_info("not using the index of %s: %s", mailbox, e->message);
		else
			mf_log_warn("ignoring the index of %s (%s): %s", mailbox, path, e->message);
		return NULL;
	}
	mf_log_debug("%s: %u messages from %s", mailbox, g_hash_table_size(x->msgs), path);
	return x;
}

/* Written to a temporary file and renamed into place, so a crash leaves the old file or the
 * new one, never half of one; 0600 because envelopes are private. */
static void index_save(ImapBackend *ib, const mf_imap_index *x)
{
	g_autofree char *path = index_path(ib, x->mailbox);
	g_autoptr(GBytes) b = mf_imap_index_serialise(x, INDEX_GENERATOR);
	g_autoptr(GError) e = NULL;
	gsize len;
	const char *data = g_bytes_get_data(b, &len);

	if (!g_file_set_contents_full(path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
				      &e))
		mf_log_warn("cannot save the index of %s: %s", x->mailbox, e->message);
}

/* The saver thread: whatever the folder's index is by now, under the folder's lock (a listing
 * in progress finishes first; several changes queued meanwhile cost one write). */
static void index_save_job(gpointer data, gpointer user_data)
{
	FolderState *fs = data;
	ImapBackend *ib = user_data;

	mf_thread_set_background();
	g_mutex_lock(&ib->lock);
	while (!ib->closing && g_get_monotonic_time() < fs->save_due)
		g_cond_wait_until(&ib->save_cond, &ib->lock, fs->save_due);
	g_mutex_unlock(&ib->lock);
	g_mutex_lock(&fs->lock);
	if (fs->save_queued && fs->idx && fs->idx->uidvalidity)
		index_save(ib, fs->idx);
	fs->save_queued = FALSE;
	g_mutex_unlock(&fs->lock);
}

/* Called with fs->lock held. Writing 10,000 envelopes (and fsync) would otherwise delay the
 * listing it records; the save is complete before the backend is freed. */
static void index_queue_save(ImapBackend *ib, FolderState *fs)
{
	if (fs->save_queued)
		return;
	fs->save_queued = TRUE;
	fs->save_due = g_get_monotonic_time() + SAVE_DELAY_US;
	/* Created on first use: no thread may exist before the daemon forks. */
	g_mutex_lock(&ib->lock);
	if (!ib->saver)
		ib->saver = g_thread_pool_new(index_save_job, ib, 1, TRUE, NULL);
	g_thread_pool_push(ib->saver, fs, NULL);
	g_mutex_unlock(&ib->lock);
}

/* The size check of a streamed listing runs beside it, on a second connection: the first
 * body access of a session costs some servers a scan of the folder (Dovecot: ~12 ms for
 * 10,000 messages), which would otherwise hold up the envelopes. */
typedef struct {
	ImapBackend *ib;
	const char *mailbox;
	const mf_listing_sink *sink;
} SizeCheckJob;

static void keep_wrong(const mf_msg_meta *wrong, gpointer user_data)
{
	mf_msg_meta **out = user_data;

	*out = wrong ? mf_msg_meta_copy(wrong) : NULL;
}

static gboolean size_check_op(mf_imap_conn *c, gpointer ud, GError **err)
{
	SizeCheckJob *j = ud;
	g_autoptr(mf_msg_meta) wrong = NULL;

	if (!mf_imap_check_sizes(c, j->mailbox, j->ib->base.stats, &wrong, err))
		return FALSE;
	j->sink->sizes_checked(wrong, j->sink->user_data);
	return TRUE;
}

static gboolean imap_check_sizes(mf_backend *b, const mf_folder *f, mf_msg_meta **wrong,
				 GError **err)
{
	ImapBackend *ib = imap_backend(b);
	mf_listing_sink sink = { .sizes_checked = keep_wrong, .user_data = wrong };
	SizeCheckJob j = { ib, f->raw, &sink };

	*wrong = NULL;
	return pool_run(ib, f->raw, size_check_op, &j, err);
}

static gpointer size_check_main(gpointer data)
{
	SizeCheckJob *j = data;
	g_autoptr(GError) e = NULL;

	/* Without a verdict the listing's owner checks the sizes itself, afterwards. */
	if (!pool_run(j->ib, j->mailbox, size_check_op, j, &e))
		mf_log_debug("%s: size check failed: %s", j->mailbox, e->message);
	return NULL;
}

typedef struct {
	ImapBackend *ib;
	const char *mailbox;
	mf_stats *stats;
	mf_imap_index **idx;
	gboolean changed;
	GPtrArray *listing; /* from the sync, or NULL */
	const mf_listing_sink *sink;
	gboolean all_in_sink;
	guint attempts;
	SizeCheckJob check;
	GThread *checker;   /* started once this listing holds its connection */
} SyncOpCtx;

static gboolean sync_op(mf_imap_conn *c, gpointer ud, GError **err)
{
	SyncOpCtx *sc = ud;
	gboolean changed = FALSE;
	/* A retry lists anew without the sink: what the sink got from the lost attempt is then
	 * corrected by the whole listing. */
	const mf_listing_sink *sink = sc->attempts++ ? NULL : sc->sink;

	/* Only a listing from scratch is streamed and needs the check beside it; one that starts
	 * from a saved index is a round trip or two (a new epoch found then is checked after). */
	if (sink && sink->sizes_checked && !sc->checker && !*sc->idx) {
		sc->check = (SizeCheckJob){ sc->ib, sc->mailbox, sink };
		sc->checker = g_thread_new("sizecheck", size_check_main, &sc->check);
	}
	g_clear_pointer(&sc->listing, g_ptr_array_unref);
	mf_imap_helper helper = { helper_borrow, helper_give_back, sc->ib, SPLIT_MIN_MESSAGES,
				  SPLIT_WAIT_MAX_RTT_US };
	gboolean ok = mf_imap_sync_folder(c, sc->mailbox, sc->stats, sc->idx, &changed,
					  &sc->listing, sink, &sc->all_in_sink,
					  sc->ib->max_conns >= 2 ? &helper : NULL, err);

	/* A retry after a lost connection may find nothing left to change. */
	sc->changed = sc->changed || changed;
	return ok;
}

static mf_listing *list_messages(mf_backend *b, const mf_folder *f, const mf_listing_sink *sink,
				 GError **err)
{
	ImapBackend *ib = imap_backend(b);
	FolderState *fs = folder_state(ib, f->raw);
	mf_listing *l = NULL;

	g_mutex_lock(&fs->lock);
	if (!fs->idx && !fs->disk_tried && ib->acct.state_dir) {
		fs->idx = index_load(ib, f->raw);
		fs->disk_tried = TRUE;
	}
	SyncOpCtx sc = { .ib = ib, .mailbox = f->raw, .stats = b->stats, .idx = &fs->idx,
			 .sink = sink };

	gboolean ok = pool_run(ib, f->raw, sync_op, &sc, err);

	if (sc.checker)
		g_thread_join(sc.checker); /* the sink is only valid during this call */
	if (ok) {
		if (sc.changed && ib->acct.state_dir && fs->idx->uidvalidity)
			index_queue_save(ib, fs);
		l = g_new0(mf_listing, 1);
		l->uidvalidity = fs->idx->uidvalidity;
		l->all_in_sink = sc.all_in_sink;
		if (l->all_in_sink)
			l->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref);
		else
			l->msgs = sc.listing ? g_steal_pointer(&sc.listing) : mf_imap_index_listing(fs->idx);
	}
	g_clear_pointer(&sc.listing, g_ptr_array_unref);
	g_mutex_unlock(&fs->lock);
	return l;
}

static mf_listing *imap_list_messages(mf_backend *b, const mf_folder *f, GError **err)
{
	return list_messages(b, f, NULL, err);
}

static mf_listing *imap_list_messages_streamed(mf_backend *b, const mf_folder *f,
					       const mf_listing_sink *sink, GError **err)
{
	return list_messages(b, f, sink, err);
}

/* ---- bodies -------------------------------------------------------------------------- */

/* EXAMINE unless already selected, then make sure the folder is still the same epoch. */
static gboolean ensure_examined(mf_imap_conn *c, const char *mailbox, guint32 uidvalidity,
				GError **err)
{
	const char *sel = mf_imap_conn_selected(c);

	if ((!sel || strcmp(sel, mailbox) != 0) && !mf_imap_conn_examine(c, mailbox, err))
		return FALSE;
	if (mf_imap_conn_uidvalidity(c) != uidvalidity) {
		g_set_error(err, MF_ERROR, MF_ERR_STALE,
			    "folder %s was reset by the server (UIDVALIDITY %u, expected %u)", mailbox,
			    mf_imap_conn_uidvalidity(c), uidvalidity);
		return FALSE;
	}
	return TRUE;
}

typedef struct {
	const char *mailbox;
	guint32 uidvalidity, uid;
	guint64 off, len;
	GHashTable *pieces; /* origin (guint64*) -> GBytes* */
	GBytes *result;
} FetchCtx;

static void fetch_cb(const imap_response *r, gpointer ud)
{
	FetchCtx *fc = ud;
	g_autoptr(GError) e = NULL;

	if (strcmp(r->keyword, "FETCH") != 0)
		return;
	g_autoptr(imap_fetch) f = imap_fetch_from_response(r, &e);

	if (!f || !f->has_uid || f->uid != fc->uid || !f->body)
		return;
	guint64 *key = g_new(guint64, 1);

	*key = f->body_partial ? f->body_origin : 0;
	g_hash_table_replace(fc->pieces, key, g_bytes_ref(f->body));
}

static gboolean fetch_op(mf_imap_conn *c, gpointer ud, GError **err)
{
	FetchCtx *fc = ud;

	g_hash_table_remove_all(fc->pieces);
	if (!ensure_examined(c, fc->mailbox, fc->uidvalidity, err))
		return FALSE;
	g_autoptr(mf_imap_batch) batch = mf_imap_batch_new(c);
	GArray *origins = g_array_new(FALSE, FALSE, sizeof(guint64));

	if (fc->off == 0 && fc->len == 0) {
		g_autofree char *args = g_strdup_printf("%u (UID BODY.PEEK[])", fc->uid);

		mf_imap_batch_add(batch, MF_IMAP_UID_FETCH, args, fetch_cb, fc);
		guint64 o = 0;

		g_array_append_val(origins, o);
	} else {
		/* A partial fetch names a 32-bit length; "to the end" is simply the largest. */
		guint64 end = fc->len ? fc->off + fc->len : fc->off + G_MAXUINT32;

		for (guint64 o = fc->off; o < end; o += PIECE) {
			guint64 n = fc->len ? MIN(PIECE, end - o) : G_MAXUINT32;
			g_autofree char *args = g_strdup_printf(
				"%u (UID BODY.PEEK[]<%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT ">)", fc->uid,
				o, n);

			mf_imap_batch_add(batch, MF_IMAP_UID_FETCH, args, fetch_cb, fc);
			g_array_append_val(origins, o);
			if (!fc->len)
				break;
		}
	}
	gboolean ok = mf_imap_batch_run(batch, err);

	if (ok) {
		/* Concatenate in order; a short piece is the end of the message. */
		g_autoptr(GByteArray) out = g_byte_array_new();
		gboolean any = FALSE;

		for (guint i = 0; i < origins->len; i++) {
			guint64 o = g_array_index(origins, guint64, i);
			GBytes *p = g_hash_table_lookup(fc->pieces, &o);

			if (!p)
				break;
			any = TRUE;
			gsize n;
			const guint8 *d = g_bytes_get_data(p, &n);

			if (origins->len == 1) {
				fc->result = g_bytes_ref(p);
				break;
			}
			g_byte_array_append(out, d, (guint)n);
			if (n < PIECE)
				break;
		}
		if (!any) {
			g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND,
				    "message %u no longer exists in %s", fc->uid, fc->mailbox);
			ok = FALSE;
		} else if (!fc->result) {
			fc->result = g_byte_array_free_to_bytes(g_steal_pointer(&out));
		}
	}
	g_array_free(origins, TRUE);
	return ok;
}

static GBytes *imap_fetch_body(mf_backend *b, const mf_folder *f, guint32 uidvalidity,
			       const mf_msg_meta *m, guint64 off, guint64 len, GError **err)
{
	ImapBackend *ib = imap_backend(b);

	if (off > G_MAXUINT32)
		return g_bytes_new(NULL, 0); /* IMAP partial offsets are 32-bit: no such bytes */
	FetchCtx fc = {
		.mailbox = f->raw, .uidvalidity = uidvalidity, .uid = m->uid, .off = off, .len = len,
		.pieces = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
						(GDestroyNotify)g_bytes_unref),
	};

	if (off == 0 && len == 0)
		mf_stats_body_whole(b->stats);
	else
		mf_stats_body_partial(b->stats);
	gboolean ok = pool_run(ib, f->raw, fetch_op, &fc, err);

	g_hash_table_unref(fc.pieces);
	if (!ok)
		g_clear_pointer(&fc.result, g_bytes_unref);
	return fc.result;
}

typedef struct {
	const char *mailbox;
	guint32 uidvalidity;
	GHashTable *by_uid;    /* uid -> const mf_msg_meta* */
	GHashTable *delivered; /* uid, across a retry */
	mf_body_cb cb;
	gpointer ud;
	mf_stats *stats;
} ManyCtx;

static void many_cb(const imap_response *r, gpointer ud)
{
	ManyCtx *mc = ud;
	g_autoptr(GError) e = NULL;

	if (strcmp(r->keyword, "FETCH") != 0)
		return;
	g_autoptr(imap_fetch) f = imap_fetch_from_response(r, &e);

	if (!f || !f->has_uid || !f->body || f->body_partial)
		return;
	const mf_msg_meta *m = g_hash_table_lookup(mc->by_uid, GUINT_TO_POINTER(f->uid));

	if (!m || g_hash_table_contains(mc->delivered, GUINT_TO_POINTER(f->uid)))
		return;
	g_hash_table_add(mc->delivered, GUINT_TO_POINTER(f->uid));
	mf_stats_body_whole(mc->stats);
	mc->cb(m, f->body, mc->ud);
}

static gboolean many_op(mf_imap_conn *c, gpointer ud, GError **err)
{
	ManyCtx *mc = ud;

	if (!ensure_examined(c, mc->mailbox, mc->uidvalidity, err))
		return FALSE;
	g_autoptr(GArray) uids = g_array_new(FALSE, FALSE, sizeof(guint32));
	GHashTableIter it;
	gpointer k;

	g_hash_table_iter_init(&it, mc->by_uid);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (!g_hash_table_contains(mc->delivered, k)) {
			guint32 u = GPOINTER_TO_UINT(k);

			g_array_append_val(uids, u);
		}
	g_autoptr(GPtrArray) chunks = mf_imap_uidset_chunks((const guint32 *)uids->data, uids->len,
							    LIST_CHUNK, SET_MAX_LEN);
	g_autoptr(mf_imap_batch) batch = mf_imap_batch_new(c);

	for (guint i = 0; i < chunks->len; i++) {
		g_autofree char *args = g_strdup_printf("%s (UID BODY.PEEK[])", (char *)chunks->pdata[i]);

		mf_imap_batch_add(batch, MF_IMAP_UID_FETCH, args, many_cb, mc);
	}
	return chunks->len == 0 || mf_imap_batch_run(batch, err);
}

static gboolean imap_fetch_many(mf_backend *b, const mf_folder *f, guint32 uidvalidity,
				GPtrArray *metas, mf_body_cb cb, gpointer user_data, GError **err)
{
	ImapBackend *ib = imap_backend(b);
	ManyCtx mc = {
		.mailbox = f->raw, .uidvalidity = uidvalidity, .cb = cb, .ud = user_data,
		.by_uid = g_hash_table_new(g_direct_hash, g_direct_equal),
		.delivered = g_hash_table_new(g_direct_hash, g_direct_equal),
		.stats = b->stats,
	};

	for (guint i = 0; i < metas->len; i++) {
		const mf_msg_meta *m = metas->pdata[i];

		g_hash_table_insert(mc.by_uid, GUINT_TO_POINTER(m->uid), (gpointer)m);
	}
	gboolean ok = g_hash_table_size(mc.by_uid) == 0 || pool_run(ib, f->raw, many_op, &mc, err);

	g_hash_table_unref(mc.by_uid);
	g_hash_table_unref(mc.delivered);
	return ok;
}

/* ---- several ranges ------------------------------------------------------------------ */

/* One UID FETCH per distinct (uid, offset). An answer names only its UID and origin, so two
 * ranges starting at the same place are asked for once, with the longer length, and each gets
 * its prefix of the answer. */
typedef struct {
	guint32 uid;
	guint64 off;
	guint64 len;  /* 0: to the end */
	GBytes *body; /* the answer, or NULL */
} RangeReq;

static guint range_hash(gconstpointer p)
{
	const RangeReq *r = p;

	return r->uid ^ (guint)(r->off * 2654435761u) ^ (guint)(r->off >> 32);
}

static gboolean range_equal(gconstpointer a, gconstpointer b)
{
	const RangeReq *x = a, *y = b;

	return x->uid == y->uid && x->off == y->off;
}

static void range_req_free(gpointer p)
{
	RangeReq *r = p;

	g_clear_pointer(&r->body, g_bytes_unref);
	g_free(r);
}

typedef struct {
	const char *mailbox;
	guint32 uidvalidity;
	GHashTable *reqs; /* RangeReq* (its own key) */
	mf_stats *stats;
} RangesCtx;

static void ranges_cb(const imap_response *r, gpointer ud)
{
	RangesCtx *rc = ud;
	g_autoptr(GError) e = NULL;

	if (strcmp(r->keyword, "FETCH") != 0)
		return;
	g_autoptr(imap_fetch) f = imap_fetch_from_response(r, &e);

	if (!f || !f->has_uid || !f->body)
		return;
	RangeReq key = { .uid = f->uid, .off = f->body_partial ? f->body_origin : 0 };
	RangeReq *q = g_hash_table_lookup(rc->reqs, &key);

	if (q && !q->body)
		q->body = g_bytes_ref(f->body);
}

static gboolean ranges_op(mf_imap_conn *c, gpointer ud, GError **err)
{
	RangesCtx *rc = ud;
	g_autoptr(GError) e = NULL;
	GHashTableIter it;
	gpointer k;

	if (!ensure_examined(c, rc->mailbox, rc->uidvalidity, err))
		return FALSE;
	g_autoptr(mf_imap_batch) batch = mf_imap_batch_new(c);

	g_hash_table_iter_init(&it, rc->reqs);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		RangeReq *q = k;
		g_autofree char *args = NULL;

		g_clear_pointer(&q->body, g_bytes_unref); /* from a try on a connection that died */
		if (q->off == 0 && q->len == 0) {
			args = g_strdup_printf("%u (UID BODY.PEEK[])", q->uid);
			mf_stats_body_whole(rc->stats);
		} else {
			/* A partial fetch names a 32-bit length; "to the end" is simply the largest. */
			guint64 n = q->len && q->len < G_MAXUINT32 ? q->len : G_MAXUINT32;

			args = g_strdup_printf("%u (UID BODY.PEEK[]<%" G_GUINT64_FORMAT
					       ".%" G_GUINT64_FORMAT ">)", q->uid, q->off, n);
			mf_stats_body_partial(rc->stats);
		}
		mf_imap_batch_add(batch, MF_IMAP_UID_FETCH, args, ranges_cb, rc);
	}
	if (mf_imap_batch_run(batch, &e))
		return TRUE;
	/* A refusal of one command leaves the others answered: those results stand. */
	if (!mf_imap_conn_is_dead(c) && g_error_matches(e, MF_ERROR, MF_ERR_SERVER)) {
		mf_log_debug("%s: %s", mf_imap_conn_label(c), e->message);
		return TRUE;
	}
	g_propagate_error(err, g_steal_pointer(&e));
	return FALSE;
}

static gboolean imap_fetch_ranges(mf_backend *b, const mf_folder *f, guint32 uidvalidity,
				  GPtrArray *metas, const guint64 *offs, const guint64 *lens,
				  GBytes **results, GError **err)
{
	ImapBackend *ib = imap_backend(b);
	RangesCtx rc = {
		.mailbox = f->raw, .uidvalidity = uidvalidity, .stats = b->stats,
		.reqs = g_hash_table_new_full(range_hash, range_equal, range_req_free, NULL),
	};

	for (guint i = 0; i < metas->len; i++) {
		const mf_msg_meta *m = metas->pdata[i];
		RangeReq key = { .uid = m->uid, .off = offs[i] };
		RangeReq *q;

		results[i] = NULL;
		if (offs[i] > G_MAXUINT32)
			continue; /* IMAP partial offsets are 32-bit: answered below without asking */
		q = g_hash_table_lookup(rc.reqs, &key);
		if (!q) {
			q = g_memdup2(&key, sizeof(key));
			q->len = lens[i];
			g_hash_table_add(rc.reqs, q);
		} else if (q->len && (!lens[i] || lens[i] > q->len)) {
			q->len = lens[i];
		}
	}
	gboolean ok = g_hash_table_size(rc.reqs) == 0 || pool_run(ib, f->raw, ranges_op, &rc, err);

	for (guint i = 0; ok && i < metas->len; i++) {
		const mf_msg_meta *m = metas->pdata[i];
		RangeReq key = { .uid = m->uid, .off = offs[i] };
		RangeReq *q = g_hash_table_lookup(rc.reqs, &key);
		gsize n;

		if (offs[i] > G_MAXUINT32) {
			results[i] = g_bytes_new(NULL, 0);
			continue;
		}
		if (!q || !q->body)
			continue;
		n = g_bytes_get_size(q->body);
		if (lens[i] && lens[i] < n)
			results[i] = g_bytes_new_from_bytes(q->body, 0, (gsize)lens[i]);
		else
			results[i] = g_bytes_ref(q->body);
	}
	g_hash_table_unref(rc.reqs);
	return ok;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static gboolean imap_open(mf_backend *b, GError **err)
{
	ImapBackend *ib = imap_backend(b);
	mf_imap_conn *c = pool_checkout(ib, NULL, FALSE, err);

	if (!c)
		return FALSE;
	/* On a quick link (the login's exchange, server's work included, under
	 * WARM_UP_AT_MOUNT_MAX_US) the second connection is opened now, while this one lists the
	 * folders and checks INBOX's sizes: both mostly wait for the server then, whereas opened
	 * after mounting its login took CPU from the listing it is for. On a long link its login
	 * is a run of round trips that would lengthen the mount, and a listing there shares only
	 * with a connection that is ready anyway: it is opened after daemonizing (imap_start). */
	gint64 rtt = mf_imap_conn_round_trip_us(c);

	pool_checkin(ib, c);
	if (rtt >= 0 && rtt < WARM_UP_AT_MOUNT_MAX_US)
		warm_up_begin(ib);
	return TRUE;
}

/* Before daemonizing: a second connection begun at open is open (or failed) and in the
 * pool. */
static void imap_settle(mf_backend *b)
{
	ImapBackend *ib = imap_backend(b);

	if (ib->warm_up)
		g_thread_join(g_steal_pointer(&ib->warm_up));
}

/* After daemonizing: the second connection, if it was not opened while mounting. */
static void imap_start(mf_backend *b)
{
	ImapBackend *ib = imap_backend(b);

	if (!ib->warm_up_done)
		warm_up_begin(ib);
}

/* Log out the idle connections; ones checked out right now go when they come back dead or
 * at free(). */
static void imap_close(mf_backend *b)
{
	ImapBackend *ib = imap_backend(b);
	g_autoptr(GPtrArray) idle = NULL;

	if (ib->warm_up)
		g_thread_join(g_steal_pointer(&ib->warm_up));
	g_mutex_lock(&ib->lock);
	idle = ib->idle;
	ib->idle = g_ptr_array_new();
	ib->total -= idle->len;
	g_cond_broadcast(&ib->cond);
	g_mutex_unlock(&ib->lock);
	for (guint i = 0; i < idle->len; i++)
		mf_imap_conn_logout(idle->pdata[i]);
}

static void imap_free(mf_backend *b)
{
	ImapBackend *ib = imap_backend(b);

	if (!b)
		return;
	imap_close(b);
	g_mutex_lock(&ib->lock);
	ib->closing = TRUE;
	g_cond_broadcast(&ib->save_cond);
	g_mutex_unlock(&ib->lock);
	if (ib->saver)
		g_thread_pool_free(ib->saver, FALSE, TRUE); /* pending saves are finished first */
	g_ptr_array_unref(ib->idle);
	g_hash_table_unref(ib->folders);
	g_mutex_clear(&ib->lock);
	g_cond_clear(&ib->cond);
	g_cond_clear(&ib->save_cond);
	mf_account_clear(&ib->acct);
	g_free(ib);
}

static const mf_backend_ops imap_ops = {
	.name = "imap",
	.open = imap_open,
	.settle = imap_settle,
	.start = imap_start,
	.list_folders = imap_list_folders,
	.list_messages = imap_list_messages,
	.list_messages_streamed = imap_list_messages_streamed,
	.fetch = imap_fetch_body,
	.fetch_many = imap_fetch_many,
	.fetch_ranges = imap_fetch_ranges,
	.check_sizes = imap_check_sizes,
	.close = imap_close,
	.free = imap_free,
};

mf_backend *mf_imap_backend_new(const mf_account *a)
{
	ImapBackend *ib = g_new0(ImapBackend, 1);

	mf_mailhdr_init();
	ib->base.ops = &imap_ops;
	ib->base.caps = MF_BACKEND_FOLDERS | MF_BACKEND_PARTIAL | MF_BACKEND_FLAGS;
	ib->base.stats = a->stats;
	mf_account_copy(&ib->acct, a);
	if (!ib->acct.password)
		ib->acct.password = g_strdup("");
	if (!ib->acct.port)
		ib->acct.port = a->implicit_tls ? 993 : 143;
	if (ib->acct.timeout_sec <= 0)
		ib->acct.timeout_sec = 30;
	ib->max_conns = a->connections > 0 ? (guint)a->connections : 1;
	ib->idle = g_ptr_array_new();
	ib->folders = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, folder_state_free);
	g_mutex_init(&ib->lock);
	g_cond_init(&ib->cond);
	g_cond_init(&ib->save_cond);
	return &ib->base;
}
