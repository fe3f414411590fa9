/* Folder tree from LIST entries: delimiters, mUTF-7, INBOX, implied parents, order. */
#include <string.h>

#include "imap_folders.h"
#include "name.h"

static imap_list_entry *entry(const char *name, char delim, gboolean noselect)
{
	imap_list_entry *e = g_new0(imap_list_entry, 1);

	e->name = g_strdup(name);
	e->delimiter = delim;
	e->flags = g_strdup(noselect ? "\\Noselect" : "");
	e->noselect = noselect;
	return e;
}

static void entry_free(gpointer p)
{
	imap_list_entry *e = p;

	g_free(e->name);
	g_free(e->flags);
	g_free(e);
}

/* "path|raw|s" per folder, s = 1 if selectable, joined with newlines. */
static char *render(GPtrArray *folders)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < folders->len; i++) {
		const mf_folder *f = folders->pdata[i];

		g_string_append_printf(s, "%s|%s|%d\n", f->path, f->raw, f->selectable);
	}
	return g_string_free(s, FALSE);
}

static void check(GPtrArray *entries, const char *want)
{
	g_autoptr(GPtrArray) folders = mf_imap_folders_build(entries);
	g_autofree char *got = render(folders);

	g_assert_cmpstr(got, ==, want);
	g_ptr_array_unref(entries);
}

static void test_basic(void)
{
	GPtrArray *e = g_ptr_array_new_with_free_func(entry_free);

	g_ptr_array_add(e, entry("Sent", '.', FALSE));
	g_ptr_array_add(e, entry("inbox", '.', FALSE));
	g_ptr_array_add(e, entry("Entw&APw-rfe", '.', FALSE));
	g_ptr_array_add(e, entry("Archive.2024", '.', FALSE));
	g_ptr_array_add(e, entry("Archive", '.', TRUE));
	check(e, "Archive|Archive|0\n"
		 "Archive/2024|Archive.2024|1\n"
		 "Entwürfe|Entw&APw-rfe|1\n"
		 "INBOX|inbox|1\n"
		 "Sent|Sent|1\n");
}

static void test_implied_parents(void)
{
	GPtrArray *e = g_ptr_array_new_with_free_func(entry_free);

	g_ptr_array_add(e, entry("a/b/c", '/', FALSE));
	g_ptr_array_add(e, entry("INBOX/Sub", '/', FALSE));
	g_ptr_array_add(e, entry("INBOX", '/', FALSE));
	check(e, "INBOX|INBOX|1\n"
		 "INBOX/Sub|INBOX/Sub|1\n"
		 "a|a|0\n"
		 "a/b|a/b|0\n"
		 "a/b/c|a/b/c|1\n");
}

static void test_odd_names(void)
{
	GPtrArray *e = g_ptr_array_new_with_free_func(entry_free);

	/* Non-canonical mUTF-7 is shown raw; a '/' inside a '.'-delimited name is escaped;
	 * a NIL delimiter means a flat name. */
	g_ptr_array_add(e, entry("x&AGE-", '.', FALSE));
	g_ptr_array_add(e, entry("a/b", '.', FALSE));
	g_ptr_array_add(e, entry("flat.name", '\0', FALSE));
	g_ptr_array_add(e, entry(".hidden", '/', FALSE));
	g_autoptr(GPtrArray) folders = mf_imap_folders_build(e);

	g_assert_cmpuint(folders->len, ==, 4);
	for (guint i = 0; i < folders->len; i++) {
		const mf_folder *f = folders->pdata[i];

		g_assert_null(strchr(f->path, '/'));
		g_assert_true(f->path[0] != '.');
		g_assert_true(f->selectable);
	}
	g_ptr_array_unref(e);
}

static void test_collision(void)
{
	GPtrArray *e = g_ptr_array_new_with_free_func(entry_free);

	/* INBOX is case-insensitive: two spellings are one folder, the first listed wins. */
	g_ptr_array_add(e, entry("INBOX", '.', FALSE));
	g_ptr_array_add(e, entry("Inbox", '.', FALSE));
	check(e, "INBOX|INBOX|1\n");
}

