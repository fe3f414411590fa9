/* The folder index file: round trip, and refusal of damaged, truncated, foreign and
 * hostile (correctly checksummed but malformed) bytes. */
#include <string.h>

#include "imap_index.h"
#include "mferror.h"

#define GEN "mailfs test"

static mf_msg_meta *meta(guint32 uid, const char *subject, const char *flags)
{
	mf_msg_meta *m = mf_msg_meta_new();

	m->uid = uid;
	m->id = g_strdup_printf("%u", uid);
	m->size = 1000 + uid;
	m->internaldate = 1700000000 + uid;
	m->date = uid % 2 ? MF_NO_DATE : -5;
	m->date_raw = uid % 2 ? NULL : g_strdup("Thu, 1 Jan 1970 00:00:00 +0000");
	m->from = g_strdup("\"Smith, Alice\" <alice@example.org>");
	m->from_name = g_strdup("Smith, Alice");
	m->to = uid % 3 ? g_strdup("") : NULL;
	m->subject = g_strdup(subject);
	m->message_id = g_strdup_printf("<%u@example.org>", uid);
	m->flags = g_strdup(flags);
	return m;
}

static mf_imap_index *sample(void)
{
	mf_imap_index *x = mf_imap_index_new("INBOX/Entw&APw-rfe", 1234567890u);

	x->uidnext = 4000000001u;
	x->highestmodseq = G_GUINT64_CONSTANT(9223372036854775807);
	const guint32 uids[] = { 7, 1, 4000000000u, 300 };

	for (gsize i = 0; i < G_N_ELEMENTS(uids); i++) {
		mf_msg_meta *m = meta(uids[i], i == 1 ? NULL : "Grüße – \"quoted\" \\ x", "\\Seen $Junk");

		g_hash_table_insert(x->msgs, GUINT_TO_POINTER(m->uid), m);
	}
	return x;
}

static void assert_meta_equal(const mf_msg_meta *a, const mf_msg_meta *b)
{
	g_assert_cmpuint(a->uid, ==, b->uid);
	g_assert_cmpstr(a->id, ==, b->id);
	g_assert_cmpuint(a->size, ==, b->size);
	g_assert_false(b->size_exact);
	g_assert_cmpint(a->internaldate, ==, b->internaldate);
	g_assert_cmpint(a->date, ==, b->date);
	g_assert_cmpstr(a->date_raw, ==, b->date_raw);
	g_assert_cmpstr(a->from, ==, b->from);
	g_assert_cmpstr(a->from_name, ==, b->from_name);
	g_assert_cmpstr(a->to, ==, b->to);
	g_assert_cmpstr(a->subject, ==, b->subject);
	g_assert_cmpstr(a->message_id, ==, b->message_id);
	g_assert_cmpstr(a->flags, ==, b->flags);
}

