/* Length-prefixed little-endian records with a SHA-256 trailer (see recfile.h). */
#include <string.h>
#include <openssl/evp.h>

#include "recfile.h"

/* OpenSSL's SHA-256 uses the CPU's SHA or vector instructions: about five times GChecksum's
 * speed, and an index of a large folder is summed on every save and every mount. */
static gboolean rec_sum(const guint8 *data, gsize len, guint8 out[MF_REC_SUM_LEN])
{
	unsigned int n = MF_REC_SUM_LEN;

	return EVP_Digest(data ? data : (const guint8 *)"", len, out, &n, EVP_sha256(), NULL) &&
	       n == MF_REC_SUM_LEN;
}

/* ---- writing ----------------------------------------------------------------------------- */

GByteArray *mf_rec_begin(const char magic[MF_REC_MAGIC_LEN], guint32 version, gsize reserve)
{
	GByteArray *b = g_byte_array_sized_new((guint)MIN(reserve, (gsize)G_MAXUINT));

	g_byte_array_append(b, (const guint8 *)magic, MF_REC_MAGIC_LEN);
	mf_rec_put_u32(b, version);
	return b;
}

/* The low n (at most 8) bytes of v, least significant first. */
static void rec_put_le(GByteArray *b, guint64 v, gsize n)
{
	guint8 le[8];

	for (gsize i = 0; i < n; i++, v >>= 8)
		le[i] = (guint8)v;
	g_byte_array_append(b, le, (guint)n);
}

void mf_rec_put_u32(GByteArray *b, guint32 v)
{
	rec_put_le(b, v, 4);
}

void mf_rec_put_u64(GByteArray *b, guint64 v)
{
	rec_put_le(b, v, 8);
}

void mf_rec_put_str(GByteArray *b, const char *s)
{
	if (!s) {
		mf_rec_put_u32(b, MF_REC_NULL_STR);
		return;
	}
	gsize n = strlen(s);

	mf_rec_put_u32(b, (guint32)n);
	g_byte_array_append(b, (const guint8 *)s, (guint)n);
}

GBytes *mf_rec_seal(GByteArray *b)
{
	guint8 sum[MF_REC_SUM_LEN];

	if (!rec_sum(b->data, b->len, sum))
		memset(sum, 0, sizeof sum); /* cannot happen with the default provider; fails to load */
	g_byte_array_append(b, sum, sizeof sum);
	return g_byte_array_free_to_bytes(b);
}

/* ---- reading ----------------------------------------------------------------------------- */

gboolean mf_rec_open(mf_rec_reader *r, const guint8 *data, gsize len,
		     const char magic[MF_REC_MAGIC_LEN], guint32 *version)
{
	*r = (mf_rec_reader){ 0 };
	*version = 0;
	if (!data || len < MF_REC_MAGIC_LEN + 4 + MF_REC_SUM_LEN ||
	    memcmp(data, magic, MF_REC_MAGIC_LEN) != 0)
		return FALSE;
	r->p = data + MF_REC_MAGIC_LEN;
	r->end = data + len - MF_REC_SUM_LEN;
	return mf_rec_get_u32(r, version);
}

gboolean mf_rec_verify(const guint8 *data, gsize len)
{
	guint8 sum[MF_REC_SUM_LEN];

	return data && len >= MF_REC_SUM_LEN && rec_sum(data, len - MF_REC_SUM_LEN, sum) &&
	       memcmp(sum, data + len - MF_REC_SUM_LEN, MF_REC_SUM_LEN) == 0;
}

gsize mf_rec_left(const mf_rec_reader *r)
{
	return (gsize)(r->end - r->p);
}

/* The next n (at most 8) bytes as a little-endian number: FALSE if fewer are left. */
static gboolean rec_get_le(mf_rec_reader *r, gsize n, guint64 *v)
{
	if (mf_rec_left(r) < n)
		return FALSE;
	*v = 0;
	for (gsize i = n; i-- > 0;)
		*v = *v << 8 | r->p[i];
	r->p += n;
	return TRUE;
}

gboolean mf_rec_get_u32(mf_rec_reader *r, guint32 *v)
{
	guint64 x;

	if (!rec_get_le(r, 4, &x))
		return FALSE;
	*v = (guint32)x;
	return TRUE;
}

gboolean mf_rec_get_u64(mf_rec_reader *r, guint64 *v)
{
	return rec_get_le(r, 8, v);
}

gboolean mf_rec_get_str(mf_rec_reader *r, gsize max, char **out)
{
	guint32 n;

	*out = NULL;
	if (!mf_rec_get_u32(r, &n))
		return FALSE;
	if (n == MF_REC_NULL_STR)
		return TRUE;
	if (n > max || mf_rec_left(r) < n || memchr(r->p, '\0', n) ||
	    (r->utf8 && !g_utf8_validate((const char *)r->p, n, NULL)))
		return FALSE;
	*out = g_strndup((const char *)r->p, n);
	r->p += n;
	return TRUE;
}

/* ---- the text fields of a message -------------------------------------------------------- */

void mf_rec_put_meta_text(GByteArray *b, const mf_msg_meta *m)
{
	const char *const text[] = { m->date_raw, m->from, m->from_name, m->to, m->subject,
				     m->message_id };

	for (gsize i = 0; i < G_N_ELEMENTS(text); i++)
		mf_rec_put_str(b, text[i]);
}

gboolean mf_rec_get_meta_text(mf_rec_reader *r, mf_msg_meta *m)
{
	char **const text[] = { &m->date_raw, &m->from, &m->from_name, &m->to, &m->subject,
				&m->message_id };

	for (gsize i = 0; i < G_N_ELEMENTS(text); i++) {
		g_clear_pointer(text[i], g_free);
		if (!mf_rec_get_str(r, G_MAXSIZE, text[i]))
			return FALSE;
	}
	return TRUE;
}
