/* An in-memory mf_backend for the model and reader tests: folders and listings the test can
 * change between calls, bodies it controls, sizes that can lie, and a record of every fetch.
 * Thread-safe like a real backend (the reader's read-ahead thread calls it too). Included by
 * tests/unit/test_model.c and tests/unit/test_reader.c only. */
#pragma once
#include <string.h>
#include <glib.h>
#include "backend.h"
#include "mferror.h"
#include "model.h"

typedef struct {
	guint32 uid;
	GBytes *body;
	guint64 advertised;   /* the RFC822.SIZE the listing reports (a lie when != body size) */
	char *subject;
	char *from_name;
	char *flags;
	gint64 date;
} fake_msg;

typedef struct {
	char *path;
	char *raw;
	gboolean selectable;
	guint32 uidvalidity;
	GPtrArray *msgs;      /* fake_msg*, ascending uid */
} fake_folder;

typedef struct {
	char *raw;
	guint32 uid;
	guint64 off, len;
} fake_fetch;

/* How the optional streamed listing (list_messages_streamed) behaves; see fake_use_streaming.
 * The listing is a sequence of steps: its batches in order, with the size verdict (if any)
 * inserted before batch `verdict_at`. With `gated`, step i waits for fake_stream_release to
 * have opened more than i gates, so a test can look at the model between any two steps. */
enum { FAKE_VERDICT_NONE, FAKE_VERDICT_HONEST, FAKE_VERDICT_WRONG };
typedef struct {
	guint batch;          /* messages per sink->add (0: all in one) */
	gboolean own_thread;  /* deliver every step from a thread of the fake's own (joined) */
	gboolean gated;
	int verdict;          /* FAKE_VERDICT_*: no sizes_checked call, NULL, or a wrong meta */
	guint32 wrong_uid;    /* the message sizes_checked names when WRONG (0: the first) */
	guint verdict_at;     /* index of the batch the verdict comes before (>= count: last) */
	gboolean all_in_sink; /* return an empty listing that claims the sink holds it all */
	gint swap_batch;      /* >= 0: batch swap_batch+1 is delivered before batch swap_batch */
	gint uv_change_at;    /* >= 0: batches before it carry first_uv, later ones later_uv */
	guint32 first_uv, later_uv; /* 0: the folder's */
	gint fail_after;      /* >= 0: fail (MF_ERR_NET) after this many batches */
	guint32 phantom_uid;  /* != 0: also stream this message, which the returned listing lacks */
} fake_stream_opts;

G_GNUC_UNUSED static const fake_stream_opts fake_stream_defaults = {
	.batch = 4, .verdict = FAKE_VERDICT_HONEST, .swap_batch = -1, .uv_change_at = -1,
	.fail_after = -1,
};

typedef struct {
	mf_backend base;
	GMutex lock;
	GCond changed;
	GPtrArray *folders;   /* fake_folder*, in list_folders order */
	gboolean fail_list_messages;
	gulong fetch_delay_usec;
	/* counters */
	guint list_folders_calls;
	guint list_messages_calls;
	GArray *fetches;      /* fake_fetch, every fetch() in call order */
	guint fetch_many_calls;
	guint fetch_many_done;
	guint fetch_many_bodies;
	GPtrArray *fetch_many_uids; /* GArray of guint32 per fetch_many call */
	/* the streamed listing (fake_use_streaming) */
	fake_stream_opts stream;
	guint list_streamed_calls;
	guint list_streamed_done;  /* calls that returned */
	guint fetch_ranges_calls;
	guint stream_released;     /* gates opened (G_MAXUINT: all) */
	guint stream_steps;        /* steps done in the current call */
	/* check_sizes (fake_use_size_check) */
	guint check_sizes_calls;
	gboolean check_sizes_enabled;
	guint32 check_sizes_wrong; /* the uid it calls wrong, 0: none */
} fake_backend;

#define FAKE(b) ((fake_backend *)(b))

static void fake_msg_free(fake_msg *m)
{
	g_bytes_unref(m->body);
	g_free(m->subject);
	g_free(m->from_name);
	g_free(m->flags);
	g_free(m);
}

static void fake_folder_free(fake_folder *f)
{
	g_free(f->path);
	g_free(f->raw);
	g_ptr_array_unref(f->msgs);
	g_free(f);
}

