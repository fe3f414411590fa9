/* How bytes of a message get from the server to read(2).
 *
 * Small messages (and every message of a backend without partial fetch) are fetched whole on
 * first read and kept in the body cache. Big messages are fetched as a growing prefix: each
 * sequential step doubles the window (64 KiB .. 8 MiB), so `head -c 4096` of a 20 MB message
 * moves a few dozen KiB while `cat` moves it in a handful of pipelined round trips; in a run of
 * files read in folder order (cp -r) the first step is already 8 MiB. A read far
 * beyond the prefix is fetched on its own and not kept (the kernel page cache keeps it).
 *
 * Size safety: whenever a fetch reaches the advertised end of a message we ask for one octet
 * more. Exactly the expected count proves the size; anything else means the server's
 * RFC822.SIZE lied, and the read fails with EIO after the true size is learned and published,
 * because the kernel would otherwise truncate or zero-pad silently (protocol-notes.md §1.3).
 *
 * Read-ahead across files: when files of a folder are read from the start one after another
 * (cp -r, grep -r, tar), the next small messages are fetched in one pipelined command in the
 * background, so a slow link costs one round trip per batch instead of one per file. */
#include <string.h>
#include "reader.h"
#include "log.h"
#include "mferror.h"

#define WHOLE_MAX (1024 * 1024)       /* fetch messages up to this size whole */
#define WINDOW_MIN (64 * 1024)
#define WINDOW_MAX (8 * 1024 * 1024)
#define RANDOM_GAP (4 * 1024 * 1024)  /* a read this far past the prefix is random access */
/* Deep enough to cover two 20 ms round trips of cp -r at full speed: with 128 and 16 MiB, cp
 * -r of the benchmark account through the 10 ms delay proxy waited for 238 round trips and took
 * 5.7-6.0 s; with these, 158 and 4.2-4.4 s (twice as deep again: 118, no faster). */
#define PREFETCH_MAX_MSGS 256
#define PREFETCH_MAX_BYTES (32 * 1024 * 1024)
#define PREFETCH_THREADS 2     /* batches in flight: one arrives while the next is asked for */

typedef struct {
	GMutex lock;          /* held across this message's fetches */
	int opens;
	GByteArray *prefix;   /* bytes [0, len) of a big message */
	guint64 window;
	gboolean prefetching; /* a background batch is bringing this body (guarded by r->lock) */
} body_state;

struct mf_reader {
	mf_model *model;
	mf_backend *backend;
	mf_bodycache *cache;
	mf_stats *stats;
	GMutex lock;          /* states, prefetch flags, sequential detection */
	GCond prefetch_done;
	GHashTable *states;   /* mf_node* -> body_state* */
	mf_node *last_from_start; /* the last message read from offset 0 */
	guint streak;         /* how many files in a row were read in folder order */
	mf_node *ahead_dir;   /* the folder whose window was last looked at, and where that */
	guint ahead_upto;     /* window ended: no need to look again before getting near it */
	GThreadPool *prefetcher;
	gboolean stopping;    /* queued read-ahead is dropped at unmount */
};

typedef struct {
	mf_reader *r;
	mf_node *dir;
	GPtrArray *nodes;     /* mf_node* */
	GPtrArray *metas;     /* their metas, while fetching: nodes[i]'s is metas[i] */
} prefetch_job;

static void body_state_free(body_state *st)
{
	if (st->prefix)
		g_byte_array_unref(st->prefix);
	g_mutex_clear(&st->lock);
	g_free(st);
}

static body_state *state_get(mf_reader *r, mf_node *msg)
{
	g_mutex_lock(&r->lock);
	body_state *st = g_hash_table_lookup(r->states, msg);
	if (!st) {
		st = g_new0(body_state, 1);
		g_mutex_init(&st->lock);
		st->window = WINDOW_MIN;
		g_hash_table_insert(r->states, msg, st);
	}
	g_mutex_unlock(&r->lock);
	return st;
}

static void wait_for_prefetch(mf_reader *r, body_state *st)
{
	g_mutex_lock(&r->lock);
	gint64 until = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
	while (st->prefetching)
		if (!g_cond_wait_until(&r->prefetch_done, &r->lock, until))
			break;
	g_mutex_unlock(&r->lock);
}

