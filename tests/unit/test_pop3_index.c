/* The POP3 index file: ids from UIDLs, round trip, and refusal of damaged, truncated, foreign
 * and hostile (correctly checksummed but malformed) bytes. */
#include <string.h>

#include "mferror.h"
#include "pop3_index.h"

#define GEN "mailfs test"
#define ACCT "alice@pop.example.org:995"

static pop3_index_entry *entry(const char *uidl, guint32 occ, guint32 uid, guint32 msg,
			       const char *subject)
{
	pop3_index_entry *e = pop3_index_entry_new(uidl, occ, uid, 1000 + uid);
	mf_msg_meta *m = e->meta;

	e->msg = msg;
	if (!subject)
		return e;
	e->headers = TRUE;
	m->date = uid % 2 ? MF_NO_DATE : -5;
	m->date_raw = uid % 2 ? NULL : g_strdup("Thu, 1 Jan 1970 00:00:00 +0000");
	m->from = g_strdup("\"Smith, Alice\" <alice@example.org>");
	m->from_name = g_strdup("Smith, Alice");
	m->to = uid % 3 ? g_strdup("") : NULL;
	m->subject = g_strdup(subject);
	m->message_id = g_strdup_printf("<%u@example.org>", uid);
	return e;
}

static pop3_index *sample(void)
{
	pop3_index *x = pop3_index_new(ACCT);

	x->next_uid = 4000000001u;
	pop3_index_add(x, entry("QhdPYR:00WBw1Ph7x7", 1, 7, 3, "Grüße – \"quoted\" \\ x"));
	pop3_index_add(x, entry("dup", 1, 1, 0, "one"));
	pop3_index_add(x, entry("dup", 2, 4000000000u, 0, ""));
	pop3_index_add(x, entry("a/b%c~d", 1, 300, 1, NULL));
	return x;
}

static void assert_entry_equal(const pop3_index_entry *a, const pop3_index_entry *b)
{
	g_assert_cmpstr(a->uidl, ==, b->uidl);
	g_assert_cmpuint(a->occurrence, ==, b->occurrence);
	g_assert_cmpuint(a->msg, ==, b->msg);
	g_assert_cmpint(a->headers, ==, b->headers);
	g_assert_cmpuint(a->meta->uid, ==, b->meta->uid);
	g_assert_cmpstr(a->meta->id, ==, b->meta->id);
	g_assert_cmpuint(a->meta->size, ==, b->meta->size);
	g_assert_false(b->meta->size_exact);
	g_assert_cmpint(b->meta->internaldate, ==, MF_NO_DATE);
	g_assert_cmpint(a->meta->date, ==, b->meta->date);
	g_assert_cmpstr(a->meta->date_raw, ==, b->meta->date_raw);
	g_assert_cmpstr(a->meta->from, ==, b->meta->from);
	g_assert_cmpstr(a->meta->from_name, ==, b->meta->from_name);
	g_assert_cmpstr(a->meta->to, ==, b->meta->to);
	g_assert_cmpstr(a->meta->subject, ==, b->meta->subject);
	g_assert_cmpstr(a->meta->message_id, ==, b->meta->message_id);
	g_assert_null(b->meta->flags);
}

static void test_ids(void)
{
	g_autofree char *a = pop3_index_id("QhdPYR:00WBw1Ph7x7", 1);
	g_autofree char *b = pop3_index_id("a/b%c~d", 1);
	g_autofree char *c = pop3_index_id("dup", 3);
	g_autofree char *d = pop3_index_id("dup~3", 1);

	g_assert_cmpstr(a, ==, "QhdPYR:00WBw1Ph7x7");
	g_assert_cmpstr(b, ==, "a%2Fb%25c%7Ed");
	g_assert_cmpstr(c, ==, "dup~3");
	/* A UIDL that looks like a duplicate marker stays distinct from one. */
	g_assert_cmpstr(d, ==, "dup%7E3");
}

