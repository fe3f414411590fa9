/* IMAP UID sets ("1:500,502,9000:9010"): the compact form for commands and for ESEARCH
 * answers. Pure functions, no I/O. */
#pragma once
#include <glib.h>

/* Split a set of UIDs into command-sized pieces: each piece names at most max_count UIDs and
 * its text is at most max_len bytes (max_len >= 21, room for one "a:b" range). The input need
 * not be sorted and may hold duplicates; the pieces are in ascending UID order and every UID
 * appears exactly once. Returns char* strings, owned. */
GPtrArray *mf_imap_uidset_chunks(const guint32 *uids, gsize n, guint max_count, gsize max_len);

/* Expand a server-sent set (no '*', no 0) into `out` (GArray of guint32), in set order.
 * Fails with MF_ERR_PROTOCOL on bad syntax or when more than max_count UIDs would result,
 * so a hostile "1:4294967295" cannot exhaust memory. */
gboolean mf_imap_uidset_parse(const char *s, guint max_count, GArray *out, GError **err);

/* A server-sent set as merged, ascending ranges (GArray of mf_imap_uid_range), without
 * expanding it, so "1:4294967295" costs one entry. NULL + MF_ERR_PROTOCOL on bad syntax. */
typedef struct {
	guint32 lo, hi;
} mf_imap_uid_range;
GArray *mf_imap_uidset_ranges(const char *s, GError **err);
gboolean mf_imap_uidset_ranges_contain(const GArray *ranges, guint32 uid);
/* How many UIDs the ranges name. */
guint64 mf_imap_uidset_ranges_count(const GArray *ranges);
