/* The index file codec: exact bytes written, and every way a read can be refused (truncation,
 * NUL in a string, lengths beyond the file or the caller's limit, bad UTF-8, bad checksum). */
#include <string.h>

#include "recfile.h"

static const char magic[MF_REC_MAGIC_LEN] = { 'T', 'E', 'S', 'T', 'R', 'E', 'C', '1' };

/* A sealed file with magic, version 7, then the bytes `body` (not NUL-terminated). */
static GBytes *file_with(const void *body, gsize len)
{
	GByteArray *b = mf_rec_begin(magic, 7, 0);

	g_byte_array_append(b, body, (guint)len);
	return mf_rec_seal(b);
}

/* Opens f and checks its trailer; the reader then covers the body. */
static void open_ok(GBytes *f, mf_rec_reader *r)
{
	gsize n;
	const guint8 *d = g_bytes_get_data(f, &n);
	guint32 version;

	g_assert_true(mf_rec_open(r, d, n, magic, &version));
	g_assert_cmpuint(version, ==, 7);
	g_assert_true(mf_rec_verify(d, n));
}

static void test_layout(void)
{
	GByteArray *b = mf_rec_begin(magic, 0x01020304u, 16);

	mf_rec_put_u32(b, 0xA1B2C3D4u);
	mf_rec_put_u64(b, G_GUINT64_CONSTANT(0x0102030405060708));
	mf_rec_put_str(b, "hé");
	mf_rec_put_str(b, NULL);
	mf_rec_put_str(b, "");
	g_autoptr(GBytes) f = mf_rec_seal(b);
	static const guint8 want[] = {
		'T', 'E', 'S', 'T', 'R', 'E', 'C', '1',
		0x04, 0x03, 0x02, 0x01,
		0xD4, 0xC3, 0xB2, 0xA1,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		0x03, 0x00, 0x00, 0x00, 'h', 0xC3, 0xA9,
		0xFF, 0xFF, 0xFF, 0xFF,
		0x00, 0x00, 0x00, 0x00,
	};
	gsize n;
	const guint8 *d = g_bytes_get_data(f, &n);

	g_assert_cmpuint(n, ==, sizeof want + MF_REC_SUM_LEN);
	g_assert_cmpmem(d, sizeof want, want, sizeof want);
	/* The trailer is plain SHA-256 of what precedes it (any tool can check a file). */
	g_autofree char *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, want, sizeof want);
	GString *got = g_string_new(NULL);

	for (gsize i = 0; i < MF_REC_SUM_LEN; i++)
		g_string_append_printf(got, "%02x", d[sizeof want + i]);
	g_assert_cmpstr(got->str, ==, hex);
	g_string_free(got, TRUE);
}

static void test_round_trip(void)
{
	GByteArray *b = mf_rec_begin(magic, 7, 0);
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();

	m->date_raw = g_strdup("Thu, 1 Jan 1970 00:00:00 +0000");
	m->from_name = g_strdup("Grüße");
	m->to = g_strdup("");
	m->message_id = g_strdup("<1@x>");
	m->flags = g_strdup("\\Seen"); /* not a shared text field: must not be written */
	mf_rec_put_u32(b, 0);
	mf_rec_put_u32(b, G_MAXUINT32 - 1);
	mf_rec_put_u64(b, G_MAXUINT64);
	mf_rec_put_meta_text(b, m);
	mf_rec_put_str(b, "end");
	g_autoptr(GBytes) f = mf_rec_seal(b);
	mf_rec_reader r;
	guint32 u;
	guint64 v;
	g_autofree char *end = NULL;
	g_autoptr(mf_msg_meta) back = mf_msg_meta_new();

	open_ok(f, &r);
	g_assert_true(mf_rec_get_u32(&r, &u));
	g_assert_cmpuint(u, ==, 0);
	g_assert_true(mf_rec_get_u32(&r, &u));
	g_assert_cmpuint(u, ==, G_MAXUINT32 - 1);
	g_assert_true(mf_rec_get_u64(&r, &v));
	g_assert_cmpuint(v, ==, G_MAXUINT64);
	back->subject = g_strdup("replaced by the NULL read back");
	g_assert_true(mf_rec_get_meta_text(&r, back));
	g_assert_cmpstr(back->date_raw, ==, m->date_raw);
	g_assert_null(back->from);
	g_assert_cmpstr(back->from_name, ==, m->from_name);
	g_assert_cmpstr(back->to, ==, "");
	g_assert_null(back->subject);
	g_assert_cmpstr(back->message_id, ==, m->message_id);
	g_assert_null(back->flags);
	g_assert_true(mf_rec_get_str(&r, 3, &end));
	g_assert_cmpstr(end, ==, "end");
	g_assert_cmpuint(mf_rec_left(&r), ==, 0);
	/* At the end every read fails and reads nothing. */
	g_assert_false(mf_rec_get_u32(&r, &u));
	g_assert_false(mf_rec_get_u64(&r, &v));
	g_autofree char *none = NULL;

	g_assert_false(mf_rec_get_str(&r, 10, &none));
	g_assert_null(none);
}

