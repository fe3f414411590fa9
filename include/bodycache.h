/* Cache of whole message bodies: a memory LRU bounded in bytes, backed by an optional on-disk
 * directory (private, 0700) bounded in bytes, so a body is downloaded once per machine.
 * Keys are opaque strings chosen by the caller; they must encode (folder, UIDVALIDITY, UID)
 * since a body is immutable only under that triple. Thread-safe. */
#pragma once
#include <glib.h>

typedef struct mf_bodycache mf_bodycache;

/* disk_dir NULL or disk_max 0: memory only. The directory is created if needed. */
mf_bodycache *mf_bodycache_new(const char *disk_dir, guint64 mem_max, guint64 disk_max);
void mf_bodycache_free(mf_bodycache *c);
/* FALSE if no directory was asked for, or it could not be created or written (the cache then
 * works in memory only; the caller may want to say so). */
gboolean mf_bodycache_has_disk(mf_bodycache *c);

/* A new reference, or NULL. */
GBytes *mf_bodycache_lookup(mf_bodycache *c, const char *key);
/* Whether a body is cached (memory or disk index), without reading or verifying it. */
gboolean mf_bodycache_contains(mf_bodycache *c, const char *key);
void mf_bodycache_insert(mf_bodycache *c, const char *key, GBytes *body);
/* Memory only: for bodies nobody asked for yet (read-ahead). Persisting every body of a bulk
 * copy would write the mailbox to disk twice, once by cp and once by us. */
void mf_bodycache_insert_memory(mf_bodycache *c, const char *key, GBytes *body);
void mf_bodycache_remove(mf_bodycache *c, const char *key);
/* Disk writes happen behind the caller's back (a low-priority thread); wait until the queue is
 * written. mf_bodycache_free() drains it too. */
void mf_bodycache_flush(mf_bodycache *c);
