/* Body cache: a memory LRU over an optional disk LRU, both bounded in bytes.
 *
 * Disk layout: one file per key, named by the SHA-256 hex of the key (keys contain folder
 * names, which are not safe file names). A file is
 *
 *	"MFBODY01" | key length (u32 LE) | key | body length (u64 LE) | SHA-256(body) | body
 *
 * so a truncated file (crash, full disk), a foreign file or a hash collision is detected and
 * deleted instead of being served as mail. Files are written to a temporary name and renamed,
 * so a reader sees a whole file or none. Disk recency is the file's mtime (touched on a hit),
 * which survives restarts; the in-memory index of the directory is rebuilt by a scan at start.
 *
 * A disk hit is mapped, not read: a body bigger than the memory cache stays on disk and is
 * looked up once per read(2), so copying or hashing it every time would be quadratic. Its
 * checksum is verified once per file version (inode and size), and bodies small enough for
 * the memory cache are copied out of the mapping. Only another program truncating a mapped
 * file could hurt (SIGBUS); this process only ever renames over or unlinks cache files.
 *
 * File I/O runs outside the lock; only index updates hold it. */
#include "bodycache.h"
#include "threadprio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>

#define BC_MAGIC "MFBODY01"
#define BC_MAGIC_LEN 8
#define BC_SUM_LEN 32
#define BC_HEX_LEN 64
#define BC_TMP_PREFIX ".tmp-"
/* Temporary files older than this are leftovers of a crash, not another writer's. */
#define BC_STALE_TMP_SEC 3600
/* Bodies waiting to be written, at most: beyond this a body is simply not persisted. */
#define BC_PENDING_MAX (256ULL * 1024 * 1024)

typedef struct {
	char *key;
	GBytes *body;
	GList link; /* in c->mem_lru; data points back to the entry */
} bc_mem_entry;

typedef struct {
	char *hex; /* file name */
	guint64 size;
	gint64 mtime_ns;
	/* The file version whose checksum is known good (written or verified by us); 0 if none. */
	guint64 good_ino, good_size;
	GList link; /* in c->disk_lru */
} bc_disk_entry;

struct mf_bodycache {
	GMutex lock;
	guint64 mem_max, mem_used;
	GHashTable *mem; /* key -> bc_mem_entry */
	GQueue mem_lru;  /* head = most recently used */
	char *dir;       /* NULL: memory only */
	guint64 disk_max, disk_used;
	GHashTable *disk; /* hex -> bc_disk_entry */
	GQueue disk_lru;
	/* Write-behind: bodies wait here for the writer thread (hex -> bc_pending). */
	GHashTable *pending;
	GQueue pending_q;
	guint64 pending_bytes;
	guint writing;    /* files being written right now */
	GCond pending_cond;
	GThread *writer;
	gboolean stopping;
};

typedef struct {
	char *hex, *key;
	GBytes *body;
} bc_pending;

static void bc_pending_free(gpointer p)
{
	bc_pending *w = p;

	g_free(w->hex);
	g_free(w->key);
	g_bytes_unref(w->body);
	g_free(w);
}

static void bc_mem_entry_free(gpointer p)
{
	bc_mem_entry *e = p;

	g_free(e->key);
	g_bytes_unref(e->body);
	g_free(e);
}

static void bc_disk_entry_free(gpointer p)
{
	bc_disk_entry *e = p;

	g_free(e->hex);
	g_free(e);
}

static char *bc_hex(const char *key)
{
	return g_compute_checksum_for_string(G_CHECKSUM_SHA256, key, -1);
}

static char *bc_path(mf_bodycache *c, const char *hex)
{
	return g_build_filename(c->dir, hex, NULL);
}

static gboolean bc_is_hex_name(const char *name)
{
	if (strlen(name) != BC_HEX_LEN)
		return FALSE;
	for (const char *p = name; *p; p++)
		if (!g_ascii_isxdigit(*p) || g_ascii_isupper(*p))
			return FALSE;
	return TRUE;
}

/* ---- memory LRU (lock held) ------------------------------------------------------------ */

static void bc_mem_drop(mf_bodycache *c, bc_mem_entry *e)
{
	g_queue_unlink(&c->mem_lru, &e->link);
	c->mem_used -= g_bytes_get_size(e->body);
	g_hash_table_remove(c->mem, e->key); /* frees e */
}

