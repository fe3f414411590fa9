/* Wire counters, the numbers behind "POP3 or IMAP?" and behind every benchmark. */
#include <stdarg.h>
#include "stats.h"

struct mf_stats {
	GMutex lock;
	guint64 bytes_in, bytes_out, round_trips;
	guint64 bodies_whole, bodies_partial, cache_hits, cache_misses, connections;
	GHashTable *commands;  /* kind -> count (GUINT_TO_POINTER would overflow; use guint64*) */
	char *last_error;
	gint64 started;
	GHashTable *activities; /* token -> activity* */
	guint next_token;
};

typedef struct {
	char *what;
	gint64 since;
} activity;

static void activity_free(activity *a)
{
	g_free(a->what);
	g_free(a);
}

mf_stats *mf_stats_new(void)
{
	mf_stats *s = g_new0(mf_stats, 1);
	g_mutex_init(&s->lock);
	s->commands = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	s->started = g_get_real_time();
	s->activities = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					      (GDestroyNotify)activity_free);
	return s;
}

void mf_stats_free(mf_stats *s)
{
	if (!s)
		return;
	g_hash_table_destroy(s->commands);
	g_hash_table_destroy(s->activities);
	g_free(s->last_error);
	g_mutex_clear(&s->lock);
	g_free(s);
}

#define BUMP(s, field, n)                 \
	do {                              \
		if (!(s))                 \
			return;           \
		g_mutex_lock(&(s)->lock); \
		(s)->field += (n);        \
		g_mutex_unlock(&(s)->lock); \
	} while (0)

void mf_stats_add_bytes_in(mf_stats *s, guint64 n) { BUMP(s, bytes_in, n); }
void mf_stats_add_bytes_out(mf_stats *s, guint64 n) { BUMP(s, bytes_out, n); }
void mf_stats_round_trip(mf_stats *s) { BUMP(s, round_trips, 1); }
void mf_stats_body_whole(mf_stats *s) { BUMP(s, bodies_whole, 1); }
void mf_stats_body_partial(mf_stats *s) { BUMP(s, bodies_partial, 1); }
void mf_stats_cache_hit(mf_stats *s) { BUMP(s, cache_hits, 1); }
void mf_stats_cache_miss(mf_stats *s) { BUMP(s, cache_misses, 1); }
void mf_stats_connection(mf_stats *s) { BUMP(s, connections, 1); }

void mf_stats_command(mf_stats *s, const char *kind)
{
	if (!s)
		return;
	g_mutex_lock(&s->lock);
	guint64 *n = g_hash_table_lookup(s->commands, kind);
	if (!n) {
		n = g_new0(guint64, 1);
		g_hash_table_insert(s->commands, g_strdup(kind), n);
	}
	(*n)++;
	g_mutex_unlock(&s->lock);
}

void mf_stats_set_error(mf_stats *s, const char *fmt, ...)
{
	va_list ap;
	if (!s)
		return;
	va_start(ap, fmt);
	char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
	g_mutex_lock(&s->lock);
	g_free(s->last_error);
	s->last_error = g_strdup_printf("%s %s", stamp, msg);
	g_mutex_unlock(&s->lock);
	g_free(msg);
}

guint mf_stats_begin_activity(mf_stats *s, const char *fmt, ...)
{
	if (!s)
		return 0;
	va_list ap;
	va_start(ap, fmt);
	activity *a = g_new0(activity, 1);
	a->what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	a->since = g_get_monotonic_time();
	g_mutex_lock(&s->lock);
	guint token = ++s->next_token;
	g_hash_table_insert(s->activities, GUINT_TO_POINTER(token), a);
	g_mutex_unlock(&s->lock);
	return token;
}

void mf_stats_end_activity(mf_stats *s, guint token)
{
	if (!s)
		return;
	g_mutex_lock(&s->lock);
	g_hash_table_remove(s->activities, GUINT_TO_POINTER(token));
	g_mutex_unlock(&s->lock);
}

guint64 mf_stats_bytes_in(mf_stats *s)
{
	g_mutex_lock(&s->lock);
	guint64 v = s->bytes_in;
	g_mutex_unlock(&s->lock);
	return v;
}

guint64 mf_stats_bytes_out(mf_stats *s)
{
	g_mutex_lock(&s->lock);
	guint64 v = s->bytes_out;
	g_mutex_unlock(&s->lock);
	return v;
}

char *mf_stats_format(mf_stats *s, const char *backend_name)
{
	GString *out = g_string_new(NULL);
	g_mutex_lock(&s->lock);
	guint64 total = 0;
	GList *keys = g_list_sort(g_hash_table_get_keys(s->commands), (GCompareFunc)g_strcmp0);
	for (GList *k = keys; k; k = k->next)
		total += *(guint64 *)g_hash_table_lookup(s->commands, k->data);
	g_string_append_printf(out, "backend: %s\n", backend_name);
	g_string_append_printf(out, "uptime_seconds: %" G_GINT64_FORMAT "\n",
			       (g_get_real_time() - s->started) / G_USEC_PER_SEC);
	g_string_append_printf(out, "bytes_in: %" G_GUINT64_FORMAT "\n", s->bytes_in);
	g_string_append_printf(out, "bytes_out: %" G_GUINT64_FORMAT "\n", s->bytes_out);
	g_string_append_printf(out, "connections: %" G_GUINT64_FORMAT "\n", s->connections);
	g_string_append_printf(out, "round_trips: %" G_GUINT64_FORMAT "\n", s->round_trips);
	g_string_append_printf(out, "commands: %" G_GUINT64_FORMAT "\n", total);
	for (GList *k = keys; k; k = k->next) {
		g_autofree char *key = g_ascii_strdown(k->data, -1);
		g_strdelimit(key, " .", '_');
		g_string_append_printf(out, "command_%s: %" G_GUINT64_FORMAT "\n", key,
				       *(guint64 *)g_hash_table_lookup(s->commands, k->data));
	}
	g_list_free(keys);
	g_string_append_printf(out, "bodies_whole: %" G_GUINT64_FORMAT "\n", s->bodies_whole);
	g_string_append_printf(out, "bodies_partial: %" G_GUINT64_FORMAT "\n", s->bodies_partial);
	g_string_append_printf(out, "cache_hits: %" G_GUINT64_FORMAT "\n", s->cache_hits);
	g_string_append_printf(out, "cache_misses: %" G_GUINT64_FORMAT "\n", s->cache_misses);
	g_string_append_printf(out, "last_error: %s\n", s->last_error ? s->last_error : "none");
	GHashTableIter it;
	gpointer k, v;
	gint64 now = g_get_monotonic_time();
	g_string_append(out, "activity:");
	if (g_hash_table_size(s->activities) == 0)
		g_string_append(out, " idle");
	g_hash_table_iter_init(&it, s->activities);
	for (gboolean first = TRUE; g_hash_table_iter_next(&it, &k, &v); first = FALSE) {
		activity *a = v;
		g_string_append_printf(out, "%s %s (%" G_GINT64_FORMAT " s)", first ? "" : ";", a->what,
				       (now - a->since) / G_USEC_PER_SEC);
	}
	g_string_append_c(out, '\n');
	g_mutex_unlock(&s->lock);
	return g_string_free(out, FALSE);
}
