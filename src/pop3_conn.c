/* A short, read-only POP3 session (RFC 1939, RFC 2449, RFC 2595, RFC 5034).
 *
 * Safety rules, each enforced in one place:
 * - Every command goes through send_commands(), which refuses anything that is not on the
 *   read-only allow-list: no DELE, no RSET, and no RETR either, because Dovecot marks a
 *   RETRieved message \Seen even when the session is dropped without QUIT; bodies are read
 *   with "TOP n <more lines than the message has>", which returns the whole message.
 * - Credentials are sent only over TLS unless the account allows plaintext, and they never
 *   reach the trace: credential commands are traced as their verb alone.
 * - Once TOP was sent, the session ends without QUIT, so the server never enters the
 *   UPDATE state (RFC 1939 section 6). See pop3_conn_close(). */
#include <string.h>
#include "pop3_conn.h"
#include "log.h"
#include "mferror.h"
#include "net.h"
#include "stats.h"

/* RFC 2449 section 4 caps responses at 512 octets; be generous, not unbounded. */
#define POP3_STATUS_MAX 4096
/* RFC 2449 section 4: command lines are at most 255 octets including CRLF. */
#define POP3_COMMAND_MAX 255
/* Commands in flight when pipelining: a bounded window means our write never waits on a
 * server that is itself waiting for us to read replies. */
#define POP3_WINDOW 32

struct pop3_conn {
	mf_stream *s;
	char *label;
	mf_stats *stats;
	pop3_capa *capa;
	char *apop_ts;
	gboolean touched; /* TOP was sent: no QUIT */
	gboolean broken;  /* network or protocol error: the exchange is out of step */
};

static const char *const allowed_verbs[] = {
	"CAPA", "STLS", "USER", "PASS", "AUTH", "APOP", "STAT", "LIST", "UIDL", "TOP", "NOOP", "QUIT",
};

gboolean pop3_command_allowed(const char *line)
{
	gsize len = strlen(line);

	if (len == 0 || len + 2 > POP3_COMMAND_MAX || strpbrk(line, "\r\n"))
		return FALSE;
	gsize verb = strcspn(line, " ");
	for (gsize i = 0; i < G_N_ELEMENTS(allowed_verbs); i++) {
		if (strlen(allowed_verbs[i]) == verb && g_ascii_strncasecmp(line, allowed_verbs[i], verb) == 0)
			return TRUE;
	}
	return FALSE;
}

char *pop3_apop_digest(const char *timestamp, const char *password)
{
	g_autoptr(GChecksum) md5 = g_checksum_new(G_CHECKSUM_MD5);

	g_checksum_update(md5, (const guchar *)timestamp, (gssize)strlen(timestamp));
	g_checksum_update(md5, (const guchar *)password, (gssize)strlen(password));
	return g_strdup(g_checksum_get_string(md5));
}

