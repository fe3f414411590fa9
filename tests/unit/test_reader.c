/* The reader without a network or FUSE: whole and partial fetches, window growth, the size
 * guarantee (never short or padded data when the server's size lies), read-ahead across
 * files, size verification and concurrent readers, against fake_backend.h. Every check of
 * "what went over the wire" uses the fake's record of fetch(off, len) and fetch_many calls. */
#include <string.h>
#include <glib.h>
#include "reader.h"
#include "fake_backend.h"

#define KiB 1024
#define MiB (1024 * 1024)
#define CAPS_IMAP (MF_BACKEND_FOLDERS | MF_BACKEND_PARTIAL | MF_BACKEND_FLAGS)

typedef struct {
	fake_backend *fb;
	fake_folder *ff;
	mf_model *m;
	mf_node *dir;
	mf_bodycache *cache;
	mf_stats *stats;
	mf_reader *r;
	GMutex lock;
	GHashTable *inval; /* ino -> count of MF_NOTIFY_INVAL_INODE */
	guint base;        /* fetch() calls before the test's own reads */
} rig;

static void on_notify(MfNotifyKind kind, guint64 parent, guint64 ino, const char *name, gpointer user_data)
{
	rig *g = user_data;

	if (kind != MF_NOTIFY_INVAL_INODE)
		return;
	g_mutex_lock(&g->lock);
	guint64 *key = g_memdup2(&ino, sizeof(ino));
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(g->inval, key));
	g_hash_table_insert(g->inval, key, GUINT_TO_POINTER(n + 1));
	g_mutex_unlock(&g->lock);
}

static guint inval_count(rig *g, mf_node *n)
{
	g_mutex_lock(&g->lock);
	guint c = GPOINTER_TO_UINT(g_hash_table_lookup(g->inval, &n->ino));
	g_mutex_unlock(&g->lock);
	return c;
}

static void rig_init(rig *g, guint caps, gboolean with_many)
{
	memset(g, 0, sizeof(*g));
	g->fb = fake_new(caps, with_many);
	g->ff = fake_add_folder(g->fb, "INBOX", "INBOX", TRUE, 42);
	g_mutex_init(&g->lock);
	g->inval = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
}

/* Mount: list the folder (the size probe runs here), then start counting fetches. */
static void rig_start(rig *g)
{
	g_autoptr(GError) err = NULL;

	g->m = mf_model_new(&g->fb->base, 60);
	mf_model_set_notify(g->m, on_notify, g);
	g_assert_true(mf_model_load_folders(g->m, &err));
	g->dir = mf_model_lookup(g->m, mf_model_get(g->m, MF_INO_ROOT), "INBOX", &err);
	g_assert_no_error(err);
	g_assert_true(mf_model_ensure_listing(g->m, g->dir, -1, &err));
	g_assert_no_error(err);
	g->cache = mf_bodycache_new(NULL, 256 * MiB, 0);
	g->stats = mf_stats_new();
	g->r = mf_reader_new(g->m, g->cache, g->stats);
	g->base = fake_fetch_count(g->fb);
}

static void rig_clear(rig *g)
{
	mf_reader_free(g->r);
	mf_model_free(g->m);
	mf_bodycache_free(g->cache);
	mf_stats_free(g->stats);
	fake_free(&g->fb->base);
	g_hash_table_destroy(g->inval);
	g_mutex_clear(&g->lock);
}

/* fetch() calls made by the reader so far. */
static guint fetches(rig *g)
{
	return fake_fetch_count(g->fb) - g->base;
}

static fake_fetch last_fetch(rig *g)
{
	guint n = fake_fetch_count(g->fb);

	g_assert_cmpuint(n, >, g->base);
	return fake_fetch_at(g->fb, n - 1);
}

static mf_node *node(rig *g, guint32 uid)
{
	mf_node *n = fake_node_by_uid(g->dir, uid);
	g_assert_nonnull(n);
	return n;
}

/* The server's true bytes [off, off+len) of a message, clipped. */
static GBytes *truth(rig *g, guint32 uid, guint64 off, guint64 len)
{
	g_mutex_lock(&g->fb->lock);
	GBytes *body = fake_find_msg_locked(g->ff, uid)->body;
	gsize size = g_bytes_get_size(body);
	GBytes *out = off >= size ? g_bytes_new(NULL, 0) : g_bytes_new_from_bytes(body, off, MIN(len, size - off));
	g_mutex_unlock(&g->fb->lock);
	return out;
}

static guint64 true_size(rig *g, guint32 uid)
{
	g_mutex_lock(&g->fb->lock);
	gsize size = g_bytes_get_size(fake_find_msg_locked(g->ff, uid)->body);
	g_mutex_unlock(&g->fb->lock);
	return size;
}

static void assert_bytes_eq(GBytes *got, GBytes *want)
{
	gsize a, b;
	const guint8 *pa = g_bytes_get_data(got, &a), *pb = g_bytes_get_data(want, &b);

	g_assert_cmpuint(a, ==, b);
	if (a && memcmp(pa, pb, a) != 0) {
		gsize i = 0;
		while (pa[i] == pb[i])
			i++;
		g_error("bytes differ at +%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT, i, a);
	}
}

/* A read that must succeed with exactly the server's bytes. */
static void read_ok(rig *g, guint32 uid, guint64 off, guint64 size)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GBytes) got = mf_reader_read(g->r, node(g, uid), off, size, &err);

	g_assert_no_error(err);
	g_assert_nonnull(got);
	g_autoptr(GBytes) want = truth(g, uid, off, size);
	assert_bytes_eq(got, want);
}

