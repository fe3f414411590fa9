/* The tree of folders and messages, and how a folder listing is merged into it.
 *
 * Inode numbers are a pure function of names so that they survive remounts (rsync -H, tar's
 * incremental mode and `ls -i` see the same numbers): a directory is hash(path) << 32, a message
 * is (top bit | hash(path, UIDVALIDITY)) << 32 | UID. A new UIDVALIDITY therefore gives every
 * message a new inode, and the kernel can never serve cached pages of an old message under a
 * reused UID. Hash collisions are resolved by probing, which is deterministic for a given set of
 * folders. */
#include <string.h>
#include "model.h"
#include "name.h"
#include "log.h"
#include "mferror.h"
#include "strhash.h"

struct mf_model {
	GMutex lock;             /* structure of the tree, sizes, metadata */
	mf_backend *backend;
	int refresh_sec;
	mf_node *root;
	mf_node *status;
	GHashTable *by_ino;      /* guint64* -> mf_node*, every node ever created */
	GHashTable *msg_bases;   /* base (guint32) -> owning "path\x1fuidvalidity" string */
	GPtrArray *all_nodes;    /* owns the nodes */
	mf_notify_fn notify;
	gpointer notify_data;
	GCond grown;             /* a streamed listing grew, got its verdict or ended; a task ended */
	guint tasks;             /* background listings still running */
};