/* Server text for an error message: valid UTF-8, no control characters. */
static char *clean_text(const char *text)
{
	char *s = g_utf8_make_valid(text ? text : "", -1);

	for (char *p = s; *p; p++) {
		if ((guchar)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
	return s;
}

/* ---------------------------------------------------------------- the wire */

typedef struct {
	char *line;         /* without CRLF */
	const char *trace;  /* what the trace shows instead of the line (credentials), or NULL */
	gboolean multiline; /* a +OK reply is followed by a dot-terminated body */
	guint32 msg;
	gsize max;          /* bound of the body */
} pop3_cmd;

static void cmd_clear(pop3_cmd *c)
{
	if (c->line) {
		explicit_bzero(c->line, strlen(c->line));
		g_free(c->line);
	}
}

static gboolean conn_fail(pop3_conn *c, GError **err, GError *e)
{
	c->broken = TRUE;
	g_propagate_error(err, e);
	return FALSE;
}

static gboolean send_commands(pop3_conn *c, pop3_cmd *cmds, guint n, GError **err)
{
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; i < n; i++) {
		if (!pop3_command_allowed(cmds[i].line)) {
			/* A programming error, never server input: refuse loudly. */
			g_set_error(err, MF_ERROR, MF_ERR_FAILED,
				    "refusing to send a POP3 command outside the read-only allow-list");
			return FALSE;
		}
		gsize verb = strcspn(cmds[i].line, " ");
		g_autofree char *kind = g_ascii_strup(cmds[i].line, (gssize)verb);
		if (cmds[i].trace) {
			/* Only our fixed verb reaches the logger, never the credential itself.
			 * (mf_log_protocol's own redaction keeps an IMAP tag and command, which
			 * in an untagged POP3 "PASS pw" would be the password.) */
			g_autofree char *t = g_strdup_printf("%s <credentials hidden>", cmds[i].trace);
			mf_log_protocol(c->label, TRUE, t, strlen(t), FALSE);
		} else
			mf_log_protocol(c->label, TRUE, cmds[i].line, strlen(cmds[i].line), FALSE);
		mf_stats_command(c->stats, kind);
		if (!strcmp(kind, "TOP"))
			c->touched = TRUE;
		g_string_append(out, cmds[i].line);
		g_string_append(out, "\r\n");
	}
	GError *e = NULL;
	gboolean ok = mf_stream_write(c->s, out->str, out->len, &e);
	explicit_bzero(out->str, out->len);
	return ok ? TRUE : conn_fail(c, err, e);
}

static gboolean read_status(pop3_conn *c, pop3_status *st, GError **err)
{
	GError *e = NULL;
	gsize len;
	g_autofree char *line = mf_stream_read_line(c->s, &len, POP3_STATUS_MAX, &e);

	memset(st, 0, sizeof *st);
	if (!line)
		return conn_fail(c, err, e);
	mf_log_protocol(c->label, FALSE, line, len, FALSE);
	if (!pop3_status_parse(line, len, st, &e))
		return conn_fail(c, err, e);
	return TRUE;
}

static GBytes *read_body(pop3_conn *c, gsize max, GError **err)
{
	g_autoptr(pop3_multiline) m = pop3_multiline_new(max);
	/* A line may hold the whole body plus its stuffing dot and line end. */
	gsize line_max = max > G_MAXSIZE - 3 ? G_MAXSIZE : max + 3;

	for (;;) {
		GError *e = NULL;
		gsize len;
		g_autofree char *line = mf_stream_read_line(c->s, &len, line_max, &e);
		if (!line) {
			conn_fail(c, err, e);
			return NULL;
		}
		int r = pop3_multiline_feed(m, line, len, &e);
		if (r < 0) {
			conn_fail(c, err, e);
			return NULL;
		}
		if (r == 1)
			break;
	}
	GBytes *b = pop3_multiline_steal(m);
	g_autofree char *note = g_strdup_printf("(%" G_GSIZE_FORMAT " bytes)", g_bytes_get_size(b));
	mf_log_protocol(c->label, FALSE, note, strlen(note), FALSE);
	return b;
}

/* The error for a -ERR reply to `what`. */
static GError *server_error(const pop3_status *st, const char *what)
{
	g_autofree char *text = clean_text(st->text);

	if (g_strcmp0(st->code, "LOGIN-DELAY") == 0)
		return g_error_new(MF_ERROR, MF_ERR_THROTTLED,
				   "POP3 server refused %s: logging in again too soon (%s)", what, text);
	if (g_strcmp0(st->code, "IN-USE") == 0)
		return g_error_new(MF_ERROR, MF_ERR_SERVER,
				   "POP3 maildrop is in use by another session (%s)", text);
	return g_error_new(MF_ERROR, MF_ERR_SERVER, "POP3 server refused %s: %s", what, text);
}

typedef void (*reply_fn)(guint i, const pop3_status *st, GBytes *body, gpointer data);

/* Send cmds and hand each reply to fn, in order, `window` commands at a time (PIPELINING, RFC
 * 2449 section 6.6; 1 without it). A -ERR reply is passed on and does not stop the batch; only
 * a broken exchange does. */
static gboolean run_commands_window(pop3_conn *c, pop3_cmd *cmds, guint n, guint window,
				    reply_fn fn, gpointer data, GError **err)
{
	guint sent = 0, done = 0;

	if (c->broken) {
		g_set_error(err, MF_ERROR, MF_ERR_NET, "POP3 session is no longer usable");
		return FALSE;
	}
	while (done < n) {
		guint batch = MIN(window, n - sent);
		if (!send_commands(c, cmds + sent, batch, err))
			return FALSE;
		sent += batch;
		mf_stats_round_trip(c->stats);
		for (; done < sent; done++) {
			pop3_status st;
			g_autoptr(GBytes) body = NULL;
			if (!read_status(c, &st, err))
				return FALSE;
			if (st.kind == POP3_CONT) {
				pop3_status_clear(&st);
				return conn_fail(c, err, g_error_new(MF_ERROR, MF_ERR_PROTOCOL,
						"POP3 server sent a continuation outside AUTH"));
			}
			if (st.kind == POP3_OK && cmds[done].multiline) {
				body = read_body(c, cmds[done].max, err);
				if (!body) {
					pop3_status_clear(&st);
					return FALSE;
				}
			}
			fn(done, &st, body, data);
			pop3_status_clear(&st);
		}
	}
	return TRUE;
}

static gboolean run_commands(pop3_conn *c, pop3_cmd *cmds, guint n, reply_fn fn, gpointer data,
			     GError **err)
{
	guint window = c->capa && c->capa->pipelining ? POP3_WINDOW : 1;

	return run_commands_window(c, cmds, n, window, fn, data, err);
}

/* One single-line command; the status goes to *st (caller clears). */
static gboolean run_simple(pop3_conn *c, const char *line, const char *trace, pop3_status *st,
			   GError **err)
{
	pop3_cmd cmd = { .line = (char *)line, .trace = trace };

	if (!send_commands(c, &cmd, 1, err))
		return FALSE;
	mf_stats_round_trip(c->stats);
	return read_status(c, st, err);
}

/* ---------------------------------------------------------------- session setup */

typedef struct {
	pop3_status st;
	GBytes *body;
} one_reply;

static void keep_reply(guint i, const pop3_status *st, GBytes *body, gpointer data)
{
	one_reply *r = data;

	r->st.kind = st->kind;
	r->st.code = g_strdup(st->code);
	r->st.text = g_strdup(st->text);
	r->body = body ? g_bytes_ref(body) : NULL;
}

/* CAPA; a server without it (-ERR) leaves capa NULL: RFC 1939-only servers exist. */
static gboolean load_capa(pop3_conn *c, GError **err)
{
	pop3_cmd cmd = { .line = (char *)"CAPA", .multiline = TRUE, .max = 64 * 1024 };
	one_reply r = { 0 };

	g_clear_pointer(&c->capa, pop3_capa_free);
	if (!run_commands(c, &cmd, 1, keep_reply, &r, err))
		return FALSE;
	if (r.body) {
		c->capa = pop3_capa_parse(r.body);
		g_bytes_unref(r.body);
	}
	pop3_status_clear(&r.st);
	return TRUE;
}

static gboolean start_tls(pop3_conn *c, const mf_account *a, GError **err)
{
	pop3_status st;

	if (!run_simple(c, "STLS", NULL, &st, err))
		return FALSE;
	gboolean ok = st.kind == POP3_OK;
	pop3_status_clear(&st);
	if (!ok) {
		if (a->allow_plaintext)
			return TRUE;
		g_set_error(err, MF_ERROR, MF_ERR_PLAINTEXT,
			    "POP3 server %s refused STLS; not sending the password unencrypted "
			    "(use pop3s:// or -o allow_plaintext)", a->host);
		return FALSE;
	}
	GError *e = NULL;
	/* Fails if the server sent anything after its +OK: injected plaintext (CVE-2020-14954). */
	if (!mf_stream_start_tls(c->s, &e))
		return conn_fail(c, err, e);
	/* RFC 2595 section 4: forget what was learnt before TLS. */
	return load_capa(c, err);
}

static gboolean check_credentials(const mf_account *a, GError **err)
{
	if (!a->user || !*a->user || strpbrk(a->user, "\r\n ") || (a->password && strpbrk(a->password, "\r\n"))) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG,
			    "POP3 user name is empty or contains a space or line break, or the password a line break");
		return FALSE;
	}
	return TRUE;
}