static void test_round_trip(void)
{
	g_autoptr(pop3_index) x = sample();
	g_autoptr(GBytes) b = pop3_index_serialise(x, GEN);
	gsize len;
	const guint8 *d = g_bytes_get_data(b, &len);
	g_autoptr(GError) err = NULL;
	g_autoptr(pop3_index) y = pop3_index_parse(d, len, ACCT, GEN, &err);

	g_assert_no_error(err);
	g_assert_nonnull(y);
	g_assert_cmpstr(y->account, ==, ACCT);
	g_assert_cmpstr(y->generator, ==, GEN);
	g_assert_cmpuint(y->next_uid, ==, 4000000001u);
	g_assert_cmpuint(g_hash_table_size(y->by_id), ==, 4);
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, x->by_id);
	while (g_hash_table_iter_next(&it, &k, &v))
		assert_entry_equal(v, pop3_index_lookup(y, k));
	/* Written again: the same bytes (records are in uid order, not hash order). */
	g_autoptr(GBytes) b2 = pop3_index_serialise(y, GEN);
	g_assert_true(g_bytes_equal(b, b2));

	g_autoptr(GPtrArray) l = pop3_index_listing(y);
	g_assert_cmpuint(l->len, ==, 4);
	const guint32 uids[] = { 1, 7, 300, 4000000000u };
	for (guint i = 0; i < 4; i++)
		g_assert_cmpuint(((mf_msg_meta *)l->pdata[i])->uid, ==, uids[i]);
	g_assert_cmpstr(((mf_msg_meta *)l->pdata[3])->id, ==, "dup~2");

	/* Empty. */
	g_autoptr(pop3_index) e = pop3_index_new(ACCT);
	g_autoptr(GBytes) eb = pop3_index_serialise(e, GEN);
	g_autoptr(pop3_index) ey = pop3_index_parse(g_bytes_get_data(eb, NULL), g_bytes_get_size(eb),
						    ACCT, GEN, NULL);
	g_assert_nonnull(ey);
	g_assert_cmpuint(ey->next_uid, ==, 1);
	g_assert_cmpuint(g_hash_table_size(ey->by_id), ==, 0);
}

static void test_add_replaces(void)
{
	g_autoptr(pop3_index) x = pop3_index_new(ACCT);

	pop3_index_add(x, entry("u", 1, 1, 1, "old"));
	pop3_index_add(x, entry("u", 1, 1, 2, "new"));
	g_assert_cmpuint(g_hash_table_size(x->by_id), ==, 1);
	g_assert_cmpstr(pop3_index_lookup(x, "u")->meta->subject, ==, "new");
	g_assert_null(pop3_index_lookup(x, NULL));
}

/* Another program version: its header fields are dropped (names may differ), uids kept. */
static void test_other_generator(void)
{
	g_autoptr(pop3_index) x = sample();
	g_autoptr(GBytes) b = pop3_index_serialise(x, "mailfs 0.0.1");
	g_autoptr(GError) err = NULL;
	g_autoptr(pop3_index) y = pop3_index_parse(g_bytes_get_data(b, NULL), g_bytes_get_size(b),
						   ACCT, GEN, &err);

	g_assert_no_error(err);
	g_assert_cmpstr(y->generator, ==, "mailfs 0.0.1");
	pop3_index_entry *e = pop3_index_lookup(y, "QhdPYR:00WBw1Ph7x7");
	g_assert_nonnull(e);
	g_assert_false(e->headers);
	g_assert_cmpuint(e->meta->uid, ==, 7);
	g_assert_cmpuint(e->msg, ==, 3);
	g_assert_null(e->meta->subject);
	g_assert_null(e->meta->from);
	g_assert_cmpint(e->meta->date, ==, MF_NO_DATE);
	g_assert_cmpuint(y->next_uid, ==, 4000000001u);
}

