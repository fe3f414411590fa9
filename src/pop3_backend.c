/* The read-only POP3 backend: one folder (INBOX), whole-message fetches, no flags.
 *
 * Every operation is one short session (connect, authenticate, UIDL+LIST, maybe TOP, close), because a POP3 session locks the maildrop and a mount that kept one open would lock
 * out the user's other mail clients (RFC 1939 section 4, RFC 2449 [IN-USE]). Sessions are
 * serialised: a second one would only be refused with [IN-USE].
 *
 * Identity: a message is its UIDL (RFC 1939 section 7), escaped for file names; identical UIDLs
 * (allowed: hash-based servers) get "~2", "~3" in message order. The IMAP-style uid the
 * filesystem needs is an ordinal handed out the first time an id is seen and kept for the life
 * of the mount, so a refresh never renumbers a file. Bodies are cached by id, not uid.
 *
 * Bodies are read with "TOP n <size+1>", never RETR: a body has fewer lines than octets, so this
 * returns the whole message, and unlike RETR it sets no \Seen (measured against Dovecot, see
 * doc/design.md "POP3: reading without a trace"). */
#include <string.h>
#include "backend.h"
#include "log.h"
#include "mailhdr.h"
#include "mferror.h"
#include "name.h"
#include "pop3_conn.h"

/* There is no UIDVALIDITY in POP3; UIDLs are permanent, so the epoch never changes. */
#define POP3_UIDVALIDITY 1
/* A bound on one message, so a hostile server cannot make us buffer without end. */
#define POP3_MESSAGE_MAX ((gsize)1024 * 1024 * 1024)
/* A header block (TOP n 0) larger than this is not mail we can name. */
#define POP3_HEADER_MAX ((gsize)16 * 1024 * 1024)

typedef struct {
	mf_backend base;
	mf_account acct;   /* own copy */
	GMutex lock;       /* held for a whole session; guards everything below */
	GHashTable *uids;  /* id -> uid (GUINT_TO_POINTER), for the life of the backend */
	guint32 next_uid;
	GHashTable *known; /* id -> mf_msg_meta*, the last listing: spares TOP on a refresh */
	guint sessions;
	gboolean warned;
} Pop3Backend;

static Pop3Backend *pop3_backend(mf_backend *b)
{
	return (Pop3Backend *)b;
}

/* The UIDL as a file-name id: printable ASCII already, so only '/' (path separator), '%' (our
 * escape) and '~' (our duplicate marker) are escaped, which keeps distinct UIDLs distinct. */
static char *pop3_id_from_uidl(const char *uidl, guint occurrence)
{
	GString *s = g_string_new(NULL);

	for (const char *p = uidl; *p; p++) {
		if (*p == '/' || *p == '%' || *p == '~')
			g_string_append_printf(s, "%%%02X", (guchar)*p);
		else
			g_string_append_c(s, *p);
	}
	if (occurrence > 1)
		g_string_append_printf(s, "~%u", occurrence);
	return g_string_free(s, FALSE);
}

/* ids for a scan, in message order: ids[i] belongs to entries[i]. */
static GPtrArray *pop3_ids_for_scan(GPtrArray *entries)
{
	GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint i = 0; i < entries->len; i++) {
		pop3_entry *e = entries->pdata[i];
		guint n = GPOINTER_TO_UINT(g_hash_table_lookup(seen, e->uid)) + 1;
		g_hash_table_insert(seen, e->uid, GUINT_TO_POINTER(n));
		g_ptr_array_add(ids, pop3_id_from_uidl(e->uid, n));
	}
	return ids;
}

static pop3_conn *pop3_session_open(Pop3Backend *pb, GError **err)
{
	g_autofree char *label = g_strdup_printf("pop3#%u", ++pb->sessions);
	pop3_conn *c = pop3_conn_open(&pb->acct, label, err);

	if (!c) {
		if (err && *err)
			mf_stats_set_error(pb->base.stats, "%s", (*err)->message);
		return NULL;
	}
	const pop3_capa *capa = pop3_conn_capa(c);
	if (capa && !pb->warned) {
		pb->warned = TRUE;
		if (capa->has_expire && !capa->expire_never && capa->expire_days == 0)
			mf_log_warn("POP3 server %s advertises EXPIRE 0: it may delete mail that was "
				    "downloaded; mailfs never ends a session that read mail with QUIT, so "
				    "it cannot trigger that", pb->acct.host);
		if (capa->has_login_delay && capa->login_delay > 0)
			mf_log_warn("POP3 server %s allows one login every %" G_GINT64_FORMAT
				    " s (LOGIN-DELAY); reads of files not yet cached may fail until then",
				    pb->acct.host, capa->login_delay);
	}
	return c;
}