/* Read a message like cat does, `chunk` bytes at a time up to the size shown when it began.
 * Returns the number of reads that failed with MF_ERR_SIZE_MISMATCH (any other error fails
 * the test); every successful read must be the server's true bytes. */
static guint read_like_cat(rig *g, guint32 uid, guint64 chunk, guint64 *failed_at)
{
	mf_node *n = node(g, uid);
	guint64 shown = mf_model_msg_size(g->m, n, NULL);
	guint failures = 0;

	for (guint64 off = 0; off < shown; off += chunk) {
		g_autoptr(GError) err = NULL;
		g_autoptr(GBytes) got = mf_reader_read(g->r, n, off, chunk, &err);
		if (!got) {
			g_assert_error(err, MF_ERROR, MF_ERR_SIZE_MISMATCH);
			if (failed_at && failures == 0)
				*failed_at = off;
			failures++;
			/* Like cat: the read failed, the file is done. */
			break;
		}
		/* Clipped at the size shown when cat began, or at the size another reader has
		 * learned since; never padded: the bytes are the server's. */
		gsize len = g_bytes_get_size(got);
		guint64 now = mf_model_msg_size(g->m, n, NULL);
		g_assert_true(len == MIN(chunk, shown - off) || len == MIN(chunk, now - off));
		g_autoptr(GBytes) want = truth(g, uid, off, len);
		g_assert_cmpuint(g_bytes_get_size(want), ==, len);
		assert_bytes_eq(got, want);
	}
	return failures;
}

/* ---- small messages ---- */

static void test_small_whole_once(void)
{
	rig g;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, 10000);
	rig_start(&g);
	mf_node *n = node(&g, 1);
	gboolean exact = TRUE;

	mf_model_msg_size(g.m, n, &exact);
	g_assert_false(exact);
	read_ok(&g, 1, 0, 4096);
	g_assert_cmpuint(fetches(&g), ==, 1);
	fake_fetch f = last_fetch(&g);
	g_assert_cmpuint(f.off, ==, 0);
	g_assert_cmpuint(f.len, ==, 0); /* whole */
	g_assert_cmpuint(mf_model_msg_size(g.m, n, &exact), ==, 10000);
	g_assert_true(exact);
	g_assert_cmpuint(inval_count(&g, n), ==, 0); /* the size was right: nothing to tell */

	read_ok(&g, 1, 4096, 4096);
	read_ok(&g, 1, 8192, 4096); /* clipped to 1808 */
	read_ok(&g, 1, 0, 10000);
	g_autoptr(GError) err = NULL;
	g_autoptr(GBytes) past = mf_reader_read(g.r, n, 10000, 4096, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(g_bytes_get_size(past), ==, 0);
	g_assert_cmpuint(fetches(&g), ==, 1);

	/* A second reader (another mount with the same cache) needs no fetch either. */
	mf_reader *r2 = mf_reader_new(g.m, g.cache, g.stats);
	g_autoptr(GBytes) again = mf_reader_read(r2, n, 100, 100, &err);
	g_assert_no_error(err);
	g_autoptr(GBytes) want = truth(&g, 1, 100, 100);
	assert_bytes_eq(again, want);
	g_assert_cmpuint(fetches(&g), ==, 1);
	mf_reader_free(r2);

	/* A first read in the middle (random access) also fetches a small message whole. */
	fake_add_msg(g.fb, g.ff, 2, 700 * KiB);
	g_assert_true(mf_model_ensure_listing(g.m, g.dir, 0, &err));
	read_ok(&g, 2, 300 * KiB, 4096);
	g_assert_cmpuint(fetches(&g), ==, 2);
	g_assert_cmpuint(last_fetch(&g).len, ==, 0);
	read_ok(&g, 2, 0, 700 * KiB);
	g_assert_cmpuint(fetches(&g), ==, 2);
	rig_clear(&g);
}

/* A small message whose size lies: the first read fails, says why, and fixes the size. */
static void test_small_lie(void)
{
	for (int delta = -100; delta <= 100; delta += 200) {
		rig g;
		rig_init(&g, CAPS_IMAP, TRUE);
		fake_add_msg(g.fb, g.ff, 1, 5000)->advertised = 5000 + delta;
		rig_start(&g);
		mf_node *n = node(&g, 1);
		g_autoptr(GError) err = NULL;
		g_autoptr(GBytes) got = mf_reader_read(g.r, n, 0, 4096, &err);
		g_assert_null(got);
		g_assert_error(err, MF_ERROR, MF_ERR_SIZE_MISMATCH);
		gboolean exact = FALSE;
		g_assert_cmpuint(mf_model_msg_size(g.m, n, &exact), ==, 5000);
		g_assert_true(exact);
		g_assert_cmpuint(inval_count(&g, n), ==, 1);
		g_autofree char *status = mf_stats_format(g.stats, "fake");
		g_assert_nonnull(strstr(status, "EIO"));
		/* Read again: the true bytes, from the cache. */
		read_ok(&g, 1, 0, 8192);
		g_assert_cmpuint(fetches(&g), ==, 1);
		rig_clear(&g);
	}
}

