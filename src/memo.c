/* The memo of memo.h: one hash table under one mutex. */
#include "memo.h"
#include "strhash.h"

struct mf_memo {
	GMutex lock;
	GHashTable *map; /* key -> value, both owned */
	guint max;
};

mf_memo *mf_memo_new(guint max_entries)
{
	mf_memo *m = g_new0(mf_memo, 1);

	g_mutex_init(&m->lock);
	m->map = g_hash_table_new_full(mf_str_hash, g_str_equal, g_free, g_free);
	m->max = max_entries ? max_entries : 1;
	return m;
}

void mf_memo_free(mf_memo *m)
{
	if (!m)
		return;
	g_hash_table_destroy(m->map);
	g_mutex_clear(&m->lock);
	g_free(m);
}

char *mf_memo_get(mf_memo *m, const char *key)
{
	g_mutex_lock(&m->lock);
	char *hit = g_strdup(g_hash_table_lookup(m->map, key));
	g_mutex_unlock(&m->lock);
	return hit;
}

char *mf_memo_put(mf_memo *m, const char *key, char *value)
{
	g_mutex_lock(&m->lock);
	if (g_hash_table_size(m->map) >= m->max)
		g_hash_table_remove_all(m->map);
	g_hash_table_replace(m->map, g_strdup(key), g_strdup(value));
	g_mutex_unlock(&m->lock);
	return value;
}
