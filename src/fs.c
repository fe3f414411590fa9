/* FUSE low-level operations. Replies come from the model (metadata, listings) and the reader
 * (bytes). Messages are immutable under (folder, UIDVALIDITY, UID), so their attributes and
 * pages are cached by the kernel for a long time (keep_cache, day-long timeouts); changes
 * found on refresh reach the kernel as notifications from a dedicated thread, never from inside
 * a request (libfuse's deadlock rule). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fs.h"
#include "log.h"
#include "mferror.h"
#include "name.h"

#define MSG_TIMEOUT 86400.0
#define DIR_TIMEOUT 1.0

struct mf_fs {
	mf_model *model;
	mf_reader *reader;
	mf_stats *stats;
	char *backend_name;
	uid_t uid;
	gid_t gid;
	time_t mount_time;
	struct fuse_session *se;
	GAsyncQueue *notes;   /* note* for the notifier thread */
	GThread *notifier;
};

typedef struct {
	MfNotifyKind kind;
	guint64 parent, ino;
	char *name;
	gboolean stop;
} note;

int mf_errno(const GError *e)
{
	if (!e || e->domain != MF_ERROR)
		return EIO;
	switch ((MfErrorCode)e->code) {
	case MF_ERR_NOT_FOUND:
		return ENOENT;
	case MF_ERR_STALE:
		return ESTALE;
	case MF_ERR_TIMEOUT:
		return ETIMEDOUT;
	case MF_ERR_NET:
		return EIO;
	case MF_ERR_AUTH:
	case MF_ERR_TLS:
		return EACCES;
	default:
		return EIO;
	}
}

/* Every failure the kernel sees has a one-line reason in the log and in the status file. */
static void reply_gerror(mf_fs *fs, fuse_req_t req, const char *what, GError *e)
{
	int err = mf_errno(e);
	if (!(e && e->domain == MF_ERROR && e->code == MF_ERR_SIZE_MISMATCH)) {
		/* (a size mismatch was already logged by the reader with its own wording) */
		mf_log_error("%s: %s", what, e ? e->message : "unknown error");
		mf_stats_set_error(fs->stats, "%s %s: %s", strerror(err), what, e ? e->message : "unknown error");
	}
	fuse_reply_err(req, err);
}

static mf_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill_attr(mf_fs *fs, mf_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 65536;
	switch (n->kind) {
	case MF_NODE_ROOT:
	case MF_NODE_DIR:
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2 + (n->subdirs ? n->subdirs->len : 0);
		st->st_mtime = st->st_ctime = st->st_atime = fs->mount_time;
		break;
	case MF_NODE_STATUS: {
		g_autofree char *text = mf_stats_format(fs->stats, fs->backend_name);
		st->st_mode = S_IFREG | 0400;
		st->st_nlink = 1;
		st->st_size = strlen(text);
		st->st_mtime = st->st_ctime = st->st_atime = time(NULL);
		break;
	}
	case MF_NODE_MSG: {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		gint64 t;
		/* Under the model lock: a verified size replaces the node's meta. */
		st->st_size = mf_model_msg_stat(fs->model, n, fs->mount_time, &t);
		st->st_blocks = (st->st_size + 511) / 512;
		st->st_mtime = st->st_ctime = st->st_atime = t;
		break;
	}
	}
}

static double attr_timeout(const mf_node *n)
{
	switch (n->kind) {
	case MF_NODE_MSG:
		return MSG_TIMEOUT;
	case MF_NODE_STATUS:
		return 0;
	default:
		return DIR_TIMEOUT;
	}
}

/* A size the kernel will trust for a day must be right: on servers caught lying about sizes
 * (and for the impossible size 0) verify it before showing it. */
static gboolean ensure_size_shown_is_true(mf_fs *fs, mf_node *n, GError **err)
{
	if (n->kind != MF_NODE_MSG)
		return TRUE;
	gboolean exact;
	guint64 size = mf_model_msg_size(fs->model, n, &exact);
	if (exact || (!n->parent->size_untrusted && size > 0))
		return TRUE;
	return mf_reader_verify_size(fs->reader, n, err);
}