static void bc_mem_put(mf_bodycache *c, const char *key, GBytes *body)
{
	bc_mem_entry *e = g_hash_table_lookup(c->mem, key);
	gsize size = g_bytes_get_size(body);

	if (e)
		bc_mem_drop(c, e);
	if (size > c->mem_max)
		return; /* would evict everything else and still not fit */
	e = g_new0(bc_mem_entry, 1);
	e->key = g_strdup(key);
	e->body = g_bytes_ref(body);
	e->link.data = e;
	g_hash_table_insert(c->mem, e->key, e);
	g_queue_push_head_link(&c->mem_lru, &e->link);
	c->mem_used += size;
	while (c->mem_used > c->mem_max && c->mem_lru.tail)
		bc_mem_drop(c, c->mem_lru.tail->data);
}

/* ---- disk index (lock held) ------------------------------------------------------------ */

static void bc_disk_forget(mf_bodycache *c, bc_disk_entry *e)
{
	g_queue_unlink(&c->disk_lru, &e->link);
	c->disk_used -= e->size;
	g_hash_table_remove(c->disk, e->hex); /* frees e */
}

static void bc_disk_delete(mf_bodycache *c, bc_disk_entry *e)
{
	g_autofree char *path = bc_path(c, e->hex);

	g_unlink(path);
	bc_disk_forget(c, e);
}

/* Record a file as the most recently used one, then evict from the old end. Returns the
 * entry, or NULL if the file itself had to go. */
static bc_disk_entry *bc_disk_note(mf_bodycache *c, const char *hex, guint64 size, gint64 mtime_ns)
{
	bc_disk_entry *e = g_hash_table_lookup(c->disk, hex);

	if (e) {
		g_queue_unlink(&c->disk_lru, &e->link);
		c->disk_used -= e->size;
	} else {
		e = g_new0(bc_disk_entry, 1);
		e->hex = g_strdup(hex);
		e->link.data = e;
		g_hash_table_insert(c->disk, e->hex, e);
	}
	e->size = size;
	e->mtime_ns = mtime_ns;
	c->disk_used += size;
	g_queue_push_head_link(&c->disk_lru, &e->link);
	while (c->disk_used > c->disk_max && c->disk_lru.tail)
		bc_disk_delete(c, c->disk_lru.tail->data);
	return g_hash_table_lookup(c->disk, hex);
}

static gint bc_by_mtime_newest_first(gconstpointer a, gconstpointer b)
{
	const bc_disk_entry *x = *(bc_disk_entry *const *)a, *y = *(bc_disk_entry *const *)b;

	return x->mtime_ns < y->mtime_ns ? 1 : x->mtime_ns > y->mtime_ns ? -1 : strcmp(x->hex, y->hex);
}

static gint64 bc_mtime_ns(const struct stat *st)
{
	return (gint64)st->st_mtim.tv_sec * G_GINT64_CONSTANT(1000000000) + st->st_mtim.tv_nsec;
}

/* Index the directory: cache files by mtime, crash leftovers removed, anything else ignored. */
static void bc_scan(mf_bodycache *c)
{
	g_autoptr(GDir) d = g_dir_open(c->dir, 0, NULL);
	g_autoptr(GPtrArray) found = g_ptr_array_new();
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	const char *name;

	if (!d)
		return;
	while ((name = g_dir_read_name(d))) {
		g_autofree char *path = bc_path(c, name);
		struct stat st;

		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (g_str_has_prefix(name, BC_TMP_PREFIX)) {
			if (now - st.st_mtime > BC_STALE_TMP_SEC)
				g_unlink(path);
			continue;
		}
		if (!bc_is_hex_name(name))
			continue;
		bc_disk_entry *e = g_new0(bc_disk_entry, 1);
		e->hex = g_strdup(name);
		e->size = (guint64)st.st_size;
		e->mtime_ns = bc_mtime_ns(&st);
		e->link.data = e;
		g_ptr_array_add(found, e);
	}
	g_ptr_array_sort(found, bc_by_mtime_newest_first);
	for (guint i = 0; i < found->len; i++) {
		bc_disk_entry *e = found->pdata[i];

		g_hash_table_insert(c->disk, e->hex, e);
		g_queue_push_tail_link(&c->disk_lru, &e->link);
		c->disk_used += e->size;
	}
	while (c->disk_used > c->disk_max && c->disk_lru.tail)
		bc_disk_delete(c, c->disk_lru.tail->data);
}

static gboolean bc_prepare_dir(const char *dir)
{
	struct stat st;

	if (g_mkdir_with_parents(dir, 0700) != 0)
		return FALSE;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return FALSE;
	/* Bodies are private mail: the cache directory is readable by its owner only. */
	if ((st.st_mode & 0077) && chmod(dir, 0700) != 0)
		return FALSE;
	return access(dir, W_OK | X_OK) == 0;
}