/* ---- big messages ---- */

static void test_big_head(void)
{
	rig g;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, 3 * MiB + 123);
	rig_start(&g);
	read_ok(&g, 1, 0, 4096);
	g_assert_cmpuint(fetches(&g), ==, 1);
	fake_fetch f = last_fetch(&g);
	g_assert_cmpuint(f.off, ==, 0);
	g_assert_cmpuint(f.len, >=, 4096);
	g_assert_cmpuint(f.len, <=, 64 * KiB);
	/* The rest of that window is served without asking again. */
	read_ok(&g, 1, 4096, 4096);
	read_ok(&g, 1, 1000, 30000);
	g_assert_cmpuint(fetches(&g), ==, 1);
	gboolean exact = TRUE;
	mf_model_msg_size(g.m, node(&g, 1), &exact);
	g_assert_false(exact);
	rig_clear(&g);
}

/* cat of a big message: growing windows, contiguous, the last one asks for one octet more. */
static void test_big_sequential(void)
{
	rig g;
	const guint64 size = 9 * MiB + 4321;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, size);
	rig_start(&g);
	mf_node *n = node(&g, 1);
	g_assert_cmpuint(read_like_cat(&g, 1, 128 * KiB, NULL), ==, 0);

	guint calls = fetches(&g);
	g_assert_cmpuint(calls, >=, 3);
	g_assert_cmpuint(calls, <=, 12);
	guint64 next = 0, prev_len = 0;
	for (guint i = 0; i < calls; i++) {
		fake_fetch f = fake_fetch_at(g.fb, g.base + i);
		g_assert_cmpuint(f.off, ==, next);
		g_assert_cmpuint(f.len, >, 0);
		g_assert_cmpuint(f.len, <=, 8 * MiB + 1);
		if (i + 1 < calls) {
			g_assert_cmpuint(f.len, >=, prev_len); /* windows grow */
			g_assert_cmpuint(f.off + f.len, <, size);
		} else {
			g_assert_cmpuint(f.off + f.len, ==, size + 1); /* proof of the size */
		}
		prev_len = f.len;
		next = f.off + f.len;
	}
	gboolean exact = FALSE;
	g_assert_cmpuint(mf_model_msg_size(g.m, n, &exact), ==, size);
	g_assert_true(exact);
	g_assert_cmpuint(inval_count(&g, n), ==, 0);

	/* Complete: now an ordinary cached body. */
	g_assert_cmpuint(read_like_cat(&g, 1, 1 * MiB, NULL), ==, 0);
	read_ok(&g, 1, size - 10, 4096);
	g_assert_cmpuint(fetches(&g), ==, calls);
	rig_clear(&g);
}

/* The server's size is bigger than the message: the read whose window crosses the true end
 * fails; then the size is the truth and the file reads back exactly. */
static void test_big_lie_bigger(void)
{
	rig g;
	const guint64 real = 2 * MiB + 17;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, real)->advertised = real + 5000;
	rig_start(&g);
	mf_node *n = node(&g, 1);
	guint64 failed_at = 0;
	g_assert_cmpuint(read_like_cat(&g, 1, 128 * KiB, &failed_at), ==, 1);
	g_assert_cmpuint(failed_at, >, 0);
	gboolean exact = FALSE;
	g_assert_cmpuint(mf_model_msg_size(g.m, n, &exact), ==, real);
	g_assert_true(exact);
	g_assert_cmpuint(inval_count(&g, n), ==, 1);

	guint calls = fetches(&g);
	g_assert_cmpuint(read_like_cat(&g, 1, 128 * KiB, NULL), ==, 0);
	g_assert_cmpuint(fetches(&g), ==, calls);
	rig_clear(&g);
}

/* The server's size is smaller: the window that reaches the shown end gets the extra octet,
 * the read fails, and the whole message (longer than shown) reads back afterwards. */
static void test_big_lie_smaller(void)
{
	rig g;
	const guint64 real = 2 * MiB + 17;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, real)->advertised = real - 5000;
	rig_start(&g);
	mf_node *n = node(&g, 1);
	guint64 failed_at = 0;
	g_assert_cmpuint(read_like_cat(&g, 1, 128 * KiB, &failed_at), ==, 1);
	/* The fetch that failed is the one that asked past the shown end. */
	gboolean found = FALSE;
	for (guint i = g.base; i < fake_fetch_count(g.fb); i++) {
		fake_fetch f = fake_fetch_at(g.fb, i);
		if (f.len && f.off + f.len == real - 5000 + 1)
			found = TRUE;
	}
	g_assert_true(found);
	gboolean exact = FALSE;
	g_assert_cmpuint(mf_model_msg_size(g.m, n, &exact), ==, real);
	g_assert_true(exact);
	g_assert_cmpuint(inval_count(&g, n), ==, 1);
	guint calls = fetches(&g);
	g_assert_cmpuint(read_like_cat(&g, 1, 128 * KiB, NULL), ==, 0);
	read_ok(&g, 1, real - 6000, 8192); /* the 5000 octets that were hidden */
	g_assert_cmpuint(fetches(&g), ==, calls);
	rig_clear(&g);
}