static gboolean auth_reply(pop3_conn *c, const pop3_status *st, GError **err)
{
	if (st->kind == POP3_OK)
		return TRUE;
	if (st->code && strcmp(st->code, "AUTH") != 0) {
		g_propagate_error(err, server_error(st, "the login"));
		return FALSE;
	}
	g_autofree char *text = clean_text(st->text);
	g_set_error(err, MF_ERROR, MF_ERR_AUTH, "POP3 login failed: %s", text);
	return FALSE;
}

static gboolean auth_plain(pop3_conn *c, const mf_account *a, GError **err)
{
	const char *pw = a->password ? a->password : "";
	gsize ulen = strlen(a->user), plen = strlen(pw);
	gsize n = ulen + plen + 2;
	char *raw = g_malloc(n);

	raw[0] = '\0';
	memcpy(raw + 1, a->user, ulen);
	raw[1 + ulen] = '\0';
	memcpy(raw + 2 + ulen, pw, plen);
	char *b64 = g_base64_encode((const guchar *)raw, n);
	explicit_bzero(raw, n);
	g_free(raw);

	pop3_status st;
	char *line = g_strconcat("AUTH PLAIN ", b64, NULL);
	gboolean ok;
	/* RFC 5034 section 4: no initial response if it would break the 255-octet limit. */
	if (strlen(line) + 2 <= POP3_COMMAND_MAX) {
		ok = run_simple(c, line, "AUTH PLAIN", &st, err);
	} else {
		ok = run_simple(c, "AUTH PLAIN", NULL, &st, err);
		if (ok && st.kind == POP3_CONT) {
			pop3_status_clear(&st);
			g_autoptr(GString) out = g_string_new(b64);
			g_string_append(out, "\r\n");
			mf_log_protocol(c->label, TRUE, "<credentials hidden>", strlen("<credentials hidden>"), FALSE);
			GError *e = NULL;
			ok = mf_stream_write(c->s, out->str, out->len, &e) ? TRUE : conn_fail(c, err, e);
			explicit_bzero(out->str, out->len);
			if (ok) {
				mf_stats_round_trip(c->stats);
				ok = read_status(c, &st, err);
			}
		}
	}
	explicit_bzero(line, strlen(line));
	g_free(line);
	explicit_bzero(b64, strlen(b64));
	g_free(b64);
	if (!ok)
		return FALSE;
	if (st.kind == POP3_CONT) {
		/* A challenge we cannot answer: the exchange is out of step, drop it. */
		pop3_status_clear(&st);
		return conn_fail(c, err, g_error_new(MF_ERROR, MF_ERR_PROTOCOL,
				"POP3 server sent an unexpected AUTH PLAIN challenge"));
	}
	ok = auth_reply(c, &st, err);
	pop3_status_clear(&st);
	return ok;
}

