/* Body cache: memory LRU order and bound, disk persistence, eviction, integrity, threads. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "bodycache.h"

/* Bytes a cache file takes for key and body (format in src/bodycache.c). */
#define FILE_SIZE(klen, blen) (8 + 4 + (klen) + 8 + 32 + (blen))

static char *tmpdir(void)
{
	g_autoptr(GError) err = NULL;
	char *d = g_dir_make_tmp("mf-bodycache-XXXXXX", &err);

	g_assert_no_error(err);
	return d;
}

static void rm_rf(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			rm_rf(p);
		else
			g_unlink(p);
	}
	g_rmdir(dir);
}

static GBytes *body_of(char fill, gsize n)
{
	char *buf = g_malloc(n ? n : 1);

	memset(buf, fill, n);
	return g_bytes_new_take(buf, n);
}

static void insert(mf_bodycache *c, const char *key, char fill, gsize n)
{
	g_autoptr(GBytes) b = body_of(fill, n);

	mf_bodycache_insert(c, key, b);
	/* disk writes are asynchronous; the assertions below are about what is on disk */
	mf_bodycache_flush(c);
}

static gboolean has(mf_bodycache *c, const char *key)
{
	g_autoptr(GBytes) b = mf_bodycache_lookup(c, key);

	return b != NULL;
}

static void check_body(mf_bodycache *c, const char *key, char fill, gsize n)
{
	g_autoptr(GBytes) want = body_of(fill, n);
	g_autoptr(GBytes) got = mf_bodycache_lookup(c, key);

	g_assert_nonnull(got);
	g_assert_true(g_bytes_equal(want, got));
}

static char *file_for(const char *dir, const char *key)
{
	g_autofree char *hex = g_compute_checksum_for_string(G_CHECKSUM_SHA256, key, -1);

	return g_build_filename(dir, hex, NULL);
}

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	g_assert_cmpint(utimensat(AT_FDCWD, path, ts, 0), ==, 0);
}

static void test_memory_lru(void)
{
	mf_bodycache *c = mf_bodycache_new(NULL, 30, 0);

	g_assert_false(mf_bodycache_has_disk(c));
	insert(c, "a", 'a', 10);
	insert(c, "b", 'b', 10);
	insert(c, "c", 'c', 10);
	check_body(c, "a", 'a', 10); /* a becomes most recent: order a, c, b */
	insert(c, "d", 'd', 10);     /* 40 > 30: b goes */
	g_assert_false(has(c, "b"));
	g_assert_true(has(c, "c"));  /* order c, a, d */
	g_assert_true(has(c, "a"));  /* order a, c, d */
	g_assert_true(has(c, "d"));  /* order d, a, c */
	insert(c, "e", 'e', 25);     /* 55: c, a, d go until 25 <= 30 */
	g_assert_false(has(c, "c"));
	g_assert_false(has(c, "a"));
	g_assert_false(has(c, "d"));
	check_body(c, "e", 'e', 25);
	/* too big for memory at all: not kept, and nothing else is evicted for it */
	insert(c, "huge", 'h', 31);
	g_assert_false(has(c, "huge"));
	check_body(c, "e", 'e', 25);
	/* replacing a key does not count twice */
	insert(c, "e", 'E', 25);
	check_body(c, "e", 'E', 25);
	insert(c, "f", 'f', 5);
	g_assert_true(has(c, "e"));
	g_assert_true(has(c, "f"));
	/* empty body */
	insert(c, "empty", 'x', 0);
	check_body(c, "empty", 'x', 0);
	mf_bodycache_remove(c, "e");
	g_assert_false(has(c, "e"));
	g_assert_false(has(c, "never"));
	mf_bodycache_free(c);
}