mf_bodycache *mf_bodycache_new(const char *disk_dir, guint64 mem_max, guint64 disk_max)
{
	mf_bodycache *c = g_new0(mf_bodycache, 1);

	g_mutex_init(&c->lock);
	c->mem_max = mem_max;
	c->mem = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, bc_mem_entry_free);
	c->disk = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, bc_disk_entry_free);
	g_queue_init(&c->mem_lru);
	g_queue_init(&c->disk_lru);
	c->pending = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, bc_pending_free);
	g_queue_init(&c->pending_q);
	g_cond_init(&c->pending_cond);
	/* An unusable directory degrades to a memory-only cache; see mf_bodycache_has_disk. */
	if (disk_dir && *disk_dir && disk_max > 0 && bc_prepare_dir(disk_dir)) {
		c->dir = g_strdup(disk_dir);
		c->disk_max = disk_max;
		bc_scan(c);
	}
	return c;
}

gboolean mf_bodycache_has_disk(mf_bodycache *c)
{
	return c->dir != NULL;
}

void mf_bodycache_free(mf_bodycache *c)
{
	if (!c)
		return;
	if (c->writer) {
		/* Whatever is queued is still written: it was downloaded, and the next mount wants it. */
		g_mutex_lock(&c->lock);
		c->stopping = TRUE;
		g_cond_broadcast(&c->pending_cond);
		g_mutex_unlock(&c->lock);
		g_thread_join(c->writer);
	}
	g_queue_clear(&c->pending_q);
	g_hash_table_destroy(c->pending);
	g_cond_clear(&c->pending_cond);
	/* Entries are owned by the hash tables; the queues only link them. */
	g_hash_table_destroy(c->mem);
	g_hash_table_destroy(c->disk);
	g_free(c->dir);
	g_mutex_clear(&c->lock);
	g_free(c);
}

/* ---- disk file format ------------------------------------------------------------------ */

/* OpenSSL's SHA-256 uses the CPU's SHA or vector instructions: five times GChecksum's speed,
 * which matters because every body that crosses the wire is summed once. */
static void bc_body_sum(GBytes *body, guint8 out[BC_SUM_LEN])
{
	gsize size;
	const guint8 *data = g_bytes_get_data(body, &size);
	unsigned int len = BC_SUM_LEN;

	if (!EVP_Digest(data ? data : (const guint8 *)"", size, out, &len, EVP_sha256(), NULL))
		memset(out, 0, BC_SUM_LEN); /* cannot happen with the default provider; fails verification */
}

static gboolean bc_write_all(int fd, const void *buf, gsize len)
{
	const guint8 *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return FALSE;
		p += n;
		len -= (gsize)n;
	}
	return TRUE;
}

static gboolean bc_write_file(const char *dir, const char *hex, const char *key, GBytes *body,
			      struct stat *st_out)
{
	g_autofree char *tmp = g_build_filename(dir, BC_TMP_PREFIX "XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, hex, NULL);
	guint32 klen = GUINT32_TO_LE((guint32)strlen(key));
	gsize blen_native;
	const void *data = g_bytes_get_data(body, &blen_native);
	guint64 blen = GUINT64_TO_LE((guint64)blen_native);
	guint8 sum[BC_SUM_LEN];
	struct stat st;
	gboolean ok;
	int fd;

	bc_body_sum(body, sum);
	fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return FALSE;
	ok = bc_write_all(fd, BC_MAGIC, BC_MAGIC_LEN) && bc_write_all(fd, &klen, sizeof(klen)) &&
	     bc_write_all(fd, key, strlen(key)) && bc_write_all(fd, &blen, sizeof(blen)) &&
	     bc_write_all(fd, sum, sizeof(sum)) && bc_write_all(fd, data, blen_native) &&
	     fstat(fd, &st) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		g_unlink(tmp);
		return FALSE;
	}
	*st_out = st;
	return TRUE;
}

/* The body in the cache file open on fd, for `key`, or NULL (with *corrupt) if it is not a
 * whole, matching cache file. The result references a read-only mapping of the file. */
