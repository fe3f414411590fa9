/* The model without a network or FUSE: folder tree, stable inode numbers, lookups, listing
 * merge and refresh, readdir cookies, read-ahead order and the size-trust probe, and a first
 * listing served while it streams in the background (opendir), all against the in-memory
 * backend of fake_backend.h. Every wait on the model is bounded (bg_call), so a model that
 * blocks too long fails a test instead of hanging the suite. */
#include <string.h>
#include <glib.h>
#include "model.h"
#include "name.h"
#include "fake_backend.h"

#define CAPS_IMAP (MF_BACKEND_FOLDERS | MF_BACKEND_PARTIAL | MF_BACKEND_FLAGS)

/* ---- kernel notifications, recorded ---- */

typedef struct {
	MfNotifyKind kind;
	guint64 parent, ino;
	char *name;
} note;

typedef struct {
	GMutex lock;
	GArray *notes; /* note */
} notes;

static void note_clear(note *n)
{
	g_free(n->name);
}

static void notes_init(notes *ns)
{
	g_mutex_init(&ns->lock);
	ns->notes = g_array_new(FALSE, FALSE, sizeof(note));
	g_array_set_clear_func(ns->notes, (GDestroyNotify)note_clear);
}

static void notes_clear(notes *ns)
{
	g_array_unref(ns->notes);
	g_mutex_clear(&ns->lock);
}

static void notes_reset(notes *ns)
{
	g_mutex_lock(&ns->lock);
	g_array_set_size(ns->notes, 0);
	g_mutex_unlock(&ns->lock);
}

static void on_notify(MfNotifyKind kind, guint64 parent, guint64 ino, const char *name, gpointer user_data)
{
	notes *ns = user_data;
	note n = { kind, parent, ino, g_strdup(name) };

	g_mutex_lock(&ns->lock);
	g_array_append_val(ns->notes, n);
	g_mutex_unlock(&ns->lock);
}

static guint notes_count(notes *ns, MfNotifyKind kind, guint64 ino)
{
	guint c = 0;

	g_mutex_lock(&ns->lock);
	for (guint i = 0; i < ns->notes->len; i++) {
		note *n = &g_array_index(ns->notes, note, i);
		if (n->kind == kind && n->ino == ino)
			c++;
	}
	g_mutex_unlock(&ns->lock);
	return c;
}

static guint notes_len(notes *ns)
{
	g_mutex_lock(&ns->lock);
	guint n = ns->notes->len;
	g_mutex_unlock(&ns->lock);
	return n;
}

/* ---- helpers ---- */

static char *name_of(fake_msg *fm)
{
	g_autoptr(mf_msg_meta) m = fake_meta_locked(fm);
	return mf_make_message_name(m);
}

static mf_node *root_of(mf_model *m)
{
	mf_node *r = mf_model_get(m, MF_INO_ROOT);
	g_assert_nonnull(r);
	g_assert_cmpint(r->kind, ==, MF_NODE_ROOT);
	return r;
}

/* The node at a display path ("Archive/2025"), looked up component by component. */
static mf_node *at(mf_model *m, const char *path)
{
	g_auto(GStrv) parts = g_strsplit(path, "/", -1);
	mf_node *cur = root_of(m);

	for (char **p = parts; *p; p++) {
		g_autoptr(GError) err = NULL;
		cur = mf_model_lookup(m, cur, *p, &err);
		g_assert_no_error(err);
		if (!cur)
			g_error("no node at '%s' (missing '%s')", path, *p);
	}
	return cur;
}

static void ensure(mf_model *m, mf_node *dir, int max_age)
{
	g_autoptr(GError) err = NULL;

	g_assert_true(mf_model_ensure_listing(m, dir, max_age, &err));
	g_assert_no_error(err);
}

static mf_model *model_for(fake_backend *fb, int refresh)
{
	g_autoptr(GError) err = NULL;
	mf_model *m = mf_model_new(&fb->base, refresh);

	g_assert_true(mf_model_load_folders(m, &err));
	g_assert_no_error(err);
	return m;
}

/* Names of a readdir snapshot, joined by '|'. */
static char *dirents_str(GArray *a)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < a->len; i++) {
		mf_dirent *d = &g_array_index(a, mf_dirent, i);
		if (i)
			g_string_append_c(s, '|');
		if (d->node->kind == MF_NODE_MSG)
			g_string_append_printf(s, "%u", d->node->meta->uid);
		else
			g_string_append(s, d->node->name);
	}
	return g_string_free(s, FALSE);
}

static char *readdir_str(mf_model *m, mf_node *dir, guint64 off, guint max)
{
	g_autoptr(GError) err = NULL;
	GArray *a = mf_model_readdir(m, dir, off, max, &err);

	g_assert_no_error(err);
	g_assert_nonnull(a);
	char *s = dirents_str(a);
	g_array_unref(a);
	return s;
}

/* The folders most tests use. Parents are partly implied, "Lists" is \Noselect. */
static fake_backend *tree_backend(gboolean reversed)
{
	fake_backend *fb = fake_new(CAPS_IMAP, TRUE);
	static const struct {
		const char *path, *raw;
		gboolean sel;
	} folders[] = {
		{ "INBOX", "INBOX", TRUE },
		{ "Archive/2025", "Archive.2025", TRUE },
		{ "Lists", "Lists", FALSE },
		{ "Lists/glib", "Lists.glib", TRUE },
		{ "Deep/a/b/c", "Deep.a.b.c", TRUE },
		{ "Work", "Work", TRUE },
		{ "Work/a", "Work.a", TRUE },
		{ "Work/b", "Work.b", TRUE },
	};
	guint n = G_N_ELEMENTS(folders);

	for (guint i = 0; i < n; i++) {
		guint k = reversed ? n - 1 - i : i;
		fake_add_folder(fb, folders[k].path, folders[k].raw, folders[k].sel, 1000 + k);
	}
	return fb;
}

static fake_folder *folder(fake_backend *fb, const char *raw)
{
	fake_folder *f = fake_find_folder_locked(fb, raw);
	g_assert_nonnull(f);
	return f;
}

/* ---- folder tree ---- */

static void test_tree(void)
{
	fake_backend *fb = tree_backend(FALSE);
	mf_model *m = model_for(fb, 60);
	mf_node *root = root_of(m);
	g_autofree char *top = readdir_str(m, root, 0, 100);

	g_assert_cmpuint(fb->list_folders_calls, ==, 1);
	g_assert_cmpstr(top, ==, "Archive|Deep|INBOX|Lists|Work");
	g_assert_true(mf_model_get(m, MF_INO_STATUS) != NULL);
	g_assert_cmpint(mf_model_get(m, MF_INO_STATUS)->kind, ==, MF_NODE_STATUS);

	/* An implied parent is a plain directory with no server folder behind it. */
	mf_node *archive = at(m, "Archive");
	g_assert_cmpint(archive->kind, ==, MF_NODE_DIR);
	g_assert_null(archive->folder);
	g_assert_true(archive->parent == root);
	mf_node *y2025 = at(m, "Archive/2025");
	g_assert_cmpstr(y2025->folder->raw, ==, "Archive.2025");
	g_assert_cmpstr(y2025->folder->path, ==, "Archive/2025");
	g_assert_true(y2025->parent == archive);

	mf_node *c = at(m, "Deep/a/b/c");
	g_assert_nonnull(c->folder);
	g_assert_null(at(m, "Deep/a/b")->folder);
	g_assert_null(at(m, "Deep/a")->folder);
	g_assert_true(c->parent->parent->parent == at(m, "Deep"));

	/* A \Noselect folder lists its children and is never asked for messages. */
	mf_node *lists = at(m, "Lists");
	g_assert_nonnull(lists->folder);
	g_assert_false(lists->folder->selectable);
	ensure(m, lists, 0);
	g_autofree char *ls = readdir_str(m, lists, 0, 100);
	g_assert_cmpstr(ls, ==, "glib");
	g_autoptr(GError) err = NULL;
	g_assert_null(mf_model_lookup(m, lists, "2026-01-01 0000 x - y.1.eml", &err));
	g_assert_no_error(err);
	g_assert_null(mf_model_lookup(m, archive, "2026-01-01 0000 x - y.1.eml", &err));
	g_assert_no_error(err);
	g_assert_cmpuint(fb->list_messages_calls, ==, 0);

	/* Folders with both children and messages. */
	g_autofree char *work = readdir_str(m, at(m, "Work"), 0, 100);
	g_assert_cmpstr(work, ==, "a|b");
	g_assert_cmpuint(fb->list_messages_calls, ==, 1);

	/* The status file lives in the root only. */
	g_assert_true(mf_model_lookup(m, root, MF_STATUS_NAME, &err) == mf_model_get(m, MF_INO_STATUS));
	g_assert_null(mf_model_lookup(m, at(m, "INBOX"), MF_STATUS_NAME, &err));
	g_assert_no_error(err);
	g_assert_null(mf_model_lookup(m, root, "Nope", &err));
	g_assert_no_error(err);
	/* A message is not a directory. */
	g_assert_null(mf_model_lookup(m, mf_model_get(m, MF_INO_STATUS), "x", &err));
	g_assert_no_error(err);

	mf_model_free(m);
	fake_free(&fb->base);
}

/* A child listed before its parent, and two server folders that map to one path. */
static void test_tree_order_and_duplicates(void)
{
	fake_backend *fb = fake_new(CAPS_IMAP, TRUE);

	fake_add_folder(fb, "X/y", "X/y", TRUE, 1);
	fake_add_folder(fb, "X", "X", TRUE, 1);
	fake_add_folder(fb, "Dup", "Dup-first", TRUE, 1);
	fake_add_folder(fb, "Dup", "Dup-second", TRUE, 1);
	fake_add_folder(fb, "", "empty-path", TRUE, 1);
	mf_model *m = model_for(fb, 60);
	g_autofree char *top = readdir_str(m, root_of(m), 0, 100);

	g_assert_cmpstr(top, ==, "Dup|X");
	g_assert_cmpstr(at(m, "X")->folder->raw, ==, "X");
	g_assert_cmpstr(at(m, "X/y")->folder->raw, ==, "X/y");
	g_assert_cmpstr(at(m, "Dup")->folder->raw, ==, "Dup-first");
	mf_model_free(m);
	fake_free(&fb->base);
}

