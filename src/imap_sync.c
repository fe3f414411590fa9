/* Folder listings over IMAP, fetched incrementally (see imap_sync.h for the order of checks). */
#include <string.h>

#include "imap_sync.h"
#include "imap_uidset.h"
#include "log.h"
#include "mailhdr.h"
#include "mferror.h"

/* One UID FETCH names at most this many messages, in at most this many bytes of set, so
 * command lines stay under the 8 KiB servers are asked to accept (RFC 7162 §4). */
#define LIST_CHUNK 2000
#define SET_MAX_LEN 7000
#define LISTING_ITEMS "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"
#define MAX_SEARCH_UIDS (50u * 1000 * 1000)

/* ---- envelopes ----------------------------------------------------------------------- */

/* Scratch space for meta_from_fetch: a listing makes thousands of metas. */
typedef struct {
	GString *from, *from_name, *to, *spec;
} MetaScratch;

/* "Name <a@b>, c@d" from ENVELOPE addresses into `out`, names decoded; group markers (host
 * NIL) are left out. FALSE when there is no address. The first address's display name (else
 * the address) goes to `first_name`, if given. */
static gboolean format_addresses(const imap_address_list *list, GString *first_name, GString *out,
				 GString *spec)
{
	g_string_truncate(out, 0);
	if (first_name)
		g_string_truncate(first_name, 0);
	gboolean named = FALSE;

	for (guint i = 0; list && i < list->len; i++) {
		const imap_address *a = &list->items[i];

		if (!a->host)
			continue;
		g_string_assign(spec, a->mailbox ? a->mailbox : "");
		if (a->mailbox) {
			g_string_append_c(spec, '@');
			g_string_append(spec, a->host);
		}
		g_autofree char *name = a->name ? mf_decode_phrase(a->name) : NULL;

		if (name)
			g_strstrip(name);
		if (out->len)
			g_string_append(out, ", ");
		mf_append_address(out, name, spec->str);
		if (first_name && !named) {
			g_string_append(first_name, name && *name ? name : spec->str);
			named = TRUE;
		}
	}
	return out->len > 0;
}

/* Names must not depend on when a folder was listed, so dates are parsed without a clock. */
static mf_msg_meta *meta_from_fetch(const imap_fetch *f, MetaScratch *x)
{
	const imap_envelope *env = f->envelope;
	const char *str[MF_META_N_STRINGS] = { NULL };
	g_autofree char *subject = NULL;
	char id[16], *p = id + sizeof id;
	guint32 uid = f->uid;

	*--p = '\0';
	do
		*--p = (char)('0' + uid % 10);
	while (uid /= 10);
	str[MF_META_ID] = p;
	str[MF_META_FLAGS] = f->has_flags && f->flags ? f->flags : "";
	if (env) {
		str[MF_META_DATE_RAW] = env->date;
		str[MF_META_SUBJECT] = subject = env->subject ? mf_decode_text(env->subject) : NULL;
		if (format_addresses(env->from, x->from_name, x->from, x->spec)) {
			str[MF_META_FROM] = x->from->str;
			str[MF_META_FROM_NAME] = x->from_name->str;
		}
		if (format_addresses(env->to, NULL, x->to, x->spec))
			str[MF_META_TO] = x->to->str;
		str[MF_META_MESSAGE_ID] = env->message_id;
	}
	mf_msg_meta *m = mf_msg_meta_new_packed(str);
	gint64 d;

	m->uid = f->uid;
	m->size = f->has_size ? f->rfc822_size : 0;
	m->internaldate = f->has_internaldate ? f->internaldate : MF_NO_DATE;
	if (env && env->date && mf_parse_date(env->date, 0, &d))
		m->date = d;
	return m;
}

/* ---- what the server sends ----------------------------------------------------------- */

typedef struct {
	const char *mailbox;
	mf_stats *stats;
	mf_imap_index *idx;   /* what is being updated; NULL while EXAMINE may name another epoch */
	guint32 new_from;     /* take envelopes of UIDs >= this (0: none by range) */
	GHashTable *wanted;   /* and of exactly these UIDs, or NULL */
	GHashTable *seen;     /* every UID a FETCH mentioned, or NULL when not collecting */
	GArray *uids;         /* a SEARCH answer */
	GError *bad;          /* a malformed SEARCH answer */
	/* Reported during EXAMINE (idx NULL), applied once the epoch is known to match: */
	GPtrArray *vanished;  /* GArray of mf_imap_uid_range, one per report */
	GHashTable *flags;    /* uid -> char* */
	guint added, removed, reflagged;
	/* A full listing copies each meta as it is made, while the server is still sending: the
	 * listing handed to the filesystem is then ready when the last envelope arrives. Valid
	 * only while nothing already in the index changed (`disturbed` counts such changes). */
	GPtrArray *copies;
	guint disturbed;
	/* Or, given a sink, the copies go there in batches (`pending`) as they are made. */
	const mf_listing_sink *sink;
	GPtrArray *pending;
	guint32 uidvalidity, last_streamed;
	guint streamed;
	gboolean stream_broken; /* a UID out of order: the sink got only part */
	MetaScratch scratch;
	const mf_imap_helper *helper;
	/* Envelopes only into `copies`, and no index (the second connection's part of a shared
	 * listing: the listing's own index gets them, once, when they are handed on). */
	gboolean collect_only;
	/* The listing's own connection in a shared listing (sync_full_shared): envelopes of a
	 * later chunk than `cur_chunk` wait in `held` until the chunks below are complete. */
	struct Chunks *order;
	struct Feeder *feeder;
	GPtrArray *held;
	guint cur_chunk;
	gint parts_seen;   /* the second connection's parts handed on, as order->parts counts */
} SyncCtx;