static gboolean auth_user_pass(pop3_conn *c, const mf_account *a, GError **err)
{
	pop3_status st;
	g_autofree char *user = g_strconcat("USER ", a->user, NULL);

	if (!run_simple(c, user, NULL, &st, err))
		return FALSE;
	gboolean ok = auth_reply(c, &st, err);
	pop3_status_clear(&st);
	if (!ok)
		return FALSE;
	char *pass = g_strconcat("PASS ", a->password ? a->password : "", NULL);
	ok = run_simple(c, pass, "PASS", &st, err);
	explicit_bzero(pass, strlen(pass));
	g_free(pass);
	if (!ok)
		return FALSE;
	ok = auth_reply(c, &st, err);
	pop3_status_clear(&st);
	return ok;
}

static gboolean auth_apop(pop3_conn *c, const mf_account *a, GError **err)
{
	if (!c->apop_ts) {
		g_set_error(err, MF_ERROR, MF_ERR_AUTH,
			    "APOP requested but the POP3 server's greeting has no APOP timestamp");
		return FALSE;
	}
	g_autofree char *digest = pop3_apop_digest(c->apop_ts, a->password ? a->password : "");
	g_autofree char *line = g_strdup_printf("APOP %s %s", a->user, digest);
	pop3_status st;
	if (!run_simple(c, line, "APOP", &st, err))
		return FALSE;
	gboolean ok = auth_reply(c, &st, err);
	pop3_status_clear(&st);
	return ok;
}