/* ---- inode numbers ---- */

static void collect_dirs(mf_node *dir, GPtrArray *out)
{
	for (guint i = 0; i < dir->subdirs->len; i++) {
		mf_node *d = dir->subdirs->pdata[i];
		g_ptr_array_add(out, d);
		collect_dirs(d, out);
	}
}

static char *path_of(mf_node *n)
{
	if (!n->parent || n->parent->kind == MF_NODE_ROOT)
		return g_strdup(n->name);
	g_autofree char *p = path_of(n->parent);
	return g_strconcat(p, "/", n->name, NULL);
}

static void add_inbox_msgs(fake_backend *fb)
{
	fake_folder *inbox = folder(fb, "INBOX");
	fake_folder *work = folder(fb, "Work");

	fake_add_msg(fb, inbox, 1, 100);
	fake_add_msg(fb, inbox, 2, 200);
	fake_add_msg(fb, inbox, 4000000000u, 300);
	fake_add_msg(fb, work, 1, 100);
}

static void test_inodes_stable(void)
{
	fake_backend *fb1 = tree_backend(FALSE), *fb2 = tree_backend(TRUE);

	add_inbox_msgs(fb1);
	add_inbox_msgs(fb2);
	mf_model *m1 = model_for(fb1, 60);
	mf_model *m2 = model_for(fb1, 60); /* a remount */
	mf_model *m3 = model_for(fb2, 60); /* a remount where the server lists in another order */
	g_autoptr(GPtrArray) dirs = g_ptr_array_new();
	g_autoptr(GHashTable) seen = g_hash_table_new(g_int64_hash, g_int64_equal);

	collect_dirs(root_of(m1), dirs);
	g_assert_cmpuint(dirs->len, ==, 12);
	for (guint i = 0; i < dirs->len; i++) {
		mf_node *d = dirs->pdata[i];
		g_autofree char *p = path_of(d);
		/* Directory space: top bit clear, low 32 bits zero, never the root or status. */
		g_assert_cmpuint(d->ino >> 63, ==, 0);
		g_assert_cmpuint(d->ino & 0xffffffffu, ==, 0);
		g_assert_cmpuint(d->ino, >, MF_INO_STATUS);
		g_assert_false(g_hash_table_contains(seen, &d->ino));
		g_hash_table_add(seen, &d->ino);
		g_assert_true(mf_model_get(m1, d->ino) == d);
		g_assert_cmpuint(at(m2, p)->ino, ==, d->ino);
		g_assert_cmpuint(at(m3, p)->ino, ==, d->ino);
	}

	mf_node *inbox1 = at(m1, "INBOX"), *inbox2 = at(m2, "INBOX"), *inbox3 = at(m3, "INBOX");
	ensure(m1, inbox1, -1);
	ensure(m2, inbox2, -1);
	ensure(m3, inbox3, -1);
	g_assert_cmpuint(inbox1->msgs->len, ==, 3);
	guint64 base = 0;
	for (guint i = 0; i < inbox1->msgs->len; i++) {
		mf_node *n = inbox1->msgs->pdata[i];
		/* Message space: top bit set, UID in the low 32 bits, one base per folder epoch. */
		g_assert_cmpuint(n->ino >> 63, ==, 1);
		g_assert_cmpuint(n->ino & 0xffffffffu, ==, n->meta->uid);
		if (i == 0)
			base = n->ino >> 32;
		g_assert_cmpuint(n->ino >> 32, ==, base);
		g_assert_false(g_hash_table_contains(seen, &n->ino));
		g_hash_table_add(seen, &n->ino);
		g_assert_true(mf_model_get(m1, n->ino) == n);
		g_autoptr(GError) err = NULL;
		mf_node *n2 = mf_model_lookup(m2, inbox2, n->name, &err);
		mf_node *n3 = mf_model_lookup(m3, inbox3, n->name, &err);
		g_assert_no_error(err);
		g_assert_nonnull(n2);
		g_assert_nonnull(n3);
		g_assert_cmpuint(n2->ino, ==, n->ino);
		g_assert_cmpuint(n3->ino, ==, n->ino);
	}
	/* UID 1 of another folder is another file. */
	mf_node *work = at(m1, "Work");
	ensure(m1, work, -1);
	mf_node *w1 = fake_node_by_uid(work, 1);
	g_assert_cmpuint(w1->ino, !=, fake_node_by_uid(inbox1, 1)->ino);
	g_assert_cmpuint(w1->ino & 0xffffffffu, ==, 1);
	g_autofree char *k1 = mf_model_body_key(w1);
	g_autofree char *k2 = mf_model_body_key(fake_node_by_uid(inbox1, 1));
	g_assert_cmpstr(k1, !=, k2);

	mf_model_free(m1);
	mf_model_free(m2);
	mf_model_free(m3);
	fake_free(&fb1->base);
	fake_free(&fb2->base);
}

/* A new UIDVALIDITY: every message is a new file with a new inode, under the same name. */
static void test_uidvalidity_change(void)
{
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fi = folder(fb, "INBOX");
	notes ns;

	notes_init(&ns);
	fake_add_msg(fb, fi, 1, 100);
	fake_add_msg(fb, fi, 2, 200);
	mf_model *m = model_for(fb, 60);
	mf_model_set_notify(m, on_notify, &ns);
	mf_node *inbox = at(m, "INBOX");
	ensure(m, inbox, -1);
	mf_node *old1 = fake_node_by_uid(inbox, 1), *old2 = fake_node_by_uid(inbox, 2);
	g_autofree char *oldkey = mf_model_body_key(old1);
	g_assert_cmpuint(old1->msg_uidvalidity, ==, fi->uidvalidity);

	g_mutex_lock(&fb->lock);
	fi->uidvalidity += 77;
	g_mutex_unlock(&fb->lock);
	ensure(m, inbox, 0);

	g_assert_cmpuint(inbox->uidvalidity, ==, fi->uidvalidity);
	g_assert_cmpuint(inbox->msgs->len, ==, 2);
	g_assert_true(old1->gone);
	g_assert_true(old2->gone);
	g_assert_true(mf_model_get(m, old1->ino) == old1); /* the kernel may still ask */
	g_autoptr(GError) err = NULL;
	mf_node *new1 = mf_model_lookup(m, inbox, old1->name, &err);
	g_assert_no_error(err);
	g_assert_nonnull(new1);
	g_assert_true(new1 != old1);
	g_assert_false(new1->gone);
	g_assert_cmpuint(new1->ino, !=, old1->ino);
	g_assert_cmpuint(new1->ino & 0xffffffffu, ==, 1);
	g_assert_cmpuint(new1->msg_uidvalidity, ==, fi->uidvalidity);
	g_autofree char *newkey = mf_model_body_key(new1);
	g_assert_cmpstr(newkey, !=, oldkey);
	mf_node *new2 = fake_node_by_uid(inbox, 2);
	g_assert_nonnull(new2);
	g_assert_cmpuint(new2->ino, !=, old2->ino);
	g_assert_cmpuint(notes_count(&ns, MF_NOTIFY_INVAL_ENTRY, old1->ino), ==, 1);
	g_assert_cmpuint(notes_count(&ns, MF_NOTIFY_INVAL_ENTRY, old2->ino), ==, 1);
	g_assert_cmpuint(notes_count(&ns, MF_NOTIFY_INVAL_INODE, inbox->ino), ==, 1);

	/* Going back to the old epoch (a server restored from backup) gives the old numbers. */
	g_mutex_lock(&fb->lock);
	fi->uidvalidity -= 77;
	g_mutex_unlock(&fb->lock);
	ensure(m, inbox, 0);
	mf_node *back1 = fake_node_by_uid(inbox, 1);
	g_assert_nonnull(back1);
	g_assert_cmpuint(back1->ino, ==, old1->ino);
	g_assert_true(mf_model_get(m, old1->ino) == back1);
	g_assert_true(mf_model_lookup(m, inbox, old1->name, &err) == back1);

	mf_model_free(m);
	fake_free(&fb->base);
	notes_clear(&ns);
}

/* ---- lookups ---- */

static void test_lookup_without_readdir(void)
{
	fake_backend *fb = tree_backend(FALSE);
	fake_msg *a = fake_add_msg(fb, folder(fb, "Archive.2025"), 7, 1234);
	g_autofree char *name = name_of(a);
	mf_model *m = model_for(fb, 60);
	g_autoptr(GError) err = NULL;

	mf_node *archive = mf_model_lookup(m, root_of(m), "Archive", &err);
	g_assert_no_error(err);
	mf_node *y = mf_model_lookup(m, archive, "2025", &err);
	g_assert_no_error(err);
	g_assert_nonnull(y);
	g_assert_cmpuint(fb->list_messages_calls, ==, 0);
	mf_node *n = mf_model_lookup(m, y, name, &err);
	g_assert_no_error(err);
	g_assert_nonnull(n);
	g_assert_cmpint(n->kind, ==, MF_NODE_MSG);
	g_assert_cmpuint(n->meta->uid, ==, 7);
	g_assert_cmpuint(mf_model_msg_size(m, n, NULL), ==, 1234);
	g_assert_true(n->parent == y);
	g_assert_cmpuint(fb->list_messages_calls, ==, 1);
	/* Within the refresh interval, a second lookup is answered from memory. */
	g_assert_true(mf_model_lookup(m, y, name, &err) == n);
	g_assert_cmpuint(fb->list_messages_calls, ==, 1);
	g_assert_true(mf_model_get(m, n->ino) == n);

	mf_model_free(m);
	fake_free(&fb->base);
}