static void sync_emit(SyncCtx *sc, mf_msg_meta *m);

static void sync_ctx_init(SyncCtx *sc, const char *mailbox, mf_stats *stats)
{
	*sc = (SyncCtx){
		.mailbox = mailbox,
		.stats = stats,
		.uids = g_array_new(FALSE, FALSE, sizeof(guint32)),
		.vanished = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref),
		.flags = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free),
	};
}

static void sync_ctx_clear(SyncCtx *sc)
{
	g_array_free(sc->uids, TRUE);
	g_ptr_array_unref(sc->vanished);
	g_hash_table_unref(sc->flags);
	g_clear_pointer(&sc->wanted, g_hash_table_unref);
	g_clear_pointer(&sc->seen, g_hash_table_unref);
	g_clear_error(&sc->bad);
	g_clear_pointer(&sc->copies, g_ptr_array_unref);
	g_clear_pointer(&sc->pending, g_ptr_array_unref);
	g_clear_pointer(&sc->held, g_ptr_array_unref);
	if (sc->scratch.from) {
		g_string_free(sc->scratch.from, TRUE);
		g_string_free(sc->scratch.from_name, TRUE);
		g_string_free(sc->scratch.to, TRUE);
		g_string_free(sc->scratch.spec, TRUE);
	}
}

/* The first batch is small so that a directory can be shown (and its sizes checked) within
 * milliseconds; later ones are larger, as each costs the sink a lock. */
#define SINK_FIRST_BATCH 64
#define SINK_BATCH 256

static void sync_flush_sink(SyncCtx *sc)
{
	if (!sc->pending || sc->pending->len == 0)
		return;
	GPtrArray *batch = g_steal_pointer(&sc->pending);

	g_ptr_array_set_free_func(batch, NULL);
	sc->sink->add(sc->uidvalidity, batch, sc->sink->user_data);
	g_ptr_array_unref(batch);
}

static void sync_stream(SyncCtx *sc, mf_msg_meta *m)
{
	if (sc->stream_broken)
		return;
	if (sc->streamed && m->uid <= sc->last_streamed) {
		sc->stream_broken = TRUE;
		return;
	}
	if (!sc->pending)
		sc->pending = g_ptr_array_new_full(SINK_BATCH, (GDestroyNotify)mf_msg_meta_unref);
	g_ptr_array_add(sc->pending, mf_msg_meta_ref(m));
	sc->last_streamed = m->uid;
	sc->streamed++;
	if (sc->pending->len >= (sc->streamed <= SINK_FIRST_BATCH ? SINK_FIRST_BATCH : SINK_BATCH))
		sync_flush_sink(sc);
}

static void sync_set_flags(SyncCtx *sc, guint32 uid, const char *flags)
{
	mf_msg_meta *m = g_hash_table_lookup(sc->idx->msgs, GUINT_TO_POINTER(uid));

	if (!m || !g_strcmp0(m->flags, flags))
		return;
	/* The tree may share this meta: the change goes to a copy. */
	m = mf_msg_meta_copy(m);
	g_free(m->flags);
	m->flags = g_strdup(flags);
	g_hash_table_replace(sc->idx->msgs, GUINT_TO_POINTER(uid), m);
	sc->reflagged++;
	sc->disturbed++;
}

static void sync_drop(SyncCtx *sc, const GArray *ranges)
{
	GHashTableIter it;
	gpointer k;

	g_hash_table_iter_init(&it, sc->idx->msgs);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (mf_imap_uidset_ranges_contain(ranges, GPOINTER_TO_UINT(k))) {
			g_hash_table_iter_remove(&it);
			sc->removed++;
			sc->disturbed++;
		}
}

static void sync_on_fetch(SyncCtx *sc, const imap_response *r)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(imap_fetch) f = imap_fetch_from_response(r, &e);

	if (!f) {
		mf_log_warn("%s: skipping a message the server describes badly: %s", sc->mailbox,
			    e->message);
		mf_stats_set_error(sc->stats, "%s: skipped a message the server describes badly: %s",
				   sc->mailbox, e->message);
		return;
	}
	/* Unsolicited FETCH without UID (a flag change by sequence number) cannot be placed. */
	if (!f->has_uid)
		return;
	if (sc->seen)
		g_hash_table_add(sc->seen, GUINT_TO_POINTER(f->uid));
	const char *flags = f->flags ? f->flags : "";

	if (!sc->idx && !sc->collect_only) {
		if (f->has_flags)
			g_hash_table_replace(sc->flags, GUINT_TO_POINTER(f->uid), g_strdup(flags));
		return;
	}
	/* "UID n:*" always matches the last message: only UIDs asked for get an entry. */
	gboolean want = (sc->new_from && f->uid >= sc->new_from) ||
			(sc->wanted && g_hash_table_contains(sc->wanted, GUINT_TO_POINTER(f->uid)));

	if (want && (f->envelope || f->has_size)) {
		if (!sc->scratch.from)
			sc->scratch = (MetaScratch){ g_string_sized_new(256), g_string_sized_new(128),
						     g_string_sized_new(256), g_string_sized_new(128) };
		mf_msg_meta *m = meta_from_fetch(f, &sc->scratch);

		if (sc->collect_only) {
			g_ptr_array_add(sc->copies, m);
			return;
		}
		mf_msg_meta *old = g_hash_table_lookup(sc->idx->msgs, GUINT_TO_POINTER(f->uid));

		if (!old)
			sc->added++;
		else
			sc->disturbed++;
		if (old && g_strcmp0(old->flags, m->flags))
			sc->reflagged++;
		g_hash_table_replace(sc->idx->msgs, GUINT_TO_POINTER(f->uid), m);
		if (sc->copies)
			g_ptr_array_add(sc->copies, mf_msg_meta_ref(m));
		else if (sc->sink && !old)
			sync_emit(sc, m);
	} else if (f->has_flags && !sc->collect_only) {
		sync_set_flags(sc, f->uid, flags);
	}
}

