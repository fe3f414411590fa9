/* The read-only POP3 backend: one folder (INBOX), whole-message fetches, no flags.
 *
 * Every operation is one short session (connect, authenticate, a few commands, close), because
 * a POP3 session locks the maildrop and a mount that kept one open would lock out the user's
 * other mail clients (RFC 1939 section 4, RFC 2449 [IN-USE]). Sessions are serialised: a
 * second one would only be refused with [IN-USE].
 *
 * Identity: a message is its UIDL (RFC 1939 section 7), escaped for file names; identical UIDLs
 * (allowed: hash-based servers) get "~2", "~3" in message order (pop3_index_id). The IMAP-style
 * uid the filesystem needs is an ordinal handed out the first time an id is seen and never
 * reused, so a refresh never renumbers a file. Bodies are cached by id, not uid.
 *
 * The last listing is kept (pop3_index) and saved in a->state_dir: a remount costs UIDL + LIST
 * and a "TOP n 0" only for mail the index does not know, and uids (so inode numbers) survive
 * it. A read does not list at all: it asks "UIDL n" for the number the message had in the last
 * listing, pipelined with the TOP, and uses the TOP only if the UIDL answer names the message;
 * otherwise (another client deleted mail meanwhile) it scans and reads again.
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
#include "pop3_index.h"
#include "version.h"

/* There is no UIDVALIDITY in POP3; UIDLs are permanent, so the epoch never changes. */
#define POP3_UIDVALIDITY 1
/* A bound on one message, so a hostile server cannot make us buffer without end. */
#define POP3_MESSAGE_MAX ((gsize)1024 * 1024 * 1024)
/* A header block (TOP n 0) larger than this is not mail we can name. */
#define POP3_HEADER_MAX ((gsize)16 * 1024 * 1024)
/* Without PIPELINING each "UIDL n" costs a round trip: past this many messages one scan
 * (two round trips, whatever the count) and a TOP each is as quick. */
#define POP3_CHECKED_MAX_UNPIPELINED 2
/* Which program decoded the headers in an index file (names depend on it). */
#define INDEX_GENERATOR "mailfs " MAILFS_VERSION

typedef struct {
	mf_backend base;
	mf_account acct;   /* own copy */
	GMutex lock;       /* held for a whole session; guards everything below */
	GHashTable *uids;  /* id -> uid (GUINT_TO_POINTER): every id this mount has known */
	pop3_index *idx;   /* the last listing (and uid counter); NULL until first needed */
	char *idx_path;    /* its file, or NULL: nothing is kept between mounts */
	gboolean idx_dirty;/* idx differs from its file */
	guint sessions;
	gboolean warned;
} Pop3Backend;

static Pop3Backend *pop3_backend(mf_backend *b)
{
	return (Pop3Backend *)b;
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

/* ---------------------------------------------------------------- the index */

static char *pop3_account_key(const mf_account *a)
{
	guint port = a->port ? a->port : (a->implicit_tls ? 995 : 110);

	return g_strdup_printf("%s@%s:%u", a->user ? a->user : "", a->host ? a->host : "", port);
}

/* The saved listing, if there is a usable one; called once, before any uid is handed out. */
static void pop3_index_load(Pop3Backend *pb)
{
	g_autofree char *account = pop3_account_key(&pb->acct);
	g_autofree char *data = NULL;
	g_autoptr(GError) e = NULL;
	gsize len;

	pb->idx = pop3_index_new(account);
	if (!pb->idx_path)
		return;
	if (!g_file_get_contents(pb->idx_path, &data, &len, &e)) {
		if (!g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			mf_log_warn("cannot read the POP3 index %s: %s", pb->idx_path, e->message);
		return;
	}
	pop3_index *x = pop3_index_parse((const guint8 *)data, len, account, INDEX_GENERATOR, &e);
	if (!x) {
		/* Replaced by the next save, even if nothing else changes. */
		pb->idx_dirty = TRUE;
		if (g_error_matches(e, MF_ERROR, MF_ERR_STALE))
			mf_log_info("not using the POP3 index %s: %s", pb->idx_path, e->message);
		else
			mf_log_warn("ignoring the POP3 index %s: %s", pb->idx_path, e->message);
		return;
	}
	if (g_strcmp0(x->generator, INDEX_GENERATOR) != 0)
		pb->idx_dirty = TRUE;
	pop3_index_free(pb->idx);
	pb->idx = x;
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, x->by_id);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const mf_msg_meta *m = ((pop3_index_entry *)v)->meta;
		g_hash_table_insert(pb->uids, g_strdup(m->id), GUINT_TO_POINTER(m->uid));
	}
	mf_log_debug("POP3: %u messages from %s", g_hash_table_size(x->by_id), pb->idx_path);
}

