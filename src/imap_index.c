/* An IMAP folder's remembered listing and its compact binary file form (see imap_index.h). */
#include <string.h>

#include "imap_index.h"
#include "mferror.h"

static const char index_magic[8] = { 'M', 'F', 'I', 'M', 'A', 'P', 'I', 'X' };
#define INDEX_SUM_LEN 32
#define INDEX_NULL_STR G_MAXUINT32
/* uid + size + internaldate + date + 7 string lengths: no record is shorter. */
#define INDEX_MIN_RECORD (4 + 8 + 8 + 8 + 7 * 4)
/* Names longer than this are not mailbox names or program versions. */
#define INDEX_MAX_NAME 65536

mf_imap_index *mf_imap_index_new(const char *mailbox, guint32 uidvalidity)
{
	mf_imap_index *x = g_new0(mf_imap_index, 1);

	x->mailbox = g_strdup(mailbox);
	x->uidvalidity = uidvalidity;
	x->msgs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					(GDestroyNotify)mf_msg_meta_free);
	return x;
}

void mf_imap_index_free(mf_imap_index *x)
{
	if (!x)
		return;
	g_free(x->mailbox);
	g_hash_table_unref(x->msgs);
	g_free(x);
}

static int index_meta_cmp(gconstpointer a, gconstpointer b)
{
	const mf_msg_meta *x = *(mf_msg_meta *const *)a, *y = *(mf_msg_meta *const *)b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Borrowed metas, ascending UID. */
static GPtrArray *index_sorted(const mf_imap_index *x)
{
	GPtrArray *v = g_ptr_array_sized_new(g_hash_table_size(x->msgs));
	GHashTableIter it;
	gpointer m;

	g_hash_table_iter_init(&it, x->msgs);
	while (g_hash_table_iter_next(&it, NULL, &m))
		g_ptr_array_add(v, m);
	g_ptr_array_sort(v, index_meta_cmp);
	return v;
}

GPtrArray *mf_imap_index_listing(const mf_imap_index *x)
{
	g_autoptr(GPtrArray) v = index_sorted(x);
	GPtrArray *out = g_ptr_array_new_full(v->len, (GDestroyNotify)mf_msg_meta_free);

	for (guint i = 0; i < v->len; i++)
		g_ptr_array_add(out, mf_msg_meta_copy(v->pdata[i]));
	return out;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void put_u32(GByteArray *b, guint32 v)
{
	guint32 le = GUINT32_TO_LE(v);

	g_byte_array_append(b, (const guint8 *)&le, 4);
}

static void put_u64(GByteArray *b, guint64 v)
{
	guint64 le = GUINT64_TO_LE(v);

	g_byte_array_append(b, (const guint8 *)&le, 8);
}

static void put_str(GByteArray *b, const char *s)
{
	if (!s) {
		put_u32(b, INDEX_NULL_STR);
		return;
	}
	gsize n = strlen(s);

	put_u32(b, (guint32)n);
	g_byte_array_append(b, (const guint8 *)s, (guint)n);
}

GBytes *mf_imap_index_serialise(const mf_imap_index *x, const char *generator)
{
	g_autoptr(GPtrArray) v = index_sorted(x);
	GByteArray *b = g_byte_array_sized_new(64 + v->len * 160);

	g_byte_array_append(b, (const guint8 *)index_magic, sizeof index_magic);
	put_u32(b, MF_IMAP_INDEX_VERSION);
	put_str(b, generator);
	put_str(b, x->mailbox);
	put_u32(b, x->uidvalidity);
	put_u32(b, x->uidnext);
	put_u64(b, x->highestmodseq);
	put_u32(b, v->len);
	for (guint i = 0; i < v->len; i++) {
		const mf_msg_meta *m = v->pdata[i];

		put_u32(b, m->uid);
		put_u64(b, m->size);
		put_u64(b, (guint64)m->internaldate);
		put_u64(b, (guint64)m->date);
		put_str(b, m->date_raw);
		put_str(b, m->from);
		put_str(b, m->from_name);
		put_str(b, m->to);
		put_str(b, m->subject);
		put_str(b, m->message_id);
		put_str(b, m->flags);
	}
	guint8 sum[INDEX_SUM_LEN];
	gsize sum_len = sizeof sum;
	g_autoptr(GChecksum) ck = g_checksum_new(G_CHECKSUM_SHA256);

	g_checksum_update(ck, b->data, b->len);
	g_checksum_get_digest(ck, sum, &sum_len);
	g_byte_array_append(b, sum, INDEX_SUM_LEN);
	return g_byte_array_free_to_bytes(b);
}

/* ---- reading ----------------------------------------------------------------------------- */

typedef struct {
	const guint8 *p, *end;
} reader;

static gboolean get_u32(reader *r, guint32 *v)
{
	guint32 le;

	if (r->end - r->p < 4)
		return FALSE;
	memcpy(&le, r->p, 4);
	*v = GUINT32_FROM_LE(le);
	r->p += 4;
	return TRUE;
}

static gboolean get_u64(reader *r, guint64 *v)
{
	guint64 le;

	if (r->end - r->p < 8)
		return FALSE;
	memcpy(&le, r->p, 8);
	*v = GUINT64_FROM_LE(le);
	r->p += 8;
	return TRUE;
}

/* A string field: *out is NULL for the NULL marker. FALSE if truncated, longer than max or
 * holding a NUL (which a C string cannot carry: two different files must not read alike). */
static gboolean get_str(reader *r, gsize max, char **out)
{
	guint32 n;

	*out = NULL;
	if (!get_u32(r, &n))
		return FALSE;
	if (n == INDEX_NULL_STR)
		return TRUE;
	if (n > max || (gsize)(r->end - r->p) < n || memchr(r->p, '\0', n))
		return FALSE;
	*out = g_strndup((const char *)r->p, n);
	r->p += n;
	return TRUE;
}

static gboolean index_bad(GError **err, const char *what)
{
	g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "folder index is damaged (%s)", what);
	return FALSE;
}

static gboolean get_meta(reader *r, mf_msg_meta *m)
{
	guint64 idate, date;

	if (!get_u32(r, &m->uid) || !get_u64(r, &m->size) || !get_u64(r, &idate) ||
	    !get_u64(r, &date))
		return FALSE;
	m->internaldate = (gint64)idate;
	m->date = (gint64)date;
	gsize max = (gsize)(r->end - r->p);

	return get_str(r, max, &m->date_raw) && get_str(r, max, &m->from) &&
	       get_str(r, max, &m->from_name) && get_str(r, max, &m->to) &&
	       get_str(r, max, &m->subject) && get_str(r, max, &m->message_id) &&
	       get_str(r, max, &m->flags);
}

mf_imap_index *mf_imap_index_parse(const guint8 *data, gsize len, const char *mailbox,
				   const char *generator, GError **err)
{
	if (len < sizeof index_magic + 4 + INDEX_SUM_LEN ||
	    memcmp(data, index_magic, sizeof index_magic) != 0) {
		index_bad(err, "not an index file");
		return NULL;
	}
	/* The version first: another version's file may have another checksum. */
	reader r = { data + sizeof index_magic, data + len - INDEX_SUM_LEN };
	guint32 version = 0;

	get_u32(&r, &version);
	if (version != MF_IMAP_INDEX_VERSION) {
		g_set_error(err, MF_ERROR, MF_ERR_STALE, "folder index has format %u, not %u", version,
			    MF_IMAP_INDEX_VERSION);
		return NULL;
	}
	guint8 sum[INDEX_SUM_LEN];
	gsize sum_len = sizeof sum;
	g_autoptr(GChecksum) ck = g_checksum_new(G_CHECKSUM_SHA256);

	g_checksum_update(ck, data, len - INDEX_SUM_LEN);
	g_checksum_get_digest(ck, sum, &sum_len);
	if (memcmp(sum, data + len - INDEX_SUM_LEN, INDEX_SUM_LEN) != 0) {
		index_bad(err, "checksum mismatch");
		return NULL;
	}
	g_autofree char *gen = NULL, *box = NULL;

	if (!get_str(&r, INDEX_MAX_NAME, &gen) || !get_str(&r, INDEX_MAX_NAME, &box)) {
		index_bad(err, "truncated header");
		return NULL;
	}
	if (generator && g_strcmp0(gen, generator) != 0) {
		g_set_error(err, MF_ERROR, MF_ERR_STALE, "folder index was written by %s, not %s",
			    gen ? gen : "(unknown)", generator);
		return NULL;
	}
	if (!box || (mailbox && strcmp(box, mailbox) != 0)) {
		index_bad(err, "written for another folder");
		return NULL;
	}
	g_autoptr(mf_imap_index) x = mf_imap_index_new(box, 0);
	guint32 count;

	if (!get_u32(&r, &x->uidvalidity) || !get_u32(&r, &x->uidnext) ||
	    !get_u64(&r, &x->highestmodseq) || !get_u32(&r, &count)) {
		index_bad(err, "truncated header");
		return NULL;
	}
	if (x->uidvalidity == 0) {
		index_bad(err, "no UIDVALIDITY");
		return NULL;
	}
	/* The count cannot promise more records than the bytes hold. */
	if (count > (gsize)(r.end - r.p) / INDEX_MIN_RECORD) {
		index_bad(err, "count exceeds the file");
		return NULL;
	}
	guint32 last = 0;

	for (guint32 i = 0; i < count; i++) {
		g_autoptr(mf_msg_meta) m = mf_msg_meta_new();

		if (!get_meta(&r, m)) {
			index_bad(err, "truncated or malformed message record");
			return NULL;
		}
		if (m->uid <= last) {
			index_bad(err, "UIDs out of order");
			return NULL;
		}
		last = m->uid;
		m->id = g_strdup_printf("%u", m->uid);
		m->size_exact = FALSE;
		g_hash_table_insert(x->msgs, GUINT_TO_POINTER(last), g_steal_pointer(&m));
	}
	if (r.p != r.end) {
		index_bad(err, "trailing bytes");
		return NULL;
	}
	return g_steal_pointer(&x);
}