static void test_lookup_new_message_refreshes(void)
{
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fi = folder(fb, "INBOX");
	g_autoptr(GError) err = NULL;

	fake_add_msg(fb, fi, 1, 100);
	mf_model *m = model_for(fb, 60);
	mf_node *inbox = at(m, "INBOX");
	ensure(m, inbox, -1);
	g_assert_cmpuint(fb->list_messages_calls, ==, 1);

	fake_msg *fresh = fake_add_msg(fb, fi, 2, 222);
	g_autofree char *name = name_of(fresh);
	/* A miss right after a listing is not worth a round trip (shells probe names a lot). */
	g_assert_null(mf_model_lookup(m, inbox, name, &err));
	g_assert_no_error(err);
	g_assert_cmpuint(fb->list_messages_calls, ==, 1);

	/* Two seconds later, the same miss lists the folder again and finds the new mail,
	 * although the normal refresh interval (60 s) has not passed. */
	inbox->loaded_at -= 3 * G_USEC_PER_SEC;
	mf_node *n = mf_model_lookup(m, inbox, name, &err);
	g_assert_no_error(err);
	g_assert_nonnull(n);
	g_assert_cmpuint(n->meta->uid, ==, 2);
	g_assert_cmpuint(fb->list_messages_calls, ==, 2);

	/* A name that cannot be a message file never causes a listing. */
	inbox->loaded_at -= 3 * G_USEC_PER_SEC;
	g_assert_null(mf_model_lookup(m, inbox, "notes.txt", &err));
	g_assert_no_error(err);
	g_assert_cmpuint(fb->list_messages_calls, ==, 2);

	mf_model_free(m);
	fake_free(&fb->base);
}

/* ---- merging a refreshed listing ---- */

static void test_merge_on_refresh(void)
{
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fi = folder(fb, "INBOX");
	notes ns;
	g_autoptr(GError) err = NULL;

	notes_init(&ns);
	fake_add_msg(fb, fi, 1, 100);
	fake_add_msg(fb, fi, 2, 200);
	fake_add_msg(fb, fi, 3, 300);
	mf_model *m = model_for(fb, 60);
	mf_model_set_notify(m, on_notify, &ns);
	mf_node *inbox = at(m, "INBOX");
	ensure(m, inbox, -1);
	g_assert_cmpuint(notes_len(&ns), ==, 0); /* a first listing has nothing to invalidate */
	mf_node *n1 = fake_node_by_uid(inbox, 1), *n2 = fake_node_by_uid(inbox, 2), *n3 = fake_node_by_uid(inbox, 3);
	g_autofree char *name3 = g_strdup(n3->name);
	gboolean exact = TRUE;
	g_assert_cmpuint(mf_model_msg_size(m, n2, &exact), ==, 200);
	g_assert_false(exact);

	/* The reader learned the true size of message 2. A meta handed out before keeps what it
	 * said: metas are shared, and changed only as copies. */
	g_autoptr(mf_msg_meta) before = mf_model_msg_meta(m, n2);
	mf_model_set_exact_size(m, n2, 250);
	g_assert_cmpuint(notes_count(&ns, MF_NOTIFY_INVAL_INODE, n2->ino), ==, 1);
	g_assert_cmpuint(before->size, ==, 200);
	g_assert_false(before->size_exact);
	g_autoptr(mf_msg_meta) after = mf_model_msg_meta(m, n2);
	g_assert_cmpuint(after->size, ==, 250);
	g_assert_true(after->size_exact);
	mf_model_set_exact_size(m, n2, 250); /* no change, no notification */
	g_assert_cmpuint(notes_count(&ns, MF_NOTIFY_INVAL_INODE, n2->ino), ==, 1);
	notes_reset(&ns);

	/* Elsewhere: 1 is read, 3 is expunged, 5 arrives. */
	g_mutex_lock(&fb->lock);
	fake_find_msg_locked(fi, 1)->flags = g_strdup("\\Seen");
	g_mutex_unlock(&fb->lock);
	fake_remove_msg(fb, fi, 3);
	fake_add_msg(fb, fi, 5, 500);
	ensure(m, inbox, 0);

	g_assert_cmpuint(inbox->msgs->len, ==, 3);
	g_assert_true(inbox->msgs->pdata[0] == n1);
	g_assert_true(inbox->msgs->pdata[1] == n2);
	mf_node *n5 = inbox->msgs->pdata[2];
	g_assert_cmpuint(n5->meta->uid, ==, 5);
	g_assert_cmpuint(n5->index, ==, 2);
	g_assert_false(n5->gone);
	g_autoptr(mf_msg_meta) meta1 = mf_model_msg_meta(m, n1);
	g_assert_cmpstr(meta1->flags, ==, "\\Seen");
	g_assert_cmpuint(mf_model_msg_size(m, n2, &exact), ==, 250);
	g_assert_true(exact);
	g_assert_true(n3->gone);
	g_assert_false(n1->gone || n2->gone);
	g_assert_null(mf_model_lookup(m, inbox, name3, &err));
	g_assert_no_error(err);
	g_assert_true(mf_model_lookup(m, inbox, n5->name, &err) == n5);

	/* The kernel hears: the entry of 3 is gone, and the directory changed. */
	g_assert_cmpuint(notes_len(&ns), ==, 2);
	g_mutex_lock(&ns.lock);
	for (guint i = 0; i < ns.notes->len; i++) {
		note *no = &g_array_index(ns.notes, note, i);
		if (no->kind == MF_NOTIFY_INVAL_ENTRY) {
			g_assert_cmpuint(no->parent, ==, inbox->ino);
			g_assert_cmpuint(no->ino, ==, n3->ino);
			g_assert_cmpstr(no->name, ==, name3);
		} else {
			g_assert_cmpuint(no->ino, ==, inbox->ino);
		}
	}
	g_mutex_unlock(&ns.lock);

	/* A refresh that changes nothing tells the kernel nothing. */
	notes_reset(&ns);
	ensure(m, inbox, 0);
	g_assert_cmpuint(notes_len(&ns), ==, 0);
	g_assert_cmpuint(fb->list_messages_calls, ==, 3);

	/* A message that comes back under the same UID (a flaky server) is a new node with the
	 * same inode; the old node stays gone. */
	fake_msg *again = fake_add_msg(fb, fi, 3, 300);
	(void)again;
	ensure(m, inbox, 0);
	mf_node *n3b = fake_node_by_uid(inbox, 3);
	g_assert_nonnull(n3b);
	g_assert_false(n3b->gone);
	g_assert_cmpuint(n3b->ino, ==, n3->ino);
	g_assert_true(mf_model_get(m, n3->ino) == n3b);
	g_assert_cmpuint(n3b->index, ==, 2);
	g_assert_cmpuint(n5->index, ==, 3);

	mf_model_free(m);
	fake_free(&fb->base);
	notes_clear(&ns);
}

/* The listing is kept when the server cannot be reached; a first listing fails loudly. */
static void test_refresh_failure(void)
{
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fi = folder(fb, "INBOX");
	notes ns;
	g_autoptr(GError) err = NULL;

	notes_init(&ns);
	fake_add_msg(fb, fi, 1, 100);
	fake_add_msg(fb, fi, 2, 200);
	fake_add_msg(fb, folder(fb, "Work"), 9, 900);
	mf_model *m = model_for(fb, 60);
	mf_model_set_notify(m, on_notify, &ns);
	mf_node *inbox = at(m, "INBOX");
	ensure(m, inbox, -1);
	mf_node *n2 = fake_node_by_uid(inbox, 2);

	fb->fail_list_messages = TRUE;
	fake_remove_msg(fb, fi, 2);
	fake_add_msg(fb, fi, 3, 300);
	ensure(m, inbox, 0);
	g_assert_cmpuint(fb->list_messages_calls, ==, 2);
	g_autofree char *s = readdir_str(m, inbox, 0, 100);
	g_assert_cmpstr(s, ==, "1|2");
	g_assert_false(n2->gone);
	g_assert_true(mf_model_lookup(m, inbox, n2->name, &err) == n2);
	g_assert_no_error(err);
	g_assert_cmpuint(notes_len(&ns), ==, 0);

	/* No listing yet: the error reaches the caller, for lookup and readdir alike. */
	mf_node *work = at(m, "Work");
	g_assert_false(mf_model_ensure_listing(m, work, -1, &err));
	g_assert_error(err, MF_ERROR, MF_ERR_NET);
	g_clear_error(&err);
	g_assert_null(mf_model_lookup(m, work, "2026-01-01 0000 x - y.9.eml", &err));
	g_assert_error(err, MF_ERROR, MF_ERR_NET);
	g_clear_error(&err);
	g_assert_null(mf_model_readdir(m, work, 0, 100, &err));
	g_assert_error(err, MF_ERROR, MF_ERR_NET);
	g_clear_error(&err);
	g_assert_false(work->loaded);

	fb->fail_list_messages = FALSE;
	ensure(m, inbox, 0);
	g_autofree char *s2 = readdir_str(m, inbox, 0, 100);
	g_assert_cmpstr(s2, ==, "1|3");
	g_assert_true(n2->gone);
	g_autofree char *w = readdir_str(m, work, 0, 100);
	g_assert_cmpstr(w, ==, "a|b|9");

	mf_model_free(m);
	fake_free(&fb->base);
	notes_clear(&ns);
}

/* ---- readdir cookies ---- */