/* Deterministic bytes that differ per message and per offset, so a misplaced window shows. */
G_GNUC_UNUSED static GBytes *fake_body(guint32 uid, gsize len)
{
	guint8 *p = g_malloc(len ? len : 1);
	guint32 x = uid * 2654435761u + 12345;

	for (gsize i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (guint8)(x >> 24);
	}
	return g_bytes_new_take(p, len);
}

static fake_folder *fake_find_folder_locked(fake_backend *fb, const char *raw)
{
	for (guint i = 0; i < fb->folders->len; i++) {
		fake_folder *f = fb->folders->pdata[i];
		if (strcmp(f->raw, raw) == 0)
			return f;
	}
	return NULL;
}

static fake_msg *fake_find_msg_locked(fake_folder *f, guint32 uid)
{
	for (guint i = 0; i < f->msgs->len; i++) {
		fake_msg *m = f->msgs->pdata[i];
		if (m->uid == uid)
			return m;
	}
	return NULL;
}

static GPtrArray *fake_list_folders(mf_backend *b, GError **err)
{
	fake_backend *fb = FAKE(b);
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)mf_folder_free);

	g_mutex_lock(&fb->lock);
	fb->list_folders_calls++;
	for (guint i = 0; i < fb->folders->len; i++) {
		fake_folder *ff = fb->folders->pdata[i];
		mf_folder *f = g_new0(mf_folder, 1);
		f->path = g_strdup(ff->path);
		f->raw = g_strdup(ff->raw);
		f->selectable = ff->selectable;
		g_ptr_array_add(out, f);
	}
	g_mutex_unlock(&fb->lock);
	return out;
}

static mf_msg_meta *fake_meta_locked(const fake_msg *fm)
{
	mf_msg_meta *m = mf_msg_meta_new();

	m->uid = fm->uid;
	m->id = g_strdup_printf("%u", fm->uid);
	m->size = fm->advertised;
	m->internaldate = fm->date;
	m->date = fm->date;
	m->from_name = g_strdup(fm->from_name);
	m->from = g_strdup(fm->from_name);
	m->subject = g_strdup(fm->subject);
	m->flags = g_strdup(fm->flags);
	return m;
}

static mf_listing *fake_list_messages(mf_backend *b, const mf_folder *f, GError **err)
{
	fake_backend *fb = FAKE(b);
	mf_listing *l = NULL;

	g_mutex_lock(&fb->lock);
	fb->list_messages_calls++;
	fake_folder *ff = fake_find_folder_locked(fb, f->raw);
	if (fb->fail_list_messages) {
		g_set_error(err, MF_ERROR, MF_ERR_NET, "fake: connection lost");
	} else if (!ff || !ff->selectable) {
		g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND, "fake: no folder %s", f->raw);
	} else {
		l = g_new0(mf_listing, 1);
		l->uidvalidity = ff->uidvalidity;
		l->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref);
		for (guint i = 0; i < ff->msgs->len; i++)
			g_ptr_array_add(l->msgs, fake_meta_locked(ff->msgs->pdata[i]));
	}
	g_mutex_unlock(&fb->lock);
	return l;
}

/* The body of a message as the server has it, or NULL with the error a backend would give. */
static GBytes *fake_body_locked(fake_backend *fb, const mf_folder *f, guint32 uidvalidity, guint32 uid,
				GError **err)
{
	fake_folder *ff = fake_find_folder_locked(fb, f->raw);

	if (!ff || !ff->selectable) {
		g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND, "fake: no folder %s", f->raw);
		return NULL;
	}
	if (ff->uidvalidity != uidvalidity) {
		g_set_error(err, MF_ERROR, MF_ERR_STALE, "fake: uidvalidity changed");
		return NULL;
	}
	fake_msg *fm = fake_find_msg_locked(ff, uid);
	if (!fm) {
		g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND, "fake: no message %u", uid);
		return NULL;
	}
	return g_bytes_ref(fm->body);
}

static GBytes *fake_fetch_op(mf_backend *b, const mf_folder *f, guint32 uidvalidity, const mf_msg_meta *m,
			     guint64 off, guint64 len, GError **err)
{
	fake_backend *fb = FAKE(b);

	if (fb->fetch_delay_usec)
		g_usleep(fb->fetch_delay_usec);
	g_mutex_lock(&fb->lock);
	fake_fetch rec = { g_strdup(f->raw), m->uid, off, len };
	g_array_append_val(fb->fetches, rec);
	g_autoptr(GBytes) body = fake_body_locked(fb, f, uidvalidity, m->uid, err);
	g_mutex_unlock(&fb->lock);
	if (!body)
		return NULL;
	/* Like BODY.PEEK[]<off.len>: fewer bytes at the end, never padding. */
	gsize size = g_bytes_get_size(body);
	if (off >= size)
		return g_bytes_new(NULL, 0);
	gsize n = len == 0 ? size - off : MIN(len, size - off);
	return g_bytes_new_from_bytes(body, off, n);
}

