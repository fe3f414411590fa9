/* mf_msg_meta lifetime and the plain backend types' destructors. */
#include <glib.h>
#include "backend.h"
#include "msg.h"

static mf_msg_meta *filled(void)
{
	mf_msg_meta *m = mf_msg_meta_new();

	m->uid = 4711;
	m->id = g_strdup("4711");
	m->size = 1234;
	m->size_exact = TRUE;
	m->internaldate = 1795689720;
	m->date = 1795689000;
	m->date_raw = g_strdup("Thu, 26 Nov 2026 10:30:00 +0000");
	m->from = g_strdup("Alice Smith <alice@example.org>");
	m->from_name = g_strdup("Alice Smith");
	m->to = g_strdup("bob@example.org");
	m->subject = g_strdup("Lunch");
	m->message_id = g_strdup("<1@example.org>");
	m->flags = g_strdup("\\Seen");
	return m;
}

static void test_new(void)
{
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();

	g_assert_cmpint(m->internaldate, ==, MF_NO_DATE);
	g_assert_cmpint(m->date, ==, MF_NO_DATE);
	g_assert_null(m->id);
	g_assert_null(m->subject);
	g_assert_cmpuint(m->size, ==, 0);
	g_assert_false(m->size_exact);
	mf_msg_meta_unref(NULL);
}

static void test_copy_is_deep(void)
{
	g_autoptr(mf_msg_meta) m = filled();
	g_autoptr(mf_msg_meta) c = mf_msg_meta_copy(m);

	g_assert_cmpuint(c->uid, ==, 4711);
	g_assert_cmpuint(c->size, ==, 1234);
	g_assert_true(c->size_exact);
	g_assert_cmpint(c->internaldate, ==, m->internaldate);
	g_assert_cmpint(c->date, ==, m->date);
	g_assert_cmpstr(c->id, ==, m->id);
	g_assert_cmpstr(c->date_raw, ==, m->date_raw);
	g_assert_cmpstr(c->from, ==, m->from);
	g_assert_cmpstr(c->from_name, ==, m->from_name);
	g_assert_cmpstr(c->to, ==, m->to);
	g_assert_cmpstr(c->subject, ==, m->subject);
	g_assert_cmpstr(c->message_id, ==, m->message_id);
	g_assert_cmpstr(c->flags, ==, m->flags);
	g_assert_true(c->subject != m->subject);
	g_assert_true(c->flags != m->flags);
	/* the copy outlives the original */
	g_clear_pointer(&m, mf_msg_meta_unref);
	g_assert_cmpstr(c->subject, ==, "Lunch");
	g_assert_null(mf_msg_meta_copy(NULL));
}

/* A reference is the same meta and keeps it alive; a copy of a shared one is unshared. */
static void test_ref_shares(void)
{
	mf_msg_meta *m = filled();
	mf_msg_meta *r = mf_msg_meta_ref(m);

	g_assert_true(r == m);
	g_autoptr(mf_msg_meta) c = mf_msg_meta_copy(m);
	mf_msg_meta_unref(m);
	g_assert_cmpstr(r->subject, ==, "Lunch");
	g_free(c->subject);
	c->subject = g_strdup("Dinner");
	g_assert_cmpstr(r->subject, ==, "Lunch");
	mf_msg_meta_unref(r);
	/* The copy started with one reference of its own. */
	mf_msg_meta *c2 = mf_msg_meta_ref(c);
	mf_msg_meta_unref(c2);
	g_assert_cmpstr(c->subject, ==, "Dinner");
}

/* A packed meta holds the same strings in one block; its copy is an ordinary meta whose
 * strings can be replaced, and outlives it. */
static void test_packed(void)
{
	const char *str[MF_META_N_STRINGS] = {
		[MF_META_ID] = "4711",		 [MF_META_DATE_RAW] = "Thu, 26 Nov 2026 10:30:00 +0000",
		[MF_META_FROM] = "Alice Smith <alice@example.org>",
		[MF_META_FROM_NAME] = "Alice Smith", [MF_META_SUBJECT] = "Lunch",
		[MF_META_FLAGS] = "",
	};
	mf_msg_meta *m = mf_msg_meta_new_packed(str);

	g_assert_cmpint(m->date, ==, MF_NO_DATE);
	g_assert_cmpint(m->internaldate, ==, MF_NO_DATE);
	g_assert_cmpstr(m->id, ==, "4711");
	g_assert_cmpstr(m->date_raw, ==, str[MF_META_DATE_RAW]);
	g_assert_cmpstr(m->from, ==, str[MF_META_FROM]);
	g_assert_cmpstr(m->from_name, ==, "Alice Smith");
	g_assert_null(m->to);
	g_assert_cmpstr(m->subject, ==, "Lunch");
	g_assert_null(m->message_id);
	g_assert_cmpstr(m->flags, ==, "");
	g_assert_true(m->subject != str[MF_META_SUBJECT]);
	mf_msg_meta *c = mf_msg_meta_copy(m);
	mf_msg_meta_unref(m);
	g_free(c->flags);
	c->flags = g_strdup("\\Seen");
	g_assert_cmpstr(c->from, ==, "Alice Smith <alice@example.org>");
	g_assert_cmpstr(c->flags, ==, "\\Seen");
	mf_msg_meta_unref(c);
}

static void test_copy_of_empty(void)
{
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();
	g_autoptr(mf_msg_meta) c = mf_msg_meta_copy(m);

	g_assert_null(c->from);
	g_assert_cmpint(c->date, ==, MF_NO_DATE);
}

static void test_folder_free(void)
{
	mf_folder *f = g_new0(mf_folder, 1);

	f->path = g_strdup("Archive/2026");
	f->raw = g_strdup("Archive.2026");
	f->selectable = TRUE;
	mf_folder_free(f);
	mf_folder_free(NULL);
	/* as a GPtrArray free function, the way list_folders returns them */
	{
		g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func((GDestroyNotify)mf_folder_free);

		g_ptr_array_add(a, g_new0(mf_folder, 1));
	}
}

static void test_listing_free(void)
{
	/* with or without a free function on the array, the metas are freed exactly once */
	mf_listing *a = g_new0(mf_listing, 1);
	mf_listing *b = g_new0(mf_listing, 1);
	mf_listing *empty = g_new0(mf_listing, 1);

	a->msgs = g_ptr_array_new();
	g_ptr_array_add(a->msgs, filled());
	g_ptr_array_add(a->msgs, mf_msg_meta_new());
	b->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref);
	g_ptr_array_add(b->msgs, filled());
	mf_listing_free(a);
	mf_listing_free(b);
	mf_listing_free(empty);
	mf_listing_free(NULL);
	{
		g_autoptr(mf_listing) l = g_new0(mf_listing, 1);

		l->uidvalidity = 7;
		l->msgs = g_ptr_array_new();
		g_ptr_array_add(l->msgs, filled());
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/msg/new", test_new);
	g_test_add_func("/msg/copy-is-deep", test_copy_is_deep);
	g_test_add_func("/msg/copy-of-empty", test_copy_of_empty);
	g_test_add_func("/msg/ref-shares", test_ref_shares);
	g_test_add_func("/msg/packed", test_packed);
	g_test_add_func("/backend-types/folder-free", test_folder_free);
	g_test_add_func("/backend-types/listing-free", test_listing_free);
	return g_test_run();
}