static void test_readdir_cookies(void)
{
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fw = folder(fb, "Work");

	for (guint32 uid = 10; uid <= 50; uid += 10)
		fake_add_msg(fb, fw, uid, uid);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");
	g_autoptr(GError) err = NULL;
	GArray *all = mf_model_readdir(m, work, 0, 100, &err);
	g_assert_no_error(err);
	g_autofree char *all_s = dirents_str(all);
	g_assert_cmpstr(all_s, ==, "a|b|10|20|30|40|50");
	guint64 prev = 0;
	for (guint i = 0; i < all->len; i++) {
		mf_dirent *d = &g_array_index(all, mf_dirent, i);
		g_assert_cmpuint(d->next_off, >=, MF_DIROFF_FIRST);
		g_assert_cmpuint(d->next_off, >, prev);
		prev = d->next_off;
		/* Continuing after any entry gives exactly the entries after it. */
		g_autoptr(GArray) rest = mf_model_readdir(m, work, d->next_off, 100, &err);
		g_assert_no_error(err);
		g_assert_cmpuint(rest->len, ==, all->len - i - 1);
		for (guint j = 0; j < rest->len; j++)
			g_assert_true(g_array_index(rest, mf_dirent, j).node == g_array_index(all, mf_dirent, i + 1 + j).node);
	}
	/* Any offset the fs layer keeps for itself (".", "..") starts at the beginning. */
	g_autofree char *from3 = readdir_str(m, work, 3, 100);
	g_assert_cmpstr(from3, ==, all_s);

	/* Paging with every buffer size gives the same sequence. */
	for (guint max = 1; max <= 8; max++) {
		GString *paged = g_string_new(NULL);
		guint64 off = 0;
		for (;;) {
			g_autoptr(GArray) page = mf_model_readdir(m, work, off, max, &err);
			g_assert_no_error(err);
			g_assert_cmpuint(page->len, <=, max);
			if (page->len == 0)
				break;
			g_autofree char *ps = dirents_str(page);
			if (paged->len)
				g_string_append_c(paged, '|');
			g_string_append(paged, ps);
			off = g_array_index(page, mf_dirent, page->len - 1).next_off;
		}
		g_assert_cmpstr(paged->str, ==, all_s);
		g_string_free(paged, TRUE);
	}
	g_array_unref(all);

	/* ls has read a, b, 10, 20 when 10 and 20 are expunged and 60 arrives: the rest is
	 * 30, 40, 50, 60, nothing skipped, nothing twice. */
	g_autoptr(GArray) first = mf_model_readdir(m, work, 0, 4, &err);
	g_assert_no_error(err);
	g_autofree char *first_s = dirents_str(first);
	g_assert_cmpstr(first_s, ==, "a|b|10|20");
	guint64 cookie = g_array_index(first, mf_dirent, 3).next_off;
	fake_remove_msg(fb, fw, 10);
	fake_remove_msg(fb, fw, 20);
	fake_add_msg(fb, fw, 60, 60);
	ensure(m, work, 0);
	g_autofree char *rest = readdir_str(m, work, cookie, 100);
	g_assert_cmpstr(rest, ==, "30|40|50|60");

	/* Expunging the entry a cookie names and the next one at once. */
	g_autoptr(GArray) two = mf_model_readdir(m, work, cookie, 2, &err);
	g_assert_no_error(err);
	guint64 after40 = g_array_index(two, mf_dirent, 1).next_off;
	fake_remove_msg(fb, fw, 40);
	fake_remove_msg(fb, fw, 50);
	fake_add_msg(fb, fw, 70, 70);
	ensure(m, work, 0);
	g_autofree char *rest2 = readdir_str(m, work, after40, 100);
	g_assert_cmpstr(rest2, ==, "60|70");

	/* A cookie in the subdirectory range continues with the messages. */
	g_autofree char *after_a = readdir_str(m, work, MF_DIROFF_FIRST + 1, 100);
	g_assert_cmpstr(after_a, ==, "b|30|60|70");
	/* The last cookie gives an empty page, also for a UID near the top of the range. */
	g_autofree char *end = readdir_str(m, work, (1ULL << 32) + 71, 100);
	g_assert_cmpstr(end, ==, "");

	mf_model_free(m);
	fake_free(&fb->base);
}

/* A message with UID 2^32-1: its cookie must not wrap. */
static void test_readdir_max_uid(void)
{
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fi = folder(fb, "INBOX");

	fake_add_msg(fb, fi, 5, 5);
	fake_add_msg(fb, fi, G_MAXUINT32, 6);
	mf_model *m = model_for(fb, 60);
	mf_node *inbox = at(m, "INBOX");
	g_autoptr(GError) err = NULL;
	g_autoptr(GArray) a = mf_model_readdir(m, inbox, 0, 1, &err);
	g_assert_no_error(err);
	g_autofree char *s = readdir_str(m, inbox, g_array_index(a, mf_dirent, 0).next_off, 100);
	g_assert_cmpstr(s, ==, "4294967295");
	g_autoptr(GArray) b = mf_model_readdir(m, inbox, 0, 100, &err);
	g_autofree char *e = readdir_str(m, inbox, g_array_index(b, mf_dirent, 1).next_off, 100);
	g_assert_cmpstr(e, ==, "");
	mf_model_free(m);
	fake_free(&fb->base);
}

/* ---- folder order for read-ahead ---- */

static char *nodes_str(GPtrArray *a)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < a->len; i++)
		g_string_append_printf(s, "%s%u", i ? "|" : "", ((mf_node *)a->pdata[i])->meta->uid);
	return g_string_free(s, FALSE);
}

static char *next_str(mf_model *m, mf_node *msg, guint max)
{
	g_autoptr(GPtrArray) a = mf_model_next_msgs(m, msg, max);
	return nodes_str(a);
}

static void test_next_msgs(void)
{
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fi = folder(fb, "INBOX");

	for (guint32 uid = 1; uid <= 5; uid++)
		fake_add_msg(fb, fi, uid, 10);
	mf_model *m = model_for(fb, 60);
	mf_node *inbox = at(m, "INBOX");
	ensure(m, inbox, -1);
	mf_node *n[6];
	for (guint32 uid = 1; uid <= 5; uid++)
		n[uid] = fake_node_by_uid(inbox, uid);

	g_autofree char *a = next_str(m, n[1], 2);
	g_assert_cmpstr(a, ==, "2|3");
	g_autofree char *b = next_str(m, n[4], 10);
	g_assert_cmpstr(b, ==, "5");
	g_autofree char *c = next_str(m, n[5], 10);
	g_assert_cmpstr(c, ==, "");
	g_autofree char *d = next_str(m, n[1], 0);
	g_assert_cmpstr(d, ==, "");

	fake_remove_msg(fb, fi, 3);
	fake_add_msg(fb, fi, 6, 10);
	ensure(m, inbox, 0);
	g_autofree char *e = next_str(m, n[2], 10);
	g_assert_cmpstr(e, ==, "4|5|6");
	g_autofree char *f = next_str(m, n[3], 10);
	g_assert_cmpstr(f, ==, ""); /* gone */
	g_autofree char *g = next_str(m, n[5], 10);
	g_assert_cmpstr(g, ==, "6");

	mf_model_free(m);
	fake_free(&fb->base);
}

/* ---- the size-trust probe ---- */

/* Lists INBOX on a fresh model; returns size_untrusted and the number of probe fetches. */
static gboolean probe(fake_backend *fb, guint *probes)
{
	mf_model *m = model_for(fb, 60);
	mf_node *inbox = at(m, "INBOX");
	guint before = fake_fetch_count(fb);

	ensure(m, inbox, -1);
	gboolean untrusted = inbox->size_untrusted;
	*probes = fake_fetch_count(fb) - before;
	for (guint i = before; i < fake_fetch_count(fb); i++) {
		fake_fetch f = fake_fetch_at(fb, i);
		mf_node *n = fake_node_by_uid(inbox, f.uid);
		/* A probe asks for the last octet and one more. */
		g_assert_cmpuint(f.len, ==, 2);
		g_assert_cmpuint(f.off + 1, ==, n->meta->size);
	}
	/* Refreshing does not probe again. */
	guint after = fake_fetch_count(fb);
	ensure(m, inbox, 0);
	g_assert_cmpuint(fake_fetch_count(fb), ==, after);
	g_assert_cmpint(inbox->size_untrusted, ==, untrusted);
	mf_model_free(m);
	return untrusted;
}

static void test_size_probe(void)
{
	guint probes;

	/* Honest server: three probes (first, middle, last), sizes trusted. */
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fi = folder(fb, "INBOX");
	for (guint32 uid = 1; uid <= 7; uid++)
		fake_add_msg(fb, fi, uid, 1000 * uid);
	g_assert_false(probe(fb, &probes));
	g_assert_cmpuint(probes, ==, 3);

	/* The same server with a size that is too big, then too small, on the last message. */
	fake_msg *last = fake_find_msg_locked(fi, 7);
	last->advertised = 7000 + 10;
	g_assert_true(probe(fb, &probes));
	last->advertised = 7000 - 10;
	g_assert_true(probe(fb, &probes));
	last->advertised = 7000;
	/* ... and on the middle one. */
	fake_find_msg_locked(fi, 4)->advertised = 3;
	g_assert_true(probe(fb, &probes));
	fake_find_msg_locked(fi, 4)->advertised = 4000;
	g_assert_false(probe(fb, &probes));
	fake_free(&fb->base);

	/* One message: one probe. Empty folder: none. Size 0 cannot be probed. */
	fb = tree_backend(FALSE);
	fi = folder(fb, "INBOX");
	g_assert_false(probe(fb, &probes));
	g_assert_cmpuint(probes, ==, 0);
	fake_msg *only = fake_add_msg(fb, fi, 1, 500);
	g_assert_false(probe(fb, &probes));
	g_assert_cmpuint(probes, ==, 1);
	only->advertised = 0;
	g_assert_false(probe(fb, &probes));
	g_assert_cmpuint(probes, ==, 0);
	fake_free(&fb->base);

	/* A backend without partial fetch (POP3) checks every whole fetch instead. */
	fb = fake_new(MF_BACKEND_FOLDERS, FALSE);
	fi = fake_add_folder(fb, "INBOX", "INBOX", TRUE, 1);
	fake_add_msg(fb, fi, 1, 500)->advertised = 900;
	g_assert_false(probe(fb, &probes));
	g_assert_cmpuint(probes, ==, 0);
	fake_free(&fb->base);
}

/* ---- threads ---- */

typedef struct {
	mf_model *m;
	mf_node *dir;
	gint stop;
} hammer_ctx;

static gpointer hammer(gpointer data)
{
	hammer_ctx *c = data;

	while (!g_atomic_int_get(&c->stop)) {
		g_autoptr(GError) err = NULL;
		g_assert_true(mf_model_ensure_listing(c->m, c->dir, 0, &err));
		g_autoptr(GArray) a = mf_model_readdir(c->m, c->dir, 0, 1000, &err);
		g_assert_no_error(err);
		guint32 prev = 0;
		for (guint i = 0; i < a->len; i++) {
			mf_node *n = g_array_index(a, mf_dirent, i).node;
			g_assert_cmpuint(n->meta->uid, >, prev);
			prev = n->meta->uid;
			g_autoptr(GPtrArray) next = mf_model_next_msgs(c->m, n, 3);
			g_assert_cmpuint(next->len, <=, 3);
			mf_model_msg_size(c->m, n, NULL);
			g_autoptr(mf_msg_meta) meta = mf_model_msg_meta(c->m, n);
			if (i % 7 == 0)
				mf_model_set_exact_size(c->m, n, meta->size);
		}
	}
	return NULL;
}