static gboolean pop3_check_folder(const mf_folder *f, GError **err)
{
	if (f && g_strcmp0(f->raw, "INBOX") == 0)
		return TRUE;
	g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND, "POP3 has only INBOX");
	return FALSE;
}

static gboolean pop3_open(mf_backend *b, GError **err)
{
	Pop3Backend *pb = pop3_backend(b);

	g_mutex_lock(&pb->lock);
	pop3_conn *c = pop3_session_open(pb, err);
	pop3_conn_close(c);
	g_mutex_unlock(&pb->lock);
	return c != NULL;
}

static GPtrArray *pop3_list_folders(mf_backend *b, GError **err)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)mf_folder_free);
	mf_folder *f = g_new0(mf_folder, 1);

	f->path = mf_folder_component("INBOX");
	f->raw = g_strdup("INBOX");
	f->selectable = TRUE;
	g_ptr_array_add(out, f);
	return out;
}

/* ---------------------------------------------------------------- listing */

typedef struct {
	GHashTable *by_msg; /* msg -> mf_msg_meta* (not owned) */
	const char *host;
} top_ctx;

static void top_reply(guint32 msg, GBytes *payload, const GError *error, gpointer data)
{
	top_ctx *ctx = data;
	mf_msg_meta *m = g_hash_table_lookup(ctx->by_msg, GUINT_TO_POINTER(msg));

	if (!m)
		return;
	if (!payload) {
		/* The file is still listed, named from its id alone. */
		mf_log_debug("%s: TOP %u failed: %s", ctx->host, msg, error->message);
		return;
	}
	gsize len;
	const char *hdr = g_bytes_get_data(payload, &len);
	mf_msg_meta_from_headers(m, hdr, len);
}

static gint cmp_meta_uid(gconstpointer a, gconstpointer b)
{
	const mf_msg_meta *x = *(mf_msg_meta *const *)a, *y = *(mf_msg_meta *const *)b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static guint32 pop3_uid_for(Pop3Backend *pb, const char *id)
{
	gpointer v;

	if (g_hash_table_lookup_extended(pb->uids, id, NULL, &v))
		return GPOINTER_TO_UINT(v);
	guint32 uid = pb->next_uid++;
	g_hash_table_insert(pb->uids, g_strdup(id), GUINT_TO_POINTER(uid));
	return uid;
}

static mf_listing *pop3_list_locked(Pop3Backend *pb, GError **err)
{
	pop3_conn *c = pop3_session_open(pb, err);
	if (!c)
		return NULL;
	g_autoptr(GPtrArray) entries = pop3_conn_scan(c, err);
	if (!entries) {
		pop3_conn_close(c);
		return NULL;
	}
	g_autoptr(GPtrArray) ids = pop3_ids_for_scan(entries);
	g_autoptr(mf_listing) l = g_new0(mf_listing, 1);
	l->uidvalidity = POP3_UIDVALIDITY;
	l->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_free);
	g_autoptr(GHashTable) by_msg = g_hash_table_new(NULL, NULL);
	g_autoptr(GArray) need_top = g_array_new(FALSE, FALSE, sizeof(guint32));

	for (guint i = 0; i < entries->len; i++) {
		pop3_entry *e = entries->pdata[i];
		const char *id = ids->pdata[i];
		const mf_msg_meta *old = g_hash_table_lookup(pb->known, id);
		mf_msg_meta *m;
		if (old && old->size == e->size) {
			m = mf_msg_meta_copy(old);
		} else {
			m = mf_msg_meta_new();
			m->id = g_strdup(id);
			m->size = e->size;
			g_array_append_val(need_top, e->msg);
			g_hash_table_insert(by_msg, GUINT_TO_POINTER(e->msg), m);
		}
		m->uid = pop3_uid_for(pb, id);
		g_ptr_array_add(l->msgs, m);
	}
	const pop3_capa *capa = pop3_conn_capa(c);
	if (need_top->len && (!capa || capa->top)) {
		top_ctx ctx = { by_msg, pb->acct.host };
		if (!pop3_conn_top(c, (guint32 *)(void *)need_top->data, NULL, need_top->len,
				   POP3_HEADER_MAX, top_reply, &ctx, err)) {
			pop3_conn_close(c);
			return NULL;
		}
	}
	pop3_conn_close(c);

	g_hash_table_remove_all(pb->known);
	for (guint i = 0; i < l->msgs->len; i++) {
		mf_msg_meta *m = l->msgs->pdata[i];
		g_hash_table_insert(pb->known, g_strdup(m->id), mf_msg_meta_copy(m));
	}
	g_ptr_array_sort(l->msgs, cmp_meta_uid);
	return g_steal_pointer(&l);
}