static gboolean fake_fetch_many(mf_backend *b, const mf_folder *f, guint32 uidvalidity, GPtrArray *metas,
				mf_body_cb cb, gpointer user_data, GError **err)
{
	fake_backend *fb = FAKE(b);
	GArray *uids = g_array_new(FALSE, FALSE, sizeof(guint32));

	if (fb->fetch_delay_usec)
		g_usleep(fb->fetch_delay_usec);
	g_mutex_lock(&fb->lock);
	fb->fetch_many_calls++;
	g_ptr_array_add(fb->fetch_many_uids, uids);
	g_mutex_unlock(&fb->lock);
	for (guint i = 0; i < metas->len; i++) {
		const mf_msg_meta *m = metas->pdata[i];
		g_mutex_lock(&fb->lock);
		g_array_append_val(uids, m->uid);
		g_autoptr(GBytes) body = fake_body_locked(fb, f, uidvalidity, m->uid, NULL);
		if (body)
			fb->fetch_many_bodies++;
		g_mutex_unlock(&fb->lock);
		if (body)
			cb(m, body, user_data);
	}
	g_mutex_lock(&fb->lock);
	fb->fetch_many_done++;
	g_cond_broadcast(&fb->changed);
	g_mutex_unlock(&fb->lock);
	return TRUE;
}

/* ---- the streamed listing ---- */

/* Step `step` (counted over every streamed call) may run once more than `step` gates are open. */
static void fake_stream_gate(fake_backend *fb, guint step)
{
	gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	g_mutex_lock(&fb->lock);
	while (fb->stream.gated && fb->stream_released <= step)
		if (!g_cond_wait_until(&fb->changed, &fb->lock, until))
			g_error("fake stream: gate %u not opened within 10 s", step);
	g_mutex_unlock(&fb->lock);
}

static void fake_stream_step_done(fake_backend *fb)
{
	g_mutex_lock(&fb->lock);
	fb->stream_steps++;
	g_cond_broadcast(&fb->changed);
	g_mutex_unlock(&fb->lock);
}

typedef struct {
	fake_backend *fb;
	const mf_listing_sink *sink;
	fake_stream_opts o;
	GPtrArray *metas; /* mf_msg_meta*, what is streamed, ascending uid */
	guint32 uv;       /* the folder's when the call began */
	GError *error;
} fake_stream_run;

static void fake_stream_verdict(fake_stream_run *r)
{
	if (!r->sink->sizes_checked)
		return; /* the model knows the folder's sizes already */
	if (r->o.verdict == FAKE_VERDICT_HONEST) {
		r->sink->sizes_checked(NULL, r->sink->user_data);
		return;
	}
	g_assert_cmpuint(r->metas->len, >, 0);
	const mf_msg_meta *pick = r->metas->pdata[0];
	for (guint i = 0; i < r->metas->len; i++)
		if (((mf_msg_meta *)r->metas->pdata[i])->uid == r->o.wrong_uid)
			pick = r->metas->pdata[i];
	g_autoptr(mf_msg_meta) wrong = mf_msg_meta_copy(pick);
	r->sink->sizes_checked(wrong, r->sink->user_data);
}