static void test_round_trip(void)
{
	g_autoptr(mf_imap_index) x = sample();
	g_autoptr(GBytes) b = mf_imap_index_serialise(x, GEN);
	g_autoptr(GError) err = NULL;
	gsize len;
	const guint8 *d = g_bytes_get_data(b, &len);
	g_autoptr(mf_imap_index) y = mf_imap_index_parse(d, len, x->mailbox, GEN, &err);

	g_assert_no_error(err);
	g_assert_nonnull(y);
	g_assert_cmpstr(y->mailbox, ==, x->mailbox);
	g_assert_cmpuint(y->uidvalidity, ==, x->uidvalidity);
	g_assert_cmpuint(y->uidnext, ==, x->uidnext);
	g_assert_cmpuint(y->highestmodseq, ==, x->highestmodseq);
	g_autoptr(GPtrArray) lx = mf_imap_index_listing(x);
	g_autoptr(GPtrArray) ly = mf_imap_index_listing(y);

	g_assert_cmpuint(lx->len, ==, 4);
	g_assert_cmpuint(ly->len, ==, lx->len);
	for (guint i = 0; i < lx->len; i++) {
		assert_meta_equal(lx->pdata[i], ly->pdata[i]);
		if (i)
			g_assert_cmpuint(((mf_msg_meta *)ly->pdata[i - 1])->uid, <,
					 ((mf_msg_meta *)ly->pdata[i])->uid);
	}
	/* Serialising is deterministic: the same listing gives the same bytes. */
	g_autoptr(GBytes) b2 = mf_imap_index_serialise(y, GEN);
	g_assert_true(g_bytes_equal(b, b2));

	/* An empty folder round-trips too. */
	g_autoptr(mf_imap_index) e = mf_imap_index_new("Empty", 1);
	g_autoptr(GBytes) eb = mf_imap_index_serialise(e, GEN);
	d = g_bytes_get_data(eb, &len);
	g_autoptr(mf_imap_index) e2 = mf_imap_index_parse(d, len, "Empty", GEN, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(g_hash_table_size(e2->msgs), ==, 0);
}

static void test_corrupt(void)
{
	g_autoptr(mf_imap_index) x = sample();
	g_autoptr(GBytes) b = mf_imap_index_serialise(x, GEN);
	gsize len;
	const guint8 *d = g_bytes_get_data(b, &len);
	g_autofree guint8 *copy = g_memdup2(d, len);

	/* Any single flipped bit anywhere is noticed. */
	for (gsize i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			g_autoptr(GError) err = NULL;

			copy[i] ^= (guint8)(1u << bit);
			mf_imap_index *y = mf_imap_index_parse(copy, len, x->mailbox, GEN, &err);

			if (y)
				g_error("accepted a file with byte %zu changed", i);
			g_assert_nonnull(err);
			copy[i] = d[i];
		}
	}
	/* Garbage and the empty file. */
	g_autoptr(GError) e1 = NULL, e2 = NULL;
	g_assert_null(mf_imap_index_parse((const guint8 *)"", 0, NULL, NULL, &e1));
	g_assert_error(e1, MF_ERROR, MF_ERR_PROTOCOL);
	g_assert_null(mf_imap_index_parse((const guint8 *)"hello world, this is not an index file..", 40,
					  NULL, NULL, &e2));
	g_assert_error(e2, MF_ERROR, MF_ERR_PROTOCOL);
}

static void test_truncated(void)
{
	g_autoptr(mf_imap_index) x = sample();
	g_autoptr(GBytes) b = mf_imap_index_serialise(x, GEN);
	gsize len;
	const guint8 *d = g_bytes_get_data(b, &len);

	for (gsize n = 0; n < len; n++) {
		g_autoptr(GError) err = NULL;
		/* A heap copy of exactly n bytes, so ASan sees any read past the end. */
		g_autofree guint8 *part = g_memdup2(d, n ? n : 1);

		g_assert_null(mf_imap_index_parse(part, n, x->mailbox, GEN, &err));
		g_assert_nonnull(err);
	}
}

static void test_foreign(void)
{
	g_autoptr(mf_imap_index) x = sample();
	g_autoptr(GBytes) b = mf_imap_index_serialise(x, GEN);
	gsize len;
	const guint8 *d = g_bytes_get_data(b, &len);
	g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;

	/* Another program version decoded the envelopes differently. */
	g_assert_null(mf_imap_index_parse(d, len, x->mailbox, "mailfs 9.9", &e1));
	g_assert_error(e1, MF_ERROR, MF_ERR_STALE);
	/* A file named for another folder (a hash collision, or copied by hand). */
	g_assert_null(mf_imap_index_parse(d, len, "INBOX", GEN, &e2));
	g_assert_error(e2, MF_ERROR, MF_ERR_PROTOCOL);

	/* Another format version: refused before its checksum is even looked at. */
	g_autofree guint8 *v2 = g_memdup2(d, len);
	v2[8] = MF_IMAP_INDEX_VERSION + 1;
	g_assert_null(mf_imap_index_parse(v2, len, x->mailbox, GEN, &e3));
	g_assert_error(e3, MF_ERROR, MF_ERR_STALE);
}

/* Seal hand-made bytes with a correct checksum, as an attacker with write access could. */
static GByteArray *seal(GByteArray *b)
{
	guint8 sum[32];
	gsize n = sizeof sum;
	g_autoptr(GChecksum) ck = g_checksum_new(G_CHECKSUM_SHA256);

	g_checksum_update(ck, b->data, b->len);
	g_checksum_get_digest(ck, sum, &n);
	g_byte_array_append(b, sum, 32);
	return b;
}