/* The same lies when the first read is a lone read at the end (tail -c). */
static void test_big_lie_tail(void)
{
	for (int delta = -5000; delta <= 5000; delta += 10000) {
		rig g;
		const guint64 real = 30 * MiB + 5;
		rig_init(&g, CAPS_IMAP, TRUE);
		fake_add_msg(g.fb, g.ff, 1, real)->advertised = real + delta;
		rig_start(&g);
		mf_node *n = node(&g, 1);
		g_autoptr(GError) err = NULL;
		g_autoptr(GBytes) got = mf_reader_read(g.r, n, real + delta - 100, 4096, &err);
		g_assert_null(got);
		g_assert_error(err, MF_ERROR, MF_ERR_SIZE_MISMATCH);
		gboolean exact = FALSE;
		g_assert_cmpuint(mf_model_msg_size(g.m, n, &exact), ==, real);
		g_assert_true(exact);
		guint calls = fetches(&g);
		read_ok(&g, 1, real - 100, 4096);
		read_ok(&g, 1, 0, 4096);
		g_assert_cmpuint(fetches(&g), ==, calls);
		rig_clear(&g);
	}
}

/* A read far beyond the prefix is fetched on its own (and not kept). */
static void test_big_random_read(void)
{
	rig g;
	const guint64 size = 20 * MiB + 99;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, size);
	rig_start(&g);
	read_ok(&g, 1, 0, 4096);
	g_assert_cmpuint(fetches(&g), ==, 1);

	read_ok(&g, 1, 15 * MiB, 4096);
	g_assert_cmpuint(fetches(&g), ==, 2);
	fake_fetch f = last_fetch(&g);
	g_assert_cmpuint(f.off, ==, 15 * MiB);
	g_assert_cmpuint(f.len, ==, 4096);
	read_ok(&g, 1, 15 * MiB, 4096);
	g_assert_cmpuint(fetches(&g), ==, 3); /* the kernel page cache keeps it, not us */

	/* At the end: the size is proved on the way. */
	read_ok(&g, 1, size - 100, 4096);
	f = last_fetch(&g);
	g_assert_cmpuint(f.off, ==, size - 100);
	g_assert_cmpuint(f.len, ==, 101);

	/* The prefix is still there and still grows from where it was. */
	guint calls = fetches(&g);
	read_ok(&g, 1, 4096, 4096);
	g_assert_cmpuint(fetches(&g), ==, calls);
	read_ok(&g, 1, 100 * KiB, 4096);
	f = last_fetch(&g);
	g_assert_cmpuint(f.off, ==, 64 * KiB);
	rig_clear(&g);
}

/* A zero-length read is empty wherever it points (a length of 0 means "to the end" to the
 * backend, so it must never reach it). */
static void test_zero_length_read(void)
{
	rig g;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, 20 * MiB);
	fake_add_msg(g.fb, g.ff, 2, 2000);
	rig_start(&g);
	static const guint64 offs[] = { 0, 100, 10 * MiB, 20 * MiB - 1 };
	for (guint i = 0; i < G_N_ELEMENTS(offs); i++) {
		g_autoptr(GError) err = NULL;
		g_autoptr(GBytes) got = mf_reader_read(g.r, node(&g, 1), offs[i], 0, &err);
		g_assert_no_error(err);
		g_assert_nonnull(got);
		g_assert_cmpuint(g_bytes_get_size(got), ==, 0);
	}
	for (guint i = 0; i < fetches(&g); i++)
		g_assert_cmpuint(fake_fetch_at(g.fb, g.base + i).len, !=, 0);
	g_autoptr(GError) err = NULL;
	g_autoptr(GBytes) small = mf_reader_read(g.r, node(&g, 2), 10, 0, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(g_bytes_get_size(small), ==, 0);
	rig_clear(&g);
}

/* The server's size is bigger and a random read falls past the true end. */
static void test_big_random_read_past_true_end(void)
{
	rig g;
	const guint64 real = 19 * MiB;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, real)->advertised = 20 * MiB;
	rig_start(&g);
	mf_node *n = node(&g, 1);
	g_autoptr(GError) err = NULL;
	g_autoptr(GBytes) got = mf_reader_read(g.r, n, real + MiB / 2, 4096, &err);
	g_assert_null(got);
	g_assert_error(err, MF_ERROR, MF_ERR_SIZE_MISMATCH);
	g_assert_cmpuint(mf_model_msg_size(g.m, n, NULL), ==, real);
	g_clear_error(&err);
	g_autoptr(GBytes) past = mf_reader_read(g.r, n, real + MiB / 2, 4096, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(g_bytes_get_size(past), ==, 0);
	read_ok(&g, 1, real - 10, 4096);
	rig_clear(&g);
}