/* Refreshes racing with readdir and attribute reads while the server changes. */
static void test_concurrent_refresh(void)
{
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fi = folder(fb, "INBOX");
	notes ns;

	notes_init(&ns);
	for (guint32 uid = 1; uid <= 50; uid++)
		fake_add_msg(fb, fi, uid, 100 + uid);
	mf_model *m = model_for(fb, 60);
	mf_model_set_notify(m, on_notify, &ns);
	hammer_ctx c = { m, at(m, "INBOX"), 0 };
	GThread *t[4];
	for (guint i = 0; i < G_N_ELEMENTS(t); i++)
		t[i] = g_thread_new("hammer", hammer, &c);
	for (guint32 round = 0; round < 200; round++) {
		fake_add_msg(fb, fi, 51 + round, 10);
		fake_remove_msg(fb, fi, 1 + round / 4);
		g_usleep(200);
	}
	g_atomic_int_set(&c.stop, 1);
	for (guint i = 0; i < G_N_ELEMENTS(t); i++)
		g_thread_join(t[i]);
	ensure(m, c.dir, 0);
	g_assert_cmpuint(c.dir->msgs->len, ==, fi->msgs->len);
	mf_model_free(m);
	fake_free(&fb->base);
	notes_clear(&ns);
}

/* ---- a first listing streamed in the background (mf_model_open_dir) ---- */

/* A call that may block, run on its own thread so that the test can never hang: it is waited
 * for with a deadline, and a call still blocked after 10 s fails the test. */
typedef struct {
	GMutex lock;
	GCond cond;
	gboolean done;
	GThreadFunc fn;
	gpointer data, result;
	GThread *thread;
} bg_call;

static gpointer bg_main(gpointer p)
{
	bg_call *b = p;
	gpointer r = b->fn(b->data);

	g_mutex_lock(&b->lock);
	b->result = r;
	b->done = TRUE;
	g_cond_broadcast(&b->cond);
	g_mutex_unlock(&b->lock);
	return NULL;
}

static bg_call *bg_start(GThreadFunc fn, gpointer data)
{
	bg_call *b = g_new0(bg_call, 1);

	g_mutex_init(&b->lock);
	g_cond_init(&b->cond);
	b->fn = fn;
	b->data = data;
	b->thread = g_thread_new("bg-call", bg_main, b);
	return b;
}

/* Whether the call has returned within `ms` milliseconds. */
static gboolean bg_wait(bg_call *b, guint ms)
{
	gint64 until = g_get_monotonic_time() + (gint64)ms * 1000;

	g_mutex_lock(&b->lock);
	while (!b->done && g_cond_wait_until(&b->cond, &b->lock, until))
		;
	gboolean done = b->done;
	g_mutex_unlock(&b->lock);
	return done;
}

/* The call's result, once it has returned (within 10 s, or the test fails). */
static gpointer bg_join(bg_call *b)
{
	if (!bg_wait(b, 10000))
		g_error("a model call is still blocked after 10 s");
	g_thread_join(b->thread);
	gpointer r = b->result;
	g_mutex_clear(&b->lock);
	g_cond_clear(&b->cond);
	g_free(b);
	return r;
}

typedef struct {
	mf_model *m;
	mf_node *dir;
	guint64 off;
	guint max;
	GError *err;
} readdir_call;

static gpointer readdir_main(gpointer p)
{
	readdir_call *c = p;
	return mf_model_readdir(c->m, c->dir, c->off, c->max, &c->err);
}

typedef struct {
	mf_model *m;
	mf_node *dir;
	const char *name;
	GError *err;
} lookup_call;

static gpointer lookup_main(gpointer p)
{
	lookup_call *c = p;
	return mf_model_lookup(c->m, c->dir, c->name, &c->err);
}

static gpointer free_main(gpointer p)
{
	mf_model_free(p);
	return NULL;
}

/* "Work" (subfolders a and b) holds `n` messages, UIDs 3, 6, ..., 3n; the backend streams. */
static fake_backend *stream_backend(guint n, const fake_stream_opts *o)
{
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fw = folder(fb, "Work");

	for (guint32 i = 1; i <= n; i++)
		fake_add_msg(fb, fw, 3 * i, 100 + i);
	fake_use_streaming(fb, o);
	return fb;
}

/* "a|b|3|6|..." up to UID 3*last, from UID 3*first (subfolders only when first is 1). */
static char *uids_str(guint first, guint last)
{
	GString *s = g_string_new(first == 1 ? "a|b" : NULL);

	for (guint i = first; i <= last; i++)
		g_string_append_printf(s, "%s%u", s->len ? "|" : "", 3 * i);
	return g_string_free(s, FALSE);
}

static void open_dir(mf_model *m, mf_node *dir)
{
	g_autoptr(GError) err = NULL;

	g_assert_true(mf_model_open_dir(m, dir, &err));
	g_assert_no_error(err);
}

/* readdir in the background, so that a call that blocks cannot hang the test. */
static bg_call *readdir_bg(readdir_call *c, mf_model *m, mf_node *dir, guint64 off, guint max)
{
	*c = (readdir_call){ m, dir, off, max, NULL };
	return bg_start(readdir_main, c);
}

/* Entries from `off` to the end, `max` at a time, as "name@ino|..."; *uids gets the same as
 * dirents_str. Every call bounded. */
static char *readdir_rest(mf_model *m, mf_node *dir, guint64 off, guint max, char **uids)
{
	GString *s = g_string_new(NULL), *u = g_string_new(NULL);

	for (;;) {
		readdir_call c;
		GArray *page = bg_join(readdir_bg(&c, m, dir, off, max));
		g_assert_no_error(c.err);
		g_assert_nonnull(page);
		g_assert_cmpuint(page->len, <=, max);
		if (page->len == 0) {
			g_array_unref(page);
			break;
		}
		for (guint i = 0; i < page->len; i++) {
			mf_dirent *d = &g_array_index(page, mf_dirent, i);
			g_assert_cmpuint(d->next_off, >, off);
			off = d->next_off;
			g_string_append_printf(s, "%s%s@%" G_GINT64_MODIFIER "x", s->len ? "|" : "",
					       d->node->name, d->node->ino);
		}
		g_autofree char *ps = dirents_str(page);
		g_string_append_printf(u, "%s%s", u->len ? "|" : "", ps);
		g_array_unref(page);
	}
	if (uids)
		*uids = g_string_free(u, FALSE);
	else
		g_string_free(u, TRUE);
	return g_string_free(s, FALSE);
}

/* The same rendering for a fresh model that lists `path` the plain way (no stream). */
static char *plain_listing(fake_backend *fb, const char *path)
{
	mf_model *m = model_for(fb, 60);
	mf_node *d = at(m, path);

	ensure(m, d, -1);
	char *s = readdir_rest(m, d, 0, 1000, NULL);
	mf_model_free(m);
	return s;
}

/* Once a streamed listing is done the folder is exactly its listing: each message once, in
 * UID order, of the folder's current epoch, found by name and by inode. */
static void check_folder_consistent(mf_model *m, mf_node *dir, fake_folder *ff)
{
	/* Reading to the end also waits for the background listing to be over. */
	g_free(readdir_rest(m, dir, 0, 1000, NULL));
	g_assert_true(dir->loaded);
	g_assert_false(dir->streaming);
	g_assert_cmpuint(dir->uidvalidity, ==, ff->uidvalidity);
	g_assert_cmpuint(dir->msgs->len, ==, ff->msgs->len);
	g_assert_cmpuint(g_hash_table_size(dir->by_name), ==, dir->msgs->len + dir->subdirs->len);
	for (guint i = 0; i < dir->msgs->len; i++) {
		mf_node *n = dir->msgs->pdata[i];
		g_assert_cmpuint(n->meta->uid, ==, ((fake_msg *)ff->msgs->pdata[i])->uid);
		g_assert_cmpuint(n->index, ==, i);
		g_assert_false(n->gone);
		g_assert_cmpuint(n->msg_uidvalidity, ==, ff->uidvalidity);
		g_assert_true(g_hash_table_lookup(dir->by_name, n->name) == n);
		g_assert_true(mf_model_get(m, n->ino) == n);
	}
}

/* (a) readdir while the envelopes arrive serves what is in, then continues from its cookie
 * without repeats or gaps until the end; the result is what a plain listing gives. */