static void put32(GByteArray *b, guint32 v)
{
	guint32 le = GUINT32_TO_LE(v);
	g_byte_array_append(b, (const guint8 *)&le, 4);
}

static void put64(GByteArray *b, guint64 v)
{
	guint64 le = GUINT64_TO_LE(v);
	g_byte_array_append(b, (const guint8 *)&le, 8);
}

static void putstr(GByteArray *b, const char *s, gsize n)
{
	put32(b, (guint32)n);
	g_byte_array_append(b, (const guint8 *)s, (guint)n);
}

/* Header with `count` records promised; the caller appends records. */
static GByteArray *header(guint32 uidvalidity, guint32 count)
{
	GByteArray *b = g_byte_array_new();

	g_byte_array_append(b, (const guint8 *)"MFIMAPIX", 8);
	put32(b, MF_IMAP_INDEX_VERSION);
	putstr(b, GEN, strlen(GEN));
	putstr(b, "INBOX", 5);
	put32(b, uidvalidity);
	put32(b, 10);
	put64(b, 5);
	put32(b, count);
	return b;
}

static void record(GByteArray *b, guint32 uid, const char *subject, gsize subject_len)
{
	put32(b, uid);
	put64(b, 10);
	put64(b, 0);
	put64(b, 0);
	for (int i = 0; i < 7; i++) {
		if (i == 4)
			putstr(b, subject, subject_len);
		else
			put32(b, G_MAXUINT32);
	}
}

static void expect_refused(GByteArray *b, const char *why)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GByteArray) s = seal(b);
	mf_imap_index *x = mf_imap_index_parse(s->data, s->len, "INBOX", GEN, &err);

	if (x)
		g_error("accepted: %s", why);
	g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
}

static void test_hostile(void)
{
	GByteArray *b;

	/* Sanity: the hand-made format is accepted when well formed. */
	b = header(7, 2);
	record(b, 1, "a", 1);
	record(b, 2, "b", 1);
	{
		g_autoptr(GError) err = NULL;
		g_autoptr(GByteArray) s = seal(b);
		g_autoptr(mf_imap_index) x = mf_imap_index_parse(s->data, s->len, "INBOX", GEN, &err);

		g_assert_no_error(err);
		g_assert_cmpuint(g_hash_table_size(x->msgs), ==, 2);
	}

	b = header(7, 1000000000u); /* promises more than the bytes can hold */
	record(b, 1, "a", 1);
	expect_refused(b, "huge count");

	b = header(7, 2);
	record(b, 5, "a", 1);
	record(b, 5, "b", 1);
	expect_refused(b, "duplicate UID");

	b = header(7, 2);
	record(b, 5, "a", 1);
	record(b, 4, "b", 1);
	expect_refused(b, "UIDs out of order");

	b = header(7, 1);
	record(b, 0, "a", 1);
	expect_refused(b, "UID 0");

	b = header(7, 1);
	record(b, 1, "a\0b", 3);
	expect_refused(b, "NUL in a string");

	b = header(7, 1);
	record(b, 1, "a", 1);
	g_byte_array_append(b, (const guint8 *)"x", 1);
	expect_refused(b, "trailing bytes");

	b = header(7, 1);
	put32(b, 1);
	put64(b, 10);
	put64(b, 0);
	put64(b, 0);
	put32(b, 0x7fffffff); /* a string longer than the file */
	for (int i = 0; i < 6; i++)
		put32(b, G_MAXUINT32);
	expect_refused(b, "string length past the end");

	b = header(0, 0);
	expect_refused(b, "UIDVALIDITY 0");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap_index/round_trip", test_round_trip);
	g_test_add_func("/imap_index/corrupt", test_corrupt);
	g_test_add_func("/imap_index/truncated", test_truncated);
	g_test_add_func("/imap_index/foreign", test_foreign);
	g_test_add_func("/imap_index/hostile", test_hostile);
	return g_test_run();
}