/* Closing the last handle drops the partial prefix; closing another one does not. */
static void test_big_release(void)
{
	rig g;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, 3 * MiB);
	rig_start(&g);
	mf_node *n = node(&g, 1);
	mf_reader_opened(g.r, n);
	mf_reader_opened(g.r, n);
	read_ok(&g, 1, 0, 4096);
	g_assert_cmpuint(fetches(&g), ==, 1);
	mf_reader_released(g.r, n);
	read_ok(&g, 1, 8192, 4096);
	g_assert_cmpuint(fetches(&g), ==, 1);
	mf_reader_released(g.r, n);
	read_ok(&g, 1, 8192, 4096);
	g_assert_cmpuint(fetches(&g), ==, 2);
	g_assert_cmpuint(last_fetch(&g).off, ==, 0);
	rig_clear(&g);
}

/* ---- size 0 and verification ---- */

static void test_size_zero_lie(void)
{
	for (int partial = 0; partial <= 1; partial++) {
		rig g;
		rig_init(&g, partial ? CAPS_IMAP : MF_BACKEND_FOLDERS, partial);
		fake_add_msg(g.fb, g.ff, 1, 4000)->advertised = 0;
		fake_add_msg(g.fb, g.ff, 2, 3 * MiB)->advertised = 0;
		fake_add_msg(g.fb, g.ff, 3, 0); /* really empty */
		rig_start(&g);
		for (guint32 uid = 1; uid <= 3; uid++) {
			mf_node *n = node(&g, uid);
			g_autoptr(GError) err = NULL;
			guint before = fetches(&g);
			/* fs.c verifies a size 0 before it shows it; that makes the size exact. */
			g_assert_true(mf_reader_verify_size(g.r, n, &err));
			g_assert_no_error(err);
			gboolean exact = FALSE;
			g_assert_cmpuint(mf_model_msg_size(g.m, n, &exact), ==, true_size(&g, uid));
			g_assert_true(exact);
			g_assert_cmpuint(fetches(&g), ==, before + 1);
			g_assert_cmpuint(last_fetch(&g).len, ==, 0);
			g_assert_cmpuint(inval_count(&g, n), ==, uid == 3 ? 0 : 1);
			read_ok(&g, uid, 0, 4096);
			read_ok(&g, uid, true_size(&g, uid) > 4 ? true_size(&g, uid) - 4 : 0, 4096);
			g_assert_cmpuint(fetches(&g), ==, before + 1);
		}
		rig_clear(&g);
	}
}

static void test_verify_size(void)
{
	rig g;
	gboolean exact;
	g_autoptr(GError) err = NULL;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, 3 * MiB);               /* honest */
	fake_add_msg(g.fb, g.ff, 2, 3 * MiB)->advertised += 7; /* too big */
	fake_add_msg(g.fb, g.ff, 3, 3 * MiB)->advertised -= 7; /* too small */
	rig_start(&g);

	g_assert_true(mf_reader_verify_size(g.r, node(&g, 1), &err));
	g_assert_cmpuint(fetches(&g), ==, 1);
	fake_fetch f = last_fetch(&g);
	g_assert_cmpuint(f.off, ==, 3 * MiB - 1);
	g_assert_cmpuint(f.len, ==, 2);
	g_assert_cmpuint(mf_model_msg_size(g.m, node(&g, 1), &exact), ==, 3 * MiB);
	g_assert_true(exact);
	g_assert_true(mf_reader_verify_size(g.r, node(&g, 1), &err)); /* exact: nothing to do */
	g_assert_cmpuint(fetches(&g), ==, 1);

	for (guint32 uid = 2; uid <= 3; uid++) {
		guint before = fetches(&g);
		g_assert_true(mf_reader_verify_size(g.r, node(&g, uid), &err));
		g_assert_no_error(err);
		g_assert_cmpuint(fetches(&g), ==, before + 2); /* probe, then the whole body */
		g_assert_cmpuint(last_fetch(&g).len, ==, 0);
		g_assert_cmpuint(mf_model_msg_size(g.m, node(&g, uid), &exact), ==, 3 * MiB);
		g_assert_true(exact);
		g_assert_cmpuint(inval_count(&g, node(&g, uid)), ==, 1);
		read_ok(&g, uid, 3 * MiB - 100, 4096);
		read_ok(&g, uid, 0, 4096);
		g_assert_cmpuint(fetches(&g), ==, before + 2);
	}

	/* A message that vanished: the error reaches the caller. */
	fake_add_msg(g.fb, g.ff, 4, 100);
	g_assert_true(mf_model_ensure_listing(g.m, g.dir, 0, &err));
	fake_remove_msg(g.fb, g.ff, 4);
	g_assert_false(mf_reader_verify_size(g.r, node(&g, 4), &err));
	g_assert_error(err, MF_ERROR, MF_ERR_NOT_FOUND);
	g_clear_error(&err);
	g_autoptr(GBytes) none = mf_reader_read(g.r, node(&g, 4), 0, 10, &err);
	g_assert_null(none);
	g_assert_error(err, MF_ERROR, MF_ERR_NOT_FOUND);
	rig_clear(&g);

	/* Without partial fetch, verification is a whole fetch, honest or not. */
	rig_init(&g, MF_BACKEND_FOLDERS, FALSE);
	fake_add_msg(g.fb, g.ff, 1, 5000);
	fake_add_msg(g.fb, g.ff, 2, 5000)->advertised = 6000;
	rig_start(&g);
	for (guint32 uid = 1; uid <= 2; uid++) {
		g_autoptr(GError) e = NULL;
		g_assert_true(mf_reader_verify_size(g.r, node(&g, uid), &e));
		g_assert_cmpuint(fetches(&g), ==, uid);
		g_assert_cmpuint(last_fetch(&g).len, ==, 0);
		g_assert_cmpuint(mf_model_msg_size(g.m, node(&g, uid), &exact), ==, 5000);
		g_assert_true(exact);
		read_ok(&g, uid, 0, 8192);
		g_assert_cmpuint(fetches(&g), ==, uid);
	}
	rig_clear(&g);
}