static void sync_on_vanished(SyncCtx *sc, const imap_response *r)
{
	const imap_value *v = r->args->len ? r->args->pdata[r->args->len - 1] : NULL;
	g_autoptr(GError) e = NULL;

	if (!v || v->type != IMAP_V_ATOM || !v->str)
		return;
	g_autoptr(GArray) ranges = mf_imap_uidset_ranges(v->str, &e);

	if (!ranges) {
		mf_log_warn("%s: ignoring a VANISHED report: %s", sc->mailbox, e->message);
		return;
	}
	if (sc->seen) {
		GHashTableIter it;
		gpointer k;

		g_hash_table_iter_init(&it, sc->seen);
		while (g_hash_table_iter_next(&it, &k, NULL))
			if (mf_imap_uidset_ranges_contain(ranges, GPOINTER_TO_UINT(k)))
				g_hash_table_iter_remove(&it);
	}
	if (sc->idx)
		sync_drop(sc, ranges);
	else
		g_ptr_array_add(sc->vanished, g_steal_pointer(&ranges));
}

static void sync_on_search(SyncCtx *sc, const imap_response *r)
{
	if (sc->bad)
		return;
	if (!strcmp(r->keyword, "SEARCH")) {
		for (guint i = 0; i < r->args->len; i++) {
			const imap_value *v = r->args->pdata[i];
			guint64 u;

			if (v->type == IMAP_V_ATOM && v->str &&
			    g_ascii_string_to_unsigned(v->str, 10, 1, G_MAXUINT32, &u, NULL)) {
				guint32 x = (guint32)u;

				g_array_append_val(sc->uids, x);
			}
		}
		return;
	}
	/* ESEARCH (TAG "x") UID ALL 1:5,7 -- ALL is absent when nothing matched. */
	for (guint i = 0; i + 1 < r->args->len; i++) {
		const imap_value *k = r->args->pdata[i], *v = r->args->pdata[i + 1];

		if (k->type == IMAP_V_ATOM && k->str && !g_ascii_strcasecmp(k->str, "ALL") && v->str)
			mf_imap_uidset_parse(v->str, MAX_SEARCH_UIDS, sc->uids, &sc->bad);
	}
}

static void sync_cb(const imap_response *r, gpointer ud)
{
	SyncCtx *sc = ud;

	if (!r->args)
		return;
	if (!strcmp(r->keyword, "FETCH"))
		sync_on_fetch(sc, r);
	else if (!strcmp(r->keyword, "VANISHED"))
		sync_on_vanished(sc, r);
	else if (!strcmp(r->keyword, "SEARCH") || !strcmp(r->keyword, "ESEARCH"))
		sync_on_search(sc, r);
}

/* ---- the steps ----------------------------------------------------------------------- */

/* The folder's UID set into sc->uids. */
static gboolean sync_search(mf_imap_conn *c, SyncCtx *sc, GError **err)
{
	gboolean esearch = mf_imap_conn_has_cap(c, "ESEARCH");

	g_array_set_size(sc->uids, 0);
	g_clear_error(&sc->bad);
	if (!mf_imap_conn_run(c, MF_IMAP_UID_SEARCH, esearch ? "RETURN (ALL) ALL" : "ALL", sync_cb,
			      sc, err))
		return FALSE;
	if (sc->bad) {
		g_propagate_error(err, g_steal_pointer(&sc->bad));
		return FALSE;
	}
	return TRUE;
}

/* Envelopes of exactly these UIDs, in chunks, pipelined. */
static gboolean sync_fetch_envelopes(mf_imap_conn *c, SyncCtx *sc, const guint32 *uids, gsize n,
				     GError **err)
{
	g_autoptr(GPtrArray) chunks = mf_imap_uidset_chunks(uids, n, LIST_CHUNK, SET_MAX_LEN);

	if (chunks->len == 0)
		return TRUE;
	g_clear_pointer(&sc->wanted, g_hash_table_unref);
	sc->wanted = g_hash_table_new(g_direct_hash, g_direct_equal);
	for (gsize i = 0; i < n; i++)
		g_hash_table_add(sc->wanted, GUINT_TO_POINTER(uids[i]));
	g_autoptr(mf_imap_batch) batch = mf_imap_batch_new(c);

	for (guint i = 0; i < chunks->len; i++) {
		g_autofree char *args = g_strdup_printf("%s " LISTING_ITEMS, (char *)chunks->pdata[i]);

		mf_imap_batch_add(batch, MF_IMAP_UID_FETCH, args, sync_cb, sc);
	}
	return mf_imap_batch_run(batch, err);
}

