/* The POP3 maildrop's remembered listing and its compact binary file form (see pop3_index.h).
 * The layout is the IMAP folder index's (both use recfile.c), but the records differ (a UIDL
 * and a message number, no flags), hence its own magic. */
#include <string.h>

#include "mferror.h"
#include "pop3_index.h"
#include "recfile.h"

static const char index_magic[MF_REC_MAGIC_LEN] = { 'M', 'F', 'P', 'O', 'P', '3', 'I', 'X' };
/* uidl length + occurrence + uid + msg + state + size + date + 6 string lengths. */
#define INDEX_MIN_RECORD (4 + 4 + 4 + 4 + 4 + 8 + 8 + 6 * 4)
#define INDEX_MAX_NAME 65536
/* RFC 1939 section 7 allows 70; the session parser accepts up to this (pop3_parse.c). */
#define INDEX_UIDL_MAX 255
#define STATE_HEADERS 1u

pop3_index *pop3_index_new(const char *account)
{
	pop3_index *x = g_new0(pop3_index, 1);

	x->account = g_strdup(account);
	x->next_uid = 1;
	x->by_id = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					 (GDestroyNotify)pop3_index_entry_free);
	return x;
}

void pop3_index_free(pop3_index *x)
{
	if (!x)
		return;
	g_free(x->account);
	g_free(x->generator);
	g_hash_table_unref(x->by_id);
	g_free(x);
}

char *pop3_index_id(const char *uidl, guint32 occurrence)
{
	GString *s = g_string_new(NULL);

	for (const char *p = uidl; *p; p++) {
		if (*p == '/' || *p == '%' || *p == '~')
			g_string_append_printf(s, "%%%02X", (guchar)*p);
		else
			g_string_append_c(s, *p);
	}
	if (occurrence > 1)
		g_string_append_printf(s, "~%u", occurrence);
	return g_string_free(s, FALSE);
}

pop3_index_entry *pop3_index_entry_new(const char *uidl, guint32 occurrence, guint32 uid,
				       guint64 size)
{
	pop3_index_entry *e = g_new0(pop3_index_entry, 1);

	e->uidl = g_strdup(uidl);
	e->occurrence = occurrence;
	e->meta = mf_msg_meta_new();
	e->meta->id = pop3_index_id(uidl, occurrence);
	e->meta->uid = uid;
	e->meta->size = size;
	return e;
}

void pop3_index_entry_free(pop3_index_entry *e)
{
	if (!e)
		return;
	g_free(e->uidl);
	mf_msg_meta_unref(e->meta);
	g_free(e);
}

void pop3_index_add(pop3_index *x, pop3_index_entry *e)
{
	/* The key lives in the entry: remove first, so the old key is not kept for the new value. */
	g_hash_table_remove(x->by_id, e->meta->id);
	g_hash_table_insert(x->by_id, e->meta->id, e);
}

pop3_index_entry *pop3_index_lookup(const pop3_index *x, const char *id)
{
	return id ? g_hash_table_lookup(x->by_id, id) : NULL;
}

static int entry_uid_cmp(gconstpointer a, gconstpointer b)
{
	const pop3_index_entry *x = *(pop3_index_entry *const *)a, *y = *(pop3_index_entry *const *)b;

	return x->meta->uid < y->meta->uid ? -1 : x->meta->uid > y->meta->uid;
}

/* Borrowed entries, ascending uid. */
static GPtrArray *index_sorted(const pop3_index *x)
{
	GPtrArray *v = g_ptr_array_sized_new(g_hash_table_size(x->by_id));
	GHashTableIter it;
	gpointer e;

	g_hash_table_iter_init(&it, x->by_id);
	while (g_hash_table_iter_next(&it, NULL, &e))
		g_ptr_array_add(v, e);
	g_ptr_array_sort(v, entry_uid_cmp);
	return v;
}

GPtrArray *pop3_index_listing(const pop3_index *x)
{
	g_autoptr(GPtrArray) v = index_sorted(x);
	GPtrArray *out = g_ptr_array_new_full(v->len, (GDestroyNotify)mf_msg_meta_unref);

	for (guint i = 0; i < v->len; i++)
		g_ptr_array_add(out, mf_msg_meta_ref(((pop3_index_entry *)v->pdata[i])->meta));
	return out;
}

/* ---- the file ----------------------------------------------------------------------------- */

GBytes *pop3_index_serialise(const pop3_index *x, const char *generator)
{
	g_autoptr(GPtrArray) v = index_sorted(x);
	GByteArray *b = mf_rec_begin(index_magic, POP3_INDEX_VERSION, 64 + v->len * 200);

	mf_rec_put_str(b, generator);
	mf_rec_put_str(b, x->account);
	mf_rec_put_u32(b, x->next_uid);
	mf_rec_put_u32(b, v->len);
	for (guint i = 0; i < v->len; i++) {
		const pop3_index_entry *e = v->pdata[i];
		const mf_msg_meta *m = e->meta;

		mf_rec_put_str(b, e->uidl);
		mf_rec_put_u32(b, e->occurrence);
		mf_rec_put_u32(b, m->uid);
		mf_rec_put_u32(b, e->msg);
		mf_rec_put_u32(b, e->headers ? STATE_HEADERS : 0);
		mf_rec_put_u64(b, m->size);
		mf_rec_put_u64(b, (guint64)m->date);
		mf_rec_put_meta_text(b, m);
	}
	return mf_rec_seal(b);
}