/* ---- a backend without partial fetch (POP3) ---- */

static void test_nonpartial_whole(void)
{
	rig g;

	rig_init(&g, MF_BACKEND_FOLDERS, FALSE);
	fake_add_msg(g.fb, g.ff, 1, 3 * MiB + 1);
	fake_add_msg(g.fb, g.ff, 2, 3 * MiB)->advertised = 3 * MiB + 10;
	fake_add_msg(g.fb, g.ff, 3, 2000);
	rig_start(&g);
	g_assert_cmpuint(g.base, ==, 0); /* no size probes either */
	read_ok(&g, 1, 0, 4096);
	g_assert_cmpuint(fetches(&g), ==, 1);
	g_assert_cmpuint(last_fetch(&g).len, ==, 0);
	g_assert_cmpuint(read_like_cat(&g, 1, 128 * KiB, NULL), ==, 0);
	read_ok(&g, 1, 2 * MiB, 4096);
	g_assert_cmpuint(fetches(&g), ==, 1);

	/* A lie is caught on the first read, whatever its offset. */
	g_autoptr(GError) err = NULL;
	g_autoptr(GBytes) got = mf_reader_read(g.r, node(&g, 2), 100, 4096, &err);
	g_assert_null(got);
	g_assert_error(err, MF_ERROR, MF_ERR_SIZE_MISMATCH);
	g_assert_cmpuint(mf_model_msg_size(g.m, node(&g, 2), NULL), ==, 3 * MiB);
	g_assert_cmpuint(read_like_cat(&g, 2, 128 * KiB, NULL), ==, 0);
	g_assert_cmpuint(fetches(&g), ==, 2);

	/* No fetch_many: files read in order are simply fetched one by one. */
	read_ok(&g, 3, 0, 4096);
	g_assert_cmpuint(fetches(&g), ==, 3);
	g_assert_cmpuint(g.fb->fetch_many_calls, ==, 0);
	rig_clear(&g);
}

/* ---- read-ahead across files ---- */

static guint fetch_many_calls(rig *g)
{
	g_mutex_lock(&g->fb->lock);
	guint n = g->fb->fetch_many_calls;
	g_mutex_unlock(&g->fb->lock);
	return n;
}

static char *fetch_many_uids(rig *g, guint call)
{
	GString *s = g_string_new(NULL);

	g_mutex_lock(&g->fb->lock);
	GArray *uids = g->fb->fetch_many_uids->pdata[call];
	for (guint i = 0; i < uids->len; i++)
		g_string_append_printf(s, "%s%u", i ? "|" : "", g_array_index(uids, guint32, i));
	g_mutex_unlock(&g->fb->lock);
	return g_string_free(s, FALSE);
}

static void test_readahead(void)
{
	rig g;

	rig_init(&g, CAPS_IMAP, TRUE);
	for (guint32 uid = 1; uid <= 40; uid++)
		fake_add_msg(g.fb, g.ff, uid, uid == 8 ? 3 * MiB : 3000 + uid * 10);
	fake_find_msg_locked(g.ff, 12)->advertised += 50; /* a lie the read-ahead will correct */
	rig_start(&g);

	read_ok(&g, 1, 0, 4096);
	g_assert_cmpuint(fetch_many_calls(&g), ==, 0); /* one file is not a pattern */
	read_ok(&g, 2, 0, 4096);
	g_assert_true(fake_wait_fetch_many(g.fb, 1));
	g_assert_cmpuint(fetches(&g), ==, 2);
	/* The next ones, without the big message. */
	g_autofree char *batch = fetch_many_uids(&g, 0);
	g_assert_cmpstr(batch, ==, "3|4|5|6|7|9|10");

	/* Reading on in folder order: cache hits, and the batches get bigger. */
	for (guint32 uid = 3; uid <= 40; uid++) {
		if (uid == 8)
			continue;
		read_ok(&g, uid, 0, 8192);
	}
	/* Wait for whatever read-ahead is still queued before counting. */
	g_assert_true(fake_wait_fetch_many(g.fb, fetch_many_calls(&g)));
	g_assert_cmpuint(fetches(&g), ==, 2);
	g_assert_cmpuint(fetch_many_calls(&g), >=, 2);
	g_assert_cmpuint(fetch_many_calls(&g), <=, 6);
	/* Every small message came exactly once. */
	g_mutex_lock(&g.fb->lock);
	g_assert_cmpuint(g.fb->fetch_many_bodies, ==, 40 - 3);
	g_mutex_unlock(&g.fb->lock);

	/* The lying size was corrected before anybody read it: no error, exact bytes. */
	gboolean exact = FALSE;
	g_assert_cmpuint(mf_model_msg_size(g.m, node(&g, 12), &exact), ==, 3000 + 120);
	g_assert_true(exact);
	g_assert_cmpuint(inval_count(&g, node(&g, 12)), ==, 1);

	/* The big one is read on its own. */
	read_ok(&g, 8, 0, 4096);
	g_assert_cmpuint(fetches(&g), ==, 3);
	g_assert_cmpuint(last_fetch(&g).uid, ==, 8);
	rig_clear(&g);
}