pop3_conn *pop3_conn_open(const mf_account *a, const char *label, GError **err)
{
	if (!check_credentials(a, err))
		return NULL;
	mf_stream_opts o = {
		.host = a->host,
		.port = a->port ? a->port : (a->implicit_tls ? 995 : 110),
		.cafile = a->cafile,
		.timeout_sec = a->timeout_sec > 0 ? a->timeout_sec : 30,
		.stats = a->stats,
		.label = label,
	};
	pop3_conn *c = g_new0(pop3_conn, 1);
	c->label = g_strdup(label ? label : "pop3");
	c->stats = a->stats;
	c->broken = TRUE; /* until authenticated: never QUIT a half-open session */
	c->s = mf_stream_connect(&o, err);
	if (!c->s)
		goto fail;
	c->broken = FALSE;
	if (a->implicit_tls && !mf_stream_start_tls(c->s, err))
		goto fail;

	pop3_status st;
	if (!read_status(c, &st, err))
		goto fail;
	if (st.kind != POP3_OK) {
		g_autofree char *text = clean_text(st.text);
		g_set_error(err, MF_ERROR, MF_ERR_SERVER, "POP3 server %s refused the connection: %s",
			    a->host, text);
		pop3_status_clear(&st);
		goto fail;
	}
	c->apop_ts = pop3_apop_timestamp(st.text);
	pop3_status_clear(&st);

	if (!load_capa(c, err))
		goto fail;
	if (!mf_stream_is_tls(c->s) && (!c->capa || c->capa->stls) && !start_tls(c, a, err))
		goto fail;
	if (!mf_stream_is_tls(c->s) && !a->allow_plaintext) {
		g_set_error(err, MF_ERROR, MF_ERR_PLAINTEXT,
			    "POP3 server %s does not offer STLS; not sending the password unencrypted "
			    "(use pop3s:// or -o allow_plaintext)", a->host);
		goto fail;
	}
	gboolean ok;
	if (a->apop)
		ok = auth_apop(c, a, err);
	else if (c->capa && c->capa->sasl_plain)
		ok = auth_plain(c, a, err);
	else
		ok = auth_user_pass(c, a, err);
	if (!ok)
		goto fail;
	return c;
fail:
	c->broken = TRUE;
	pop3_conn_close(c);
	return NULL;
}

const pop3_capa *pop3_conn_capa(const pop3_conn *c)
{
	return c->capa;
}

/* ---------------------------------------------------------------- transaction commands */

typedef struct {
	one_reply r[2];
} scan_replies;

static void keep_scan(guint i, const pop3_status *st, GBytes *body, gpointer data)
{
	scan_replies *s = data;

	keep_reply(i, st, body, &s->r[i]);
}

static gint cmp_entry_msg(gconstpointer a, gconstpointer b)
{
	const pop3_entry *x = *(pop3_entry *const *)a, *y = *(pop3_entry *const *)b;

	return x->msg < y->msg ? -1 : x->msg > y->msg;
}

