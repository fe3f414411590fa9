/* UID set compression and expansion. */
#include <string.h>

#include "imap_uidset.h"
#include "mferror.h"

static char *join_chunks(GPtrArray *c)
{
	g_ptr_array_add(c, NULL);
	char *s = g_strjoinv("|", (char **)c->pdata);

	g_ptr_array_set_size(c, c->len - 1);
	return s;
}

static void check_chunks(const guint32 *uids, gsize n, guint max_count, gsize max_len,
			 const char *want)
{
	g_autoptr(GPtrArray) c = mf_imap_uidset_chunks(uids, n, max_count, max_len);
	g_autofree char *got = join_chunks(c);

	g_assert_cmpstr(got, ==, want);
}

static void test_compress(void)
{
	const guint32 a[] = { 1, 2, 3, 4, 5, 502, 7, 6, 9 };

	check_chunks(a, G_N_ELEMENTS(a), 2000, 8000, "1:7,9,502");
	check_chunks(NULL, 0, 2000, 8000, "");
	const guint32 one[] = { 4294967295u };

	check_chunks(one, 1, 2000, 8000, "4294967295");
	const guint32 dup[] = { 5, 5, 6, 6, 8, 8 };

	check_chunks(dup, G_N_ELEMENTS(dup), 2000, 8000, "5:6,8");
}

static void test_chunk_count(void)
{
	guint32 v[10];

	for (int i = 0; i < 10; i++)
		v[i] = 100 + (guint32)i;
	check_chunks(v, 10, 4, 8000, "100:103|104:107|108:109");
	const guint32 sparse[] = { 1, 3, 5, 7, 9 };

	check_chunks(sparse, 5, 2, 8000, "1,3|5,7|9");
}

static void test_chunk_len(void)
{
	const guint32 v[] = { 743024218, 743024220, 743024222, 743024224 };

	/* "743024218,743024220" is 19 bytes; the third UID would make 29 > 25. */
	check_chunks(v, 4, 2000, 25, "743024218,743024220|743024222,743024224");
	g_autoptr(GPtrArray) c = NULL;
	GArray *big = g_array_new(FALSE, FALSE, sizeof(guint32));

	for (guint32 u = 1; u < 200000; u += 2)
		g_array_append_val(big, u);
	c = mf_imap_uidset_chunks((guint32 *)big->data, big->len, 2000, 8000);
	guint total = 0;

	for (guint i = 0; i < c->len; i++) {
		g_autoptr(GArray) back = g_array_new(FALSE, FALSE, sizeof(guint32));

		g_assert_cmpuint(strlen(c->pdata[i]), <=, 8000);
		g_assert_true(mf_imap_uidset_parse(c->pdata[i], 2000, back, NULL));
		g_assert_cmpuint(back->len, <=, 2000);
		for (guint k = 0; k < back->len; k++)
			g_assert_cmpuint(g_array_index(back, guint32, k), ==,
					 g_array_index(big, guint32, total + k));
		total += back->len;
	}
	g_assert_cmpuint(total, ==, big->len);
	g_array_free(big, TRUE);
}

static void test_parse(void)
{
	g_autoptr(GArray) a = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GError) err = NULL;

	g_assert_true(mf_imap_uidset_parse("3:1,7,10:11", 100, a, &err));
	g_assert_no_error(err);
	const guint32 want[] = { 1, 2, 3, 7, 10, 11 };

	g_assert_cmpuint(a->len, ==, G_N_ELEMENTS(want));
	g_assert_cmpmem(a->data, a->len * sizeof(guint32), want, sizeof want);

	const char *bad[] = { "", "0", "1:", ":3", "1,,2", "1:*", "*", "4294967296", "1 2", "1,",
			      "a" };

	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GArray) b = g_array_new(FALSE, FALSE, sizeof(guint32));
		g_autoptr(GError) e = NULL;

		g_assert_false(mf_imap_uidset_parse(bad[i], 100, b, &e));
		g_assert_error(e, MF_ERROR, MF_ERR_PROTOCOL);
	}
	g_autoptr(GArray) huge = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GError) e2 = NULL;

	g_assert_false(mf_imap_uidset_parse("1:4294967295", 1000000, huge, &e2));
	g_assert_error(e2, MF_ERROR, MF_ERR_PROTOCOL);
	g_assert_cmpuint(huge->len, ==, 0);
}

static void test_ranges(void)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GArray) r = mf_imap_uidset_ranges("9,3:1,4,20:30,25:40,4294967295", &err);

	g_assert_no_error(err);
	/* merged: 1:4, 9, 20:40, 4294967295 */
	g_assert_cmpuint(r->len, ==, 4);
	g_assert_cmpuint(mf_imap_uidset_ranges_count(r), ==, 4 + 1 + 21 + 1);
	const guint32 in[] = { 1, 2, 4, 9, 20, 33, 40, 4294967295u };
	const guint32 out[] = { 5, 8, 10, 19, 41, 4294967294u };

	for (gsize i = 0; i < G_N_ELEMENTS(in); i++)
		g_assert_true(mf_imap_uidset_ranges_contain(r, in[i]));
	for (gsize i = 0; i < G_N_ELEMENTS(out); i++)
		g_assert_false(mf_imap_uidset_ranges_contain(r, out[i]));

	/* A hostile set costs one range, not four billion UIDs. */
	g_autoptr(GArray) all = mf_imap_uidset_ranges("1:4294967295", &err);
	g_assert_no_error(err);
	g_assert_cmpuint(all->len, ==, 1);
	g_assert_cmpuint(mf_imap_uidset_ranges_count(all), ==, 4294967295u);

	const char *bad[] = { "", "0", "1:", "1,,2", "1:*", "4294967296", "1 2", "1," };

	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) e = NULL;

		g_assert_null(mf_imap_uidset_ranges(bad[i], &e));
		g_assert_error(e, MF_ERROR, MF_ERR_PROTOCOL);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap_uidset/compress", test_compress);
	g_test_add_func("/imap_uidset/chunk_count", test_chunk_count);
	g_test_add_func("/imap_uidset/chunk_len", test_chunk_len);
	g_test_add_func("/imap_uidset/parse", test_parse);
	g_test_add_func("/imap_uidset/ranges", test_ranges);
	return g_test_run();
}