static guint64 fnv1a(const char *s, gsize len, guint64 h)
{
	for (gsize i = 0; i < len; i++) {
		h ^= (guchar)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static guint32 hash31(const char *s, gsize len)
{
	guint64 h = fnv1a(s, len, 14695981039346656037ULL);
	return (guint32)(((h >> 31) ^ h) % 0x7ffffffeULL) + 1;
}

static void node_free(mf_node *n)
{
	g_free(n->name);
	if (n->folder)
		mf_folder_free(n->folder);
	if (n->subdirs)
		g_ptr_array_unref(n->subdirs);
	if (n->msgs)
		g_ptr_array_unref(n->msgs);
	if (n->by_name)
		g_hash_table_destroy(n->by_name);
	if (n->meta)
		mf_msg_meta_unref(n->meta);
	g_free(n->body_key);
	g_clear_error(&n->load_error);
	g_mutex_clear(&n->load_lock);
	g_free(n);
}

static mf_node *node_new(mf_model *m, MfNodeKind kind, const char *name, mf_node *parent)
{
	mf_node *n = g_new0(mf_node, 1);
	n->kind = kind;
	n->name = g_strdup(name);
	n->parent = parent;
	g_mutex_init(&n->load_lock);
	if (kind == MF_NODE_ROOT || kind == MF_NODE_DIR) {
		n->subdirs = g_ptr_array_new();
		n->msgs = g_ptr_array_new();
		n->by_name = g_hash_table_new(mf_str_hash, g_str_equal);
	}
	g_ptr_array_add(m->all_nodes, n);
	return n;
}

static void register_ino(mf_model *m, mf_node *n)
{
	g_hash_table_insert(m->by_ino, &n->ino, n);
}

mf_model *mf_model_new(mf_backend *b, int refresh_sec)
{
	mf_model *m = g_new0(mf_model, 1);
	g_mutex_init(&m->lock);
	g_cond_init(&m->grown);
	m->backend = b;
	m->refresh_sec = refresh_sec > 0 ? refresh_sec : 1;
	m->by_ino = g_hash_table_new(g_int64_hash, g_int64_equal);
	m->msg_bases = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	m->all_nodes = g_ptr_array_new_with_free_func((GDestroyNotify)node_free);
	m->root = node_new(m, MF_NODE_ROOT, "", NULL);
	m->root->ino = MF_INO_ROOT;
	register_ino(m, m->root);
	m->status = node_new(m, MF_NODE_STATUS, MF_STATUS_NAME, m->root);
	m->status->ino = MF_INO_STATUS;
	register_ino(m, m->status);
	return m;
}

void mf_model_free(mf_model *m)
{
	if (!m)
		return;
	g_mutex_lock(&m->lock);
	while (m->tasks)
		g_cond_wait(&m->grown, &m->lock);
	g_mutex_unlock(&m->lock);
	g_hash_table_destroy(m->by_ino);
	g_hash_table_destroy(m->msg_bases);
	g_ptr_array_unref(m->all_nodes);
	g_mutex_clear(&m->lock);
	g_cond_clear(&m->grown);
	g_free(m);
}

void mf_model_set_notify(mf_model *m, mf_notify_fn fn, gpointer user_data)
{
	m->notify = fn;
	m->notify_data = user_data;
}

mf_backend *mf_model_backend(mf_model *m)
{
	return m->backend;
}

mf_node *mf_model_get(mf_model *m, guint64 ino)
{
	g_mutex_lock(&m->lock);
	mf_node *n = g_hash_table_lookup(m->by_ino, &ino);
	g_mutex_unlock(&m->lock);
	return n;
}

static gint cmp_node_name(gconstpointer a, gconstpointer b)
{
	const mf_node *x = *(mf_node *const *)a, *y = *(mf_node *const *)b;
	return strcmp(x->name, y->name);
}

/* Find or create the directory node for a display path ("Archive/2025"). Lock held. */
static mf_node *dir_for_path(mf_model *m, const char *path)
{
	mf_node *cur = m->root;
	g_auto(GStrv) parts = g_strsplit(path, "/", -1);
	GString *sofar = g_string_new(NULL);
	for (char **p = parts; *p; p++) {
		if (!**p)
			continue;
		if (sofar->len)
			g_string_append_c(sofar, '/');
		g_string_append(sofar, *p);
		mf_node *child = g_hash_table_lookup(cur->by_name, *p);
		if (!child) {
			child = node_new(m, MF_NODE_DIR, *p, cur);
			guint64 h = hash31(sofar->str, sofar->len);
			for (;;) {
				child->ino = h << 32;
				if (!g_hash_table_contains(m->by_ino, &child->ino))
					break;
				h = h % 0x7ffffffeULL + 1;
			}
			register_ino(m, child);
			g_hash_table_insert(cur->by_name, child->name, child);
			g_ptr_array_add(cur->subdirs, child);
			g_ptr_array_sort(cur->subdirs, cmp_node_name);
		}
		cur = child;
	}
	g_string_free(sofar, TRUE);
	return cur;
}

gboolean mf_model_load_folders(mf_model *m, GError **err)
{
	g_autoptr(GPtrArray) folders = m->backend->ops->list_folders(m->backend, err);
	if (!folders)
		return FALSE;
	g_mutex_lock(&m->lock);
	for (guint i = 0; i < folders->len; i++) {
		mf_folder *f = folders->pdata[i];
		if (!f->path || !*f->path)
			continue;
		mf_node *d = dir_for_path(m, f->path);
		if (d->folder) {
			mf_log_warn("two server folders map to '%s'; showing only '%s'", f->path, d->folder->raw);
			continue;
		}
		d->folder = f;
		folders->pdata[i] = NULL; /* now owned by the node */
	}
	g_mutex_unlock(&m->lock);
	return TRUE;
}

/* The inode base of the messages of one folder epoch. Lock held. */
static guint32 msg_base(mf_model *m, mf_node *dir, guint32 uidvalidity)
{
	g_autofree char *ident = g_strdup_printf("%s\x1f%u", dir->folder->raw, uidvalidity);
	guint32 h = hash31(ident, strlen(ident));
	for (;;) {
		const char *owner = g_hash_table_lookup(m->msg_bases, GUINT_TO_POINTER(h));
		if (!owner) {
			g_hash_table_insert(m->msg_bases, GUINT_TO_POINTER(h), g_strdup(ident));
			return h;
		}
		if (strcmp(owner, ident) == 0)
			return h;
		h = h % 0x7ffffffeU + 1;
	}
}

typedef struct {
	MfNotifyKind kind;
	guint64 parent, ino;
	char *name;
} pending_notify;

static void pending_notify_free(pending_notify *p)
{
	g_free(p->name);
	g_free(p);
}

static void queue_notify(GPtrArray *q, MfNotifyKind kind, guint64 parent, guint64 ino, const char *name)
{
	pending_notify *p = g_new0(pending_notify, 1);
	p->kind = kind;
	p->parent = parent;
	p->ino = ino;
	p->name = g_strdup(name);
	g_ptr_array_add(q, p);
}

static gint cmp_msg_uid(gconstpointer a, gconstpointer b)
{
	const mf_node *x = *(mf_node *const *)a, *y = *(mf_node *const *)b;
	return x->meta->uid < y->meta->uid ? -1 : x->meta->uid > y->meta->uid;
}

/* A new message node that takes `meta` and `name` (NULL, and neither taken, if the name is
 * already used in the folder). Lock held. */
static mf_node *msg_node_new(mf_model *m, mf_node *dir, mf_msg_meta *meta, char *name,
			     guint32 uidvalidity, guint32 base)
{
	if (g_hash_table_contains(dir->by_name, name)) {
		mf_log_warn("skipping message %s in %s: its name '%s' is taken", meta->id,
			    dir->folder->path, name);
		g_free(name);
		return NULL;
	}
	mf_node *n = node_new(m, MF_NODE_MSG, NULL, dir);
	n->name = name;
	n->meta = meta;
	n->msg_uidvalidity = uidvalidity;
	/* meta->id, not the uid: a POP3 backend's uid is only an ordinal, its id the UIDL. */
	char epoch[16];
	g_snprintf(epoch, sizeof epoch, "%u", uidvalidity);
	n->body_key = g_strconcat(dir->folder->raw, "\x1f", epoch, "\x1f", meta->id, NULL);
	n->ino = ((guint64)(0x80000000U | base) << 32) | meta->uid;
	mf_node *clash = g_hash_table_lookup(m->by_ino, &n->ino);
	if (clash)
		clash->gone = TRUE; /* same folder epoch and UID listed again: replace */
	register_ino(m, n);
	g_hash_table_insert(dir->by_name, n->name, n);
	return n;
}

/* Merge a fresh listing into the folder. Lock held. Kernel notifications go to `q`. */
static void merge_listing(mf_model *m, mf_node *dir, mf_listing *l, GPtrArray *q)
{
	/* Nodes from a streamed listing count: the kernel may have seen them. */
	gboolean had = dir->loaded || dir->msgs->len > 0;
	gboolean same_epoch = had && dir->uidvalidity == l->uidvalidity;
	GHashTable *old_by_uid = g_hash_table_new(g_direct_hash, g_direct_equal);
	for (guint i = 0; i < dir->msgs->len; i++) {
		mf_node *n = dir->msgs->pdata[i];
		if (same_epoch)
			g_hash_table_insert(old_by_uid, GUINT_TO_POINTER(n->meta->uid), n);
	}
	if (had && !same_epoch)
		mf_log_warn("UIDVALIDITY of %s changed (%u -> %u): all its messages are new",
			    dir->folder->path, dir->uidvalidity, l->uidvalidity);
	/* A new epoch brings the same mail under the same names: free them for the new nodes. */
	if (had && !same_epoch)
		for (guint i = 0; i < dir->msgs->len; i++)
			g_hash_table_remove(dir->by_name, ((mf_node *)dir->msgs->pdata[i])->name);
	guint32 base = msg_base(m, dir, l->uidvalidity);
	GPtrArray *fresh = g_ptr_array_new();
	gboolean changed = !had;
	for (guint i = 0; i < l->msgs->len; i++) {
		mf_msg_meta *meta = l->msgs->pdata[i];
		mf_node *n = g_hash_table_lookup(old_by_uid, GUINT_TO_POINTER(meta->uid));
		if (n) {
			g_hash_table_remove(old_by_uid, GUINT_TO_POINTER(meta->uid));
			/* Only flags may change under a UID; keep a size we already verified. */
			if (g_strcmp0(n->meta->flags, meta->flags)) {
				mf_msg_meta *c = mf_msg_meta_copy(n->meta);
				g_free(c->flags);
				c->flags = g_strdup(meta->flags);
				mf_msg_meta_unref(n->meta);
				n->meta = c;
			}
		} else {
			n = msg_node_new(m, dir, meta, mf_make_message_name(meta), l->uidvalidity, base);
			if (!n)
				continue;
			/* Taken, not copied: the listing is thrown away after the merge. */
			l->msgs->pdata[i] = NULL;
			changed = TRUE;
		}
		g_ptr_array_add(fresh, n);
	}
	GHashTableIter it;
	gpointer k, v;
	/* Whatever was not listed again is gone (expunged, or a new UIDVALIDITY epoch). */
	GPtrArray *vanished = g_ptr_array_new();
	if (same_epoch) {
		g_hash_table_iter_init(&it, old_by_uid);
		while (g_hash_table_iter_next(&it, &k, &v))
			g_ptr_array_add(vanished, v);
	} else {
		for (guint i = 0; i < dir->msgs->len; i++)
			g_ptr_array_add(vanished, dir->msgs->pdata[i]);
	}
	for (guint i = 0; i < vanished->len; i++) {
		mf_node *n = vanished->pdata[i];
		n->gone = TRUE;
		if (g_hash_table_lookup(dir->by_name, n->name) == n)
			g_hash_table_remove(dir->by_name, n->name);
		queue_notify(q, MF_NOTIFY_INVAL_ENTRY, dir->ino, n->ino, n->name);
		changed = TRUE;
	}
	g_ptr_array_unref(vanished);
	g_hash_table_destroy(old_by_uid);
	g_ptr_array_sort(fresh, cmp_msg_uid);
	for (guint i = 0; i < fresh->len; i++)
		((mf_node *)fresh->pdata[i])->index = i;
	g_ptr_array_unref(dir->msgs);
	dir->msgs = fresh;
	dir->uidvalidity = l->uidvalidity;
	dir->loaded = TRUE;
	dir->loaded_at = g_get_monotonic_time();
	if (had && changed)
		queue_notify(q, MF_NOTIFY_INVAL_INODE, 0, dir->ino, NULL);
}

/* A server whose RFC822.SIZE is wrong must not get its sizes shown unverified: probe the last
 * byte of a few messages (BODY.PEEK[]<size-1.2> must return exactly one octet). */
static void warn_sizes_wrong(const mf_node *dir, const mf_msg_meta *meta)
{
	mf_log_warn("%s: the server's message sizes are wrong (message %s: says %" G_GUINT64_FORMAT
		    " bytes); each size is now verified before it is shown (slower)",
		    dir->folder->path, meta->id, meta->size);
}

static gboolean sizes_look_trustworthy(mf_model *m, mf_node *dir)
{
	if (!(m->backend->caps & MF_BACKEND_PARTIAL))
		return TRUE; /* whole-message backends verify on every fetch anyway */
	guint n = dir->msgs->len;
	guint picks[3] = { 0, n / 2, n - 1 };
	g_autoptr(GPtrArray) metas = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref);
	for (guint i = 0; i < G_N_ELEMENTS(picks) && n > 0; i++) {
		if (i > 0 && picks[i] == picks[i - 1])
			continue;
		mf_msg_meta *meta = mf_model_msg_meta(m, dir->msgs->pdata[picks[i]]);
		if (meta->size == 0)
			mf_msg_meta_unref(meta); /* size 0 is always verified before it is shown */
		else
			g_ptr_array_add(metas, meta);
	}
	if (metas->len == 0)
		return TRUE;
	guint64 offs[G_N_ELEMENTS(picks)], lens[G_N_ELEMENTS(picks)];
	GBytes *tails[G_N_ELEMENTS(picks)] = { NULL };
	for (guint i = 0; i < metas->len; i++) {
		offs[i] = ((mf_msg_meta *)metas->pdata[i])->size - 1;
		lens[i] = 2;
	}
	mf_backend *b = m->backend;
	g_autoptr(GError) e = NULL;
	if (b->ops->fetch_ranges) {
		/* All probes in one round trip. */
		if (!b->ops->fetch_ranges(b, dir->folder, dir->uidvalidity, metas, offs, lens, tails, &e))
			mf_log_debug("size probes in %s failed: %s", dir->folder->path, e->message);
	} else {
		for (guint i = 0; i < metas->len; i++) {
			g_clear_error(&e);
			tails[i] = b->ops->fetch(b, dir->folder, dir->uidvalidity, metas->pdata[i], offs[i], lens[i], &e);
			if (!tails[i])
				mf_log_debug("size probe in %s failed: %s", dir->folder->path, e->message);
		}
	}
	gboolean honest = TRUE;
	for (guint i = 0; i < metas->len; i++) {
		/* A failed probe proves nothing either way; the end-of-message check still guards. */
		if (honest && tails[i] && g_bytes_get_size(tails[i]) != 1) {
			warn_sizes_wrong(dir, metas->pdata[i]);
			honest = FALSE;
		}
		if (tails[i])
			g_bytes_unref(tails[i]);
	}
	return honest;
}

void mf_model_check_inbox_sizes(mf_model *m)
{
	mf_backend *b = m->backend;
	g_mutex_lock(&m->lock);
	mf_node *inbox = g_hash_table_lookup(m->root->by_name, "INBOX");
	g_mutex_unlock(&m->lock);
	if (!b->ops->check_sizes || !(b->caps & MF_BACKEND_PARTIAL) || !inbox || !inbox->folder ||
	    !inbox->folder->selectable)
		return;
	g_autoptr(mf_msg_meta) wrong = NULL;
	g_autoptr(GError) e = NULL;
	if (!b->ops->check_sizes(b, inbox->folder, &wrong, &e)) {
		/* The listing checks them instead. */
		mf_log_debug("checking the sizes of INBOX failed: %s", e->message);
		return;
	}
	if (wrong)
		warn_sizes_wrong(inbox, wrong);
	g_mutex_lock(&m->lock);
	inbox->size_untrusted = wrong != NULL;
	inbox->sizes_known = TRUE;
	g_mutex_unlock(&m->lock);
}

/* ---- a first listing shown while it arrives -------------------------------------------- */

typedef struct {
	mf_model *m;
	mf_node *dir;
} Task;

/* Threads are made when needed (never before the daemon forks) and counted, so that the model
 * outlives them. Lock held. */
static void task_start(mf_model *m, const char *name, GThreadFunc fn, Task *t)
{
	m->tasks++;
	g_thread_unref(g_thread_new(name, fn, t));
}

static void task_done(mf_model *m)
{
	g_mutex_lock(&m->lock);
	m->tasks--;
	g_cond_broadcast(&m->grown);
	g_mutex_unlock(&m->lock);
}

typedef struct {
	mf_model *m;
	mf_node *dir;
} StreamCtx;

/* The sink of a streamed listing: each batch becomes nodes at once. */
static void stream_add(guint32 uidvalidity, GPtrArray *metas, gpointer user_data)
{
	StreamCtx *sc = user_data;
	mf_model *m = sc->m;
	mf_node *dir = sc->dir;
	/* Names are pure functions of the envelope: made outside the lock. */
	g_autofree char **names = g_new(char *, metas->len);
	for (guint i = 0; i < metas->len; i++)
		names[i] = mf_make_message_name(metas->pdata[i]);
	g_mutex_lock(&m->lock);
	/* Nodes of another epoch (from a listing that failed) stay as they are until the whole
	 * listing is merged; this stream then cannot be the listing. */
	if (dir->msgs->len && dir->uidvalidity != uidvalidity)
		dir->stream_dirty = TRUE;
	else
		dir->uidvalidity = uidvalidity;
	guint32 base = msg_base(m, dir, uidvalidity);
	for (guint i = 0; i < metas->len; i++) {
		mf_msg_meta *meta = metas->pdata[i];
		guint last = dir->msgs->len;
		if (dir->stream_dirty ||
		    (last && ((mf_node *)dir->msgs->pdata[last - 1])->meta->uid >= meta->uid)) {
			dir->stream_dirty = TRUE;
			mf_msg_meta_unref(meta);
			g_free(names[i]);
			continue;
		}
		mf_node *n = msg_node_new(m, dir, meta, names[i], uidvalidity, base);
		if (!n) {
			mf_msg_meta_unref(meta);
			continue;
		}
		n->index = dir->msgs->len;
		g_ptr_array_add(dir->msgs, n);
	}
	g_cond_broadcast(&m->grown);
	g_mutex_unlock(&m->lock);
}

/* The backend's check of the folder's sizes, made beside the listing. */
static void stream_sizes_checked(const mf_msg_meta *wrong, gpointer user_data)
{
	StreamCtx *sc = user_data;
	mf_model *m = sc->m;
	if (wrong)
		warn_sizes_wrong(sc->dir, wrong);
	g_mutex_lock(&m->lock);
	sc->dir->size_untrusted = wrong != NULL;
	sc->dir->sizes_known = TRUE;
	g_cond_broadcast(&m->grown);
	g_mutex_unlock(&m->lock);
}

static gboolean ensure_listing(mf_model *m, mf_node *dir, int max_age_sec, gboolean stream,
			       GError **err);

static gpointer load_task(gpointer data)
{
	Task *t = data;
	mf_model *m = t->m;
	mf_node *dir = t->dir;
	GError *e = NULL;
	gboolean ok = ensure_listing(m, dir, -1, TRUE, &e);
	g_mutex_lock(&m->lock);
	if (!ok)
		dir->load_error = e;
	dir->streaming = FALSE;
	g_mutex_unlock(&m->lock);
	g_free(t);
	task_done(m);
	return NULL;
}

gboolean mf_model_open_dir(mf_model *m, mf_node *dir, GError **err)
{
	if (dir->kind != MF_NODE_DIR || !dir->folder || !dir->folder->selectable)
		return TRUE;
	g_mutex_lock(&m->lock);
	if (dir->streaming) {
		g_mutex_unlock(&m->lock);
		return TRUE;
	}
	if (!dir->loaded && m->backend->ops->list_messages_streamed) {
		dir->streaming = TRUE;
		g_clear_error(&dir->load_error);
		Task *t = g_new0(Task, 1);
		t->m = m;
		t->dir = dir;
		task_start(m, "listing", load_task, t);
		g_mutex_unlock(&m->lock);
		return TRUE;
	}
	g_mutex_unlock(&m->lock);
	return mf_model_ensure_listing(m, dir, -1, err);
}

/* ---- listings ------------------------------------------------------------------------- */

/* The folder's listing, from the backend: streamed into the folder as it arrives when
 * `stream` (then fully merged only if the stream was not exactly the listing). */
static mf_listing *fetch_listing(mf_model *m, mf_node *dir, gboolean stream, GError **err)
{
	mf_backend *b = m->backend;
	if (!stream || !b->ops->list_messages_streamed)
		return b->ops->list_messages(b, dir->folder, err);
	StreamCtx sc = { m, dir };
	mf_listing_sink sink = { stream_add, stream_sizes_checked, &sc };
	g_mutex_lock(&m->lock);
	dir->stream_dirty = FALSE;
	if (dir->sizes_known)
		sink.sizes_checked = NULL; /* nothing to check beside this listing */
	g_mutex_unlock(&m->lock);
	mf_listing *l = b->ops->list_messages_streamed(b, dir->folder, &sink, err);
	g_mutex_lock(&m->lock);
	gboolean dirty = dir->stream_dirty ||
			 (l && dir->msgs->len && dir->uidvalidity != l->uidvalidity);
	g_mutex_unlock(&m->lock);
	if (l && l->all_in_sink && dirty) {
		mf_log_debug("%s: listing again: the streamed one was out of order or of another epoch",
			     dir->folder->path);
		mf_listing_free(l);
		l = b->ops->list_messages(b, dir->folder, err);
	}
	return l;
}

gboolean mf_model_ensure_listing(mf_model *m, mf_node *dir, int max_age_sec, GError **err)
{
	return ensure_listing(m, dir, max_age_sec, FALSE, err);
}

static gboolean ensure_listing(mf_model *m, mf_node *dir, int max_age_sec, gboolean stream,
			       GError **err)
{
	if (dir->kind != MF_NODE_DIR || !dir->folder || !dir->folder->selectable)
		return TRUE;
	g_mutex_lock(&dir->load_lock);
	gint64 max_age = (gint64)(max_age_sec >= 0 ? max_age_sec : m->refresh_sec) * G_USEC_PER_SEC;
	g_mutex_lock(&m->lock);
	gboolean fresh = dir->loaded && g_get_monotonic_time() - dir->loaded_at < max_age;
	gboolean had = dir->loaded;
	g_mutex_unlock(&m->lock);
	if (fresh) {
		g_mutex_unlock(&dir->load_lock);
		return TRUE;
	}
	GError *e = NULL;
	guint token = mf_stats_begin_activity(m->backend->stats, "listing %s", dir->folder->path);
	gint64 t0 = g_get_monotonic_time();
	mf_listing *l = fetch_listing(m, dir, stream && !had, &e);
	mf_stats_end_activity(m->backend->stats, token);
	double secs = (g_get_monotonic_time() - t0) / 1e6;
	if (l && secs >= 2.0)
		mf_log_info("listed %s: %u messages in %.1f s", dir->folder->path, l->msgs->len, secs);
	else if (l)
		mf_log_debug("listed %s: %u messages in %.3f s", dir->folder->path, l->msgs->len, secs);
	if (!l) {
		g_mutex_unlock(&dir->load_lock);
		if (had) {
			/* A stale listing beats an error for ls; the failure is logged. */
			mf_log_warn("refreshing %s failed, showing the previous listing: %s",
				    dir->folder->path, e->message);
			g_error_free(e);
			return TRUE;
		}
		g_propagate_error(err, e);
		return FALSE;
	}
	g_autoptr(GPtrArray) q = g_ptr_array_new_with_free_func((GDestroyNotify)pending_notify_free);
	g_mutex_lock(&m->lock);
	if (l->all_in_sink) {
		dir->uidvalidity = l->uidvalidity; /* an empty folder streams nothing */
		dir->loaded = TRUE;
		dir->loaded_at = g_get_monotonic_time();
	} else {
		merge_listing(m, dir, l, q);
	}
	gboolean known = dir->sizes_known;
	g_mutex_unlock(&m->lock);
	mf_listing_free(l);
	if (!had && !known) {
		gboolean trusted = sizes_look_trustworthy(m, dir);
		g_mutex_lock(&m->lock);
		dir->size_untrusted = !trusted;
		dir->sizes_known = TRUE;
		g_mutex_unlock(&m->lock);
	}
	g_mutex_unlock(&dir->load_lock);
	if (m->notify)
		for (guint i = 0; i < q->len; i++) {
			pending_notify *p = q->pdata[i];
			m->notify(p->kind, p->parent, p->ino, p->name, m->notify_data);
		}
	return TRUE;
}

mf_node *mf_model_lookup(mf_model *m, mf_node *dir, const char *name, GError **err)
{
	if (dir->kind == MF_NODE_ROOT && strcmp(name, MF_STATUS_NAME) == 0)
		return m->status;
	if (dir->kind != MF_NODE_ROOT && dir->kind != MF_NODE_DIR)
		return NULL;
	if (!mf_model_ensure_listing(m, dir, -1, err))
		return NULL;
	g_mutex_lock(&m->lock);
	mf_node *n = g_hash_table_lookup(dir->by_name, name);
	g_mutex_unlock(&m->lock);
	/* A message file name ends in ".eml": a miss may be mail that arrived since the listing,
	 * so look once more with a short refresh interval. */
	if (!n && g_str_has_suffix(name, ".eml") && dir->folder && dir->folder->selectable) {
		if (!mf_model_ensure_listing(m, dir, 2, err))
			return NULL;
		g_mutex_lock(&m->lock);
		n = g_hash_table_lookup(dir->by_name, name);
		g_mutex_unlock(&m->lock);
	}
	return n;
}

/* A message node's UID is the low half of its inode number (msg_node_new): readdir walks
 * thousands of nodes, and reading the UID there spares a look into each one's meta. */
static guint32 msg_uid(const mf_node *n)
{
	return (guint32)n->ino;
}

/* Whether `dir` has an entry at or after readdir cookie `from_off`. Lock held. */
static gboolean has_entries_from(const mf_node *dir, guint64 from_off)
{
	const guint64 msg_space = 1ULL << 32;
	if (from_off < msg_space && from_off - MF_DIROFF_FIRST < dir->subdirs->len)
		return TRUE;
	guint n = dir->msgs->len;
	guint64 min_uid = from_off >= msg_space ? from_off - msg_space : 0;
	return n && msg_uid(dir->msgs->pdata[n - 1]) >= min_uid;
}

/* Entries from cookie `from_off` on, at most max. Lock held. */
static void fill_dirents(mf_node *dir, guint64 from_off, guint max, GArray *out)
{
	const guint64 msg_space = 1ULL << 32;
	if (from_off < msg_space) {
		guint start = from_off < MF_DIROFF_FIRST ? 0 : from_off - MF_DIROFF_FIRST;
		for (guint i = start; i < dir->subdirs->len && out->len < max; i++) {
			mf_dirent d = { dir->subdirs->pdata[i], MF_DIROFF_FIRST + i + 1 };
			g_array_append_val(out, d);
		}
	}
	/* Messages are addressed by UID so that arrivals and expunges between two readdir calls
	 * never skip or repeat an unrelated entry. */
	guint64 min_uid = from_off >= msg_space ? from_off - msg_space : 0;
	guint lo = 0, hi = dir->msgs->len;
	while (lo < hi) {
		guint mid = (lo + hi) / 2;
		if (msg_uid(dir->msgs->pdata[mid]) < min_uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (guint i = lo; i < dir->msgs->len && out->len < max; i++) {
		mf_node *n = dir->msgs->pdata[i];
		mf_dirent d = { n, msg_space + (guint64)msg_uid(n) + 1 };
		g_array_append_val(out, d);
	}
}

GArray *mf_model_readdir(mf_model *m, mf_node *dir, guint64 from_off, guint max, GError **err)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(mf_dirent));
	from_off = MAX(from_off, MF_DIROFF_FIRST);
	g_mutex_lock(&m->lock);
	/* A first listing still arriving: serve what is in once its sizes are checked, and wait
	 * for more only when the caller has seen everything so far. */
	while (dir->streaming && (!dir->sizes_known || !has_entries_from(dir, from_off)))
		g_cond_wait(&m->grown, &m->lock);
	if (dir->streaming) {
		fill_dirents(dir, from_off, max, out);
		g_mutex_unlock(&m->lock);
		return out;
	}
	if (dir->load_error && !dir->loaded) {
		g_propagate_error(err, g_steal_pointer(&dir->load_error));
		g_mutex_unlock(&m->lock);
		g_array_unref(out);
		return NULL;
	}
	g_mutex_unlock(&m->lock);
	/* opendir refreshed already; this only loads a folder never listed. */
	if (!mf_model_ensure_listing(m, dir, G_MAXINT, err)) {
		g_array_unref(out);
		return NULL;
	}
	g_mutex_lock(&m->lock);
	fill_dirents(dir, from_off, max, out);
	g_mutex_unlock(&m->lock);
	return out;
}

guint64 mf_model_msg_size(mf_model *m, mf_node *msg, gboolean *exact)
{
	g_mutex_lock(&m->lock);
	guint64 s = msg->meta->size;
	if (exact)
		*exact = msg->meta->size_exact;
	g_mutex_unlock(&m->lock);
	return s;
}

guint64 mf_model_msg_stat(mf_model *m, mf_node *msg, gint64 fallback, gint64 *mtime)
{
	g_mutex_lock(&m->lock);
	const mf_msg_meta *x = msg->meta;
	guint64 s = x->size;
	*mtime = x->internaldate != MF_NO_DATE ? x->internaldate
		 : x->date != MF_NO_DATE       ? x->date
					       : fallback;
	g_mutex_unlock(&m->lock);
	return s;
}

void mf_model_set_exact_size(mf_model *m, mf_node *msg, guint64 size)
{
	g_mutex_lock(&m->lock);
	gboolean changed = msg->meta->size != size;
	if (changed || !msg->meta->size_exact) {
		mf_msg_meta *c = mf_msg_meta_copy(msg->meta);
		c->size = size;
		c->size_exact = TRUE;
		mf_msg_meta_unref(msg->meta);
		msg->meta = c;
	}
	g_mutex_unlock(&m->lock);
	if (changed && m->notify)
		m->notify(MF_NOTIFY_INVAL_INODE, 0, msg->ino, NULL, m->notify_data);
}

mf_msg_meta *mf_model_msg_meta(mf_model *m, mf_node *msg)
{
	g_mutex_lock(&m->lock);
	mf_msg_meta *c = mf_msg_meta_ref(msg->meta);
	g_mutex_unlock(&m->lock);
	return c;
}

GPtrArray *mf_model_next_msgs(mf_model *m, mf_node *msg, guint max)
{
	GPtrArray *out = g_ptr_array_new();
	g_mutex_lock(&m->lock);
	mf_node *dir = msg->parent;
	if (!msg->gone && msg->index < dir->msgs->len && dir->msgs->pdata[msg->index] == msg)
		for (guint i = msg->index + 1; i < dir->msgs->len && out->len < max; i++)
			g_ptr_array_add(out, dir->msgs->pdata[i]);
	g_mutex_unlock(&m->lock);
	return out;
}

char *mf_model_body_key(mf_node *msg)
{
	return g_strdup(msg->body_key);
}