static GBytes *bc_map_file(int fd, const char *key, gboolean verify, gboolean *corrupt)
{
	g_autoptr(GMappedFile) mf = g_mapped_file_new_from_fd(fd, FALSE, NULL);
	g_autoptr(GBytes) whole = NULL;
	const guint8 *raw;
	gsize len, off, klen = strlen(key);
	guint32 stored_klen;
	guint64 stored_blen;
	guint8 sum[BC_SUM_LEN];
	GBytes *body;

	*corrupt = TRUE;
	if (!mf)
		return NULL;
	whole = g_mapped_file_get_bytes(mf);
	raw = g_bytes_get_data(whole, &len);
	if (!raw || len < BC_MAGIC_LEN + sizeof(stored_klen) || memcmp(raw, BC_MAGIC, BC_MAGIC_LEN) != 0)
		return NULL;
	off = BC_MAGIC_LEN;
	memcpy(&stored_klen, raw + off, sizeof(stored_klen));
	off += sizeof(stored_klen);
	if (GUINT32_FROM_LE(stored_klen) != klen || len - off < klen + sizeof(stored_blen) + BC_SUM_LEN ||
	    memcmp(raw + off, key, klen) != 0)
		return NULL;
	off += klen;
	memcpy(&stored_blen, raw + off, sizeof(stored_blen));
	off += sizeof(stored_blen) + BC_SUM_LEN;
	if (GUINT64_FROM_LE(stored_blen) != len - off)
		return NULL;
	body = g_bytes_new_from_bytes(whole, off, len - off);
	if (verify) {
		bc_body_sum(body, sum);
		if (memcmp(sum, raw + off - BC_SUM_LEN, BC_SUM_LEN) != 0) {
			g_bytes_unref(body);
			return NULL;
		}
	}
	*corrupt = FALSE;
	return body;
}

/* ---- public operations ----------------------------------------------------------------- */

/* Disk part of a lookup: called without the lock. */
static GBytes *bc_lookup_disk(mf_bodycache *c, const char *dir, const char *key)
{
	g_autofree char *hex = bc_hex(key);
	g_autofree char *path = g_build_filename(dir, hex, NULL);
	guint64 good_ino = 0, good_size = 0;
	gint64 now_ns = g_get_real_time() * 1000;
	bc_disk_entry *de;
	gboolean corrupt = FALSE;
	GBytes *body = NULL;
	struct stat st;
	int fd;

	g_mutex_lock(&c->lock);
	de = g_hash_table_lookup(c->disk, hex);
	if (de) {
		good_ino = de->good_ino;
		good_size = de->good_size;
	}
	g_mutex_unlock(&c->lock);

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		gboolean trusted = good_ino && good_ino == (guint64)st.st_ino &&
				   good_size == (guint64)st.st_size;

		body = bc_map_file(fd, key, !trusted, &corrupt);
		/* Touch: the mtime is the disk LRU order, for the next process too. Once a
		 * second is enough for an order. */
		if (body && now_ns - bc_mtime_ns(&st) > 1000000000 && futimens(fd, NULL) == 0)
			st.st_mtim = (struct timespec){ now_ns / 1000000000, now_ns % 1000000000 };
	}
	if (fd >= 0)
		close(fd);
	if (body && g_bytes_get_size(body) <= c->mem_max) {
		/* It will live in the memory cache: a heap copy, not one mapping per small body. */
		GBytes *copy = g_bytes_new(g_bytes_get_data(body, NULL), g_bytes_get_size(body));

		g_bytes_unref(body);
		body = copy;
	}

	g_mutex_lock(&c->lock);
	de = g_hash_table_lookup(c->disk, hex);
	if (!body) {
		/* Missing (another process evicted it), or not ours: forget it, delete the latter. */
		if (corrupt)
			g_unlink(path);
		if (de)
			bc_disk_forget(c, de);
	} else {
		de = bc_disk_note(c, hex, (guint64)st.st_size, bc_mtime_ns(&st));
		if (de) {
			de->good_ino = (guint64)st.st_ino;
			de->good_size = (guint64)st.st_size;
		}
		bc_mem_put(c, key, body);
	}
	g_mutex_unlock(&c->lock);
	return body;
}

GBytes *mf_bodycache_lookup(mf_bodycache *c, const char *key)
{
	g_autofree char *dir = NULL;
	bc_mem_entry *e;
	GBytes *body;

	g_mutex_lock(&c->lock);
	e = g_hash_table_lookup(c->mem, key);
	if (e) {
		g_queue_unlink(&c->mem_lru, &e->link);
		g_queue_push_head_link(&c->mem_lru, &e->link);
		body = g_bytes_ref(e->body);
		g_mutex_unlock(&c->lock);
		return body;
	}
	if (c->dir && g_hash_table_size(c->pending) > 0) {
		g_autofree char *hex = bc_hex(key);
		bc_pending *w = g_hash_table_lookup(c->pending, hex);
		if (w) {
			body = g_bytes_ref(w->body);
			g_mutex_unlock(&c->lock);
			return body;
		}
	}
	dir = g_strdup(c->dir);
	g_mutex_unlock(&c->lock);
	return dir ? bc_lookup_disk(c, dir, key) : NULL;
}