static void fill_entry(mf_fs *fs, mf_node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	e->generation = n->kind == MF_NODE_MSG ? n->msg_uidvalidity : 0;
	fill_attr(fs, n, &e->attr);
	e->attr_timeout = attr_timeout(n);
	e->entry_timeout = n->kind == MF_NODE_MSG ? MSG_TIMEOUT : DIR_TIMEOUT;
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Every readdir brings the attributes, not only the first one of a directory (libfuse's
	 * default "auto" mode). cp -r, rsync and tar read a whole directory before they open
	 * its files; in auto mode only the first ~300 entries came with theirs, and each other
	 * file then cost the kernel a LOOKUP round trip to this process: 9,941 of them in a
	 * cp -r of the 10,001-message INBOX. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* Many files read at once by cp/rsync/grep each get kernel read-ahead in flight. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	mf_fs *fs = fs_of(req);
	mf_node *dir = mf_model_get(fs->model, parent);
	if (!dir) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	g_autoptr(GError) e = NULL;
	mf_node *n = mf_model_lookup(fs->model, dir, name, &e);
	if (!n) {
		if (e) {
			g_autofree char *what = g_strdup_printf("looking up %s", name);
			reply_gerror(fs, req, what, e);
		} else {
			fuse_reply_err(req, ENOENT);
		}
		return;
	}
	if (!ensure_size_shown_is_true(fs, n, &e)) {
		reply_gerror(fs, req, n->name, e);
		return;
	}
	struct fuse_entry_param ep;
	fill_entry(fs, n, &ep);
	fuse_reply_entry(req, &ep);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	mf_fs *fs = fs_of(req);
	mf_node *n = mf_model_get(fs->model, ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	g_autoptr(GError) e = NULL;
	if (!ensure_size_shown_is_true(fs, n, &e)) {
		reply_gerror(fs, req, n->name, e);
		return;
	}
	struct stat st;
	fill_attr(fs, n, &st);
	fuse_reply_attr(req, &st, attr_timeout(n));
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	mf_fs *fs = fs_of(req);
	mf_node *n = mf_model_get(fs->model, ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (n->kind == MF_NODE_STATUS) {
		/* A snapshot per open, so one read(2) sequence sees consistent counters. */
		char *text = mf_stats_format(fs->stats, fs->backend_name);
		fi->fh = (uint64_t)(uintptr_t)g_bytes_new_take(text, strlen(text));
		fi->direct_io = 1;
		fuse_reply_open(req, fi);
		return;
	}
	if (n->kind != MF_NODE_MSG) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (n->gone) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	mf_reader_opened(fs->reader, n);
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void reply_bytes(fuse_req_t req, GBytes *b)
{
	gsize len;
	const void *data = g_bytes_get_data(b, &len);
	fuse_reply_buf(req, data, len);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	mf_fs *fs = fs_of(req);
	mf_node *n = mf_model_get(fs->model, ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->kind == MF_NODE_STATUS) {
		GBytes *snap = (GBytes *)(uintptr_t)fi->fh;
		gsize len = g_bytes_get_size(snap);
		g_autoptr(GBytes) part = g_bytes_new_from_bytes(snap, MIN((gsize)off, len),
								  (gsize)off >= len ? 0 : MIN(size, len - off));
		reply_bytes(req, part);
		return;
	}
	g_autoptr(GError) e = NULL;
	g_autoptr(GBytes) data = mf_reader_read(fs->reader, n, off, size, &e);
	if (!data) {
		g_autofree char *what = g_strdup_printf("reading %s/%s", n->parent->folder ? n->parent->folder->path : "",
							n->name);
		reply_gerror(fs, req, what, e);
		return;
	}
	reply_bytes(req, data);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	mf_fs *fs = fs_of(req);
	mf_node *n = mf_model_get(fs->model, ino);
	if (n && n->kind == MF_NODE_STATUS)
		g_bytes_unref((GBytes *)(uintptr_t)fi->fh);
	else if (n && n->kind == MF_NODE_MSG)
		mf_reader_released(fs->reader, n);
	fuse_reply_err(req, 0);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	mf_fs *fs = fs_of(req);
	mf_node *n = mf_model_get(fs->model, ino);
	if (!n || (n->kind != MF_NODE_DIR && n->kind != MF_NODE_ROOT)) {
		fuse_reply_err(req, n ? ENOTDIR : ENOENT);
		return;
	}
	/* Refresh here, once per opendir, rather than in every readdir chunk. */
	g_autoptr(GError) e = NULL;
	if (!mf_model_open_dir(fs->model, n, &e)) {
		g_autofree char *what = g_strdup_printf("listing %s", n->folder ? n->folder->path : "/");
		reply_gerror(fs, req, what, e);
		return;
	}
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, gboolean plus)
{
	mf_fs *fs = fs_of(req);
	mf_node *dir = mf_model_get(fs->model, ino);
	if (!dir) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	g_autofree char *buf = g_malloc(size);
	size_t used = 0;
	struct fuse_entry_param ep;
	struct stat st;
	/* Synthetic entries have the small offsets below MF_DIROFF_FIRST. */
	static const char *const dots[] = { ".", "..", MF_STATUS_NAME };
	guint ndots = dir->kind == MF_NODE_ROOT ? 3 : 2;
	for (guint64 i = off; i < ndots; i++) {
		mf_node *n = i == 0 ? dir : i == 1 ? (dir->parent ? dir->parent : dir) : mf_model_get(fs->model, MF_INO_STATUS);
		size_t want;
		if (plus) {
			fill_entry(fs, n, &ep);
			if (i < 2) /* "." and ".." do not count as lookups */
				ep.ino = 0, ep.attr.st_ino = n->ino;
			want = fuse_add_direntry_plus(req, buf + used, size - used, dots[i], &ep,
						      i + 1 < ndots ? i + 1 : MF_DIROFF_FIRST);
		} else {
			fill_attr(fs, n, &st);
			want = fuse_add_direntry(req, buf + used, size - used, dots[i], &st,
						 i + 1 < ndots ? i + 1 : MF_DIROFF_FIRST);
		}
		if (want > size - used)
			goto done;
		used += want;
	}
	g_autoptr(GError) e = NULL;
	/* No more entries than the buffer can hold: an entry takes at least its header (152
	 * bytes with attributes, 24 without, in the kernel's ABI) and a name of 8 bytes. */
	size_t least = plus ? 152 + 8 : 24 + 8;
	GArray *ents = mf_model_readdir(fs->model, dir, MAX((guint64)off, MF_DIROFF_FIRST),
					size / least + 1, &e);
	if (!ents) {
		g_autofree char *what = g_strdup_printf("listing %s", dir->folder ? dir->folder->path : "/");
		reply_gerror(fs, req, what, e);
		return;
	}
	for (guint i = 0; i < ents->len; i++) {
		mf_dirent *d = &g_array_index(ents, mf_dirent, i);
		size_t want;
		if (plus) {
			g_autoptr(GError) ve = NULL;
			if (!ensure_size_shown_is_true(fs, d->node, &ve)) {
				mf_log_warn("%s: size not verified: %s", d->node->name, ve->message);
				continue;
			}
			fill_entry(fs, d->node, &ep);
			want = fuse_add_direntry_plus(req, buf + used, size - used, d->node->name, &ep, d->next_off);
		} else {
			fill_attr(fs, d->node, &st);
			want = fuse_add_direntry(req, buf + used, size - used, d->node->name, &st, d->next_off);
		}
		if (want > size - used)
			break;
		used += want;
	}
	g_array_unref(ents);
done:
	fuse_reply_buf(req, buf, used);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, FALSE);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, TRUE);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = MF_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

/* \Recent belongs to one IMAP session (whichever connection saw the message first), so it
 * says nothing stable about the message and would make backups see changing xattrs. */
static char *flags_without_recent(const char *flags)
{
	g_auto(GStrv) words = g_strsplit(flags ? flags : "", " ", -1);
	GString *out = g_string_new(NULL);
	for (char **w = words; *w; w++) {
		if (!**w || g_ascii_strcasecmp(*w, "\\Recent") == 0)
			continue;
		if (out->len)
			g_string_append_c(out, ' ');
		g_string_append(out, *w);
	}
	return g_string_free(out, FALSE);
}

/* Extended attributes: the envelope, decoded, and the protocol identity. */
static char *xattr_value(mf_fs *fs, mf_node *n, const char *name)
{
	mf_backend *b = mf_model_backend(fs->model);
	g_autoptr(mf_msg_meta) m = mf_model_msg_meta(fs->model, n);
	if (strcmp(name, "user.mail.from") == 0)
		return g_strdup(m->from);
	if (strcmp(name, "user.mail.to") == 0)
		return g_strdup(m->to);
	if (strcmp(name, "user.mail.subject") == 0)
		return g_strdup(m->subject);
	if (strcmp(name, "user.mail.date") == 0)
		return g_strdup(m->date_raw);
	if (strcmp(name, "user.mail.message_id") == 0)
		return g_strdup(m->message_id);
	if (b->caps & MF_BACKEND_FLAGS) {
		if (strcmp(name, "user.imap.uid") == 0)
			return g_strdup_printf("%u", m->uid);
		if (strcmp(name, "user.imap.uidvalidity") == 0)
			return g_strdup_printf("%u", n->msg_uidvalidity);
		if (strcmp(name, "user.imap.flags") == 0)
			return flags_without_recent(m->flags);
		if (strcmp(name, "user.imap.internaldate") == 0 && m->internaldate != MF_NO_DATE) {
			g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(m->internaldate);
			return dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : NULL;
		}
	} else {
		g_autofree char *idname = g_strdup_printf("user.%s.id", b->ops->name);
		if (strcmp(name, idname) == 0)
			return g_strdup(m->id);
	}
	return NULL;
}

static GPtrArray *xattr_names(mf_fs *fs)
{
	mf_backend *b = mf_model_backend(fs->model);
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	static const char *const mail[] = { "user.mail.from", "user.mail.to", "user.mail.subject",
					    "user.mail.date", "user.mail.message_id" };
	for (guint i = 0; i < G_N_ELEMENTS(mail); i++)
		g_ptr_array_add(names, g_strdup(mail[i]));
	if (b->caps & MF_BACKEND_FLAGS) {
		static const char *const imap[] = { "user.imap.uid", "user.imap.uidvalidity",
						    "user.imap.flags", "user.imap.internaldate" };
		for (guint i = 0; i < G_N_ELEMENTS(imap); i++)
			g_ptr_array_add(names, g_strdup(imap[i]));
	} else {
		g_ptr_array_add(names, g_strdup_printf("user.%s.id", b->ops->name));
	}
	return names;
}

static void reply_xattr_data(fuse_req_t req, const char *data, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	mf_fs *fs = fs_of(req);
	/* Only the user namespace exists here. Saying so (rather than "no such attribute") lets
	 * ls -l, cp -a and rsync -X stop asking for ACLs and security labels after the first file:
	 * coreutils remembers an unsupported device, which saves two requests per file. */
	if (!g_str_has_prefix(name, "user.")) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	mf_node *n = mf_model_get(fs->model, ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	g_autofree char *v = n->kind == MF_NODE_MSG ? xattr_value(fs, n, name) : NULL;
	if (!v) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	reply_xattr_data(req, v, strlen(v), size);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	mf_fs *fs = fs_of(req);
	mf_node *n = mf_model_get(fs->model, ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	g_autoptr(GString) list = g_string_new(NULL);
	if (n->kind == MF_NODE_MSG) {
		g_autoptr(GPtrArray) names = xattr_names(fs);
		for (guint i = 0; i < names->len; i++) {
			g_autofree char *v = xattr_value(fs, n, names->pdata[i]);
			if (v)
				g_string_append_len(list, names->pdata[i], strlen(names->pdata[i]) + 1);
		}
	}
	reply_xattr_data(req, list->str, list->len, size);
}

/* The mount is read-only: every change is refused the same way. */
static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}
static void fs_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t r) { fuse_reply_err(req, EROFS); }
static void fs_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m) { fuse_reply_err(req, EROFS); }
static void fs_unlink(fuse_req_t req, fuse_ino_t p, const char *n) { fuse_reply_err(req, EROFS); }
static void fs_rmdir(fuse_req_t req, fuse_ino_t p, const char *n) { fuse_reply_err(req, EROFS); }
static void fs_symlink(fuse_req_t req, const char *l, fuse_ino_t p, const char *n) { fuse_reply_err(req, EROFS); }
static void fs_rename(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn, unsigned int f)
{
	fuse_reply_err(req, EROFS);
}
static void fs_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t np, const char *nn) { fuse_reply_err(req, EROFS); }
static void fs_write(fuse_req_t req, fuse_ino_t i, const char *b, size_t s, off_t o, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}
static void fs_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}
static void fs_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v, size_t s, int f)
{
	fuse_reply_err(req, EROFS);
}
static void fs_removexattr(fuse_req_t req, fuse_ino_t i, const char *n) { fuse_reply_err(req, EROFS); }