static gpointer fake_stream_steps(gpointer data)
{
	fake_stream_run *r = data;
	fake_backend *fb = r->fb;
	guint n = r->metas->len, per = r->o.batch ? r->o.batch : MAX(n, 1);
	guint nb = (n + per - 1) / per;
	gboolean verdict_due = r->o.verdict != FAKE_VERDICT_NONE;

	g_mutex_lock(&fb->lock);
	guint step = fb->stream_steps;
	g_mutex_unlock(&fb->lock);
	for (guint k = 0; k <= nb; k++) {
		if (verdict_due && k == MIN(r->o.verdict_at, nb)) {
			fake_stream_gate(fb, step++);
			fake_stream_verdict(r);
			fake_stream_step_done(fb);
			verdict_due = FALSE;
		}
		if (k == nb)
			break;
		/* A failure is a step too: it waits for its gate. */
		fake_stream_gate(fb, step++);
		if (r->o.fail_after >= 0 && k >= (guint)r->o.fail_after) {
			g_set_error(&r->error, MF_ERROR, MF_ERR_NET, "fake: connection lost while listing");
			return NULL;
		}
		guint b = k;
		if (r->o.swap_batch >= 0 && (guint)r->o.swap_batch + 1 < nb) {
			if (k == (guint)r->o.swap_batch)
				b = k + 1;
			else if (k == (guint)r->o.swap_batch + 1)
				b = k - 1;
		}
		/* Like the IMAP backend: the array is the callee's to read, the metas its to keep. */
		GPtrArray *batch = g_ptr_array_new();
		for (guint i = b * per; i < MIN(n, (b + 1) * per); i++)
			g_ptr_array_add(batch, mf_msg_meta_copy(r->metas->pdata[i]));
		guint32 uv = r->o.uv_change_at < 0 ? 0 :
			     k < (guint)r->o.uv_change_at ? r->o.first_uv : r->o.later_uv;
		if (!uv)
			uv = r->uv;
		r->sink->add(uv, batch, r->sink->user_data);
		g_ptr_array_unref(batch);
		fake_stream_step_done(fb);
	}
	return NULL;
}

static gint fake_cmp_meta_uid(gconstpointer a, gconstpointer b)
{
	const mf_msg_meta *x = *(mf_msg_meta *const *)a, *y = *(mf_msg_meta *const *)b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static mf_listing *fake_list_messages_streamed(mf_backend *b, const mf_folder *f,
					       const mf_listing_sink *sink, GError **err)
{
	fake_backend *fb = FAKE(b);
	fake_stream_run r = { .fb = fb, .sink = sink };

	g_mutex_lock(&fb->lock);
	fb->list_streamed_calls++;
	r.o = fb->stream;
	fake_folder *ff = fake_find_folder_locked(fb, f->raw);
	if (!ff || !ff->selectable) {
		g_mutex_unlock(&fb->lock);
		g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND, "fake: no folder %s", f->raw);
		return NULL;
	}
	r.uv = ff->uidvalidity;
	r.metas = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref);
	for (guint i = 0; i < ff->msgs->len; i++)
		g_ptr_array_add(r.metas, fake_meta_locked(ff->msgs->pdata[i]));
	g_mutex_unlock(&fb->lock);
	if (r.o.phantom_uid) {
		mf_msg_meta *ph = mf_msg_meta_new();
		ph->uid = r.o.phantom_uid;
		ph->id = g_strdup_printf("%u", ph->uid);
		ph->size = 123;
		ph->date = ph->internaldate = 1764000000;
		ph->from_name = g_strdup("Phantom");
		ph->from = g_strdup("Phantom");
		ph->subject = g_strdup("expunged while listed");
		g_ptr_array_add(r.metas, ph);
		g_ptr_array_sort(r.metas, fake_cmp_meta_uid);
	}

	if (r.o.own_thread)
		g_thread_join(g_thread_new("fake-stream", fake_stream_steps, &r));
	else
		fake_stream_steps(&r);
	g_ptr_array_unref(r.metas);

	mf_listing *l = NULL;
	if (r.error) {
		g_propagate_error(err, r.error);
	} else {
		/* The truth is the folder as it is now, as a server would report it at the end. */
		g_mutex_lock(&fb->lock);
		l = g_new0(mf_listing, 1);
		l->uidvalidity = ff->uidvalidity;
		l->all_in_sink = r.o.all_in_sink;
		l->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref);
		for (guint i = 0; i < ff->msgs->len && !l->all_in_sink; i++)
			g_ptr_array_add(l->msgs, fake_meta_locked(ff->msgs->pdata[i]));
		g_mutex_unlock(&fb->lock);
	}
	g_mutex_lock(&fb->lock);
	fb->list_streamed_done++;
	g_cond_broadcast(&fb->changed);
	g_mutex_unlock(&fb->lock);
	return l;
}

static gboolean fake_fetch_ranges(mf_backend *b, const mf_folder *f, guint32 uidvalidity,
				  GPtrArray *metas, const guint64 *offs, const guint64 *lens,
				  GBytes **results, GError **err)
{
	fake_backend *fb = FAKE(b);

	g_mutex_lock(&fb->lock);
	fb->fetch_ranges_calls++;
	g_mutex_unlock(&fb->lock);
	for (guint i = 0; i < metas->len; i++)
		results[i] = fake_fetch_op(b, f, uidvalidity, metas->pdata[i], offs[i], lens[i], NULL);
	return TRUE;
}

static void fake_fetch_clear(fake_fetch *f)
{
	g_free(f->raw);
}