static void test_stream_readdir_while_arriving(void)
{
	fake_stream_opts o = fake_stream_defaults; /* batches of 4, verdict (honest) first */
	o.gated = TRUE;
	fake_backend *fb = stream_backend(20, &o);
	notes ns;

	notes_init(&ns);
	mf_model *m = model_for(fb, 60);
	mf_model_set_notify(m, on_notify, &ns);
	mf_node *work = at(m, "Work");
	open_dir(m, work);
	g_assert_false(work->loaded);

	/* The verdict and two batches are in. */
	fake_stream_release(fb, 3);
	g_assert_true(fake_stream_wait_steps(fb, 3));
	readdir_call c;
	GArray *first = bg_join(readdir_bg(&c, m, work, 0, 100));
	g_assert_no_error(c.err);
	g_autofree char *first_s = dirents_str(first);
	g_autofree char *want_first = uids_str(1, 8);
	g_assert_cmpstr(first_s, ==, want_first);
	guint64 cookie = g_array_index(first, mf_dirent, first->len - 1).next_off;
	g_array_unref(first);
	/* The same again from the start, in small pages. */
	g_autofree char *again = NULL;
	{
		GString *s = g_string_new(NULL);
		guint64 off = 0;
		while (!g_str_has_suffix(s->str, "|24")) {
			GArray *p = bg_join(readdir_bg(&c, m, work, off, 3));
			g_assert_no_error(c.err);
			g_assert_cmpuint(p->len, >, 0);
			g_autofree char *ps = dirents_str(p);
			g_string_append_printf(s, "%s%s", s->len ? "|" : "", ps);
			off = g_array_index(p, mf_dirent, p->len - 1).next_off;
			g_array_unref(p);
		}
		again = g_string_free(s, FALSE);
	}
	g_assert_cmpstr(again, ==, want_first);

	/* The caller has seen everything so far: readdir waits for the next batch. */
	bg_call *w = readdir_bg(&c, m, work, cookie, 100);
	g_assert_false(bg_wait(w, 200));
	fake_stream_release(fb, 1);
	GArray *next = bg_join(w);
	g_assert_no_error(c.err);
	g_autofree char *next_s = dirents_str(next);
	g_autofree char *want_next = uids_str(9, 12);
	g_assert_cmpstr(next_s, ==, want_next);
	cookie = g_array_index(next, mf_dirent, next->len - 1).next_off;
	g_array_unref(next);

	/* The rest, in pages of 3 that straddle the batches, while they arrive. */
	fake_stream_release(fb, G_MAXUINT);
	g_autofree char *rest_u = NULL;
	g_autofree char *rest = readdir_rest(m, work, cookie, 3, &rest_u);
	g_autofree char *want_rest = uids_str(13, 20);
	g_assert_cmpstr(rest_u, ==, want_rest);

	g_assert_true(fake_stream_wait_done(fb, 1));
	check_folder_consistent(m, work, folder(fb, "Work"));
	g_assert_false(work->size_untrusted);
	g_assert_cmpuint(fb->list_streamed_calls, ==, 1);
	g_assert_cmpuint(fb->list_messages_calls, ==, 0);
	/* The backend's verdict stands: the model probes nothing itself. */
	g_assert_cmpuint(fb->fetch_ranges_calls, ==, 0);
	g_assert_cmpuint(fake_fetch_count(fb), ==, 0);
	/* Nothing the kernel saw changed. */
	g_assert_cmpuint(notes_len(&ns), ==, 0);

	/* Names and inode numbers are those of a plain listing. */
	g_autofree char *streamed = readdir_rest(m, work, 0, 1000, NULL);
	/* A later opendir within the refresh interval lists nothing. */
	open_dir(m, work);
	g_assert_cmpuint(fb->list_streamed_calls, ==, 1);
	g_assert_cmpuint(fb->list_messages_calls, ==, 0);
	mf_model_free(m);
	g_autofree char *plain = plain_listing(fb, "Work");
	g_assert_cmpstr(streamed, ==, plain);
	fake_free(&fb->base);
	notes_clear(&ns);
}

/* (b) Nothing is served before the sizes are known to be honest, whichever thread the
 * verdict comes from. */
static void stream_waits_for_verdict(gboolean own_thread)
{
	fake_stream_opts o = fake_stream_defaults;
	o.gated = TRUE;
	o.own_thread = own_thread;
	o.verdict_at = 2;
	fake_backend *fb = stream_backend(20, &o);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, work);
	fake_stream_release(fb, 2);
	g_assert_true(fake_stream_wait_steps(fb, 2));
	g_assert_cmpuint(work->msgs->len, ==, 8);
	readdir_call c;
	bg_call *w = readdir_bg(&c, m, work, 0, 100);
	g_assert_false(bg_wait(w, 300));
	/* The verdict: now the two batches in are served, and no more. */
	fake_stream_release(fb, 1);
	GArray *a = bg_join(w);
	g_assert_no_error(c.err);
	g_autofree char *s = dirents_str(a);
	g_autofree char *want = uids_str(1, 8);
	g_assert_cmpstr(s, ==, want);
	g_array_unref(a);

	fake_stream_release(fb, G_MAXUINT);
	g_autofree char *all = NULL;
	g_autofree char *r = readdir_rest(m, work, 0, 7, &all);
	g_autofree char *want_all = uids_str(1, 20);
	g_assert_cmpstr(all, ==, want_all);
	check_folder_consistent(m, work, folder(fb, "Work"));
	g_assert_false(work->size_untrusted);
	g_assert_cmpuint(fake_fetch_count(fb), ==, 0);
	mf_model_free(m);
	fake_free(&fb->base);
}

static void test_stream_waits_for_verdict(void)
{
	stream_waits_for_verdict(FALSE);
	stream_waits_for_verdict(TRUE);
}

/* (c) The backend found a wrong size: the folder's sizes are not trusted, and not probed again. */
static void test_stream_verdict_wrong(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.verdict = FAKE_VERDICT_WRONG;
	o.wrong_uid = 30;
	o.verdict_at = 1;
	fake_backend *fb = stream_backend(20, &o);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, work);
	g_autofree char *all = NULL;
	g_autofree char *r = readdir_rest(m, work, 0, 100, &all);
	g_autofree char *want = uids_str(1, 20);
	g_assert_cmpstr(all, ==, want);
	g_assert_true(work->size_untrusted);
	g_assert_cmpuint(fb->fetch_ranges_calls, ==, 0);
	g_assert_cmpuint(fake_fetch_count(fb), ==, 0);
	/* A refresh keeps the verdict. */
	ensure(m, work, 0);
	g_assert_true(work->size_untrusted);
	g_assert_cmpuint(fake_fetch_count(fb), ==, 0);
	mf_model_free(m);
	fake_free(&fb->base);
}

/* (d) No verdict from the backend: the model probes the sizes itself once all is in, and
 * serves nothing before. */
static void stream_without_verdict(gboolean lie)
{
	fake_stream_opts o = fake_stream_defaults;
	o.gated = TRUE;
	o.verdict = FAKE_VERDICT_NONE;
	fake_backend *fb = stream_backend(20, &o);
	if (lie)
		fake_find_msg_locked(folder(fb, "Work"), 60)->advertised += 10;
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, work);
	fake_stream_release(fb, 3);
	g_assert_true(fake_stream_wait_steps(fb, 3));
	readdir_call c;
	bg_call *w = readdir_bg(&c, m, work, 0, 100);
	g_assert_false(bg_wait(w, 200));
	g_assert_cmpuint(fb->fetch_ranges_calls, ==, 0);
	fake_stream_release(fb, G_MAXUINT);
	GArray *a = bg_join(w);
	g_assert_no_error(c.err);
	g_autofree char *s = dirents_str(a);
	g_autofree char *want = uids_str(1, 20);
	g_assert_cmpstr(s, ==, want);
	g_array_unref(a);
	g_autofree char *r = readdir_rest(m, work, 0, 100, NULL);
	g_assert_cmpuint(fb->fetch_ranges_calls, ==, 1);
	/* First, middle and last message, the last octet and one more of each. */
	g_assert_cmpuint(fake_fetch_count(fb), ==, 3);
	const guint32 probed[3] = { 3, 33, 60 };
	for (guint i = 0; i < 3; i++) {
		fake_fetch f = fake_fetch_at(fb, i);
		g_assert_cmpuint(f.uid, ==, probed[i]);
		g_assert_cmpuint(f.len, ==, 2);
		g_assert_cmpuint(f.off + 1, ==, fake_find_msg_locked(folder(fb, "Work"), f.uid)->advertised);
	}
	g_assert_cmpint(work->size_untrusted, ==, lie);
	check_folder_consistent(m, work, folder(fb, "Work"));
	mf_model_free(m);
	fake_free(&fb->base);
}

static void test_stream_without_verdict(void)
{
	stream_without_verdict(FALSE);
	stream_without_verdict(TRUE);
}

/* (e) A stream out of UID order is not believed: the folder ends up exactly as listed, the
 * nodes the kernel may have seen kept. With all_in_sink the model lists again; without, the
 * returned listing is merged. */
static void stream_out_of_order(gboolean all_in_sink)
{
	fake_stream_opts o = fake_stream_defaults;
	o.gated = TRUE;
	o.swap_batch = 1; /* 27..36 arrive before 15..24 */
	o.all_in_sink = all_in_sink;
	fake_backend *fb = stream_backend(20, &o);
	notes ns;

	notes_init(&ns);
	mf_model *m = model_for(fb, 60);
	mf_model_set_notify(m, on_notify, &ns);
	mf_node *work = at(m, "Work");
	open_dir(m, work);
	fake_stream_release(fb, 2);
	g_assert_true(fake_stream_wait_steps(fb, 2));
	mf_node *n3 = fake_node_by_uid(work, 3);
	g_assert_nonnull(n3);
	fake_stream_release(fb, G_MAXUINT);
	g_autofree char *all = NULL;
	g_autofree char *r = readdir_rest(m, work, 0, 100, &all);
	g_assert_true(fake_stream_wait_done(fb, 1));

	g_autofree char *want = uids_str(1, 20);
	g_autofree char *final = readdir_str(m, work, 0, 100);
	g_assert_cmpstr(final, ==, want);
	check_folder_consistent(m, work, folder(fb, "Work"));
	g_assert_true(fake_node_by_uid(work, 3) == n3);
	g_assert_false(n3->gone);
	g_assert_cmpuint(fb->list_streamed_calls, ==, 1);
	g_assert_cmpuint(fb->list_messages_calls, ==, all_in_sink ? 1 : 0);
	/* No entry the kernel may have seen is gone. */
	g_mutex_lock(&ns.lock);
	for (guint i = 0; i < ns.notes->len; i++)
		g_assert_cmpint(g_array_index(ns.notes, note, i).kind, !=, MF_NOTIFY_INVAL_ENTRY);
	g_mutex_unlock(&ns.lock);
	g_autofree char *streamed = readdir_rest(m, work, 0, 1000, NULL);
	mf_model_free(m);
	g_autofree char *plain = plain_listing(fb, "Work");
	g_assert_cmpstr(streamed, ==, plain);
	fake_free(&fb->base);
	notes_clear(&ns);
}

static void test_stream_out_of_order(void)
{
	stream_out_of_order(TRUE);
	stream_out_of_order(FALSE);
}

/* Later batches under another epoch than the listing's (a stream that broke its promise):
 * not believed either; the folder ends up exactly as listed, of the listing's epoch. */