/* Files read out of order, or not from their start, start no read-ahead. */
static void test_readahead_needs_order(void)
{
	rig g;

	rig_init(&g, CAPS_IMAP, TRUE);
	for (guint32 uid = 1; uid <= 20; uid++)
		fake_add_msg(g.fb, g.ff, uid, 2000);
	rig_start(&g);
	read_ok(&g, 10, 0, 4096);
	read_ok(&g, 3, 0, 4096);
	read_ok(&g, 17, 0, 4096);
	read_ok(&g, 18, 100, 4096);
	read_ok(&g, 19, 100, 4096);
	g_assert_cmpuint(fetch_many_calls(&g), ==, 0);
	g_assert_cmpuint(fetches(&g), ==, 5);
	/* Going back, or re-reading the same file from its start, is not a run either. */
	read_ok(&g, 3, 0, 4096);
	read_ok(&g, 3, 0, 4096);
	g_assert_cmpuint(fetch_many_calls(&g), ==, 0);
	g_assert_cmpuint(fetches(&g), ==, 5);
	/* Skipping one file still is (17, then 19). */
	read_ok(&g, 17, 0, 4096);
	read_ok(&g, 19, 0, 4096);
	g_assert_true(fake_wait_fetch_many(g.fb, 1));
	g_autofree char *batch = fetch_many_uids(&g, 0);
	g_assert_cmpstr(batch, ==, "20");
	rig_clear(&g);
}

/* Reads racing with the read-ahead of the same messages get the right bytes, once. */
static void test_readahead_race(void)
{
	rig g;

	rig_init(&g, CAPS_IMAP, TRUE);
	for (guint32 uid = 1; uid <= 30; uid++)
		fake_add_msg(g.fb, g.ff, uid, 1000 + uid);
	g.fb->fetch_delay_usec = 20000;
	rig_start(&g);
	for (guint32 uid = 1; uid <= 30; uid++)
		read_ok(&g, uid, 0, 4096); /* no waiting for the background batch */
	g_assert_true(fake_wait_fetch_many(g.fb, fetch_many_calls(&g)));
	g_assert_cmpuint(fetches(&g), ==, 2);
	rig_clear(&g);
}

/* Unmounting while a read-ahead batch is on the wire waits for it and drops the queue. */
static void test_readahead_at_free(void)
{
	rig g;

	rig_init(&g, CAPS_IMAP, TRUE);
	for (guint32 uid = 1; uid <= 10; uid++)
		fake_add_msg(g.fb, g.ff, uid, 1000);
	rig_start(&g);
	g.fb->fetch_delay_usec = 50000;
	read_ok(&g, 1, 0, 100);
	read_ok(&g, 2, 0, 100);
	rig_clear(&g);
}

/* ---- concurrency ---- */

typedef struct {
	rig *g;
	guint32 uid;
	guint seed;
} reader_ctx;

static gpointer cat_thread(gpointer data)
{
	reader_ctx *c = data;
	mf_node *n = node(c->g, c->uid);

	mf_reader_opened(c->g->r, n);
	g_assert_cmpuint(read_like_cat(c->g, c->uid, 128 * KiB, NULL), ==, 0);
	mf_reader_released(c->g->r, n);
	return NULL;
}

static gpointer random_thread(gpointer data)
{
	reader_ctx *c = data;
	mf_node *n = node(c->g, c->uid);
	GRand *rnd = g_rand_new_with_seed(c->seed);
	guint64 size = mf_model_msg_size(c->g->m, n, NULL);

	mf_reader_opened(c->g->r, n);
	for (int i = 0; i < 40; i++) {
		guint64 off = g_rand_int_range(rnd, 0, (gint32)size);
		guint64 len = g_rand_int_range(rnd, 1, 256 * KiB);
		read_ok(c->g, c->uid, off, len);
	}
	mf_reader_released(c->g->r, n);
	g_rand_free(rnd);
	return NULL;
}

static guint64 bytes_moved(rig *g, guint from)
{
	guint64 moved = 0;

	for (guint i = from; i < fake_fetch_count(g->fb); i++) {
		fake_fetch f = fake_fetch_at(g->fb, i);
		moved += f.len ? f.len : true_size(g, f.uid) - f.off;
	}
	return moved;
}