static void fake_free(mf_backend *b)
{
	fake_backend *fb = FAKE(b);

	g_ptr_array_unref(fb->folders);
	g_array_unref(fb->fetches);
	g_ptr_array_unref(fb->fetch_many_uids);
	g_mutex_clear(&fb->lock);
	g_cond_clear(&fb->changed);
	g_free(fb);
}

static const mf_backend_ops fake_ops = {
	.name = "fake",
	.list_folders = fake_list_folders,
	.list_messages = fake_list_messages,
	.fetch = fake_fetch_op,
	.fetch_many = fake_fetch_many,
	.free = fake_free,
};

static const mf_backend_ops fake_ops_no_many = {
	.name = "fake-pop3-like",
	.list_folders = fake_list_folders,
	.list_messages = fake_list_messages,
	.fetch = fake_fetch_op,
	.free = fake_free,
};

static gboolean fake_check_sizes(mf_backend *b, const mf_folder *f, mf_msg_meta **wrong,
				 GError **err)
{
	fake_backend *fb = FAKE(b);

	g_mutex_lock(&fb->lock);
	fb->check_sizes_calls++;
	*wrong = NULL;
	if (!fb->check_sizes_enabled) {
		g_mutex_unlock(&fb->lock);
		g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "no size check in this fake");
		return FALSE;
	}
	if (fb->check_sizes_wrong) {
		*wrong = mf_msg_meta_new();
		(*wrong)->uid = fb->check_sizes_wrong;
		(*wrong)->id = g_strdup_printf("%u", fb->check_sizes_wrong);
		(*wrong)->size = 1;
	}
	g_mutex_unlock(&fb->lock);
	return TRUE;
}

static const mf_backend_ops fake_ops_streamed = {
	.name = "fake-streamed",
	.list_folders = fake_list_folders,
	.list_messages = fake_list_messages,
	.list_messages_streamed = fake_list_messages_streamed,
	.fetch = fake_fetch_op,
	.fetch_many = fake_fetch_many,
	.fetch_ranges = fake_fetch_ranges,
	.check_sizes = fake_check_sizes,
	.free = fake_free,
};

/* caps: MF_BACKEND_PARTIAL etc.; with_many FALSE leaves fetch_many NULL (like POP3). */
G_GNUC_UNUSED static fake_backend *fake_new(guint caps, gboolean with_many)
{
	fake_backend *fb = g_new0(fake_backend, 1);

	fb->base.ops = with_many ? &fake_ops : &fake_ops_no_many;
	fb->base.caps = caps;
	g_mutex_init(&fb->lock);
	g_cond_init(&fb->changed);
	fb->folders = g_ptr_array_new_with_free_func((GDestroyNotify)fake_folder_free);
	fb->fetches = g_array_new(FALSE, FALSE, sizeof(fake_fetch));
	g_array_set_clear_func(fb->fetches, (GDestroyNotify)fake_fetch_clear);
	fb->fetch_many_uids = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
	return fb;
}

G_GNUC_UNUSED static fake_folder *fake_add_folder(fake_backend *fb, const char *path, const char *raw,
						  gboolean selectable, guint32 uidvalidity)
{
	fake_folder *f = g_new0(fake_folder, 1);

	f->path = g_strdup(path);
	f->raw = g_strdup(raw ? raw : path);
	f->selectable = selectable;
	f->uidvalidity = uidvalidity;
	f->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)fake_msg_free);
	g_mutex_lock(&fb->lock);
	g_ptr_array_add(fb->folders, f);
	g_mutex_unlock(&fb->lock);
	return f;
}