static GBytes *slice(GBytes *body, guint64 off, guint64 size)
{
	gsize len = g_bytes_get_size(body);
	if (off >= len)
		return g_bytes_new(NULL, 0);
	return g_bytes_new_from_bytes(body, off, MIN(size, len - off));
}

/* The body disagreed with the size we showed: publish the truth, fail this read. */
static GBytes *size_mismatch(mf_reader *r, mf_node *msg, guint64 shown, guint64 actual, GError **err)
{
	mf_model_set_exact_size(r->model, msg, actual);
	mf_stats_set_error(r->stats, "EIO %s/%s: server said %" G_GUINT64_FORMAT " bytes, message has %"
			   G_GUINT64_FORMAT "; size corrected, read it again",
			   msg->parent->folder->path, msg->name, shown, actual);
	mf_log_error("%s/%s: server said %" G_GUINT64_FORMAT " bytes but the message has %" G_GUINT64_FORMAT
		     "; size corrected, this read fails with EIO (read the file again)",
		     msg->parent->folder->path, msg->name, shown, actual);
	g_set_error(err, MF_ERROR, MF_ERR_SIZE_MISMATCH,
		    "size of %s changed from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT, msg->name, shown, actual);
	return NULL;
}

static GBytes *backend_fetch(mf_reader *r, mf_node *msg, guint64 off, guint64 len, GError **err)
{
	g_autoptr(mf_msg_meta) meta = mf_model_msg_meta(r->model, msg);
	return r->backend->ops->fetch(r->backend, msg->parent->folder, msg->msg_uidvalidity, meta,
				      off, len, err);
}

/* Whole body, from the cache or the server, with its length checked. */
static GBytes *whole_body(mf_reader *r, mf_node *msg, GError **err)
{
	const char *key = msg->body_key;
	gboolean exact;
	guint64 shown = mf_model_msg_size(r->model, msg, &exact);
	GBytes *body = mf_bodycache_lookup(r->cache, key);
	if (body) {
		mf_stats_cache_hit(r->stats);
	} else {
		mf_stats_cache_miss(r->stats);
		body = backend_fetch(r, msg, 0, 0, err);
		if (!body)
			return NULL;
		mf_bodycache_insert(r->cache, key, body);
	}
	guint64 actual = g_bytes_get_size(body);
	if (actual != shown) {
		g_bytes_unref(body);
		return size_mismatch(r, msg, shown, actual, err);
	}
	if (!exact)
		mf_model_set_exact_size(r->model, msg, actual);
	return body;
}

static void prefetch_body_cb(const mf_msg_meta *meta, GBytes *body, gpointer user_data)
{
	prefetch_job *job = user_data;
	mf_reader *r = job->r;
	for (guint i = 0; i < job->nodes->len; i++) {
		mf_node *n = job->nodes->pdata[i];
		/* Not n->meta: another thread may replace it (mf_model_set_exact_size). */
		if (strcmp(((mf_msg_meta *)job->metas->pdata[i])->id, meta->id) != 0)
			continue;
		/* Read-ahead stays in memory (a bulk copy would otherwise write the mailbox to disk
		 * twice), except where getting a body again is expensive: without partial fetch
		 * (POP3) every miss is a new session and a whole download. */
		if (r->backend->caps & MF_BACKEND_PARTIAL)
			mf_bodycache_insert_memory(r->cache, n->body_key, body);
		else
			mf_bodycache_insert(r->cache, n->body_key, body);
		/* Learning the true size before anyone reads the file is the best outcome. */
		gboolean exact;
		guint64 shown = mf_model_msg_size(r->model, n, &exact);
		if (!exact || shown != g_bytes_get_size(body)) {
			if (shown != g_bytes_get_size(body))
				mf_log_warn("%s/%s: server said %" G_GUINT64_FORMAT " bytes, message has %" G_GSIZE_FORMAT
					    "; size corrected", n->parent->folder->path, n->name, shown,
					    g_bytes_get_size(body));
			mf_model_set_exact_size(r->model, n, g_bytes_get_size(body));
		}
		g_mutex_lock(&r->lock);
		body_state *st = g_hash_table_lookup(r->states, n);
		if (st)
			st->prefetching = FALSE;
		g_cond_broadcast(&r->prefetch_done);
		g_mutex_unlock(&r->lock);
		break;
	}
}

static void prefetch_run(gpointer data, gpointer user_data)
{
	prefetch_job *job = data;
	mf_reader *r = job->r;
	if (g_atomic_int_get(&r->stopping)) {
		g_ptr_array_unref(job->nodes);
		g_free(job);
		return;
	}
	g_autoptr(GPtrArray) metas = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref);
	for (guint i = 0; i < job->nodes->len; i++)
		g_ptr_array_add(metas, mf_model_msg_meta(r->model, job->nodes->pdata[i]));
	g_autoptr(GError) e = NULL;
	mf_node *first = job->nodes->pdata[0];
	job->metas = metas;
	if (!r->backend->ops->fetch_many(r->backend, job->dir->folder, first->msg_uidvalidity, metas,
					 prefetch_body_cb, job, &e))
		mf_log_debug("read-ahead in %s failed: %s", job->dir->folder->path, e->message);
	g_mutex_lock(&r->lock);
	for (guint i = 0; i < job->nodes->len; i++) {
		body_state *st = g_hash_table_lookup(r->states, job->nodes->pdata[i]);
		if (st)
			st->prefetching = FALSE;
	}
	g_cond_broadcast(&r->prefetch_done);
	g_mutex_unlock(&r->lock);
	g_ptr_array_unref(job->nodes);
	g_free(job);
}