static GByteArray *sample_bytes(void)
{
	g_autoptr(pop3_index) x = sample();
	g_autoptr(GBytes) b = pop3_index_serialise(x, GEN);
	GByteArray *a = g_byte_array_new();

	g_byte_array_append(a, g_bytes_get_data(b, NULL), (guint)g_bytes_get_size(b));
	return a;
}

static void test_damaged(void)
{
	g_autoptr(GByteArray) a = sample_bytes();
	GError *err = NULL;

	/* Every truncation and every single flipped bit is refused. */
	for (guint n = 0; n < a->len; n++) {
		g_assert_null(pop3_index_parse(a->data, n, ACCT, GEN, &err));
		g_assert_nonnull(err);
		g_clear_error(&err);
	}
	for (guint i = 0; i < a->len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			a->data[i] ^= (guint8)(1 << bit);
			g_assert_null(pop3_index_parse(a->data, a->len, ACCT, GEN, &err));
			g_assert_nonnull(err);
			g_clear_error(&err);
			a->data[i] ^= (guint8)(1 << bit);
		}
	}
	g_autoptr(pop3_index) ok = pop3_index_parse(a->data, a->len, ACCT, GEN, &err);
	g_assert_no_error(err);

	/* Another account's file, an IMAP index, nothing at all. */
	g_assert_null(pop3_index_parse(a->data, a->len, "bob@pop.example.org:995", GEN, &err));
	g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
	g_clear_error(&err);
	g_assert_null(pop3_index_parse((const guint8 *)"MFIMAPIX\1\0\0\0", 12, ACCT, GEN, &err));
	g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
	g_clear_error(&err);
	g_assert_null(pop3_index_parse((const guint8 *)"", 0, ACCT, GEN, &err));
	g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
	g_clear_error(&err);
}

/* Re-seal after editing, as someone who knows the format could. */
static void seal(GByteArray *a)
{
	guint8 sum[32];
	gsize sum_len = sizeof sum;
	g_autoptr(GChecksum) ck = g_checksum_new(G_CHECKSUM_SHA256);

	g_byte_array_set_size(a, a->len - 32);
	g_checksum_update(ck, a->data, a->len);
	g_checksum_get_digest(ck, sum, &sum_len);
	g_byte_array_append(a, sum, 32);
}

static void test_version(void)
{
	g_autoptr(GByteArray) a = sample_bytes();
	g_autoptr(GError) err = NULL;

	a->data[8] = 2;
	seal(a);
	g_assert_null(pop3_index_parse(a->data, a->len, ACCT, GEN, &err));
	g_assert_error(err, MF_ERROR, MF_ERR_STALE);
}

/* One record, sealed, in a file of its own: is it accepted? */
static gboolean one_record_ok(const char *uidl, gsize uidl_len, guint32 occ, guint32 uid,
			      guint32 state, const char *subject, guint32 next_uid, gboolean twice,
			      const char *trailer)
{
	GByteArray *a = g_byte_array_new();
	guint32 v;
	guint64 w;
#define U32(x) (v = GUINT32_TO_LE(x), g_byte_array_append(a, (const guint8 *)&v, 4))
#define U64(x) (w = GUINT64_TO_LE(x), g_byte_array_append(a, (const guint8 *)&w, 8))
#define STR(s, n) (U32((guint32)(n)), g_byte_array_append(a, (const guint8 *)(s), (guint)(n)))
	g_byte_array_append(a, (const guint8 *)"MFPOP3IX", 8);
	U32(POP3_INDEX_VERSION);
	STR(GEN, strlen(GEN));
	STR(ACCT, strlen(ACCT));
	U32(next_uid);
	U32(twice ? 2 : 1);
	for (int r = 0; r < (twice ? 2 : 1); r++) {
		STR(uidl, uidl_len);
		U32(occ);
		U32(uid + (guint32)r);
		U32(0);
		U32(state);
		U64(10);
		U64((guint64)MF_NO_DATE);
		for (int i = 0; i < 6; i++) {
			if (i == 4)
				STR(subject, strlen(subject));
			else
				U32(G_MAXUINT32);
		}
	}
	if (trailer)
		g_byte_array_append(a, (const guint8 *)trailer, (guint)strlen(trailer));
	g_byte_array_set_size(a, a->len + 32);
	seal(a);
#undef U32
#undef U64
#undef STR
	g_autoptr(GError) err = NULL;
	pop3_index *x = pop3_index_parse(a->data, a->len, ACCT, GEN, &err);
	gboolean ok = x != NULL;

	g_assert_true(ok || g_error_matches(err, MF_ERROR, MF_ERR_PROTOCOL));
	pop3_index_free(x);
	g_byte_array_unref(a);
	return ok;
}