static void test_stream_epoch_flicker(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.uv_change_at = 2;
	o.all_in_sink = TRUE;
	fake_backend *fb = stream_backend(20, &o);
	fake_folder *fw = folder(fb, "Work");
	/* Batches 0 and 1 carry the folder's epoch, the others a bogus one. */
	o.later_uv = fw->uidvalidity + 1;
	fake_use_streaming(fb, &o);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, work);
	g_autofree char *r = readdir_rest(m, work, 0, 100, NULL);
	check_folder_consistent(m, work, fw);
	g_assert_cmpuint(fb->list_messages_calls, ==, 1);
	g_autofree char *streamed = readdir_rest(m, work, 0, 1000, NULL);
	mf_model_free(m);
	g_autofree char *plain = plain_listing(fb, "Work");
	g_assert_cmpstr(streamed, ==, plain);
	fake_free(&fb->base);
}

/* Messages streamed during a listing that was then retried may not exist: the returned
 * listing is the truth, and the kernel hears that the extra one is gone. */
static void test_stream_phantom(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.phantom_uid = 31;
	fake_backend *fb = stream_backend(20, &o);
	notes ns;

	notes_init(&ns);
	mf_model *m = model_for(fb, 60);
	mf_model_set_notify(m, on_notify, &ns);
	mf_node *work = at(m, "Work");
	open_dir(m, work);
	g_autofree char *all = NULL;
	g_autofree char *r = readdir_rest(m, work, 0, 100, &all);
	g_assert_true(fake_stream_wait_done(fb, 1));
	g_autofree char *want = uids_str(1, 20);
	g_autofree char *final = readdir_str(m, work, 0, 100);
	g_assert_cmpstr(final, ==, want);
	check_folder_consistent(m, work, folder(fb, "Work"));
	mf_node *ph = NULL;
	g_mutex_lock(&ns.lock);
	for (guint i = 0; i < ns.notes->len; i++) {
		note *no = &g_array_index(ns.notes, note, i);
		if (no->kind == MF_NOTIFY_INVAL_ENTRY) {
			g_assert_null(ph);
			ph = mf_model_get(m, no->ino);
			g_assert_cmpuint(no->parent, ==, work->ino);
		}
	}
	g_mutex_unlock(&ns.lock);
	g_assert_nonnull(ph);
	g_assert_cmpuint(ph->meta->uid, ==, 31);
	g_assert_true(ph->gone);
	g_autoptr(GError) err = NULL;
	g_assert_null(mf_model_lookup(m, work, ph->name, &err));
	g_assert_no_error(err);
	mf_model_free(m);
	fake_free(&fb->base);
	notes_clear(&ns);
}

/* (f) The listing fails midway: the reader waiting for more gets the error, once; then the
 * folder lists again (plainly by readdir, or streamed by a new opendir). */
static void stream_failure(gboolean reopen)
{
	fake_stream_opts o = fake_stream_defaults;
	o.gated = TRUE;
	o.fail_after = 2;
	o.all_in_sink = TRUE;
	fake_backend *fb = stream_backend(20, &o);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, work);
	fake_stream_release(fb, 3);
	g_assert_true(fake_stream_wait_steps(fb, 3));
	readdir_call c;
	GArray *a = bg_join(readdir_bg(&c, m, work, 0, 100));
	g_assert_no_error(c.err);
	g_autofree char *s = dirents_str(a);
	g_autofree char *want8 = uids_str(1, 8);
	g_assert_cmpstr(s, ==, want8);
	guint64 cookie = g_array_index(a, mf_dirent, a->len - 1).next_off;
	g_array_unref(a);
	bg_call *w = readdir_bg(&c, m, work, cookie, 100);
	g_assert_false(bg_wait(w, 100));
	fake_stream_release(fb, G_MAXUINT);
	g_assert_null(bg_join(w));
	g_assert_error(c.err, MF_ERROR, MF_ERR_NET);
	g_clear_error(&c.err);
	g_assert_false(work->loaded);

	g_mutex_lock(&fb->lock);
	fb->stream.fail_after = -1;
	g_mutex_unlock(&fb->lock);
	if (reopen)
		open_dir(m, work);
	g_autofree char *rest_u = NULL;
	g_autofree char *rest = readdir_rest(m, work, cookie, 5, &rest_u);
	g_autofree char *want_rest = uids_str(9, 20);
	g_assert_cmpstr(rest_u, ==, want_rest);
	check_folder_consistent(m, work, folder(fb, "Work"));
	g_assert_cmpuint(fb->list_streamed_calls, ==, reopen ? 2 : 1);
	g_assert_cmpuint(fb->list_messages_calls, ==, 1);
	g_autofree char *streamed = readdir_rest(m, work, 0, 1000, NULL);
	mf_model_free(m);
	g_autofree char *plain = plain_listing(fb, "Work");
	g_assert_cmpstr(streamed, ==, plain);
	fake_free(&fb->base);
}

static void test_stream_failure(void)
{
	stream_failure(FALSE);
	stream_failure(TRUE);
}

/* A listing that fails before its verdict: readdir reports it instead of waiting for ever. */
static void test_stream_failure_before_verdict(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.fail_after = 1;
	o.verdict_at = 3;
	fake_backend *fb = stream_backend(20, &o);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, work);
	readdir_call c;
	g_assert_null(bg_join(readdir_bg(&c, m, work, 0, 100)));
	g_assert_error(c.err, MF_ERROR, MF_ERR_NET);
	g_clear_error(&c.err);
	/* Reported once: the next readdir lists the folder. */
	g_autofree char *all = NULL;
	g_autofree char *r = readdir_rest(m, work, 0, 100, &all);
	g_autofree char *want = uids_str(1, 20);
	g_assert_cmpstr(all, ==, want);
	check_folder_consistent(m, work, folder(fb, "Work"));
	/* No verdict came: the plain listing probed. */
	g_assert_cmpuint(fake_fetch_count(fb), ==, 3);
	mf_model_free(m);
	fake_free(&fb->base);
}

/* (g) A lookup while the listing arrives waits for it and finds the message. */
static void test_stream_lookup_while_arriving(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.gated = TRUE;
	fake_backend *fb = stream_backend(20, &o);
	fake_msg *last = fake_find_msg_locked(folder(fb, "Work"), 60);
	g_autofree char *name = name_of(last);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, work);
	fake_stream_release(fb, 2);
	g_assert_true(fake_stream_wait_steps(fb, 2));
	lookup_call lc = { m, work, name, NULL };
	bg_call *w = bg_start(lookup_main, &lc);
	g_assert_false(bg_wait(w, 200));
	fake_stream_release(fb, G_MAXUINT);
	mf_node *n = bg_join(w);
	g_assert_no_error(lc.err);
	g_assert_nonnull(n);
	g_assert_cmpuint(n->meta->uid, ==, 60);
	g_assert_true(n->parent == work);
	g_assert_true(fake_node_by_uid(work, 60) == n);
	g_assert_cmpuint(fb->list_streamed_calls, ==, 1);
	g_assert_cmpuint(fb->list_messages_calls, ==, 0);
	check_folder_consistent(m, work, folder(fb, "Work"));
	mf_model_free(m);
	fake_free(&fb->base);
}

/* (h) Freeing the model waits for a listing still running (ASan checks the rest). */
static void test_stream_free_while_running(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.gated = TRUE;
	o.own_thread = TRUE;
	fake_backend *fb = stream_backend(20, &o);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, work);
	fake_stream_release(fb, 2);
	g_assert_true(fake_stream_wait_steps(fb, 2));
	bg_call *w = bg_start(free_main, m);
	g_assert_false(bg_wait(w, 200));
	fake_stream_release(fb, G_MAXUINT);
	bg_join(w);
	g_assert_cmpuint(fb->list_streamed_done, ==, 1);
	fake_free(&fb->base);

	/* The same with nothing gated, freed at once. */
	o.gated = FALSE;
	fb = stream_backend(200, &o);
	m = model_for(fb, 60);
	open_dir(m, at(m, "Work"));
	mf_model_free(m);
	g_assert_cmpuint(fb->list_streamed_done, ==, 1);
	fake_free(&fb->base);
}

/* Only a first listing of a selectable folder streams, and only once at a time. */
static void test_stream_open_dir_once(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.gated = TRUE;
	fake_backend *fb = stream_backend(20, &o);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, root_of(m));
	open_dir(m, at(m, "Lists"));
	open_dir(m, at(m, "Archive"));
	g_assert_cmpuint(fb->list_streamed_calls + fb->list_messages_calls, ==, 0);
	open_dir(m, work);
	open_dir(m, work);
	fake_stream_release(fb, 1);
	g_assert_true(fake_stream_wait_steps(fb, 1));
	open_dir(m, work);
	fake_stream_release(fb, G_MAXUINT);
	g_autofree char *r = readdir_rest(m, work, 0, 100, NULL);
	g_assert_true(fake_stream_wait_done(fb, 1));
	g_assert_cmpuint(fb->list_streamed_calls, ==, 1);
	/* Listed: opendir refreshes the plain way once the refresh interval is over. */
	open_dir(m, work);
	g_assert_cmpuint(fb->list_messages_calls, ==, 0);
	mf_model_free(m);

	m = model_for(fb, 1);
	work = at(m, "Work");
	open_dir(m, work);
	g_autofree char *r2 = readdir_rest(m, work, 0, 100, NULL);
	g_assert_cmpuint(fb->list_streamed_calls, ==, 2);
	g_usleep(1100 * 1000);
	open_dir(m, work);
	g_assert_cmpuint(fb->list_streamed_calls, ==, 2);
	g_assert_cmpuint(fb->list_messages_calls, ==, 1);
	/* readdir without opendir (a folder never opened) lists plainly. */
	mf_node *inbox = at(m, "INBOX");
	g_autofree char *r3 = readdir_str(m, inbox, 0, 100);
	g_assert_cmpuint(fb->list_streamed_calls, ==, 2);
	g_assert_cmpuint(fb->list_messages_calls, ==, 2);
	mf_model_free(m);
	fake_free(&fb->base);
}