static void test_open_refuses(void)
{
	g_autoptr(GBytes) f = file_with("", 0);
	gsize n;
	const guint8 *d = g_bytes_get_data(f, &n);
	mf_rec_reader r;
	guint32 version;
	char other[MF_REC_MAGIC_LEN];

	g_assert_cmpuint(n, ==, MF_REC_MAGIC_LEN + 4 + MF_REC_SUM_LEN);
	open_ok(f, &r);
	g_assert_cmpuint(mf_rec_left(&r), ==, 0);
	/* Too short for magic + version + trailer, at every length. */
	for (gsize k = 0; k < n; k++)
		g_assert_false(mf_rec_open(&r, d, k, magic, &version));
	g_assert_false(mf_rec_open(&r, NULL, 0, magic, &version));
	memcpy(other, magic, sizeof other);
	other[7] = '2';
	g_assert_false(mf_rec_open(&r, d, n, other, &version));
}

static void test_truncated(void)
{
	static const guint8 body[] = { 5, 0, 0, 0, 'a', 'b', 'c', 'd', 'e', 1, 2, 3, 4, 5, 6, 7, 8 };
	g_autoptr(GBytes) f = file_with(body, sizeof body);
	gsize n;
	const guint8 *d = g_bytes_get_data(f, &n);

	/* Every cut through the body: the reads that no longer fit fail, the others still work. */
	for (gsize cut = 0; cut <= sizeof body; cut++) {
		mf_rec_reader r = { d + MF_REC_MAGIC_LEN + 4, d + MF_REC_MAGIC_LEN + 4 + cut, FALSE };
		g_autofree char *s = NULL;
		guint64 v = 0;
		gboolean str_ok = mf_rec_get_str(&r, 100, &s);

		g_assert_cmpint(str_ok, ==, cut >= 9);
		if (!str_ok) {
			g_assert_null(s);
			continue;
		}
		g_assert_cmpstr(s, ==, "abcde");
		g_assert_cmpint(mf_rec_get_u64(&r, &v), ==, cut == sizeof body);
		g_assert_cmpuint(mf_rec_left(&r), ==, cut == sizeof body ? 0 : cut - 9);
	}
	guint32 u;
	mf_rec_reader r = { d, d + 3, FALSE };

	g_assert_false(mf_rec_get_u32(&r, &u));
	g_assert_cmpuint(mf_rec_left(&r), ==, 3);
}

static void test_strings_refused(void)
{
	static const guint8 nul[] = { 3, 0, 0, 0, 'a', 0, 'b' };
	static const guint8 beyond[] = { 4, 0, 0, 0, 'a', 'b', 'c' };
	static const guint8 huge[] = { 0xFE, 0xFF, 0xFF, 0xFF, 'a' };
	static const guint8 latin1[] = { 3, 0, 0, 0, 'G', 0xFC, 'e' };
	static const struct {
		const guint8 *bytes;
		gsize len;
		gsize max;
		gboolean utf8, ok;
	} cases[] = {
		{ nul, sizeof nul, 100, FALSE, FALSE },
		{ beyond, sizeof beyond, 100, FALSE, FALSE },
		{ huge, sizeof huge, G_MAXSIZE, FALSE, FALSE },
		{ latin1, sizeof latin1, 100, FALSE, TRUE },  /* bytes, unless UTF-8 is asked for */
		{ latin1, sizeof latin1, 100, TRUE, FALSE },
		{ latin1, sizeof latin1, 3, FALSE, TRUE },    /* exactly max is fine */
		{ latin1, sizeof latin1, 2, FALSE, FALSE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		mf_rec_reader r = { cases[i].bytes, cases[i].bytes + cases[i].len, cases[i].utf8 };
		g_autofree char *s = NULL;

		g_assert_cmpint(mf_rec_get_str(&r, cases[i].max, &s), ==, cases[i].ok);
		if (cases[i].ok)
			g_assert_cmpuint(strlen(s), ==, 3);
		else
			g_assert_null(s);
	}
}

static void test_checksum(void)
{
	g_autoptr(GBytes) f = file_with("payload", 7);
	gsize n = g_bytes_get_size(f);
	g_autofree guint8 *d = g_memdup2(g_bytes_get_data(f, NULL), n);

	g_assert_true(mf_rec_verify(d, n));
	/* Any flipped bit, in the content or in the trailer, is caught. */
	for (gsize i = 0; i < n; i++) {
		d[i] ^= 0x10;
		g_assert_false(mf_rec_verify(d, n));
		d[i] ^= 0x10;
	}
	g_assert_false(mf_rec_verify(d, n - 1));
	g_assert_false(mf_rec_verify(d, MF_REC_SUM_LEN - 1));
	g_assert_false(mf_rec_verify(NULL, 0));
	/* The trailer of nothing is the SHA-256 of the empty string. */
	g_autoptr(GBytes) empty = mf_rec_seal(g_byte_array_new());
	g_assert_true(mf_rec_verify(g_bytes_get_data(empty, NULL), g_bytes_get_size(empty)));
	g_assert_cmpuint(g_bytes_get_size(empty), ==, MF_REC_SUM_LEN);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/recfile/layout", test_layout);
	g_test_add_func("/recfile/round-trip", test_round_trip);
	g_test_add_func("/recfile/open-refuses", test_open_refuses);
	g_test_add_func("/recfile/truncated", test_truncated);
	g_test_add_func("/recfile/strings-refused", test_strings_refused);
	g_test_add_func("/recfile/checksum", test_checksum);
	return g_test_run();
}