static void test_hostile(void)
{
	g_autofree char *long_uidl = g_strnfill(256, 'u');

	g_assert_true(one_record_ok("abc", 3, 1, 5, 1, "s", 6, FALSE, NULL));
	g_assert_true(one_record_ok(long_uidl, 255, 1, 5, 1, "s", 6, FALSE, NULL));
	g_assert_false(one_record_ok(long_uidl, 256, 1, 5, 1, "s", 6, FALSE, NULL));
	g_assert_false(one_record_ok("", 0, 1, 5, 1, "s", 6, FALSE, NULL));
	g_assert_false(one_record_ok("a b", 3, 1, 5, 1, "s", 6, FALSE, NULL));
	g_assert_false(one_record_ok("a\0b", 3, 1, 5, 1, "s", 6, FALSE, NULL));
	g_assert_false(one_record_ok("a\x80", 2, 1, 5, 1, "s", 6, FALSE, NULL));
	g_assert_false(one_record_ok("abc", 3, 0, 5, 1, "s", 6, FALSE, NULL));   /* occurrence 0 */
	g_assert_false(one_record_ok("abc", 3, 1, 0, 1, "s", 6, FALSE, NULL));   /* uid 0 */
	g_assert_false(one_record_ok("abc", 3, 1, 6, 1, "s", 6, FALSE, NULL));   /* uid >= next */
	g_assert_false(one_record_ok("abc", 3, 1, 5, 1, "s", 0, FALSE, NULL));   /* next_uid 0 */
	g_assert_false(one_record_ok("abc", 3, 1, 5, 2, "s", 6, FALSE, NULL));   /* unknown state */
	g_assert_false(one_record_ok("abc", 3, 1, 5, 1, "\xff", 6, FALSE, NULL)); /* not UTF-8 */
	g_assert_false(one_record_ok("abc", 3, 1, 5, 1, "s", 9, TRUE, NULL));    /* same id twice */
	g_assert_true(one_record_ok("abc", 3, 1, 5, 1, "s", 9, FALSE, NULL));
	g_assert_false(one_record_ok("abc", 3, 1, 5, 1, "s", 6, FALSE, "x"));    /* trailing */
}

static void test_count_bound(void)
{
	g_autoptr(GByteArray) a = sample_bytes();
	g_autoptr(GError) err = NULL;
	/* The count follows magic, version, generator, account and next_uid. */
	gsize at = 8 + 4 + 4 + strlen(GEN) + 4 + strlen(ACCT) + 4;
	guint32 huge = GUINT32_TO_LE(0x40000000u);

	memcpy(a->data + at, &huge, 4);
	seal(a);
	g_assert_null(pop3_index_parse(a->data, a->len, ACCT, GEN, &err));
	g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pop3_index/ids", test_ids);
	g_test_add_func("/pop3_index/round-trip", test_round_trip);
	g_test_add_func("/pop3_index/add-replaces", test_add_replaces);
	g_test_add_func("/pop3_index/other-generator", test_other_generator);
	g_test_add_func("/pop3_index/damaged", test_damaged);
	g_test_add_func("/pop3_index/version", test_version);
	g_test_add_func("/pop3_index/hostile", test_hostile);
	g_test_add_func("/pop3_index/count-bound", test_count_bound);
	return g_test_run();
}