static const struct fuse_lowlevel_ops ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.release = fs_release,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.statfs = fs_statfs,
	.setxattr = fs_setxattr,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
	.create = fs_create,
};

const struct fuse_lowlevel_ops *mf_fs_ops(void)
{
	return &ops;
}

static void queue_note(MfNotifyKind kind, guint64 parent, guint64 ino, const char *name, gpointer user_data)
{
	mf_fs *fs = user_data;
	note *nt = g_new0(note, 1);
	nt->kind = kind;
	nt->parent = parent;
	nt->ino = ino;
	nt->name = g_strdup(name);
	g_async_queue_push(fs->notes, nt);
}

static gpointer notifier_main(gpointer data)
{
	mf_fs *fs = data;
	for (;;) {
		note *nt = g_async_queue_pop(fs->notes);
		gboolean stop = nt->stop;
		if (!stop && fs->se) {
			int rc = nt->kind == MF_NOTIFY_INVAL_ENTRY
				 ? fuse_lowlevel_notify_inval_entry(fs->se, nt->parent, nt->name, strlen(nt->name))
				 : fuse_lowlevel_notify_inval_inode(fs->se, nt->ino, -1, 0);
			if (rc != 0 && rc != -ENOENT)
				mf_log_debug("kernel notification failed: %s", strerror(-rc));
		}
		g_free(nt->name);
		g_free(nt);
		if (stop)
			return NULL;
	}
}