static void pop3_index_ensure(Pop3Backend *pb)
{
	if (!pb->idx)
		pop3_index_load(pb);
}

/* Written to a temporary file and renamed into place, so a crash leaves the old file or the
 * new one, never half of one; 0600 because headers are private. Called after the session is
 * closed: the maildrop is not kept locked while we write. */
static void pop3_index_save(Pop3Backend *pb)
{
	if (!pb->idx_path || !pb->idx || !pb->idx_dirty)
		return;
	g_autoptr(GBytes) b = pop3_index_serialise(pb->idx, INDEX_GENERATOR);
	g_autoptr(GError) e = NULL;
	gsize len;
	const char *data = g_bytes_get_data(b, &len);

	if (!g_file_set_contents_full(pb->idx_path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
				      0600, &e)) {
		mf_log_warn("cannot save the POP3 index: %s", e->message);
		return;
	}
	pb->idx_dirty = FALSE;
}

static guint32 pop3_uid_for(Pop3Backend *pb, const char *id)
{
	gpointer v;

	if (g_hash_table_lookup_extended(pb->uids, id, NULL, &v))
		return GPOINTER_TO_UINT(v);
	guint32 uid = pb->idx->next_uid++;
	g_hash_table_insert(pb->uids, g_strdup(id), GUINT_TO_POINTER(uid));
	return uid;
}

/* ids for a scan, in message order: ids[i] belongs to entries[i]. If asked, occurrences[i]
 * (1 for the first message with its UIDL) and hints[i], the number to remember for "UIDL n":
 * e->msg, or 0 when the UIDL is not unique, because after another client deletes mail "UIDL n"
 * may name a later message with the same UIDL. */
static GPtrArray *pop3_ids_for_scan(GPtrArray *entries, GArray *occurrences, GArray *hints)
{
	GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint i = 0; i < entries->len; i++) {
		pop3_entry *e = entries->pdata[i];
		guint32 n = GPOINTER_TO_UINT(g_hash_table_lookup(seen, e->uid)) + 1;
		g_hash_table_insert(seen, e->uid, GUINT_TO_POINTER(n));
		g_ptr_array_add(ids, pop3_index_id(e->uid, n));
		if (occurrences)
			g_array_append_val(occurrences, n);
	}
	for (guint i = 0; hints && i < entries->len; i++) {
		pop3_entry *e = entries->pdata[i];
		guint32 hint = GPOINTER_TO_UINT(g_hash_table_lookup(seen, e->uid)) == 1 ? e->msg : 0;
		g_array_append_val(hints, hint);
	}
	return ids;
}

/* The numbers of this session's scan, for the next "UIDL n". */
static void pop3_index_renumber(Pop3Backend *pb, GPtrArray *ids, GArray *hints)
{
	g_autoptr(GHashTable) now = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTableIter it;
	gpointer v;

	for (guint i = 0; i < ids->len; i++)
		g_hash_table_insert(now, ids->pdata[i], GUINT_TO_POINTER(g_array_index(hints, guint32, i)));
	g_hash_table_iter_init(&it, pb->idx->by_id);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		pop3_index_entry *x = v;
		guint32 msg = GPOINTER_TO_UINT(g_hash_table_lookup(now, x->meta->id));
		if (x->msg != msg) {
			x->msg = msg;
			pb->idx_dirty = TRUE;
		}
	}
}