gboolean mf_bodycache_contains(mf_bodycache *c, const char *key)
{
	g_mutex_lock(&c->lock);
	gboolean found = g_hash_table_contains(c->mem, key);
	if (!found && c->dir) {
		g_autofree char *hex = bc_hex(key);
		found = g_hash_table_contains(c->disk, hex) || g_hash_table_contains(c->pending, hex);
	}
	g_mutex_unlock(&c->lock);
	return found;
}

/* The writer thread runs at the lowest CPU priority: during a bulk copy (cp -r, which writes
 * every body to disk itself) persisting the cache must not compete with the copy, and on a
 * machine with spare cycles it keeps up anyway. It drains the queue before exit. */
static gpointer bc_writer_main(gpointer data)
{
	mf_bodycache *c = data;

	mf_thread_set_background();
	g_mutex_lock(&c->lock);
	for (;;) {
		while (g_queue_is_empty(&c->pending_q) && !c->stopping)
			g_cond_wait(&c->pending_cond, &c->lock);
		bc_pending *w = g_queue_pop_head(&c->pending_q);
		if (!w)
			break; /* stopping and drained */
		c->writing++;
		g_autofree char *dir = g_strdup(c->dir);
		g_mutex_unlock(&c->lock);

		struct stat st;
		gboolean ok = bc_write_file(dir, w->hex, w->key, w->body, &st);

		g_mutex_lock(&c->lock);
		c->writing--;
		c->pending_bytes -= g_bytes_get_size(w->body);
		if (ok) {
			bc_disk_entry *de = bc_disk_note(c, w->hex, (guint64)st.st_size, bc_mtime_ns(&st));
			if (de) {
				de->good_ino = (guint64)st.st_ino;
				de->good_size = (guint64)st.st_size;
			}
		}
		g_hash_table_remove(c->pending, w->hex); /* frees w */
		g_cond_broadcast(&c->pending_cond);
	}
	g_mutex_unlock(&c->lock);
	return NULL;
}

void mf_bodycache_insert_memory(mf_bodycache *c, const char *key, GBytes *body)
{
	g_mutex_lock(&c->lock);
	bc_mem_put(c, key, body);
	g_mutex_unlock(&c->lock);
}

void mf_bodycache_insert(mf_bodycache *c, const char *key, GBytes *body)
{
	g_mutex_lock(&c->lock);
	bc_mem_put(c, key, body);
	if (!c->dir) {
		g_mutex_unlock(&c->lock);
		return;
	}
	g_autofree char *hex = bc_hex(key);
	guint64 size = g_bytes_get_size(body);
	guint64 need = BC_MAGIC_LEN + 4 + strlen(key) + 8 + BC_SUM_LEN + size;
	/* A body is immutable under its key: one that is on disk (or on its way) stays as it is. */
	if (need > c->disk_max || g_hash_table_contains(c->disk, hex) ||
	    g_hash_table_contains(c->pending, hex) || c->pending_bytes + size > BC_PENDING_MAX) {
		g_mutex_unlock(&c->lock);
		return;
	}
	bc_pending *w = g_new0(bc_pending, 1);
	w->hex = g_steal_pointer(&hex);
	w->key = g_strdup(key);
	w->body = g_bytes_ref(body);
	g_hash_table_insert(c->pending, w->hex, w);
	g_queue_push_tail(&c->pending_q, w);
	c->pending_bytes += size;
	/* Started on first use, not in _new(): the daemon forks after creating the cache. */
	if (!c->writer)
		c->writer = g_thread_new("bodycache-writer", bc_writer_main, c);
	g_cond_broadcast(&c->pending_cond);
	g_mutex_unlock(&c->lock);
}

void mf_bodycache_flush(mf_bodycache *c)
{
	g_mutex_lock(&c->lock);
	while (!g_queue_is_empty(&c->pending_q) || c->writing > 0)
		g_cond_wait(&c->pending_cond, &c->lock);
	g_mutex_unlock(&c->lock);
}

void mf_bodycache_remove(mf_bodycache *c, const char *key)
{
	bc_mem_entry *e;

	/* A queued write of this key must not bring the file back afterwards. */
	mf_bodycache_flush(c);
	g_mutex_lock(&c->lock);
	e = g_hash_table_lookup(c->mem, key);
	if (e)
		bc_mem_drop(c, e);
	if (c->dir) {
		g_autofree char *hex = bc_hex(key);
		g_autofree char *path = bc_path(c, hex);
		bc_disk_entry *de = g_hash_table_lookup(c->disk, hex);

		if (de)
			bc_disk_forget(c, de);
		g_unlink(path);
	}
	g_mutex_unlock(&c->lock);
}
