/* Counters of what a backend does on the wire, readable while mounted (status file, xattr)
 * and printed at unmount with -d. Thread-safe. Also holds the last error, one line. */
#pragma once
#include <glib.h>

typedef struct mf_stats mf_stats;

mf_stats *mf_stats_new(void);
void mf_stats_free(mf_stats *s);

void mf_stats_add_bytes_in(mf_stats *s, guint64 n);
void mf_stats_add_bytes_out(mf_stats *s, guint64 n);
/* A command of `kind` ("UID FETCH", "EXAMINE", "RETR", ...) was sent. */
void mf_stats_command(mf_stats *s, const char *kind);
/* The client waited for the server: one round trip (a pipelined batch counts once). */
void mf_stats_round_trip(mf_stats *s);
void mf_stats_body_whole(mf_stats *s);
void mf_stats_body_partial(mf_stats *s);
void mf_stats_cache_hit(mf_stats *s);
void mf_stats_cache_miss(mf_stats *s);
void mf_stats_connection(mf_stats *s);

/* Record the last error (one line, shown in the status file and logged by the caller). */
void mf_stats_set_error(mf_stats *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Long operations in progress ("listing INBOX"), shown with their age in the status file so a
 * user who waits on `ls` can see why. Returns a token for mf_stats_end_activity. */
guint mf_stats_begin_activity(mf_stats *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void mf_stats_end_activity(mf_stats *s, guint token);

guint64 mf_stats_bytes_in(mf_stats *s);
guint64 mf_stats_bytes_out(mf_stats *s);

/* "key: value\n" lines, stable order, for the status file. */
char *mf_stats_format(mf_stats *s, const char *backend_name);
