/* UID set compression and expansion (RFC 3501 §9 sequence-set, UIDs only). */
#include <stdlib.h>
#include <string.h>

#include "imap_uidset.h"
#include "mferror.h"

static int uidset_cmp(gconstpointer a, gconstpointer b)
{
	guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;

	return x < y ? -1 : x > y;
}

static void uidset_flush(GPtrArray *chunks, GString **cur, guint *count)
{
	if ((*cur)->len > 0)
		g_ptr_array_add(chunks, g_string_free(*cur, FALSE));
	else
		g_string_free(*cur, TRUE);
	*cur = g_string_new(NULL);
	*count = 0;
}

GPtrArray *mf_imap_uidset_chunks(const guint32 *uids, gsize n, guint max_count, gsize max_len)
{
	GPtrArray *chunks = g_ptr_array_new_with_free_func(g_free);
	g_autofree guint32 *v = n ? g_memdup2(uids, n * sizeof *uids) : NULL;
	GString *cur = g_string_new(NULL);
	guint count = 0;
	gsize i = 0;

	g_return_val_if_fail(max_count > 0 && max_len >= 21, chunks);
	if (n)
		qsort(v, n, sizeof *v, uidset_cmp);
	while (i < n) {
		/* The longest run of consecutive UIDs starting at i that still fits the count. */
		gsize j = i;
		guint room = max_count - count;

		while (j + 1 < n && (v[j + 1] == v[j] || v[j + 1] == v[j] + 1) &&
		       (guint)(v[j + 1] - v[i]) + 1 <= room)
			j++;
		char run[24];

		if (v[j] == v[i])
			g_snprintf(run, sizeof run, "%u", v[i]);
		else
			g_snprintf(run, sizeof run, "%u:%u", v[i], v[j]);
		gsize need = strlen(run) + (cur->len ? 1 : 0);

		if (cur->len + need > max_len) {
			uidset_flush(chunks, &cur, &count);
			continue; /* recompute the run against a fresh chunk */
		}
		if (cur->len)
			g_string_append_c(cur, ',');
		g_string_append(cur, run);
		count += v[j] - v[i] + 1;
		i = j + 1;
		while (i < n && v[i] == v[j]) /* skip duplicates of the run's end */
			i++;
		if (count >= max_count)
			uidset_flush(chunks, &cur, &count);
	}
	uidset_flush(chunks, &cur, &count);
	g_string_free(cur, TRUE);
	return chunks;
}

static gboolean uidset_number(const char **p, guint32 *out)
{
	const char *s = *p;
	guint64 v = 0;

	if (!g_ascii_isdigit(*s))
		return FALSE;
	while (g_ascii_isdigit(*s)) {
		v = v * 10 + (guint64)(*s - '0');
		if (v > G_MAXUINT32)
			return FALSE;
		s++;
	}
	if (v == 0)
		return FALSE;
	*out = (guint32)v;
	*p = s;
	return TRUE;
}

gboolean mf_imap_uidset_parse(const char *s, guint max_count, GArray *out, GError **err)
{
	const char *p = s;
	guint64 total = 0;

	for (;;) {
		guint32 a, b;

		if (!uidset_number(&p, &a))
			goto bad;
		b = a;
		if (*p == ':') {
			p++;
			if (!uidset_number(&p, &b))
				goto bad;
		}
		guint32 lo = MIN(a, b), hi = MAX(a, b);

		total += (guint64)(hi - lo) + 1;
		if (total > max_count) {
			g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL,
				    "server sent a UID set with more than %u members", max_count);
			return FALSE;
		}
		for (guint64 u = lo; u <= hi; u++) {
			guint32 x = (guint32)u;

			g_array_append_val(out, x);
		}
		if (*p == '\0')
			return TRUE;
		if (*p != ',')
			goto bad;
		p++;
	}
bad:
	g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "server sent a malformed UID set: %.60s", s);
	return FALSE;
}

static int range_cmp(gconstpointer a, gconstpointer b)
{
	const mf_imap_uid_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

GArray *mf_imap_uidset_ranges(const char *s, GError **err)
{
	g_autoptr(GArray) r = g_array_new(FALSE, FALSE, sizeof(mf_imap_uid_range));
	const char *p = s;

	for (;;) {
		guint32 a, b;

		if (!uidset_number(&p, &a))
			goto bad;
		b = a;
		if (*p == ':') {
			p++;
			if (!uidset_number(&p, &b))
				goto bad;
		}
		mf_imap_uid_range x = { MIN(a, b), MAX(a, b) };

		g_array_append_val(r, x);
		if (*p == '\0')
			break;
		if (*p != ',')
			goto bad;
		p++;
	}
	g_array_sort(r, range_cmp);
	guint out = 0;

	for (guint i = 0; i < r->len; i++) {
		mf_imap_uid_range *cur = &g_array_index(r, mf_imap_uid_range, i);
		mf_imap_uid_range *last = out ? &g_array_index(r, mf_imap_uid_range, out - 1) : NULL;

		if (last && (guint64)cur->lo <= (guint64)last->hi + 1)
			last->hi = MAX(last->hi, cur->hi);
		else
			g_array_index(r, mf_imap_uid_range, out++) = *cur;
	}
	g_array_set_size(r, out);
	return g_steal_pointer(&r);
bad:
	g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "server sent a malformed UID set: %.60s", s);
	return NULL;
}

gboolean mf_imap_uidset_ranges_contain(const GArray *ranges, guint32 uid)
{
	guint lo = 0, hi = ranges->len;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		const mf_imap_uid_range *x = &g_array_index(ranges, mf_imap_uid_range, mid);

		if (uid < x->lo)
			hi = mid;
		else if (uid > x->hi)
			lo = mid + 1;
		else
			return TRUE;
	}
	return FALSE;
}

guint64 mf_imap_uidset_ranges_count(const GArray *ranges)
{
	guint64 n = 0;

	for (guint i = 0; i < ranges->len; i++) {
		const mf_imap_uid_range *x = &g_array_index(ranges, mf_imap_uid_range, i);

		n += (guint64)(x->hi - x->lo) + 1;
	}
	return n;
}