static int sync_meta_cmp(gconstpointer a, gconstpointer b)
{
	const mf_msg_meta *x = *(mf_msg_meta *const *)a, *y = *(mf_msg_meta *const *)b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* ---- a full listing, on one connection or two ---------------------------------------- */

/* A big full listing is cut into UID ranges that the listing's connection and a second one
 * both take from the bottom, each as it is ready for more: a second connection that is late
 * (still logging in) takes what is left, and a missing one costs nothing. Whatever a range's
 * connection, its envelopes go to the sink in UID order as soon as the ranges below are
 * complete, so a reader (ls) works along while the server is still sending: the sink is not
 * handed half the folder at the end. Ranges cost a little on a long link (a round trip may
 * pass between two), so there only a second connection ready at once is waited for
 * (mf_imap_helper.wait_max_rtt_us). */
#define CHUNKS 16
#define CHUNK_WINDOW 2 /* commands queued or in flight per connection: one streams, one waits */

enum { CHUNK_FREE, CHUNK_MINE, CHUNK_HELPER };

typedef struct Chunks {
	GMutex lock;
	GCond published;        /* a part arrived, or the second connection is through */
	/* Chunk i is UIDs lo[i] .. lo[i+1]-1, the last one up to the highest possible UID, not
	 * '*': "n:*" names the last message even below n. */
	guint32 lo[CHUNKS];
	guint n;
	guint next;             /* chunks below are taken */
	guint8 owner[CHUNKS];
	/* The second connection's complete chunks, waiting for the listing to reach them. */
	GPtrArray *part[CHUNKS];
	gint parts;             /* how many were ever set: read without the lock */
	gboolean helper_done;
} Chunks;

/* Cut [1, highest UID] so that each chunk holds about as many messages, if the UIDs are
 * dense at the top, as they are when old mail is what gets deleted (and for UIDs 1..n): any
 * cut gives the same listing; this one only balances the two connections. FALSE: not worth
 * a second connection. */
static gboolean chunks_init(Chunks *q, guint32 exists, guint32 uidnext, guint32 min_messages)
{
	if (exists < MAX(min_messages, CHUNKS) || uidnext < 2)
		return FALSE;
	guint32 base = uidnext > exists ? uidnext - exists : 1;

	*q = (Chunks){ 0 };
	q->lo[q->n++] = 1;
	for (guint i = 1; i < CHUNKS; i++) {
		guint32 lo = base + (guint32)((guint64)exists * i / CHUNKS);

		if (lo > q->lo[q->n - 1])
			q->lo[q->n++] = lo;
	}
	return q->n >= 2;
}

static guint32 chunk_hi(const Chunks *q, guint i)
{
	return i + 1 < q->n ? q->lo[i + 1] - 1 : G_MAXUINT32;
}

/* The lowest chunk nobody took, for `who`: its FETCH arguments, or NULL when none is left. */
static char *chunk_take(Chunks *q, guint8 who, guint *index)
{
	guint i = 0;

	g_mutex_lock(&q->lock);
	gboolean any = q->next < q->n;

	if (any) {
		i = q->next++;
		q->owner[i] = who;
	}
	g_mutex_unlock(&q->lock);
	if (!any)
		return NULL;
	*index = i;
	return g_strdup_printf("%u:%u " LISTING_ITEMS, q->lo[i], chunk_hi(q, i));
}

static guint chunk_of(const Chunks *q, guint32 uid)
{
	guint i = 0;

	while (i + 1 < q->n && uid >= q->lo[i + 1])
		i++;
	return i;
}

/* The second connection's chunk i is complete: its envelopes (of that chunk only, taken out
 * of `got`) wait for the listing. */
static void chunk_publish(Chunks *q, guint i, GPtrArray *got)
{
	GPtrArray *part = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref);
	guint keep = 0;

	for (guint k = 0; k < got->len; k++) {
		mf_msg_meta *m = got->pdata[k];

		if (chunk_of(q, m->uid) == i)
			g_ptr_array_add(part, m);
		else
			got->pdata[keep++] = m;
	}
	got->len = keep;
	g_ptr_array_sort(part, sync_meta_cmp);
	g_mutex_lock(&q->lock);
	q->part[i] = part;
	g_atomic_int_inc(&q->parts);
	g_cond_broadcast(&q->published);
	g_mutex_unlock(&q->lock);
}

/* What a connection sends and has completed of the chunks it took. */
typedef struct Feeder {
	Chunks *q;
	SyncCtx *sc;
	guint8 who;
	guint cmd[CHUNKS];  /* the batch's number for each chunk it took */
	gboolean sent[CHUNKS], complete[CHUNKS];
	char *first_args;   /* a chunk taken before the batch ran, to send first */
	guint first;
} Feeder;