/* UIDL and LIST payloads joined by message number. */
static GPtrArray *merge_scan(GBytes *uidl_body, GBytes *list_body, GError **err)
{
	g_autoptr(GPtrArray) uidl = pop3_uidl_parse(uidl_body, err);
	if (!uidl)
		return NULL;
	g_autoptr(GPtrArray) list = pop3_list_parse(list_body, err);
	if (!list)
		return NULL;
	g_autoptr(GHashTable) sizes = g_hash_table_new(NULL, NULL);
	for (guint i = 0; i < list->len; i++) {
		pop3_entry *e = list->pdata[i];
		g_hash_table_insert(sizes, GUINT_TO_POINTER(e->msg), e);
	}
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)pop3_entry_free);
	for (guint i = 0; i < uidl->len; i++) {
		pop3_entry *u = uidl->pdata[i];
		pop3_entry *l = g_hash_table_lookup(sizes, GUINT_TO_POINTER(u->msg));
		/* Both listings come from the same snapshot; a message in only one is skipped. */
		if (!l)
			continue;
		pop3_entry *e = g_new0(pop3_entry, 1);
		e->msg = u->msg;
		e->uid = g_strdup(u->uid);
		e->size = l->size;
		g_ptr_array_add(out, e);
	}
	g_ptr_array_sort(out, cmp_entry_msg);
	return out;
}

GPtrArray *pop3_conn_scan(pop3_conn *c, GError **err)
{
	pop3_cmd cmds[2] = {
		{ .line = (char *)"UIDL", .multiline = TRUE, .max = 256 * 1024 * 1024 },
		{ .line = (char *)"LIST", .multiline = TRUE, .max = 256 * 1024 * 1024 },
	};
	scan_replies s = { 0 };
	GPtrArray *out = NULL;

	if (run_commands(c, cmds, 2, keep_scan, &s, err)) {
		if (!s.r[0].body)
			g_propagate_error(err, server_error(&s.r[0].st, "UIDL"));
		else if (!s.r[1].body)
			g_propagate_error(err, server_error(&s.r[1].st, "LIST"));
		else
			out = merge_scan(s.r[0].body, s.r[1].body, err);
	}
	for (int i = 0; i < 2; i++) {
		pop3_status_clear(&s.r[i].st);
		if (s.r[i].body)
			g_bytes_unref(s.r[i].body);
	}
	return out;
}

typedef struct {
	const guint32 *msgs;
	pop3_reply_cb cb;
	gpointer user_data;
} content_ctx;

static void content_reply(guint i, const pop3_status *st, GBytes *body, gpointer data)
{
	content_ctx *ctx = data;

	if (body) {
		ctx->cb(ctx->msgs[i], body, NULL, ctx->user_data);
		return;
	}
	g_autoptr(GError) e = server_error(st, "TOP");
	ctx->cb(ctx->msgs[i], NULL, e, ctx->user_data);
}

gboolean pop3_conn_top(pop3_conn *c, const guint32 *msgs, const guint64 *lines, guint n,
		       gsize max_bytes, pop3_reply_cb cb, gpointer user_data, GError **err)
{
	pop3_cmd *cmds = g_new0(pop3_cmd, n);
	content_ctx ctx = { msgs, cb, user_data };

	for (guint i = 0; i < n; i++) {
		cmds[i].line = g_strdup_printf("TOP %u %" G_GUINT64_FORMAT, msgs[i], lines ? lines[i] : 0);
		cmds[i].multiline = TRUE;
		cmds[i].msg = msgs[i];
		cmds[i].max = max_bytes;
	}
	gboolean ok = run_commands(c, cmds, n, content_reply, &ctx, err);
	for (guint i = 0; i < n; i++)
		cmd_clear(&cmds[i]);
	g_free(cmds);
	return ok;
}

typedef struct {
	const guint32 *msgs;
	const char *const *uidls;
	gboolean *matched; /* per pair: the UIDL answer named the expected message */
	guint offset;      /* index of this run's first command among all 2n */
	pop3_reply_cb cb;
	gpointer user_data;
} checked_ctx;

/* "+OK msg uidl" naming exactly this message. A sloppy answer is a mismatch: the caller then
 * scans, which costs bytes but never serves the wrong message. */