static mf_listing *pop3_list_messages(mf_backend *b, const mf_folder *f, GError **err)
{
	Pop3Backend *pb = pop3_backend(b);

	if (!pop3_check_folder(f, err))
		return NULL;
	g_mutex_lock(&pb->lock);
	mf_listing *l = pop3_list_locked(pb, err);
	g_mutex_unlock(&pb->lock);
	return l;
}

/* ---------------------------------------------------------------- bodies */

typedef struct {
	GHashTable *by_msg;   /* msg -> const mf_msg_meta* (not owned) */
	GHashTable *size_of;  /* msg -> LIST size in this session */
	mf_body_cb cb;
	gpointer user_data;
	mf_stats *stats;
	GError *first_error;
} body_ctx;

/* A message that does not end in CRLF still gets one before the terminating "." (RFC 1939
 * section 3), while LIST counts the message without it: drop exactly that CRLF, so the bytes
 * served are the message and match the advertised size. */
static GBytes *pop3_body_exact(GBytes *payload, guint64 list_size)
{
	gsize n;
	const char *d = g_bytes_get_data(payload, &n);

	if (n >= 2 && n - 2 == list_size && d[n - 2] == '\r' && d[n - 1] == '\n')
		return g_bytes_new_from_bytes(payload, 0, n - 2);
	return g_bytes_ref(payload);
}

static void body_reply(guint32 msg, GBytes *payload, const GError *error, gpointer data)
{
	body_ctx *ctx = data;
	const mf_msg_meta *m = g_hash_table_lookup(ctx->by_msg, GUINT_TO_POINTER(msg));
	guint64 *size = g_hash_table_lookup(ctx->size_of, GUINT_TO_POINTER(msg));

	if (!payload) {
		if (!ctx->first_error)
			ctx->first_error = g_error_copy(error);
		return;
	}
	mf_stats_body_whole(ctx->stats);
	if (!m || !size)
		return;
	g_autoptr(GBytes) body = pop3_body_exact(payload, *size);
	ctx->cb(m, body, ctx->user_data);
}

/* Read the messages with these metas' ids in one session; cb gets each body. Metas whose id is
 * no longer in the maildrop are counted in *missing (may be NULL). */
static gboolean pop3_bodies_locked(Pop3Backend *pb, GPtrArray *metas, mf_body_cb cb,
				   gpointer user_data, guint *missing, GError **err)
{
	pop3_conn *c = pop3_session_open(pb, err);
	if (!c)
		return FALSE;
	const pop3_capa *capa = pop3_conn_capa(c);
	if (capa && !capa->top) {
		pop3_conn_close(c);
		g_set_error(err, MF_ERROR, MF_ERR_SERVER,
			    "POP3 server %s does not offer TOP; mailfs does not use RETR because it "
			    "marks mail as read on some servers", pb->acct.host);
		return FALSE;
	}
	g_autoptr(GPtrArray) entries = pop3_conn_scan(c, err);
	if (!entries) {
		pop3_conn_close(c);
		return FALSE;
	}
	g_autoptr(GPtrArray) ids = pop3_ids_for_scan(entries);
	g_autoptr(GHashTable) entry_of_id = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = 0; i < entries->len; i++)
		g_hash_table_insert(entry_of_id, ids->pdata[i], entries->pdata[i]);
	g_autoptr(GHashTable) by_msg = g_hash_table_new(NULL, NULL);
	g_autoptr(GHashTable) size_of = g_hash_table_new(NULL, NULL);
	g_autoptr(GArray) msgs = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GArray) lines = g_array_new(FALSE, FALSE, sizeof(guint64));
	guint gone = 0;
	for (guint i = 0; i < metas->len; i++) {
		const mf_msg_meta *m = metas->pdata[i];
		pop3_entry *e = g_hash_table_lookup(entry_of_id, m->id ? m->id : "");
		if (!e) {
			gone++;
			continue;
		}
		if (g_hash_table_contains(by_msg, GUINT_TO_POINTER(e->msg)))
			continue;
		/* More lines than octets: the whole message. Kept within 31 bits for servers that
		 * parse the count as an int; a message that long is over POP3_MESSAGE_MAX anyway. */
		guint64 n = MIN(e->size + 1, (guint64)G_MAXINT32);
		g_hash_table_insert(by_msg, GUINT_TO_POINTER(e->msg), (gpointer)m);
		g_hash_table_insert(size_of, GUINT_TO_POINTER(e->msg), &e->size);
		g_array_append_val(msgs, e->msg);
		g_array_append_val(lines, n);
	}
	body_ctx ctx = { by_msg, size_of, cb, user_data, pb->base.stats, NULL };
	gboolean ok = msgs->len == 0 ||
		      pop3_conn_top(c, (guint32 *)(void *)msgs->data, (guint64 *)(void *)lines->data,
				    msgs->len, POP3_MESSAGE_MAX, body_reply, &ctx, err);
	/* TOP was sent: pop3_conn_close ends the session without QUIT (see pop3_conn.h). */
	pop3_conn_close(c);
	if (ok && ctx.first_error) {
		/* A -ERR for a message that UIDL just listed: another client deleted it. */
		g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND, "%s", ctx.first_error->message);
		ok = FALSE;
	}
	g_clear_error(&ctx.first_error);
	if (missing)
		*missing = gone;
	return ok;
}