/* ---------------------------------------------------------------- listing */

typedef struct {
	GHashTable *by_msg; /* msg -> pop3_index_entry* (not owned) */
	const char *host;
} top_ctx;

static void top_reply(guint32 msg, GBytes *payload, const GError *error, gpointer data)
{
	top_ctx *ctx = data;
	pop3_index_entry *e = g_hash_table_lookup(ctx->by_msg, GUINT_TO_POINTER(msg));

	if (!e)
		return;
	if (!payload) {
		/* The file is still listed, named from its id alone; the next listing asks again. */
		mf_log_debug("%s: TOP %u failed: %s", ctx->host, msg, error->message);
		return;
	}
	gsize len;
	const char *hdr = g_bytes_get_data(payload, &len);
	/* e is an entry of the index being built: nobody else holds its meta yet. */
	mf_msg_meta_from_headers(e->meta, hdr, len);
	e->headers = TRUE;
}

static mf_listing *pop3_list_locked(Pop3Backend *pb, GError **err)
{
	pop3_index_ensure(pb);
	pop3_conn *c = pop3_session_open(pb, err);
	if (!c)
		return NULL;
	g_autoptr(GPtrArray) entries = pop3_conn_scan(c, err);
	if (!entries) {
		pop3_conn_close(c);
		return NULL;
	}
	g_autoptr(GArray) occurrences = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GArray) hints = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GPtrArray) ids = pop3_ids_for_scan(entries, occurrences, hints);
	g_autoptr(pop3_index) fresh = pop3_index_new(pb->idx->account);
	g_autoptr(GHashTable) by_msg = g_hash_table_new(NULL, NULL);
	g_autoptr(GArray) need_top = g_array_new(FALSE, FALSE, sizeof(guint32));
	gboolean changed = FALSE;

	for (guint i = 0; i < entries->len; i++) {
		pop3_entry *e = entries->pdata[i];
		const char *id = ids->pdata[i];
		const pop3_index_entry *old = pop3_index_lookup(pb->idx, id);
		guint32 uid = pop3_uid_for(pb, id);
		pop3_index_entry *ne = pop3_index_entry_new(e->uid, g_array_index(occurrences, guint32, i),
							    uid, e->size);
		ne->msg = g_array_index(hints, guint32, i);
		if (old && old->headers && old->meta->size == e->size) {
			mf_msg_meta_unref(ne->meta);
			ne->meta = mf_msg_meta_copy(old->meta);
			ne->meta->uid = uid;
			ne->headers = TRUE;
		} else {
			g_array_append_val(need_top, e->msg);
			g_hash_table_insert(by_msg, GUINT_TO_POINTER(e->msg), ne);
		}
		if (!old || old->msg != ne->msg || old->meta->size != e->size)
			changed = TRUE;
		pop3_index_add(fresh, ne);
	}
	/* Every entry matched an old one or counted as a change: equal sizes, same ids. */
	if (g_hash_table_size(fresh->by_id) != g_hash_table_size(pb->idx->by_id))
		changed = TRUE;
	const pop3_capa *capa = pop3_conn_capa(c);
	if (need_top->len && (!capa || capa->top)) {
		top_ctx ctx = { by_msg, pb->acct.host };
		if (!pop3_conn_top(c, (guint32 *)(void *)need_top->data, NULL, need_top->len,
				   POP3_HEADER_MAX, top_reply, &ctx, err)) {
			pop3_conn_close(c);
			return NULL;
		}
		changed = TRUE;
	}
	pop3_conn_close(c);

	fresh->next_uid = pb->idx->next_uid;
	pop3_index_free(pb->idx);
	pb->idx = g_steal_pointer(&fresh);
	if (changed)
		pb->idx_dirty = TRUE;
	pop3_index_save(pb);

	mf_listing *l = g_new0(mf_listing, 1);
	l->uidvalidity = POP3_UIDVALIDITY;
	l->msgs = pop3_index_listing(pb->idx);
	return l;
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