static gint fake_cmp_uid(gconstpointer a, gconstpointer b)
{
	const fake_msg *x = *(fake_msg *const *)a, *y = *(fake_msg *const *)b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* A message of `len` bytes of fake_body(uid), honestly sized. */
G_GNUC_UNUSED static fake_msg *fake_add_msg(fake_backend *fb, fake_folder *f, guint32 uid, gsize len)
{
	fake_msg *m = g_new0(fake_msg, 1);

	m->uid = uid;
	m->body = fake_body(uid, len);
	m->advertised = len;
	m->subject = g_strdup_printf("Subject %u", uid);
	m->from_name = g_strdup("Alice Example");
	m->date = 1764000000 + (gint64)uid * 60;
	g_mutex_lock(&fb->lock);
	g_ptr_array_add(f->msgs, m);
	g_ptr_array_sort(f->msgs, fake_cmp_uid);
	g_mutex_unlock(&fb->lock);
	return m;
}

G_GNUC_UNUSED static void fake_remove_msg(fake_backend *fb, fake_folder *f, guint32 uid)
{
	g_mutex_lock(&fb->lock);
	for (guint i = 0; i < f->msgs->len; i++)
		if (((fake_msg *)f->msgs->pdata[i])->uid == uid) {
			g_ptr_array_remove_index(f->msgs, i);
			break;
		}
	g_mutex_unlock(&fb->lock);
}

/* Number of fetch() calls so far. */
G_GNUC_UNUSED static guint fake_fetch_count(fake_backend *fb)
{
	g_mutex_lock(&fb->lock);
	guint n = fb->fetches->len;
	g_mutex_unlock(&fb->lock);
	return n;
}

/* A copy of fetch record i. */
G_GNUC_UNUSED static fake_fetch fake_fetch_at(fake_backend *fb, guint i)
{
	g_mutex_lock(&fb->lock);
	g_assert_cmpuint(i, <, fb->fetches->len);
	fake_fetch r = g_array_index(fb->fetches, fake_fetch, i);
	r.raw = NULL;
	g_mutex_unlock(&fb->lock);
	return r;
}

/* Wait (up to 10 s) until `n` fetch_many calls have finished. */
G_GNUC_UNUSED static gboolean fake_wait_fetch_many(fake_backend *fb, guint n)
{
	gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	gboolean ok = TRUE;

	g_mutex_lock(&fb->lock);
	while (fb->fetch_many_done < n && ok)
		ok = g_cond_wait_until(&fb->changed, &fb->lock, until);
	ok = fb->fetch_many_done >= n;
	g_mutex_unlock(&fb->lock);
	return ok;
}

/* A message's node in a listed folder by UID, or NULL. */
G_GNUC_UNUSED static mf_node *fake_node_by_uid(mf_node *dir, guint32 uid)
{
	for (guint i = 0; i < dir->msgs->len; i++) {
		mf_node *n = dir->msgs->pdata[i];
		if (n->meta->uid == uid)
			return n;
	}
	return NULL;
}

/* From now on the backend also has list_messages_streamed (behaving as `o` says) and
 * fetch_ranges, like the IMAP backend. */
G_GNUC_UNUSED static void fake_use_streaming(fake_backend *fb, const fake_stream_opts *o)
{
	g_mutex_lock(&fb->lock);
	fb->base.ops = &fake_ops_streamed;
	fb->stream = *o;
	g_mutex_unlock(&fb->lock);
}

/* A streamed backend that can also check a folder's sizes (check_sizes), calling message
 * `wrong_uid` wrong (0: none). */
G_GNUC_UNUSED static void fake_use_size_check(fake_backend *fb, const fake_stream_opts *o,
					      guint32 wrong_uid)
{
	fake_use_streaming(fb, o);
	g_mutex_lock(&fb->lock);
	fb->check_sizes_enabled = TRUE;
	fb->check_sizes_wrong = wrong_uid;
	g_mutex_unlock(&fb->lock);
}

/* Open `n` more gates of a gated streamed listing (G_MAXUINT: all, for good). */
G_GNUC_UNUSED static void fake_stream_release(fake_backend *fb, guint n)
{
	g_mutex_lock(&fb->lock);
	fb->stream_released = n == G_MAXUINT || fb->stream_released > G_MAXUINT - 1 - n ?
				      G_MAXUINT : fb->stream_released + n;
	g_cond_broadcast(&fb->changed);
	g_mutex_unlock(&fb->lock);
}

/* Wait (up to 10 s) until `n` steps of streamed listings are done, counted over all calls. */
G_GNUC_UNUSED static gboolean fake_stream_wait_steps(fake_backend *fb, guint n)
{
	gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	g_mutex_lock(&fb->lock);
	while (fb->stream_steps < n && g_cond_wait_until(&fb->changed, &fb->lock, until))
		;
	gboolean ok = fb->stream_steps >= n;
	g_mutex_unlock(&fb->lock);
	return ok;
}

/* Wait (up to 10 s) until `n` streamed listing calls have returned. */
G_GNUC_UNUSED static gboolean fake_stream_wait_done(fake_backend *fb, guint n)
{
	gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	g_mutex_lock(&fb->lock);
	while (fb->list_streamed_done < n && g_cond_wait_until(&fb->changed, &fb->lock, until))
		;
	gboolean ok = fb->list_streamed_done >= n;
	g_mutex_unlock(&fb->lock);
	return ok;
}