static gboolean uidl_answer_matches(const pop3_status *st, guint32 msg, const char *uidl)
{
	guint32 n;
	g_autofree char *u = NULL;

	return st->kind == POP3_OK && pop3_uidl_line_parse(st->text, strlen(st->text), &n, &u, NULL) &&
	       n == msg && strcmp(u, uidl) == 0;
}

static void checked_stale(checked_ctx *ctx, guint k)
{
	g_autoptr(GError) e = g_error_new(MF_ERROR, MF_ERR_STALE,
					  "POP3 message %u is no longer the one with UIDL %s",
					  ctx->msgs[k], ctx->uidls[k]);

	ctx->cb(ctx->msgs[k], NULL, e, ctx->user_data);
}

static void checked_reply(guint i, const pop3_status *st, GBytes *body, gpointer data)
{
	checked_ctx *ctx = data;
	guint j = ctx->offset + i, k = j / 2;

	if (j % 2 == 0) {
		ctx->matched[k] = uidl_answer_matches(st, ctx->msgs[k], ctx->uidls[k]);
		return;
	}
	if (!ctx->matched[k]) {
		checked_stale(ctx, k);
		return;
	}
	if (body) {
		ctx->cb(ctx->msgs[k], body, NULL, ctx->user_data);
		return;
	}
	g_autoptr(GError) e = server_error(st, "TOP");
	ctx->cb(ctx->msgs[k], NULL, e, ctx->user_data);
}

gboolean pop3_conn_top_checked(pop3_conn *c, const guint32 *msgs, const char *const *uidls,
			       const guint64 *lines, guint n, gsize max_bytes, pop3_reply_cb cb,
			       gpointer user_data, GError **err)
{
	pop3_cmd *cmds = g_new0(pop3_cmd, 2 * (gsize)n);
	g_autofree gboolean *matched = g_new0(gboolean, n);
	checked_ctx ctx = { msgs, uidls, matched, 0, cb, user_data };
	gboolean ok = TRUE;

	for (guint k = 0; k < n; k++) {
		cmds[2 * k].line = g_strdup_printf("UIDL %u", msgs[k]);
		cmds[2 * k].msg = msgs[k];
		cmds[2 * k + 1].line = g_strdup_printf("TOP %u %" G_GUINT64_FORMAT, msgs[k], lines[k]);
		cmds[2 * k + 1].multiline = TRUE;
		cmds[2 * k + 1].msg = msgs[k];
		cmds[2 * k + 1].max = max_bytes;
	}
	if (c->capa && c->capa->pipelining) {
		/* A "UIDL n" exchange is a few dozen bytes: count a pair as one message. */
		ok = run_commands_window(c, cmds, 2 * n, 2 * POP3_WINDOW, checked_reply, &ctx, err);
	} else {
		/* One at a time: a TOP is sent only when its UIDL answer matched. */
		for (guint k = 0; ok && k < n; k++) {
			ctx.offset = 2 * k;
			ok = run_commands(c, &cmds[2 * k], 1, checked_reply, &ctx, err);
			if (!ok)
				break;
			if (!matched[k]) {
				checked_stale(&ctx, k);
				continue;
			}
			ctx.offset = 2 * k + 1;
			ok = run_commands(c, &cmds[2 * k + 1], 1, checked_reply, &ctx, err);
		}
	}
	for (guint i = 0; i < 2 * n; i++)
		cmd_clear(&cmds[i]);
	g_free(cmds);
	return ok;
}

void pop3_conn_close(pop3_conn *c)
{
	if (!c)
		return;
	if (c->s && !c->broken && !c->touched) {
		/* Nothing but UIDL/LIST was asked: a clean QUIT releases the maildrop lock at once
		 * and leaves nothing to update. */
		pop3_status st;
		if (run_simple(c, "QUIT", NULL, &st, NULL))
			pop3_status_clear(&st);
	}
	mf_stream_free(c->s);
	pop3_capa_free(c->capa);
	g_free(c->apop_ts);
	g_free(c->label);
	g_free(c);
}