/* The second connection's envelopes into the listing: those of UIDs it does not have yet. */
static void sync_take_part(SyncCtx *sc, GPtrArray *part)
{
	for (guint i = 0; i < part->len; i++) {
		mf_msg_meta *m = part->pdata[i];

		if (g_hash_table_contains(sc->idx->msgs, GUINT_TO_POINTER(m->uid)))
			continue;
		g_hash_table_insert(sc->idx->msgs, GUINT_TO_POINTER(m->uid), mf_msg_meta_ref(m));
		sc->added++;
		if (sc->copies)
			g_ptr_array_add(sc->copies, mf_msg_meta_ref(m));
		else if (sc->sink)
			sync_stream(sc, m);
	}
}

/* The chunks below `cur` are complete: what was held of them, and of `cur`, goes on. */
static void sync_release(SyncCtx *sc, guint cur)
{
	sc->cur_chunk = cur;
	if (!sc->held || !sc->held->len)
		return;
	g_ptr_array_sort(sc->held, sync_meta_cmp);
	guint n = 0;

	while (n < sc->held->len && chunk_of(sc->order, ((mf_msg_meta *)sc->held->pdata[n])->uid) <= cur)
		sync_stream(sc, sc->held->pdata[n++]);
	g_ptr_array_remove_range(sc->held, 0, n);
}

/* The listing's connection: hand on every complete chunk at the bottom of what is not
 * handed on yet, its own (held until then) or the second connection's. */
static void sync_advance(SyncCtx *sc)
{
	Chunks *q = sc->order;
	const Feeder *fd = sc->feeder;

	sc->parts_seen = g_atomic_int_get(&q->parts);
	while (sc->cur_chunk < q->n) {
		guint cur = sc->cur_chunk;
		g_autoptr(GPtrArray) part = NULL;

		g_mutex_lock(&q->lock);
		guint8 owner = q->owner[cur];

		if (owner == CHUNK_HELPER)
			part = g_steal_pointer(&q->part[cur]);
		g_mutex_unlock(&q->lock);
		if (owner == CHUNK_HELPER ? !part : owner != CHUNK_MINE || !fd->complete[cur])
			break;
		if (part)
			sync_take_part(sc, part);
		sync_release(sc, cur + 1);
	}
}

/* An envelope of the listing's own connection for the sink: in UID order, although the
 * server may interleave its answers to the two FETCHes in flight, and chunks below may be
 * the second connection's. */
static void sync_emit(SyncCtx *sc, mf_msg_meta *m)
{
	if (sc->order && g_atomic_int_get(&sc->order->parts) != sc->parts_seen)
		sync_advance(sc);
	if (!sc->order || chunk_of(sc->order, m->uid) <= sc->cur_chunk) {
		sync_stream(sc, m);
		return;
	}
	if (!sc->held)
		sc->held = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref);
	g_ptr_array_add(sc->held, mf_msg_meta_ref(m));
}

static gboolean feed_chunk(mf_imap_batch *b, gpointer ud)
{
	Feeder *fd = ud;
	guint i = fd->first;
	g_autofree char *args = fd->first_args ? g_steal_pointer(&fd->first_args)
					       : chunk_take(fd->q, fd->who, &i);

	if (!args)
		return FALSE;
	fd->cmd[i] = mf_imap_batch_add(b, MF_IMAP_UID_FETCH, args, sync_cb, fd->sc);
	fd->sent[i] = TRUE;
	return TRUE;
}

/* A chunk is complete: the listing's connection hands on what it can, the second one
 * publishes it. */
static void chunk_complete(mf_imap_batch *b, guint cmd, gpointer ud)
{
	Feeder *fd = ud;

	for (guint i = 0; i < fd->q->n; i++) {
		if (!fd->sent[i] || fd->cmd[i] != cmd)
			continue;
		fd->complete[i] = TRUE;
		if (fd->who == CHUNK_MINE)
			sync_advance(fd->sc);
		else
			chunk_publish(fd->q, i, fd->sc->copies);
	}
}

static gboolean fetch_chunks(mf_imap_conn *c, Feeder *fd, GError **err)
{
	g_autoptr(mf_imap_batch) batch = mf_imap_batch_new(c);

	mf_imap_batch_set_feed(batch, CHUNK_WINDOW, feed_chunk, fd);
	mf_imap_batch_set_on_done(batch, chunk_complete, fd);
	return mf_imap_batch_run(batch, err);
}

/* The second connection's part of a shared listing, fetched on the helper's connection. */
typedef struct {
	SyncCtx sc;
	Chunks *q;
	mf_imap_conn *c;    /* lent already, or NULL: borrow one, waiting for one being opened */
	guint32 uidvalidity;
	gboolean took, ok;  /* took chunks; and fetched every one it took */
} HelperPart;

static void helper_part_run(HelperPart *t)
{
	const mf_imap_helper *h = t->sc.helper;
	g_autoptr(GError) e = NULL;
	mf_imap_conn *c = t->c ? t->c : h->borrow(t->sc.mailbox, TRUE, h->user_data);

	if (!c)
		return;
	const char *sel = mf_imap_conn_selected(c);

	if (!(sel && !strcmp(sel, t->sc.mailbox)) && !mf_imap_conn_examine(c, t->sc.mailbox, &e))
		mf_log_debug("%s: listing on one connection: %s", t->sc.mailbox, e->message);
	else if (mf_imap_conn_uidvalidity(c) != t->uidvalidity)
		mf_log_debug("%s: listing on one connection: the other sees another UIDVALIDITY",
			     t->sc.mailbox);
	else {
		Feeder fd = { .q = t->q, .sc = &t->sc, .who = CHUNK_HELPER };

		t->took = TRUE;
		t->ok = fetch_chunks(c, &fd, &e);
	}
	if (t->took && !t->ok)
		mf_log_info("%s: a second connection failed during the listing (%s): listing its part again on the first",
			    t->sc.mailbox, e ? e->message : "?");
	h->give_back(c, h->user_data);
}