/* Called when `msg` is read from its first byte: if that continues a run of files read in
 * folder order, fetch the next ones ahead, more of them the longer the run. */
static void maybe_prefetch(mf_reader *r, mf_node *msg)
{
	if (!r->backend->ops->fetch_many)
		return;
	g_mutex_lock(&r->lock);
	mf_node *last = r->last_from_start;
	if (last == msg) {
		g_mutex_unlock(&r->lock);
		return;
	}
	if (last && last->parent == msg->parent && msg->index > last->index && msg->index <= last->index + 2)
		r->streak++;
	else
		r->streak = 0;
	r->last_from_start = msg;
	guint streak = r->streak;
	g_mutex_unlock(&r->lock);
	if (streak == 0)
		return;
	guint want = MIN(4u << MIN(streak, 6u), (guint)PREFETCH_MAX_MSGS);
	g_mutex_lock(&r->lock);
	gboolean far_from_end = r->ahead_dir == msg->parent && r->ahead_upto > msg->index + want / 2;
	g_mutex_unlock(&r->lock);
	if (far_from_end)
		return;
	g_autoptr(GPtrArray) next = mf_model_next_msgs(r->model, msg, want);
	g_mutex_lock(&r->lock);
	r->ahead_dir = msg->parent;
	r->ahead_upto = msg->index + 1 + next->len;
	g_mutex_unlock(&r->lock);
	/* Only top up when less than half of the window ahead is here or on its way: fetching the
	 * one message that just entered the window would cost a round trip per file again. */
	GPtrArray *batch = g_ptr_array_new();
	guint ready = 0;
	for (guint i = 0; i < next->len; i++) {
		mf_node *n = next->pdata[i];
		if (mf_model_msg_size(r->model, n, NULL) > WHOLE_MAX) {
			ready++; /* read in windows when its turn comes, never ahead */
			continue;
		}
		body_state *st = state_get(r, n);
		g_mutex_lock(&r->lock);
		gboolean busy = st->prefetching;
		g_mutex_unlock(&r->lock);
		const char *key = n->body_key;
		if (busy || mf_bodycache_contains(r->cache, key))
			ready++;
		else
			g_ptr_array_add(batch, n);
	}
	if (ready * 2 >= next->len) {
		g_ptr_array_unref(batch);
		return;
	}
	guint64 bytes = 0;
	guint keep = 0;
	for (; keep < batch->len && bytes < PREFETCH_MAX_BYTES; keep++)
		bytes += mf_model_msg_size(r->model, batch->pdata[keep], NULL);
	g_ptr_array_set_size(batch, keep);
	g_mutex_lock(&r->lock);
	for (guint i = 0; i < batch->len; i++)
		((body_state *)g_hash_table_lookup(r->states, batch->pdata[i]))->prefetching = TRUE;
	g_mutex_unlock(&r->lock);
	prefetch_job *job = g_new0(prefetch_job, 1);
	job->r = r;
	job->dir = msg->parent;
	job->nodes = batch;
	g_thread_pool_push(r->prefetcher, job, NULL);
}

/* Extend the prefix of a big message so that it covers [0, need_end). st->lock held. When the
 * prefix reaches the end it becomes an ordinary cached body, returned in *complete. */