typedef struct {
	GBytes *body;
} one_body;

static void keep_body(const mf_msg_meta *m, GBytes *body, gpointer data)
{
	one_body *ob = data;

	if (!ob->body)
		ob->body = g_bytes_ref(body);
}

static GBytes *pop3_fetch(mf_backend *b, const mf_folder *f, guint32 uidvalidity, const mf_msg_meta *m,
			  guint64 off, guint64 len, GError **err)
{
	Pop3Backend *pb = pop3_backend(b);

	if (!pop3_check_folder(f, err))
		return NULL;
	if (uidvalidity != POP3_UIDVALIDITY) {
		g_set_error(err, MF_ERROR, MF_ERR_STALE, "POP3 listing epoch changed");
		return NULL;
	}
	g_autoptr(GPtrArray) one = g_ptr_array_new();
	g_ptr_array_add(one, (gpointer)m);
	one_body ob = { NULL };
	guint missing = 0;
	g_mutex_lock(&pb->lock);
	gboolean ok = pop3_bodies_locked(pb, one, keep_body, &ob, &missing, err);
	g_mutex_unlock(&pb->lock);
	if (!ok)
		return NULL;
	if (!ob.body) {
		g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND, "message %s is no longer in the POP3 maildrop",
			    m->id ? m->id : "?");
		return NULL;
	}
	/* No partial fetch in POP3: the range is cut from the whole message. */
	gsize size = g_bytes_get_size(ob.body);
	if (off == 0 && (len == 0 || len >= size))
		return ob.body;
	gsize start = off < size ? (gsize)off : size;
	gsize n = len == 0 || len > size - start ? size - start : (gsize)len;
	GBytes *part = g_bytes_new_from_bytes(ob.body, start, n);
	g_bytes_unref(ob.body);
	return part;
}

static gboolean pop3_fetch_many(mf_backend *b, const mf_folder *f, guint32 uidvalidity, GPtrArray *metas,
				mf_body_cb cb, gpointer user_data, GError **err)
{
	Pop3Backend *pb = pop3_backend(b);

	if (!pop3_check_folder(f, err))
		return FALSE;
	if (uidvalidity != POP3_UIDVALIDITY) {
		g_set_error(err, MF_ERROR, MF_ERR_STALE, "POP3 listing epoch changed");
		return FALSE;
	}
	g_mutex_lock(&pb->lock);
	gboolean ok = pop3_bodies_locked(pb, metas, cb, user_data, NULL, err);
	g_mutex_unlock(&pb->lock);
	return ok;
}

static void pop3_close(mf_backend *b)
{
	/* No session outlives an operation. */
}

static void pop3_free(mf_backend *b)
{
	Pop3Backend *pb = pop3_backend(b);

	if (!pb)
		return;
	g_hash_table_destroy(pb->uids);
	g_hash_table_destroy(pb->known);
	mf_account_clear(&pb->acct);
	g_mutex_clear(&pb->lock);
	g_free(pb);
}

static const mf_backend_ops pop3_ops = {
	.name = "pop3",
	.open = pop3_open,
	.list_folders = pop3_list_folders,
	.list_messages = pop3_list_messages,
	.fetch = pop3_fetch,
	.fetch_many = pop3_fetch_many,
	.close = pop3_close,
	.free = pop3_free,
};

mf_backend *mf_pop3_backend_new(const mf_account *a)
{
	Pop3Backend *pb = g_new0(Pop3Backend, 1);

	mf_mailhdr_init();
	pb->base.ops = &pop3_ops;
	pb->base.caps = 0;
	pb->base.stats = a->stats;
	/* A deep copy: mf_account_clear() in pop3_free frees every string field. */
	pb->acct = *a;
	pb->acct.state_dir = g_strdup(a->state_dir);
	pb->acct.scheme = g_strdup(a->scheme);
	pb->acct.user = g_strdup(a->user);
	pb->acct.host = g_strdup(a->host);
	pb->acct.password = g_strdup(a->password);
	pb->acct.cafile = g_strdup(a->cafile);
	pb->uids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	pb->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					  (GDestroyNotify)mf_msg_meta_free);
	pb->next_uid = 1;
	g_mutex_init(&pb->lock);
	return &pb->base;
}