static gpointer helper_part_main(gpointer data)
{
	HelperPart *t = data;

	helper_part_run(t);
	g_mutex_lock(&t->q->lock);
	t->q->helper_done = TRUE;
	g_cond_broadcast(&t->q->published);
	g_mutex_unlock(&t->q->lock);
	return NULL;
}

/* Whether chunk i is the second connection's and never arrived (nor was handed on). Only
 * once that connection is through. */
static gboolean chunk_missing(const SyncCtx *sc, const Chunks *q, guint i)
{
	return q->owner[i] == CHUNK_HELPER && !q->part[i] && i >= sc->cur_chunk;
}

/* A collecting context (collect_only) for a part of a shared listing. */
static void sync_ctx_init_part(SyncCtx *part, const SyncCtx *sc)
{
	sync_ctx_init(part, sc->mailbox, sc->stats);
	part->new_from = 1;
	part->copies = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref);
	part->collect_only = TRUE;
}

/* The second connection's chunks that never arrived, fetched again on the listing's own
 * connection (one command for all) and handed on as if the second had sent them. */
static gboolean sync_refetch_parts(mf_imap_conn *c, SyncCtx *sc, Chunks *q, GError **err)
{
	g_autoptr(GString) set = g_string_new(NULL);
	SyncCtx r;

	for (guint i = 0; i < q->n; i++)
		if (chunk_missing(sc, q, i))
			g_string_append_printf(set, "%s%u:%u", set->len ? "," : "", q->lo[i], chunk_hi(q, i));
	if (!set->len)
		return TRUE;
	g_string_append(set, " " LISTING_ITEMS);
	sync_ctx_init_part(&r, sc);
	gboolean ok = mf_imap_conn_run(c, MF_IMAP_UID_FETCH, set->str, sync_cb, &r, err);

	for (guint i = 0; ok && i < q->n; i++)
		if (chunk_missing(sc, q, i))
			chunk_publish(q, i, r.copies);
	sync_ctx_clear(&r);
	return ok;
}

static gboolean sync_full_shared(mf_imap_conn *c, SyncCtx *sc, Chunks *q, mf_imap_conn *lent,
				 GError **err)
{
	HelperPart t = { .q = q, .c = lent, .uidvalidity = sc->idx->uidvalidity };
	Feeder fd = { .q = q, .sc = sc, .who = CHUNK_MINE };

	g_mutex_init(&q->lock);
	g_cond_init(&q->published);
	/* The lowest chunk is this connection's, whichever is ready first: only this one's
	 * envelopes reach the sink as they arrive, the second's once a chunk is complete. A
	 * second connection that took the bottom left ls with nothing to show for the time of
	 * a whole chunk (seen: 30 ms into a 10,000-message listing). */
	fd.first_args = chunk_take(q, CHUNK_MINE, &fd.first);
	sync_ctx_init_part(&t.sc, sc);
	t.sc.helper = sc->helper;
	GThread *th = g_thread_new("listing-2", helper_part_main, &t);

	sc->order = q;
	sc->feeder = &fd;
	sc->cur_chunk = 0;
	sc->parts_seen = 0;
	gboolean ok = fetch_chunks(c, &fd, err);

	g_clear_pointer(&fd.first_args, g_free); /* never sent if the batch failed at once */
	/* The rest of the second connection's chunks, handed on as they arrive; if the listing
	 * failed, it takes no more. */
	g_mutex_lock(&q->lock);
	if (!ok)
		q->next = q->n;
	while (ok && !q->helper_done) {
		if (g_atomic_int_get(&q->parts) != sc->parts_seen) {
			g_mutex_unlock(&q->lock);
			sync_advance(sc);
			g_mutex_lock(&q->lock);
			continue;
		}
		g_cond_wait(&q->published, &q->lock);
	}
	g_mutex_unlock(&q->lock);
	g_thread_join(th);
	if (ok)
		ok = sync_refetch_parts(c, sc, q, err);
	if (ok) {
		sync_advance(sc);
		/* Every chunk is complete: nothing is waiting for another. */
		sync_release(sc, q->n);
	}
	sc->order = NULL;
	sc->feeder = NULL;
	for (guint i = 0; i < q->n; i++)
		g_clear_pointer(&q->part[i], g_ptr_array_unref);
	sync_ctx_clear(&t.sc);
	g_cond_clear(&q->published);
	g_mutex_clear(&q->lock);
	return ok;
}

/* The first listing of a folder (or of a new epoch) is one "UID FETCH 1:*", whatever its size:
 * no UID set to learn first, so no round trip before the envelopes start flowing, and the
 * command stays short however sparse or long the UIDs are. A big one is shared with a second
 * connection (sync_full_shared). */