/* One message a read asks for. */
typedef struct {
	const mf_msg_meta *m; /* the caller's */
	guint64 size;         /* LIST size the body is cut to (see pop3_body_exact) */
	gboolean done;
} want;

typedef struct {
	GHashTable *by_msg;   /* msg -> want* of the batch in flight (not owned) */
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
	want *w = g_hash_table_lookup(ctx->by_msg, GUINT_TO_POINTER(msg));

	if (!payload) {
		/* STALE: the number names another message now; the scan finds this one. */
		if (!g_error_matches(error, MF_ERROR, MF_ERR_STALE) && !ctx->first_error)
			ctx->first_error = g_error_copy(error);
		return;
	}
	mf_stats_body_whole(ctx->stats);
	if (!w || w->done)
		return;
	w->done = TRUE;
	g_autoptr(GBytes) body = pop3_body_exact(payload, w->size);
	ctx->cb(w->m, body, ctx->user_data);
}

/* More lines than octets: the whole message. Kept within 31 bits for servers that parse the
 * count as an int; a message that long is over POP3_MESSAGE_MAX anyway. */
static guint64 pop3_all_lines(guint64 size)
{
	return MIN(size + 1, (guint64)G_MAXINT32);
}

/* The wants by "UIDL n" + TOP, n from the last listing. Only if every want has a number: when
 * one needs a scan anyway, the scan numbers them all and the UIDL n would be bytes and a
 * round trip for nothing. */
static gboolean pop3_read_checked(Pop3Backend *pb, pop3_conn *c, GArray *wants, body_ctx *ctx,
				  GError **err)
{
	g_autoptr(GArray) msgs = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GPtrArray) uidls = g_ptr_array_new();
	g_autoptr(GArray) lines = g_array_new(FALSE, FALSE, sizeof(guint64));
	g_autoptr(GHashTable) by_msg = g_hash_table_new(NULL, NULL);
	const pop3_capa *capa = pop3_conn_capa(c);

	for (guint i = 0; i < wants->len; i++) {
		want *w = &g_array_index(wants, want, i);
		const pop3_index_entry *e = pop3_index_lookup(pb->idx, w->m->id);
		/* msg is 0 for a UIDL that was not unique (see pop3_ids_for_scan). */
		if (!e || !e->msg || g_hash_table_contains(by_msg, GUINT_TO_POINTER(e->msg)))
			return TRUE;
		guint64 n = pop3_all_lines(e->meta->size);
		w->size = e->meta->size;
		g_array_append_val(msgs, e->msg);
		g_ptr_array_add(uidls, e->uidl);
		g_array_append_val(lines, n);
		g_hash_table_insert(by_msg, GUINT_TO_POINTER(e->msg), w);
	}
	if (msgs->len == 0 ||
	    (!(capa && capa->pipelining) && msgs->len > POP3_CHECKED_MAX_UNPIPELINED))
		return TRUE;
	ctx->by_msg = by_msg;
	gboolean ok = pop3_conn_top_checked(c, (guint32 *)(void *)msgs->data,
					    (const char *const *)uidls->pdata,
					    (guint64 *)(void *)lines->data, msgs->len, POP3_MESSAGE_MAX,
					    body_reply, ctx, err);
	ctx->by_msg = NULL;
	return ok;
}

/* The wants not read yet, by the numbers of a fresh scan; the ones no longer listed are
 * counted in *gone. */