mf_fs *mf_fs_new(mf_stats *stats, const char *backend_name)
{
	mf_fs *fs = g_new0(mf_fs, 1);
	fs->stats = stats;
	fs->backend_name = g_strdup(backend_name);
	fs->uid = getuid();
	fs->gid = getgid();
	fs->mount_time = time(NULL);
	fs->notes = g_async_queue_new();
	return fs;
}

void mf_fs_start(mf_fs *fs, struct fuse_session *se, mf_model *m, mf_reader *r)
{
	fs->se = se;
	fs->model = m;
	fs->reader = r;
	mf_model_set_notify(m, queue_note, fs);
	fs->notifier = g_thread_new("notify", notifier_main, fs);
}

void mf_fs_stop(mf_fs *fs)
{
	if (!fs->notifier)
		return;
	note *nt = g_new0(note, 1);
	nt->stop = TRUE;
	g_async_queue_push(fs->notes, nt);
	g_thread_join(fs->notifier);
	fs->notifier = NULL;
}

void mf_fs_free(mf_fs *fs)
{
	if (!fs)
		return;
	mf_fs_stop(fs);
	if (fs->model)
		mf_model_set_notify(fs->model, NULL, NULL);
	g_async_queue_unref(fs->notes);
	g_free(fs->backend_name);
	g_free(fs);
}