/* Many readers at once while a big listing streams: each sees every entry once, in order. */
typedef struct {
	mf_model *m;
	mf_node *dir;
	guint max;
	char *uids;
} reader_ctx;

static gpointer stream_reader(gpointer p)
{
	reader_ctx *r = p;
	g_free(readdir_rest(r->m, r->dir, 0, r->max, &r->uids));
	return NULL;
}

static void test_stream_concurrent_readers(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.batch = 7;
	o.own_thread = TRUE;
	fake_backend *fb = stream_backend(500, &o);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");
	reader_ctx r[4];
	GThread *t[4];

	open_dir(m, work);
	for (guint i = 0; i < 4; i++) {
		r[i] = (reader_ctx){ m, work, 1 + i * 13, NULL };
		t[i] = g_thread_new("reader", stream_reader, &r[i]);
	}
	g_autofree char *want = uids_str(1, 500);
	for (guint i = 0; i < 4; i++) {
		g_thread_join(t[i]);
		g_assert_cmpstr(r[i].uids, ==, want);
		g_free(r[i].uids);
	}
	check_folder_consistent(m, work, folder(fb, "Work"));
	mf_model_free(m);
	fake_free(&fb->base);
}

/* ---- INBOX's sizes checked at mount ---- */

/* Checked before daemonizing, INBOX's first listing is served from its first batch, with no
 * verdict to wait for and no probes after it; any other folder is still checked itself. */
static void inbox_checked_at_mount(guint32 wrong_uid)
{
	fake_stream_opts o = fake_stream_defaults;
	o.gated = TRUE;
	o.verdict = FAKE_VERDICT_NONE;
	fake_backend *fb = tree_backend(FALSE);
	fake_folder *fi = folder(fb, "INBOX");

	for (guint32 i = 1; i <= 20; i++)
		fake_add_msg(fb, fi, 3 * i, 100 + i);
	fake_use_size_check(fb, &o, wrong_uid);
	mf_model *m = model_for(fb, 60);
	mf_node *inbox = at(m, "INBOX");

	mf_model_check_inbox_sizes(m);
	g_assert_cmpuint(fb->check_sizes_calls, ==, 1);
	g_assert_true(inbox->sizes_known);
	g_assert_true(inbox->size_untrusted == (wrong_uid != 0));
	open_dir(m, inbox);
	fake_stream_release(fb, 1);
	readdir_call c;
	GArray *a = bg_join(readdir_bg(&c, m, inbox, 0, 100));
	g_assert_no_error(c.err);
	g_assert_nonnull(a);
	g_assert_cmpuint(a->len, >, 0);
	g_array_unref(a);
	fake_stream_release(fb, G_MAXUINT);
	g_autofree char *all = readdir_rest(m, inbox, 0, 1000, NULL);
	g_assert_true(fake_stream_wait_done(fb, 1));
	g_assert_cmpuint(fb->fetch_ranges_calls, ==, 0);
	g_assert_cmpuint(fake_fetch_count(fb), ==, 0);
	g_assert_cmpuint(fb->check_sizes_calls, ==, 1);
	mf_model_free(m);
	fake_free(&fb->base);
}

static void test_inbox_checked_at_mount(void)
{
	inbox_checked_at_mount(0);
	inbox_checked_at_mount(9);
}

/* ---- epochs and empty folders in streamed listings (regressions) ---- */

/* Messages of `dir` whose node is not of epoch `uv`. */
static guint old_epoch_nodes(mf_node *dir, guint32 uv)
{
	guint n = 0;

	for (guint i = 0; i < dir->msgs->len; i++)
		n += ((mf_node *)dir->msgs->pdata[i])->msg_uidvalidity != uv;
	return n;
}

/* A stream whose epoch changes midway (the folder was recreated while it was listed): the
 * nodes of the old epoch must not be kept as if they were of the new one (their reads would
 * all fail as stale): stream_add once took the new epoch for the folder while its nodes were
 * of the old one. */
static void test_stream_epoch_change_midway(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.uv_change_at = 2;
	o.all_in_sink = TRUE;
	fake_backend *fb = stream_backend(20, &o);
	fake_folder *fw = folder(fb, "Work");
	o.first_uv = fw->uidvalidity;
	fw->uidvalidity += 1000;
	fake_use_streaming(fb, &o);
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, work);
	g_autofree char *r = readdir_rest(m, work, 0, 100, NULL);
	g_assert_true(fake_stream_wait_done(fb, 1));
	g_assert_cmpuint(work->uidvalidity, ==, fw->uidvalidity);
	g_assert_cmpuint(old_epoch_nodes(work, fw->uidvalidity), ==, 0);
	g_autofree char *streamed = readdir_rest(m, work, 0, 1000, NULL);
	mf_model_free(m);
	g_autofree char *plain = plain_listing(fb, "Work");
	/* Names and inode numbers of a plain listing (compared quietly: they are long). */
	g_assert_true(g_str_equal(streamed, plain));
	fake_free(&fb->base);
}

/* The same through a real sequence: a first streamed listing fails midway, the folder is
 * recreated, and the next opendir streams the new epoch. */
static void test_stream_epoch_change_after_failure(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.fail_after = 2;
	fake_backend *fb = stream_backend(20, &o);
	fake_folder *fw = folder(fb, "Work");
	mf_model *m = model_for(fb, 60);
	mf_node *work = at(m, "Work");

	open_dir(m, work);
	readdir_call c;
	GArray *a = bg_join(readdir_bg(&c, m, work, (1ULL << 32) + 100, 100));
	g_assert_null(a);
	g_clear_error(&c.err);
	g_mutex_lock(&fb->lock);
	fw->uidvalidity += 1000;
	fb->stream.fail_after = -1;
	g_mutex_unlock(&fb->lock);
	open_dir(m, work);
	g_autofree char *r = readdir_rest(m, work, 0, 100, NULL);
	g_assert_cmpuint(work->uidvalidity, ==, fw->uidvalidity);
	g_assert_cmpuint(old_epoch_nodes(work, fw->uidvalidity), ==, 0);
	g_autofree char *streamed = readdir_rest(m, work, 0, 1000, NULL);
	mf_model_free(m);
	g_autofree char *plain = plain_listing(fb, "Work");
	/* Names and inode numbers of a plain listing (compared quietly: they are long). */
	g_assert_true(g_str_equal(streamed, plain));
	fake_free(&fb->base);
}

/* An empty folder streamed with all_in_sink (true of no messages, backend.h allows it): the
 * add callback is never called, so the folder's UIDVALIDITY must come from the listing, or the
 * next refresh sees a spurious "UIDVALIDITY of Work changed (0 -> 1005)". */
static void test_stream_empty_all_in_sink(void)
{
	fake_stream_opts o = fake_stream_defaults;
	o.all_in_sink = TRUE;
	o.verdict = FAKE_VERDICT_NONE;
	fake_backend *fb = stream_backend(0, &o);
	notes ns;

	notes_init(&ns);
	mf_model *m = model_for(fb, 60);
	mf_model_set_notify(m, on_notify, &ns);
	mf_node *work = at(m, "Work");
	open_dir(m, work);
	g_autofree char *all = NULL;
	g_autofree char *r = readdir_rest(m, work, 0, 100, &all);
	g_assert_cmpstr(all, ==, "a|b");
	g_assert_cmpuint(work->uidvalidity, ==, folder(fb, "Work")->uidvalidity);
	ensure(m, work, 0);
	g_assert_cmpuint(notes_len(&ns), ==, 0);
	mf_model_free(m);
	fake_free(&fb->base);
	notes_clear(&ns);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/model/tree", test_tree);
	g_test_add_func("/model/tree-order-and-duplicates", test_tree_order_and_duplicates);
	g_test_add_func("/model/inodes-stable", test_inodes_stable);
	g_test_add_func("/model/uidvalidity-change", test_uidvalidity_change);
	g_test_add_func("/model/lookup-without-readdir", test_lookup_without_readdir);
	g_test_add_func("/model/lookup-new-message-refreshes", test_lookup_new_message_refreshes);
	g_test_add_func("/model/merge-on-refresh", test_merge_on_refresh);
	g_test_add_func("/model/refresh-failure", test_refresh_failure);
	g_test_add_func("/model/readdir-cookies", test_readdir_cookies);
	g_test_add_func("/model/readdir-max-uid", test_readdir_max_uid);
	g_test_add_func("/model/next-msgs", test_next_msgs);
	g_test_add_func("/model/size-probe", test_size_probe);
	g_test_add_func("/model/concurrent-refresh", test_concurrent_refresh);
	g_test_add_func("/model/stream/readdir-while-arriving", test_stream_readdir_while_arriving);
	g_test_add_func("/model/stream/waits-for-verdict", test_stream_waits_for_verdict);
	g_test_add_func("/model/stream/verdict-wrong", test_stream_verdict_wrong);
	g_test_add_func("/model/stream/without-verdict", test_stream_without_verdict);
	g_test_add_func("/model/stream/out-of-order", test_stream_out_of_order);
	g_test_add_func("/model/stream/epoch-flicker", test_stream_epoch_flicker);
	g_test_add_func("/model/stream/phantom", test_stream_phantom);
	g_test_add_func("/model/stream/failure", test_stream_failure);
	g_test_add_func("/model/stream/failure-before-verdict", test_stream_failure_before_verdict);
	g_test_add_func("/model/stream/lookup-while-arriving", test_stream_lookup_while_arriving);
	g_test_add_func("/model/stream/free-while-running", test_stream_free_while_running);
	g_test_add_func("/model/stream/open-dir-once", test_stream_open_dir_once);
	g_test_add_func("/model/stream/concurrent-readers", test_stream_concurrent_readers);
	g_test_add_func("/model/stream/inbox-checked-at-mount", test_inbox_checked_at_mount);
	g_test_add_func("/model/stream/epoch-change-midway", test_stream_epoch_change_midway);
	g_test_add_func("/model/stream/epoch-change-after-failure",
			test_stream_epoch_change_after_failure);
	g_test_add_func("/model/stream/empty-all-in-sink", test_stream_empty_all_in_sink);
	return g_test_run();
}