static gboolean extend_prefix(mf_reader *r, mf_node *msg, body_state *st, guint64 need_end,
			      guint64 shown, GBytes **complete, GError **err)
{
	if (!st->prefix)
		st->prefix = g_byte_array_new();
	while (st->prefix->len < need_end) {
		guint64 have = st->prefix->len;
		guint64 chunk = MAX(need_end - have, st->window);
		st->window = MIN(st->window * 2, (guint64)WINDOW_MAX);
		guint64 end = MIN(have + chunk, shown);
		gboolean to_end = end == shown;
		g_autoptr(GBytes) got = backend_fetch(r, msg, have, end - have + (to_end ? 1 : 0), err);
		if (!got)
			return FALSE;
		gsize n = g_bytes_get_size(got);
		if (n != end - have) {
			/* Short before the advertised end, or longer than it: the size was wrong. */
			g_autoptr(GError) e = NULL;
			g_autoptr(GBytes) whole = backend_fetch(r, msg, 0, 0, &e);
			if (!whole) {
				g_propagate_error(err, g_steal_pointer(&e));
				return FALSE;
			}
			const char *key = msg->body_key;
			mf_bodycache_insert(r->cache, key, whole);
			g_clear_pointer(&st->prefix, g_byte_array_unref);
			size_mismatch(r, msg, shown, g_bytes_get_size(whole), err);
			return FALSE;
		}
		g_byte_array_append(st->prefix, g_bytes_get_data(got, NULL), n);
	}
	if (st->prefix->len == shown) {
		/* Complete and verified: it becomes an ordinary cached body. */
		const char *key = msg->body_key;
		*complete = g_byte_array_free_to_bytes(g_steal_pointer(&st->prefix));
		mf_bodycache_insert(r->cache, key, *complete);
		mf_model_set_exact_size(r->model, msg, shown);
	}
	return TRUE;
}

/* A read far from the prefix: fetch just that range, checking the end as usual. */
static GBytes *read_range(mf_reader *r, mf_node *msg, guint64 off, guint64 end, guint64 shown, GError **err)
{
	gboolean to_end = end == shown;
	GBytes *got = backend_fetch(r, msg, off, end - off + (to_end ? 1 : 0), err);
	if (!got)
		return NULL;
	if (g_bytes_get_size(got) != end - off) {
		g_bytes_unref(got);
		g_autoptr(GBytes) whole = backend_fetch(r, msg, 0, 0, err);
		if (!whole)
			return NULL;
		const char *key = msg->body_key;
		mf_bodycache_insert(r->cache, key, whole);
		return size_mismatch(r, msg, shown, g_bytes_get_size(whole), err);
	}
	return got;
}

GBytes *mf_reader_read(mf_reader *r, mf_node *msg, guint64 off, guint64 size, GError **err)
{
	gboolean exact;
	guint64 shown = mf_model_msg_size(r->model, msg, &exact);
	/* The kernel never reads past the size it was given; a longer message is caught by the
	 * extra octet requested at the end. A zero length must not reach the backend, where it
	 * means "to the end". */
	if (off >= shown || size == 0)
		return g_bytes_new(NULL, 0);
	body_state *st = state_get(r, msg);
	wait_for_prefetch(r, st);
	const char *key = msg->body_key;
	g_autoptr(GBytes) cached = mf_bodycache_lookup(r->cache, key);
	if (cached && g_bytes_get_size(cached) == shown) {
		mf_stats_cache_hit(r->stats);
		if (off == 0)
			maybe_prefetch(r, msg);
		return slice(cached, off, size);
	}
	gboolean big = shown > WHOLE_MAX && (r->backend->caps & MF_BACKEND_PARTIAL);
	gboolean bulk = FALSE;
	if (big && off == 0) {
		/* A big file read from its start keeps a run of files going (the ones after it are
		 * fetched ahead while it is read), and in such a run it is being copied whole. */
		maybe_prefetch(r, msg);
		g_mutex_lock(&r->lock);
		bulk = r->streak >= 2 && r->last_from_start == msg;
		g_mutex_unlock(&r->lock);
	}
	g_mutex_lock(&st->lock);
	if (!cached) {
		/* Another reader may have completed the body while we waited for the lock. */
		cached = mf_bodycache_lookup(r->cache, key);
		if (cached && g_bytes_get_size(cached) == shown) {
			g_mutex_unlock(&st->lock);
			mf_stats_cache_hit(r->stats);
			return slice(cached, off, size);
		}
	}
	GBytes *out = NULL;
	if (!big || cached) {
		g_autoptr(GBytes) body = whole_body(r, msg, err);
		if (body)
			out = slice(body, off, size);
		g_mutex_unlock(&st->lock);
		if (out && off == 0)
			maybe_prefetch(r, msg);
		return out;
	}
	guint64 end = MIN(off + size, shown);
	guint64 have = st->prefix ? st->prefix->len : 0;
	/* cp -r, tar: the first step is the biggest window instead of the smallest, so a 20 MB
	 * message takes three round trips, not nine (each a wait over a long link). head -c of a
	 * file on its own still starts small. */
	if (bulk && have == 0)
		st->window = WINDOW_MAX;
	if (off > have + RANDOM_GAP) {
		out = read_range(r, msg, off, end, shown, err);
	} else {
		g_autoptr(GBytes) complete = NULL;
		if (extend_prefix(r, msg, st, end, shown, &complete, err)) {
			if (complete)
				out = slice(complete, off, size);
			else
				out = g_bytes_new(st->prefix->data + off, MIN(size, st->prefix->len - off));
		}
	}
	g_mutex_unlock(&st->lock);
	return out;
}