static gboolean sync_full(mf_imap_conn *c, SyncCtx *sc, GError **err)
{
	guint32 exists = mf_imap_conn_exists(c);

	if (exists == 0)
		return TRUE;
	sc->new_from = 1;
	if (sc->sink)
		sc->uidvalidity = sc->idx->uidvalidity;
	else
		sc->copies = g_ptr_array_new_full(exists, (GDestroyNotify)mf_msg_meta_unref);
	Chunks q;
	mf_imap_conn *lent = NULL;
	gboolean share = sc->helper && chunks_init(&q, exists, mf_imap_conn_uidnext(c),
						   sc->helper->min_messages);
	gint64 rtt = mf_imap_conn_round_trip_us(c);

	if (share && rtt >= sc->helper->wait_max_rtt_us) {
		lent = sc->helper->borrow(sc->mailbox, FALSE, sc->helper->user_data);
		share = lent != NULL;
	}
	gboolean ok = share ? sync_full_shared(c, sc, &q, lent, err)
			    : mf_imap_conn_run(c, MF_IMAP_UID_FETCH, "1:* " LISTING_ITEMS, sync_cb, sc, err);

	if (ok && sc->sink)
		sync_flush_sink(sc);
	return ok;
}

/* Whether the sink now holds exactly the index's messages. */
static gboolean sync_sink_complete(const SyncCtx *sc)
{
	return sc->sink && sc->streamed && !sc->stream_broken && !sc->disturbed &&
	       sc->streamed == g_hash_table_size(sc->idx->msgs);
}

/* The copies made during a full listing, if they are exactly the index's metas: in ascending
 * UID like mf_imap_index_listing() (servers send them in that order; sorted if not). */
static GPtrArray *sync_take_copies(SyncCtx *sc)
{
	g_autoptr(GPtrArray) v = g_steal_pointer(&sc->copies);

	if (!v || sc->disturbed || v->len != g_hash_table_size(sc->idx->msgs))
		return NULL;
	for (guint i = 1; i < v->len; i++)
		if (((mf_msg_meta *)v->pdata[i - 1])->uid >= ((mf_msg_meta *)v->pdata[i])->uid) {
			g_ptr_array_sort(v, sync_meta_cmp);
			break;
		}
	return g_steal_pointer(&v);
}

/* Make the index hold exactly `uids`: drop the others, fetch envelopes of the unknown. */
static gboolean sync_reconcile(mf_imap_conn *c, SyncCtx *sc, const guint32 *uids, gsize n,
			       GError **err)
{
	g_autoptr(GHashTable) present = g_hash_table_new(g_direct_hash, g_direct_equal);
	g_autoptr(GArray) unknown = g_array_new(FALSE, FALSE, sizeof(guint32));
	GHashTableIter it;
	gpointer k;

	for (gsize i = 0; i < n; i++) {
		g_hash_table_add(present, GUINT_TO_POINTER(uids[i]));
		if (!g_hash_table_contains(sc->idx->msgs, GUINT_TO_POINTER(uids[i])))
			g_array_append_val(unknown, uids[i]);
	}
	g_hash_table_iter_init(&it, sc->idx->msgs);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (!g_hash_table_contains(present, k)) {
			g_hash_table_iter_remove(&it);
			sc->removed++;
		}
	return sync_fetch_envelopes(c, sc, (const guint32 *)unknown->data, unknown->len, err);
}

static gboolean sync_incremental(mf_imap_conn *c, SyncCtx *sc, guint32 uidnext, guint64 modseq,
				 GError **err)
{
	mf_imap_index *x = sc->idx;
	guint32 exists = mf_imap_conn_exists(c);
	/* HIGHESTMODSEQ known then and now: flag changes are visible without asking for all.
	 * One that went backwards (a server restored from a backup) describes another history. */
	gboolean modseqs = modseq && x->highestmodseq && modseq >= x->highestmodseq;
	/* ...and with QRESYNC the EXAMINE has already reported them, expunges too. */
	gboolean qresync = modseqs && mf_imap_conn_qresync(c);

	if (modseqs && uidnext && uidnext == x->uidnext && modseq == x->highestmodseq &&
	    exists == g_hash_table_size(x->msgs))
		return TRUE;
	if (exists == 0) {
		sc->removed += g_hash_table_size(x->msgs);
		g_hash_table_remove_all(x->msgs);
		return TRUE;
	}
	g_autoptr(mf_imap_batch) batch = mf_imap_batch_new(c);
	gboolean any = FALSE;

	if (x->uidnext && uidnext != x->uidnext) {
		g_autofree char *args = g_strdup_printf("%u:* " LISTING_ITEMS, x->uidnext);

		sc->new_from = x->uidnext;
		mf_imap_batch_add(batch, MF_IMAP_UID_FETCH, args, sync_cb, sc);
		any = TRUE;
	}
	if (!modseqs) {
		sc->seen = g_hash_table_new(g_direct_hash, g_direct_equal);
		mf_imap_batch_add(batch, MF_IMAP_UID_FETCH, "1:* (UID FLAGS)", sync_cb, sc);
		any = TRUE;
	} else if (!qresync && modseq != x->highestmodseq) {
		g_autofree char *args = g_strdup_printf("1:* (UID FLAGS) (CHANGEDSINCE %" G_GUINT64_FORMAT ")",
							x->highestmodseq);

		mf_imap_batch_add(batch, MF_IMAP_UID_FETCH, args, sync_cb, sc);
		any = TRUE;
	}
	if (any && !mf_imap_batch_run(batch, err))
		return FALSE;
	sc->new_from = 0;
	/* The count tells whether anything known was expunged unnoticed (without QRESYNC an
	 * expunge shows only as a smaller EXISTS). */
	exists = mf_imap_conn_exists(c);
	if (sc->seen && g_hash_table_size(sc->seen) == exists) {
		g_autoptr(GArray) v = g_array_new(FALSE, FALSE, sizeof(guint32));
		GHashTableIter it;
		gpointer k;

		g_hash_table_iter_init(&it, sc->seen);
		while (g_hash_table_iter_next(&it, &k, NULL)) {
			guint32 u = GPOINTER_TO_UINT(k);

			g_array_append_val(v, u);
		}
		return sync_reconcile(c, sc, (const guint32 *)v->data, v->len, err);
	}
	if (exists == g_hash_table_size(x->msgs))
		return TRUE;
	mf_log_debug("%s: %u messages known, server has %u: comparing UID sets", sc->mailbox,
		     g_hash_table_size(x->msgs), exists);
	return sync_search(c, sc, err) &&
	       sync_reconcile(c, sc, (const guint32 *)sc->uids->data, sc->uids->len, err);
}