static void run_readers(rig *g, guint nthreads, const guint32 *uids, guint nuids, gboolean random_too)
{
	reader_ctx *ctx = g_new0(reader_ctx, nthreads);
	GThread **t = g_new0(GThread *, nthreads);

	for (guint i = 0; i < nthreads; i++) {
		ctx[i] = (reader_ctx){ g, uids[i % nuids], i };
		t[i] = g_thread_new("reader", random_too && i % 2 ? random_thread : cat_thread, &ctx[i]);
	}
	for (guint i = 0; i < nthreads; i++)
		g_thread_join(t[i]);
	g_free(t);
	g_free(ctx);
}

static void test_concurrent_same_message(void)
{
	rig g;
	const guint64 size1 = 13 * MiB + 333, size2 = 11 * MiB;
	static const guint32 cat_uids[] = { 1, 2 }, mixed_uids[] = { 3, 3, 4 };

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, size1);
	fake_add_msg(g.fb, g.ff, 2, size2);
	fake_add_msg(g.fb, g.ff, 3, 17 * MiB + 1);
	fake_add_msg(g.fb, g.ff, 4, 5 * MiB - 1);
	g.fb->fetch_delay_usec = 2000;
	rig_start(&g);

	/* Several cat of the same files at once share the windows: each byte moves once, plus
	 * the octet that proves each size. */
	run_readers(&g, 8, cat_uids, G_N_ELEMENTS(cat_uids), FALSE);
	g_assert_cmpuint(bytes_moved(&g, g.base), ==, size1 + size2 + 2);

	/* cat and random readers mixed: always the right bytes. */
	guint from = fake_fetch_count(g.fb);
	run_readers(&g, 12, mixed_uids, G_N_ELEMENTS(mixed_uids), TRUE);
	g_test_message("%" G_GUINT64_FORMAT " bytes fetched for %" G_GUINT64_FORMAT " bytes of mail",
		       bytes_moved(&g, from), (guint64)22 * MiB);
	g_assert_cmpuint(read_like_cat(&g, 3, 1 * MiB, NULL), ==, 0);
	g_assert_cmpuint(read_like_cat(&g, 4, 1 * MiB, NULL), ==, 0);
	rig_clear(&g);
}

/* Several readers of a message whose size lies: each read is right or fails with
 * MF_ERR_SIZE_MISMATCH, never wrong bytes, and afterwards everything reads back. */
static gpointer lying_cat_thread(gpointer data)
{
	reader_ctx *c = data;

	for (int i = 0; i < 3; i++)
		read_like_cat(c->g, c->uid, 128 * KiB, NULL);
	return NULL;
}

static void test_concurrent_lie(void)
{
	rig g;

	rig_init(&g, CAPS_IMAP, TRUE);
	fake_add_msg(g.fb, g.ff, 1, 5 * MiB)->advertised = 5 * MiB - 1000;
	fake_add_msg(g.fb, g.ff, 2, 5 * MiB)->advertised = 5 * MiB + 1000;
	g.fb->fetch_delay_usec = 1000;
	rig_start(&g);
	reader_ctx ctx[8];
	GThread *t[8];
	for (guint i = 0; i < G_N_ELEMENTS(t); i++) {
		ctx[i] = (reader_ctx){ &g, 1 + i % 2, i };
		t[i] = g_thread_new("liar", lying_cat_thread, &ctx[i]);
	}
	for (guint i = 0; i < G_N_ELEMENTS(t); i++)
		g_thread_join(t[i]);
	for (guint32 uid = 1; uid <= 2; uid++) {
		gboolean exact = FALSE;
		g_assert_cmpuint(mf_model_msg_size(g.m, node(&g, uid), &exact), ==, 5 * MiB);
		g_assert_true(exact);
		g_assert_cmpuint(read_like_cat(&g, uid, 256 * KiB, NULL), ==, 0);
	}
	rig_clear(&g);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/reader/small-whole-once", test_small_whole_once);
	g_test_add_func("/reader/small-lie", test_small_lie);
	g_test_add_func("/reader/big-head", test_big_head);
	g_test_add_func("/reader/big-sequential", test_big_sequential);
	g_test_add_func("/reader/big-lie-bigger", test_big_lie_bigger);
	g_test_add_func("/reader/big-lie-smaller", test_big_lie_smaller);
	g_test_add_func("/reader/big-lie-tail", test_big_lie_tail);
	g_test_add_func("/reader/big-random-read", test_big_random_read);
	g_test_add_func("/reader/zero-length-read", test_zero_length_read);
	g_test_add_func("/reader/big-random-read-past-true-end", test_big_random_read_past_true_end);
	g_test_add_func("/reader/big-release", test_big_release);
	g_test_add_func("/reader/size-zero-lie", test_size_zero_lie);
	g_test_add_func("/reader/verify-size", test_verify_size);
	g_test_add_func("/reader/nonpartial-whole", test_nonpartial_whole);
	g_test_add_func("/reader/readahead", test_readahead);
	g_test_add_func("/reader/readahead-needs-order", test_readahead_needs_order);
	g_test_add_func("/reader/readahead-race", test_readahead_race);
	g_test_add_func("/reader/readahead-at-free", test_readahead_at_free);
	g_test_add_func("/reader/concurrent-same-message", test_concurrent_same_message);
	g_test_add_func("/reader/concurrent-lie", test_concurrent_lie);
	return g_test_run();
}