gboolean mf_reader_verify_size(mf_reader *r, mf_node *msg, GError **err)
{
	gboolean exact;
	guint64 shown = mf_model_msg_size(r->model, msg, &exact);
	if (exact)
		return TRUE;
	body_state *st = state_get(r, msg);
	g_mutex_lock(&st->lock);
	gboolean ok = TRUE;
	if (shown > 0 && (r->backend->caps & MF_BACKEND_PARTIAL)) {
		g_autoptr(GBytes) tail = backend_fetch(r, msg, shown - 1, 2, err);
		if (!tail)
			ok = FALSE;
		else if (g_bytes_get_size(tail) == 1)
			mf_model_set_exact_size(r->model, msg, shown);
	}
	mf_model_msg_size(r->model, msg, &exact);
	if (ok && !exact) {
		/* The probe disagreed (or there is no partial fetch): learn the size from the body. */
		g_autoptr(GBytes) whole = backend_fetch(r, msg, 0, 0, err);
		if (!whole) {
			ok = FALSE;
		} else {
			const char *key = msg->body_key;
			mf_bodycache_insert(r->cache, key, whole);
			mf_model_set_exact_size(r->model, msg, g_bytes_get_size(whole));
		}
	}
	g_mutex_unlock(&st->lock);
	return ok;
}

void mf_reader_opened(mf_reader *r, mf_node *msg)
{
	body_state *st = state_get(r, msg);
	g_mutex_lock(&r->lock);
	st->opens++;
	g_mutex_unlock(&r->lock);
}

void mf_reader_released(mf_reader *r, mf_node *msg)
{
	body_state *st = state_get(r, msg);
	g_mutex_lock(&r->lock);
	gboolean last = --st->opens <= 0;
	g_mutex_unlock(&r->lock);
	if (last) {
		/* The kernel page cache keeps what was read; our copy of a partial prefix can go. */
		g_mutex_lock(&st->lock);
		g_clear_pointer(&st->prefix, g_byte_array_unref);
		st->window = WINDOW_MIN;
		g_mutex_unlock(&st->lock);
	}
}

mf_reader *mf_reader_new(mf_model *m, mf_bodycache *cache, mf_stats *stats)
{
	mf_reader *r = g_new0(mf_reader, 1);
	r->model = m;
	r->backend = mf_model_backend(m);
	r->cache = cache;
	r->stats = stats;
	g_mutex_init(&r->lock);
	g_cond_init(&r->prefetch_done);
	r->states = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)body_state_free);
	r->prefetcher = g_thread_pool_new(prefetch_run, NULL, PREFETCH_THREADS, FALSE, NULL);
	return r;
}

void mf_reader_free(mf_reader *r)
{
	if (!r)
		return;
	g_atomic_int_set(&r->stopping, TRUE);
	g_thread_pool_free(r->prefetcher, FALSE, TRUE);
	g_hash_table_destroy(r->states);
	g_cond_clear(&r->prefetch_done);
	g_mutex_clear(&r->lock);
	g_free(r);
}