static void test_lookup_returns_own_reference(void)
{
	mf_bodycache *c = mf_bodycache_new(NULL, 100, 0);
	GBytes *b;

	insert(c, "k", 'k', 10);
	b = mf_bodycache_lookup(c, "k");
	insert(c, "big", 'z', 100); /* evicts k while the caller still holds it */
	g_assert_false(has(c, "k"));
	g_assert_cmpuint(g_bytes_get_size(b), ==, 10);
	g_assert_cmpint(((const char *)g_bytes_get_data(b, NULL))[9], ==, 'k');
	g_bytes_unref(b);
	mf_bodycache_free(c);
}

static void test_disk_round_trip(void)
{
	g_autofree char *dir = tmpdir();
	g_autofree char *sub = g_build_filename(dir, "cache", "bodies", NULL);
	g_autofree char *f1 = file_for(sub, "INBOX/17/4711");
	mf_bodycache *c = mf_bodycache_new(sub, 1 << 20, 1 << 20);
	struct stat st;

	g_assert_true(mf_bodycache_has_disk(c));
	g_assert_cmpint(stat(sub, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0700);
	insert(c, "INBOX/17/4711", 'm', 5000);
	insert(c, "Sent/3/1", 's', 1);
	mf_bodycache_free(c);

	g_assert_cmpint(stat(f1, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_cmpint(st.st_size, ==, FILE_SIZE(strlen("INBOX/17/4711"), 5000));

	/* a second instance (a new mount) finds both */
	c = mf_bodycache_new(sub, 1 << 20, 1 << 20);
	check_body(c, "INBOX/17/4711", 'm', 5000);
	check_body(c, "Sent/3/1", 's', 1);
	g_assert_false(has(c, "INBOX/17/4712"));
	/* remove deletes the file too */
	mf_bodycache_remove(c, "Sent/3/1");
	mf_bodycache_free(c);
	c = mf_bodycache_new(sub, 1 << 20, 1 << 20);
	g_assert_false(has(c, "Sent/3/1"));
	check_body(c, "INBOX/17/4711", 'm', 5000);
	mf_bodycache_free(c);

	/* an existing directory with loose permissions is tightened */
	g_assert_cmpint(chmod(sub, 0755), ==, 0);
	c = mf_bodycache_new(sub, 0, 1 << 20);
	g_assert_cmpint(stat(sub, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0700);
	mf_bodycache_free(c);
	rm_rf(dir);
}

static void test_disk_only_for_big_bodies(void)
{
	g_autofree char *dir = tmpdir();
	mf_bodycache *c = mf_bodycache_new(dir, 10, 1 << 20);

	insert(c, "big", 'b', 1000);
	check_body(c, "big", 'b', 1000);
	check_body(c, "big", 'b', 1000);
	/* a returned body stays valid after the file is removed and the cache is gone */
	{
		g_autoptr(GBytes) keep = mf_bodycache_lookup(c, "big");
		g_autoptr(GBytes) want = body_of('b', 1000);

		mf_bodycache_remove(c, "big");
		g_assert_false(has(c, "big"));
		mf_bodycache_free(c);
		g_assert_true(g_bytes_equal(keep, want));
	}
	/* a body bigger than the memory cache is read once per read(2): that must stay cheap */
	c = mf_bodycache_new(dir, 10, 64 << 20);
	insert(c, "huge", 'h', 8 << 20);
	{
		gint64 t0 = g_get_monotonic_time();

		check_body(c, "huge", 'h', 8 << 20);
		for (int i = 0; i < 500; i++) {
			g_autoptr(GBytes) b = mf_bodycache_lookup(c, "huge");
			gsize n;
			const char *d = g_bytes_get_data(b, &n);

			g_assert_cmpuint(n, ==, 8 << 20);
			g_assert_cmpint(d[(gsize)i * 16384], ==, 'h');
		}
		/* a copy and a checksum per lookup would be 4 GB of work */
		g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
	}
	/* memory only, mem_max 0: nothing is cached */
	mf_bodycache_free(c);
	c = mf_bodycache_new(NULL, 0, 1 << 20);
	insert(c, "x", 'x', 1);
	g_assert_false(has(c, "x"));
	mf_bodycache_free(c);
	rm_rf(dir);
}

static void test_disk_eviction(void)
{
	g_autofree char *dir = tmpdir();
	guint64 one = FILE_SIZE(2, 100);
	mf_bodycache *c = mf_bodycache_new(dir, 0, 2 * one);
	g_autofree char *p1 = file_for(dir, "k1");
	g_autofree char *p2 = file_for(dir, "k2");
	g_autofree char *p3 = file_for(dir, "k3");
	g_autofree char *p4 = file_for(dir, "k4");

	/* mem_max 0: every lookup below goes to disk */
	insert(c, "k1", '1', 100);
	insert(c, "k2", '2', 100);
	check_body(c, "k1", '1', 100); /* k1 is now more recent than k2 */
	insert(c, "k3", '3', 100);     /* over: the least recently used, k2, goes */
	g_assert_true(g_file_test(p1, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(p2, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(p3, G_FILE_TEST_EXISTS));
	g_assert_false(has(c, "k2"));
	/* a body larger than the whole disk budget is not written */
	insert(c, "k4", '4', 3 * 100);
	g_assert_false(g_file_test(p4, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(p1, G_FILE_TEST_EXISTS));
	mf_bodycache_free(c);

	/* Across restarts the order is the mtime: make k3 old, then restart with room for one */
	set_mtime(p3, 1000000000);
	set_mtime(p1, 1000000100);
	c = mf_bodycache_new(dir, 0, one);
	g_assert_true(g_file_test(p1, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(p3, G_FILE_TEST_EXISTS));
	/* a hit touches the file */
	check_body(c, "k1", '1', 100);
	{
		struct stat st;

		g_assert_cmpint(stat(p1, &st), ==, 0);
		g_assert_cmpint(st.st_mtime, >, 1000000100);
	}
	mf_bodycache_free(c);
	rm_rf(dir);
}

static void test_disk_scan_ignores_and_cleans(void)
{
	g_autofree char *dir = tmpdir();
	g_autofree char *foreign = g_build_filename(dir, "README", NULL);
	g_autofree char *stale = g_build_filename(dir, ".tmp-AAAAAA", NULL);
	g_autofree char *fresh = g_build_filename(dir, ".tmp-BBBBBB", NULL);
	mf_bodycache *c;

	g_assert_true(g_file_set_contents(foreign, "not ours, not counted, not deleted", -1, NULL));
	g_assert_true(g_file_set_contents(stale, "half a body", -1, NULL));
	g_assert_true(g_file_set_contents(fresh, "another writer's", -1, NULL));
	set_mtime(stale, 1000000000);
	c = mf_bodycache_new(dir, 0, FILE_SIZE(1, 10));
	insert(c, "k", 'k', 10); /* fits exactly: the foreign file does not count */
	check_body(c, "k", 'k', 10);
	g_assert_true(g_file_test(foreign, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(stale, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(fresh, G_FILE_TEST_EXISTS));
	mf_bodycache_free(c);
	rm_rf(dir);
}

static void check_corruption(void (*damage)(const char *path, const char *dir))
{
	g_autofree char *dir = tmpdir();
	g_autofree char *path = file_for(dir, "key");
	mf_bodycache *c = mf_bodycache_new(dir, 1 << 20, 1 << 20);

	insert(c, "key", 'v', 1000);
	mf_bodycache_free(c);
	damage(path, dir);
	c = mf_bodycache_new(dir, 1 << 20, 1 << 20);
	g_assert_false(has(c, "key"));
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	/* and the key can be cached again */
	insert(c, "key", 'w', 10);
	mf_bodycache_free(c);
	c = mf_bodycache_new(dir, 1 << 20, 1 << 20);
	check_body(c, "key", 'w', 10);
	mf_bodycache_free(c);
	rm_rf(dir);
}

static void damage_truncate(const char *path, const char *dir)
{
	g_assert_cmpint(truncate(path, FILE_SIZE(3, 1000) - 1), ==, 0);
}

static void damage_truncate_header(const char *path, const char *dir)
{
	g_assert_cmpint(truncate(path, 10), ==, 0);
}

static void damage_empty(const char *path, const char *dir)
{
	g_assert_cmpint(truncate(path, 0), ==, 0);
}

static void damage_append(const char *path, const char *dir)
{
	g_autofree char *data = NULL;
	gsize len;

	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	data = g_realloc(data, len + 1);
	data[len] = 'x';
	g_assert_true(g_file_set_contents(path, data, (gssize)len + 1, NULL));
}

static void damage_flip_body_bit(const char *path, const char *dir)
{
	g_autofree char *data = NULL;
	gsize len;

	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	data[len - 500] ^= 1;
	g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
}

static void damage_foreign(const char *path, const char *dir)
{
	g_assert_true(g_file_set_contents(path, "From: someone else's idea of a file\n", -1, NULL));
}

/* The right-sized file of another key under this key's name (as a hash collision would be). */
static void damage_other_key(const char *path, const char *dir)
{
	g_autofree char *other = file_for(dir, "kez");
	mf_bodycache *c = mf_bodycache_new(dir, 0, 1 << 20);

	insert(c, "kez", 'v', 1000);
	mf_bodycache_free(c);
	g_assert_cmpint(g_rename(other, path), ==, 0);
}

static void test_corrupt_truncated(void) { check_corruption(damage_truncate); }
static void test_corrupt_truncated_header(void) { check_corruption(damage_truncate_header); }
static void test_corrupt_empty(void) { check_corruption(damage_empty); }
static void test_corrupt_appended(void) { check_corruption(damage_append); }
static void test_corrupt_bit_flip(void) { check_corruption(damage_flip_body_bit); }
static void test_corrupt_foreign(void) { check_corruption(damage_foreign); }
static void test_corrupt_other_key(void) { check_corruption(damage_other_key); }

static void test_unusable_dir(void)
{
	g_autofree char *dir = tmpdir();
	g_autofree char *file = g_build_filename(dir, "file", NULL);
	g_autofree char *under = g_build_filename(file, "cache", NULL);
	mf_bodycache *c;

	g_assert_true(g_file_set_contents(file, "x", -1, NULL));
	c = mf_bodycache_new(under, 100, 1 << 20);
	g_assert_false(mf_bodycache_has_disk(c));
	insert(c, "k", 'k', 10);
	check_body(c, "k", 'k', 10);
	mf_bodycache_free(c);
	c = mf_bodycache_new(dir, 100, 0);
	g_assert_false(mf_bodycache_has_disk(c));
	mf_bodycache_free(c);
	rm_rf(dir);
}

typedef struct {
	mf_bodycache *c;
	guint seed;
} worker_arg;

#define N_THREADS 8
#define N_KEYS 64

static gpointer worker(gpointer p)
{
	worker_arg *a = p;
	g_autoptr(GRand) r = g_rand_new_with_seed(a->seed);

	for (int i = 0; i < 1500; i++) {
		int k = g_rand_int_range(r, 0, N_KEYS);
		g_autofree char *key = g_strdup_printf("F/1/%d", k);
		gsize n = (gsize)(k * 37 % 500);
		int op = g_rand_int_range(r, 0, 10);

		if (op < 4) {
			insert(a->c, key, 'a' + k % 26, n);
		} else if (op < 9) {
			g_autoptr(GBytes) got = mf_bodycache_lookup(a->c, key);

			/* a body, if any, is always the whole right body */
			if (got) {
				g_autoptr(GBytes) want = body_of('a' + k % 26, n);
				g_assert_true(g_bytes_equal(got, want));
			}
		} else {
			mf_bodycache_remove(a->c, key);
		}
	}
	return NULL;
}

static void run_threads(mf_bodycache *c)
{
	GThread *t[N_THREADS];
	worker_arg args[N_THREADS];

	for (int i = 0; i < N_THREADS; i++) {
		args[i].c = c;
		args[i].seed = 100 + (guint)i;
		t[i] = g_thread_new("bodycache", worker, &args[i]);
	}
	for (int i = 0; i < N_THREADS; i++)
		g_thread_join(t[i]);
}

static void test_threads(void)
{
	g_autofree char *dir = tmpdir();
	mf_bodycache *c = mf_bodycache_new(NULL, 4000, 0);

	run_threads(c);
	mf_bodycache_free(c);
	c = mf_bodycache_new(dir, 2000, 8000);
	run_threads(c);
	mf_bodycache_free(c);
	/* whatever survived on disk is whole and within the budget */
	c = mf_bodycache_new(dir, 0, 1 << 20);
	{
		guint64 total = 0;
		g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
		const char *name;

		while ((name = g_dir_read_name(d))) {
			g_autofree char *p = g_build_filename(dir, name, NULL);
			struct stat st;

			g_assert_cmpint(stat(p, &st), ==, 0);
			total += (guint64)st.st_size;
		}
		g_assert_cmpuint(total, <=, 8000);
	}
	for (int k = 0; k < N_KEYS; k++) {
		g_autofree char *key = g_strdup_printf("F/1/%d", k);
		g_autoptr(GBytes) got = mf_bodycache_lookup(c, key);

		if (got) {
			g_autoptr(GBytes) want = body_of('a' + k % 26, (gsize)(k * 37 % 500));
			g_assert_true(g_bytes_equal(got, want));
		}
	}
	mf_bodycache_free(c);
	rm_rf(dir);
}

/* Read-ahead bodies stay in memory; only bodies someone read are written behind to disk. */
static void test_memory_only_insert(void)
{
	g_autofree char *dir = tmpdir();
	mf_bodycache *c = mf_bodycache_new(dir, 1 << 20, 1 << 20);
	g_autoptr(GBytes) ahead = body_of('a', 100);
	g_autoptr(GBytes) read = body_of('r', 100);
	g_autofree char *pa = file_for(dir, "ahead");
	g_autofree char *pr = file_for(dir, "read");

	mf_bodycache_insert_memory(c, "ahead", ahead);
	mf_bodycache_insert(c, "read", read);
	g_assert_true(mf_bodycache_contains(c, "ahead"));
	g_assert_true(mf_bodycache_contains(c, "read"));
	mf_bodycache_flush(c);
	g_assert_false(g_file_test(pa, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(pr, G_FILE_TEST_EXISTS));
	mf_bodycache_free(c);
	rm_rf(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/bodycache/memory-lru", test_memory_lru);
	g_test_add_func("/bodycache/memory-only-insert", test_memory_only_insert);
	g_test_add_func("/bodycache/lookup-returns-own-reference", test_lookup_returns_own_reference);
	g_test_add_func("/bodycache/disk/round-trip", test_disk_round_trip);
	g_test_add_func("/bodycache/disk/only-for-big-bodies", test_disk_only_for_big_bodies);
	g_test_add_func("/bodycache/disk/eviction", test_disk_eviction);
	g_test_add_func("/bodycache/disk/scan-ignores-and-cleans", test_disk_scan_ignores_and_cleans);
	g_test_add_func("/bodycache/corrupt/truncated", test_corrupt_truncated);
	g_test_add_func("/bodycache/corrupt/truncated-header", test_corrupt_truncated_header);
	g_test_add_func("/bodycache/corrupt/empty", test_corrupt_empty);
	g_test_add_func("/bodycache/corrupt/appended", test_corrupt_appended);
	g_test_add_func("/bodycache/corrupt/bit-flip", test_corrupt_bit_flip);
	g_test_add_func("/bodycache/corrupt/foreign", test_corrupt_foreign);
	g_test_add_func("/bodycache/corrupt/other-key", test_corrupt_other_key);
	g_test_add_func("/bodycache/unusable-dir", test_unusable_dir);
	g_test_add_func("/bodycache/threads", test_threads);
	return g_test_run();
}