/* Non-canonical names are shown raw, and never as what a canonical name decodes to. */
static void test_raw_fallback(void)
{
	GPtrArray *e = g_ptr_array_new_with_free_func(entry_free);

	g_ptr_array_add(e, entry("&AGE-", '.', FALSE));    /* 'a' encoded: not canonical */
	g_ptr_array_add(e, entry("&-AGE-", '.', FALSE));   /* "&AGE-" spelled canonically */
	g_ptr_array_add(e, entry("\xc3\xa9", '.', FALSE));   /* raw UTF-8 */
	g_ptr_array_add(e, entry("&AOk-", '.', FALSE));    /* "é" canonically */
	g_ptr_array_add(e, entry("\x01", '.', FALSE));      /* raw control */
	g_ptr_array_add(e, entry("&AAE-", '.', FALSE));    /* U+0001 canonically */
	g_ptr_array_add(e, entry("\x01&", '.', FALSE));
	check(e, "%01|&AAE-|1\n"
		 "%01%26|\x01|1\n"
		 "%01%26%26|\x01&|1\n"
		 "%26AGE-|&AGE-|1\n"
		 "%C3%A9%26|\xc3\xa9|1\n"
		 "&AGE-|&-AGE-|1\n"
		 "é|&AOk-|1\n");
}

/* Every name over a small alphabet of troublemakers gets its own directory name. */
static void test_fallback_injective(void)
{
	static const char alpha[] = { '&', '-', 'A', 'G', 'E', '.', '%', '\x01', '\xc3', '\xa9' };
	const gsize k = sizeof alpha;
	GPtrArray *e = g_ptr_array_new_with_free_func(entry_free);
	guint total = 0;

	for (gsize len = 1; len <= 4; len++) {
		gsize n = 1;

		for (gsize i = 0; i < len; i++)
			n *= k;
		for (gsize v = 0; v < n; v++) {
			char name[8] = { 0 };
			gsize x = v;

			for (gsize i = 0; i < len; i++, x /= k)
				name[i] = alpha[x % k];
			g_ptr_array_add(e, entry(name, '\0', FALSE));
			total++;
		}
	}
	g_autoptr(GPtrArray) folders = mf_imap_folders_build(e);

	g_assert_cmpuint(folders->len, ==, total);
	for (guint i = 0; i < folders->len; i++)
		g_assert_true(mf_name_is_safe(((mf_folder *)folders->pdata[i])->path));
	g_ptr_array_unref(e);
}

/* A long fallback is cut like any long component but keeps its marker. */
static void test_fallback_long(void)
{
	GPtrArray *e = g_ptr_array_new_with_free_func(entry_free);
	g_autoptr(GString) a = g_string_new(NULL), b = g_string_new(NULL);

	for (int i = 0; i < 200; i++) {
		g_string_append(a, "\xc3\xa9");
		g_string_append(b, "\xc3\xa9");
	}
	g_string_append_c(b, 'x');
	g_ptr_array_add(e, entry(a->str, '\0', FALSE));
	g_ptr_array_add(e, entry(b->str, '\0', FALSE));
	g_autoptr(GPtrArray) folders = mf_imap_folders_build(e);

	g_assert_cmpuint(folders->len, ==, 2);
	for (guint i = 0; i < 2; i++) {
		const char *p = ((mf_folder *)folders->pdata[i])->path;

		g_assert_cmpuint(strlen(p), <=, MF_NAME_MAX);
		g_assert_true(mf_name_is_safe(p));
		g_assert_nonnull(strstr(p, "%26~"));
	}
	g_ptr_array_unref(e);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap_folders/basic", test_basic);
	g_test_add_func("/imap_folders/implied_parents", test_implied_parents);
	g_test_add_func("/imap_folders/odd_names", test_odd_names);
	g_test_add_func("/imap_folders/collision", test_collision);
	g_test_add_func("/imap_folders/raw_fallback", test_raw_fallback);
	g_test_add_func("/imap_folders/fallback_injective", test_fallback_injective);
	g_test_add_func("/imap_folders/fallback_long", test_fallback_long);
	return g_test_run();
}