static gboolean sync_run(mf_imap_conn *c, SyncCtx *sc, mf_imap_index **idx, gboolean *changed,
			 GPtrArray **listing, gboolean *all_in_sink, GError **err)
{
	mf_imap_index *old = *idx;
	/* Some servers report HIGHESTMODSEQ without offering CONDSTORE; CHANGEDSINCE is only
	 * for those that do. */
	gboolean condstore = mf_imap_conn_qresync(c) || mf_imap_conn_has_cap(c, "CONDSTORE");
	const char *sel = mf_imap_conn_selected(c);
	/* A listing from scratch on a connection that has just EXAMINEd the folder (the size
	 * check at mount) needs no second EXAMINE: what changed since is reported anyway. Only
	 * if that one gave HIGHESTMODSEQ, which the index needs for the next refresh. */
	gboolean fresh_selection = !old && sel && !strcmp(sel, sc->mailbox) &&
				   (!condstore || mf_imap_conn_highestmodseq(c));

	if (!fresh_selection &&
	    !mf_imap_conn_examine_since(c, sc->mailbox, old ? old->uidvalidity : 0,
					old ? old->highestmodseq : 0, sync_cb, sc, err))
		return FALSE;
	guint32 uv = mf_imap_conn_uidvalidity(c), uidnext = mf_imap_conn_uidnext(c);
	guint64 modseq = condstore ? mf_imap_conn_highestmodseq(c) : 0;

	if (!old || uv == 0 || old->uidvalidity != uv) {
		if (old && uv)
			mf_log_debug("%s: UIDVALIDITY changed (%u -> %u); listing it anew", sc->mailbox,
				    old->uidvalidity, uv);
		g_autoptr(mf_imap_index) fresh = mf_imap_index_new(sc->mailbox, uv);

		sc->idx = fresh;
		if (!sync_full(c, sc, err))
			return FALSE;
		if (listing)
			*listing = sync_take_copies(sc);
		if (all_in_sink)
			*all_in_sink = sync_sink_complete(sc);
		fresh->uidnext = uidnext;
		fresh->highestmodseq = modseq;
		mf_imap_index_free(*idx);
		*idx = g_steal_pointer(&fresh);
		*changed = TRUE;
		return TRUE;
	}
	sc->idx = old;
	for (guint i = 0; i < sc->vanished->len; i++)
		sync_drop(sc, sc->vanished->pdata[i]);
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, sc->flags);
	while (g_hash_table_iter_next(&it, &k, &v))
		sync_set_flags(sc, GPOINTER_TO_UINT(k), v);
	if (!sync_incremental(c, sc, uidnext, modseq, err))
		return FALSE;
	*changed = sc->added || sc->removed || sc->reflagged || old->uidnext != uidnext ||
		   old->highestmodseq != modseq;
	old->uidnext = uidnext;
	old->highestmodseq = modseq;
	return TRUE;
}

gboolean mf_imap_sync_folder(mf_imap_conn *c, const char *mailbox, mf_stats *stats,
			     mf_imap_index **idx, gboolean *changed, GPtrArray **listing,
			     const mf_listing_sink *sink, gboolean *all_in_sink,
			     const mf_imap_helper *helper, GError **err)
{
	SyncCtx sc;
	gboolean ok;

	sync_ctx_init(&sc, mailbox, stats);
	sc.sink = sink;
	sc.helper = helper;

	*changed = FALSE;
	if (listing)
		*listing = NULL;
	if (all_in_sink)
		*all_in_sink = FALSE;
	ok = sync_run(c, &sc, idx, changed, listing, all_in_sink, err);
	if (!ok && listing)
		g_clear_pointer(listing, g_ptr_array_unref);
	if (ok)
		mf_log_debug("%s: listing has %u messages (%u new, %u gone, %u with new flags)",
			     mailbox, g_hash_table_size((*idx)->msgs), sc.added, sc.removed,
			     sc.reflagged);
	sync_ctx_clear(&sc);
	return ok;
}
