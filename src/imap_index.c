/* An IMAP folder's remembered listing and its compact binary file form (see imap_index.h). */
#include <string.h>

#include "imap_index.h"
#include "mferror.h"
#include "recfile.h"

static const char index_magic[MF_REC_MAGIC_LEN] = { 'M', 'F', 'I', 'M', 'A', 'P', 'I', 'X' };
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
					(GDestroyNotify)mf_msg_meta_unref);
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
	GPtrArray *out = g_ptr_array_new_full(v->len, (GDestroyNotify)mf_msg_meta_unref);

	for (guint i = 0; i < v->len; i++)
		g_ptr_array_add(out, mf_msg_meta_ref(v->pdata[i]));
	return out;
}

/* ---- the file ----------------------------------------------------------------------------- */

GBytes *mf_imap_index_serialise(const mf_imap_index *x, const char *generator)
{
	g_autoptr(GPtrArray) v = index_sorted(x);
	GByteArray *b = mf_rec_begin(index_magic, MF_IMAP_INDEX_VERSION, 64 + v->len * 160);

	mf_rec_put_str(b, generator);
	mf_rec_put_str(b, x->mailbox);
	mf_rec_put_u32(b, x->uidvalidity);
	mf_rec_put_u32(b, x->uidnext);
	mf_rec_put_u64(b, x->highestmodseq);
	mf_rec_put_u32(b, v->len);
	for (guint i = 0; i < v->len; i++) {
		const mf_msg_meta *m = v->pdata[i];

		mf_rec_put_u32(b, m->uid);
		mf_rec_put_u64(b, m->size);
		mf_rec_put_u64(b, (guint64)m->internaldate);
		mf_rec_put_u64(b, (guint64)m->date);
		mf_rec_put_meta_text(b, m);
		mf_rec_put_str(b, m->flags);
	}
	return mf_rec_seal(b);
}

static gboolean index_bad(GError **err, const char *what)
{
	g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "folder index is damaged (%s)", what);
	return FALSE;
}

static gboolean get_meta(mf_rec_reader *r, mf_msg_meta *m)
{
	guint64 idate, date;

	if (!mf_rec_get_u32(r, &m->uid) || !mf_rec_get_u64(r, &m->size) ||
	    !mf_rec_get_u64(r, &idate) || !mf_rec_get_u64(r, &date))
		return FALSE;
	m->internaldate = (gint64)idate;
	m->date = (gint64)date;
	return mf_rec_get_meta_text(r, m) && mf_rec_get_str(r, G_MAXSIZE, &m->flags);
}

mf_imap_index *mf_imap_index_parse(const guint8 *data, gsize len, const char *mailbox,
				   const char *generator, GError **err)
{
	mf_rec_reader r;
	guint32 version;

	if (!mf_rec_open(&r, data, len, index_magic, &version)) {
		index_bad(err, "not an index file");
		return NULL;
	}
	/* The version first: another version's file may have another checksum. */
	if (version != MF_IMAP_INDEX_VERSION) {
		g_set_error(err, MF_ERROR, MF_ERR_STALE, "folder index has format %u, not %u", version,
			    MF_IMAP_INDEX_VERSION);
		return NULL;
	}
	if (!mf_rec_verify(data, len)) {
		index_bad(err, "checksum mismatch");
		return NULL;
	}
	g_autofree char *gen = NULL, *box = NULL;

	if (!mf_rec_get_str(&r, INDEX_MAX_NAME, &gen) || !mf_rec_get_str(&r, INDEX_MAX_NAME, &box)) {
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

	if (!mf_rec_get_u32(&r, &x->uidvalidity) || !mf_rec_get_u32(&r, &x->uidnext) ||
	    !mf_rec_get_u64(&r, &x->highestmodseq) || !mf_rec_get_u32(&r, &count)) {
		index_bad(err, "truncated header");
		return NULL;
	}
	if (x->uidvalidity == 0) {
		index_bad(err, "no UIDVALIDITY");
		return NULL;
	}
	/* The count cannot promise more records than the bytes hold. */
	if (count > mf_rec_left(&r) / INDEX_MIN_RECORD) {
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
	if (mf_rec_left(&r) != 0) {
		index_bad(err, "trailing bytes");
		return NULL;
	}
	return g_steal_pointer(&x);
}