static gboolean pop3_read_scanned(Pop3Backend *pb, pop3_conn *c, GArray *wants, body_ctx *ctx,
				  guint *gone, GError **err)
{
	g_autoptr(GPtrArray) entries = pop3_conn_scan(c, err);
	if (!entries)
		return FALSE;
	g_autoptr(GArray) hints = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GPtrArray) ids = pop3_ids_for_scan(entries, NULL, hints);
	pop3_index_renumber(pb, ids, hints);
	g_autoptr(GHashTable) entry_of_id = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = 0; i < entries->len; i++)
		g_hash_table_insert(entry_of_id, ids->pdata[i], entries->pdata[i]);
	g_autoptr(GHashTable) by_msg = g_hash_table_new(NULL, NULL);
	g_autoptr(GArray) msgs = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GArray) lines = g_array_new(FALSE, FALSE, sizeof(guint64));

	for (guint i = 0; i < wants->len; i++) {
		want *w = &g_array_index(wants, want, i);
		if (w->done)
			continue;
		pop3_entry *e = g_hash_table_lookup(entry_of_id, w->m->id ? w->m->id : "");
		if (!e) {
			(*gone)++;
			continue;
		}
		if (g_hash_table_contains(by_msg, GUINT_TO_POINTER(e->msg)))
			continue;
		guint64 n = pop3_all_lines(e->size);
		w->size = e->size;
		g_hash_table_insert(by_msg, GUINT_TO_POINTER(e->msg), w);
		g_array_append_val(msgs, e->msg);
		g_array_append_val(lines, n);
	}
	if (msgs->len == 0)
		return TRUE;
	ctx->by_msg = by_msg;
	gboolean ok = pop3_conn_top(c, (guint32 *)(void *)msgs->data, (guint64 *)(void *)lines->data,
				    msgs->len, POP3_MESSAGE_MAX, body_reply, ctx, err);
	ctx->by_msg = NULL;
	return ok;
}

/* Read the messages with these metas' ids in one session; cb gets each body. Metas whose id is
 * no longer in the maildrop are counted in *missing (may be NULL). */
static gboolean pop3_bodies_locked(Pop3Backend *pb, GPtrArray *metas, mf_body_cb cb,
				   gpointer user_data, guint *missing, GError **err)
{
	pop3_index_ensure(pb);
	g_autoptr(GArray) wants = g_array_sized_new(FALSE, TRUE, sizeof(want), metas->len);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	guint gone = 0;

	for (guint i = 0; i < metas->len; i++) {
		const mf_msg_meta *m = metas->pdata[i];
		if (!m->id) {
			gone++;
			continue;
		}
		if (!g_hash_table_add(seen, m->id))
			continue;
		want w = { m, 0, FALSE };
		g_array_append_val(wants, w);
	}
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
	body_ctx ctx = { NULL, cb, user_data, pb->base.stats, NULL };
	gboolean ok = pop3_read_checked(pb, c, wants, &ctx, err);
	gboolean pending = FALSE;
	for (guint i = 0; i < wants->len; i++)
		pending |= !g_array_index(wants, want, i).done;
	if (ok && pending && !ctx.first_error)
		ok = pop3_read_scanned(pb, c, wants, &ctx, &gone, err);
	/* TOP was sent: pop3_conn_close ends the session without QUIT (see pop3_conn.h). */
	pop3_conn_close(c);
	if (ok && ctx.first_error) {
		/* A -ERR for a message that UIDL just named: another client deleted it. */
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
	/* Message numbers learnt by reads since the last listing. */
	pop3_index_save(pb);
	g_hash_table_destroy(pb->uids);
	pop3_index_free(pb->idx);
	g_free(pb->idx_path);
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
	mf_account_copy(&pb->acct, a); /* freed by mf_account_clear() in pop3_free */
	pb->uids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (a->state_dir) {
		/* One file per account, so accounts sharing a cache_dir do not overwrite each other. */
		g_autofree char *key = pop3_account_key(a);
		g_autofree char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, key, -1);
		g_autofree char *name = g_strdup_printf("pop3-%.32s.idx", hash);
		pb->idx_path = g_build_filename(a->state_dir, name, NULL);
	}
	g_mutex_init(&pb->lock);
	return &pb->base;
}