static gboolean uidl_valid(const char *u)
{
	gsize n = u ? strlen(u) : 0;

	if (n == 0 || n > INDEX_UIDL_MAX)
		return FALSE;
	for (gsize i = 0; i < n; i++) {
		if ((guchar)u[i] < 0x21 || (guchar)u[i] > 0x7e)
			return FALSE;
	}
	return TRUE;
}

static void *index_bad(GError **err, const char *what)
{
	g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "POP3 index is damaged (%s)", what);
	return NULL;
}

/* One record; NULL if malformed. */
static pop3_index_entry *get_entry(mf_rec_reader *r)
{
	g_autofree char *uidl = NULL;
	guint32 occurrence, uid, msg, state;
	guint64 size, date;

	if (!mf_rec_get_str(r, INDEX_UIDL_MAX, &uidl) || !uidl_valid(uidl) ||
	    !mf_rec_get_u32(r, &occurrence) || occurrence == 0 || !mf_rec_get_u32(r, &uid) ||
	    !mf_rec_get_u32(r, &msg) || !mf_rec_get_u32(r, &state) || (state & ~STATE_HEADERS) ||
	    !mf_rec_get_u64(r, &size) || !mf_rec_get_u64(r, &date))
		return NULL;
	pop3_index_entry *e = pop3_index_entry_new(uidl, occurrence, uid, size);

	e->msg = msg;
	e->headers = (state & STATE_HEADERS) != 0;
	e->meta->date = (gint64)date;
	if (!mf_rec_get_meta_text(r, e->meta)) {
		pop3_index_entry_free(e);
		return NULL;
	}
	return e;
}

/* Header fields decoded by another program version: read them again, keep the rest. */
static void entry_forget_headers(pop3_index_entry *e)
{
	mf_msg_meta *m = e->meta;

	e->headers = FALSE;
	m->date = MF_NO_DATE;
	g_clear_pointer(&m->date_raw, g_free);
	g_clear_pointer(&m->from, g_free);
	g_clear_pointer(&m->from_name, g_free);
	g_clear_pointer(&m->to, g_free);
	g_clear_pointer(&m->subject, g_free);
	g_clear_pointer(&m->message_id, g_free);
}

pop3_index *pop3_index_parse(const guint8 *data, gsize len, const char *account,
			     const char *generator, GError **err)
{
	mf_rec_reader r;
	guint32 version;

	if (!mf_rec_open(&r, data, len, index_magic, &version))
		return index_bad(err, "not a POP3 index file");
	/* Every string we write is UTF-8 (UIDLs are ASCII, header fields decoded). */
	r.utf8 = TRUE;
	/* The version first: another version's file may have another checksum. */
	if (version != POP3_INDEX_VERSION) {
		g_set_error(err, MF_ERROR, MF_ERR_STALE, "POP3 index has format %u, not %u", version,
			    POP3_INDEX_VERSION);
		return NULL;
	}
	if (!mf_rec_verify(data, len))
		return index_bad(err, "checksum mismatch");
	g_autofree char *gen = NULL, *acct = NULL;

	if (!mf_rec_get_str(&r, INDEX_MAX_NAME, &gen) || !mf_rec_get_str(&r, INDEX_MAX_NAME, &acct))
		return index_bad(err, "truncated header");
	if (!acct || (account && strcmp(acct, account) != 0))
		return index_bad(err, "written for another account");
	g_autoptr(pop3_index) x = pop3_index_new(acct);
	guint32 count;

	x->generator = g_steal_pointer(&gen);
	if (!mf_rec_get_u32(&r, &x->next_uid) || !mf_rec_get_u32(&r, &count))
		return index_bad(err, "truncated header");
	if (x->next_uid == 0)
		return index_bad(err, "no next uid");
	/* The count cannot promise more records than the bytes hold. */
	if (count > mf_rec_left(&r) / INDEX_MIN_RECORD)
		return index_bad(err, "count exceeds the file");
	gboolean foreign = generator && g_strcmp0(x->generator, generator) != 0;
	guint32 last = 0;

	for (guint32 i = 0; i < count; i++) {
		pop3_index_entry *e = get_entry(&r);

		if (!e)
			return index_bad(err, "truncated or malformed message record");
		guint32 uid = e->meta->uid;
		if (uid <= last || uid >= x->next_uid) {
			pop3_index_entry_free(e);
			return index_bad(err, "uids out of order or not below the next uid");
		}
		last = uid;
		if (g_hash_table_contains(x->by_id, e->meta->id)) {
			pop3_index_entry_free(e);
			return index_bad(err, "a message listed twice");
		}
		if (foreign)
			entry_forget_headers(e);
		pop3_index_add(x, e);
	}
	if (mf_rec_left(&r) != 0)
		return index_bad(err, "trailing bytes");
	return g_steal_pointer(&x);
}
