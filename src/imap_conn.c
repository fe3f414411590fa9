/* One IMAP connection as an explicit state machine:
 *
 *   GREETING -> [STARTTLS] -> CAPABILITY -> LOGIN -> AUTHENTICATED <-> SELECTED (EXAMINE)
 *                                                     any state -> DEAD (BYE, I/O error)
 *
 * The connection is blocking and used by one thread at a time. Responses are framed with
 * imap_frame() (literals included) and parsed with imap_response_parse(); untagged status
 * and data that concern the connection itself (CAPABILITY, EXISTS, UIDVALIDITY, BYE, ALERT)
 * are absorbed here wherever they turn up, because real servers send them at odd moments
 * (old Exchange even after the tagged OK).
 *
 * Safety: the only way to put a command on the wire is conn_queue_line(), which refuses any
 * line that mf_imap_line_is_read_only() does not accept. The vocabulary has no STORE,
 * EXPUNGE, COPY, MOVE, APPEND, DELETE or SELECT, UID FETCH may only name BODY.PEEK[...]
 * for content, FETCH by sequence number no content at all, and ENABLE only QRESYNC or
 * CONDSTORE (which change what the server reports, never the mailbox), so no code path here
 * can change a mailbox or its \Seen flags. */
#include <stdlib.h>
#include <string.h>

#include "imap_conn.h"
#include "imap_uidset.h"
#include "log.h"
#include "mferror.h"
#include "net.h"
#include "version.h"

/* Without ESEARCH a SEARCH answer for a million messages is one ~10 MB line. */
#define MAX_LINE ((gsize)16 << 20)
#define MAX_LITERAL ((guint64)2 << 30)
#define MAX_RESPONSE ((gsize)3 << 30)
/* Bytes of commands in flight at once: small enough that the server never blocks writing
 * answers we are not reading while we block writing commands it is not reading. */
#define PIPELINE_WINDOW (16 * 1024)

typedef enum {
	CONN_GREETING,
	CONN_STARTTLS,
	CONN_CAPABILITY,
	CONN_LOGIN,
	CONN_AUTHENTICATED,
	CONN_SELECTED,
	CONN_LOGOUT,
	CONN_DEAD,
} ConnState;

/* Internal commands continue the public MfImapCmd numbering. */
enum {
	CMD_STARTTLS = 100,
	CMD_LOGIN,
	CMD_AUTHENTICATE,
	CMD_ID,
	CMD_EXAMINE,
	CMD_LOGOUT,
	CMD_ENABLE,
};

struct mf_imap_conn {
	ConnState state;
	mf_stream *s;
	char *label, *host, *user;
	GHashTable *caps;       /* upper-cased capability names */
	gboolean caps_known;
	guint tag_seq;
	char *selected;
	guint32 uidvalidity, exists, uidnext;
	guint64 highestmodseq;    /* 0: none (no CONDSTORE, or NOMODSEQ) */
	/* from the EXAMINE in progress; UIDNEXT and HIGHESTMODSEQ are taken only from EXAMINE, so
	 * a stored modseq never claims changes that were announced later but not yet seen */
	guint32 seen_uidvalidity, seen_uidnext;
	guint64 seen_highestmodseq;
	gboolean qresync;         /* ENABLE QRESYNC succeeded */
	gint64 min_wait_us;       /* quickest single-command exchange so far: about a round trip */
	mf_stats *stats;
	GByteArray *acc;          /* the response being read; kept for the next one */
};

static const char *conn_verb(int cmd)
{
	switch (cmd) {
	case MF_IMAP_NOOP: return "NOOP";
	case MF_IMAP_CAPABILITY: return "CAPABILITY";
	case MF_IMAP_LIST: return "LIST";
	case MF_IMAP_UID_SEARCH: return "UID SEARCH";
	case MF_IMAP_UID_FETCH: return "UID FETCH";
	case MF_IMAP_FETCH: return "FETCH";
	case CMD_STARTTLS: return "STARTTLS";
	case CMD_LOGIN: return "LOGIN";
	case CMD_AUTHENTICATE: return "AUTHENTICATE";
	case CMD_ID: return "ID";
	case CMD_EXAMINE: return "EXAMINE";
	case CMD_LOGOUT: return "LOGOUT";
	case CMD_ENABLE: return "ENABLE";
	}
	return NULL;
}

/* ---- the allow-list ---------------------------------------------------------------- */

static const char *const read_only_verbs[] = {
	"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "LOGIN", "AUTHENTICATE", "ID",
	"LIST", "EXAMINE", "UID SEARCH", "UID FETCH", "FETCH", "ENABLE",
};

/* BODY[...] and BINARY[...] set \Seen, and RFC822 / RFC822.TEXT are BODY[] in disguise;
 * RFC822.SIZE is the one harmless RFC822 item. */
static gboolean fetch_items_are_peek(const char *args)
{
	g_autofree char *u = g_ascii_strup(args, -1);

	if (strstr(u, "BODY[") || strstr(u, "BINARY["))
		return FALSE;
	for (const char *p = u; (p = strstr(p, "RFC822")) != NULL; p += 6)
		if (strncmp(p + 6, ".SIZE", 5) != 0)
			return FALSE;
	return TRUE;
}

static gboolean fetch_items_name_content(const char *args)
{
	g_autofree char *u = g_ascii_strup(args, -1);

	return strstr(u, "BODY") || strstr(u, "BINARY") || strstr(u, "RFC822.TEXT") ||
	       strstr(u, "RFC822.HEADER");
}

gboolean mf_imap_line_is_read_only(const char *line)
{
	if (!line || strpbrk(line, "\r\n"))
		return FALSE;
	const char *sp = strchr(line, ' ');

	if (!sp || sp == line)
		return FALSE;
	for (const char *t = line; t < sp; t++)
		if (!g_ascii_isalnum(*t))
			return FALSE;
	const char *verb = sp + 1;

	for (gsize i = 0; i < G_N_ELEMENTS(read_only_verbs); i++) {
		gsize n = strlen(read_only_verbs[i]);

		if (g_ascii_strncasecmp(verb, read_only_verbs[i], n) != 0 ||
		    (verb[n] != '\0' && verb[n] != ' '))
			continue;
		if (strcmp(read_only_verbs[i], "UID FETCH") == 0)
			return fetch_items_are_peek(verb + n);
		/* Sequence numbers shift under expunges: good enough to pick messages to look at,
		 * never to name content. */
		if (strcmp(read_only_verbs[i], "FETCH") == 0)
			return fetch_items_are_peek(verb + n) && !fetch_items_name_content(verb + n);
		/* Only the extensions this program understands the consequences of. */
		if (strcmp(read_only_verbs[i], "ENABLE") == 0)
			return !g_ascii_strcasecmp(verb + n, " QRESYNC") ||
			       !g_ascii_strcasecmp(verb + n, " CONDSTORE");
		return TRUE;
	}
	return FALSE;
}

/* ---- small helpers ------------------------------------------------------------------ */

static void conn_set_state(mf_imap_conn *c, ConnState st)
{
	if (c->state != CONN_DEAD)
		c->state = st;
}

static void conn_die(mf_imap_conn *c)
{
	c->state = CONN_DEAD;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		g_free(s);
	}
}

static void wipe_string_free(GString *s)
{
	explicit_bzero(s->str, s->allocated_len);
	g_string_free(s, TRUE);
}

/* "[CODE arg] text", the server's own words for error messages. */
static char *resp_text(const imap_response *r)
{
	GString *s = g_string_new(NULL);

	if (r->code) {
		g_string_append_printf(s, "[%s", r->code);
		if (r->code_arg && *r->code_arg)
			g_string_append_printf(s, " %s", r->code_arg);
		g_string_append(s, "]");
	}
	if (r->text && *r->text) {
		if (s->len)
			g_string_append_c(s, ' ');
		g_string_append(s, r->text);
	}
	if (!s->len)
		g_string_append(s, "(no text)");
	return g_string_free(s, FALSE);
}

/* Rate limiting looks different everywhere: Gmail "[ALERT] Account exceeded command or
 * bandwidth limits", "BYE [OVERQUOTA]", RFC 5530 [UNAVAILABLE]/[LIMIT], Exchange "Request is
 * throttled. Suggested Backoff Time: ...". None of it means the password is wrong. */
static gboolean resp_is_throttle(const imap_response *r)
{
	const char *code = r->code, *text = r->text ? r->text : "";

	if (code && (!g_ascii_strcasecmp(code, "OVERQUOTA") || !g_ascii_strcasecmp(code, "UNAVAILABLE") ||
		     !g_ascii_strcasecmp(code, "LIMIT")))
		return TRUE;
	if (strcasestr(text, "throttl"))
		return TRUE;
	if (code && !g_ascii_strcasecmp(code, "ALERT") &&
	    (strcasestr(text, "limit") || strcasestr(text, "too many")))
		return TRUE;
	return FALSE;
}

static void conn_set_caps_from_words(mf_imap_conn *c, char **words)
{
	g_hash_table_remove_all(c->caps);
	for (char **w = words; *w; w++)
		if (**w)
			g_hash_table_add(c->caps, g_ascii_strup(*w, -1));
	c->caps_known = TRUE;
}

static void conn_clear_caps(mf_imap_conn *c)
{
	g_hash_table_remove_all(c->caps);
	c->caps_known = FALSE;
}

/* Connection-level effects of any response, wherever it arrives. */
static void conn_absorb(mf_imap_conn *c, const imap_response *r)
{
	if (r->code && r->code_arg && !g_ascii_strcasecmp(r->code, "CAPABILITY")) {
		g_auto(GStrv) words = g_strsplit(r->code_arg, " ", -1);

		conn_set_caps_from_words(c, words);
	}
	if (r->code && r->code_arg && !g_ascii_strcasecmp(r->code, "UIDVALIDITY")) {
		c->seen_uidvalidity = (guint32)strtoul(r->code_arg, NULL, 10);
		/* Outside EXAMINE this is the server resetting the open mailbox (RFC 3501 §2.3.1.1). */
		if (c->state == CONN_SELECTED)
			c->uidvalidity = c->seen_uidvalidity;
	}
	if (c->state != CONN_SELECTED && r->code && r->code_arg &&
	    !g_ascii_strcasecmp(r->code, "UIDNEXT"))
		c->seen_uidnext = (guint32)strtoul(r->code_arg, NULL, 10);
	if (c->state != CONN_SELECTED && r->code && r->code_arg &&
	    !g_ascii_strcasecmp(r->code, "HIGHESTMODSEQ"))
		c->seen_highestmodseq = g_ascii_strtoull(r->code_arg, NULL, 10);
	if (c->state != CONN_SELECTED && r->code && !g_ascii_strcasecmp(r->code, "NOMODSEQ"))
		c->seen_highestmodseq = 0;
	if (r->code && !g_ascii_strcasecmp(r->code, "ALERT") && r->kind == IMAP_RESP_UNTAGGED)
		mf_log_warn("%s: server alert: %s", c->host, r->text ? r->text : "");
	if (r->kind != IMAP_RESP_UNTAGGED)
		return;
	if (r->status == IMAP_ST_BYE && c->state != CONN_LOGOUT)
		conn_die(c);
	if (!r->keyword)
		return;
	if (!strcmp(r->keyword, "CAPABILITY") && r->args) {
		g_autoptr(GPtrArray) w = g_ptr_array_new();

		for (guint i = 0; i < r->args->len; i++) {
			const imap_value *v = r->args->pdata[i];

			if (v->type == IMAP_V_ATOM && v->str)
				g_ptr_array_add(w, v->str);
		}
		g_ptr_array_add(w, NULL);
		conn_set_caps_from_words(c, (char **)w->pdata);
	} else if (!strcmp(r->keyword, "EXISTS") && r->has_number) {
		c->exists = r->number;
	} else if (!strcmp(r->keyword, "EXPUNGE") && c->exists > 0) {
		c->exists--;
	} else if (!strcmp(r->keyword, "ENABLED") && r->args) {
		for (guint i = 0; i < r->args->len; i++) {
			const imap_value *v = r->args->pdata[i];

			if (v->type == IMAP_V_ATOM && v->str && !g_ascii_strcasecmp(v->str, "QRESYNC"))
				c->qresync = TRUE;
		}
	} else if (!strcmp(r->keyword, "VANISHED") && r->args && r->args->len == 1) {
		/* Expunges under QRESYNC; "VANISHED (EARLIER)" reports history, not a change of
		 * the message count. */
		const imap_value *v = r->args->pdata[0];
		g_autoptr(GArray) set = v->type == IMAP_V_ATOM && v->str ?
						mf_imap_uidset_ranges(v->str, NULL) : NULL;
		guint64 n = set ? mf_imap_uidset_ranges_count(set) : 0;

		c->exists = n >= c->exists ? 0 : c->exists - (guint32)n;
	}
}

/* The start of a server line made printable for an error message. */
static char *printable_prefix(const guint8 *data, gsize len)
{
	GString *s = g_string_new(NULL);

	for (gsize i = 0; i < len && s->len < 80; i++) {
		if (data[i] == '\r' || data[i] == '\n')
			break;
		g_string_append_c(s, data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '?');
	}
	return g_string_free(s, FALSE);
}

/* The number n if the line ends in a literal announcement "{n}" (or literal8 "~{n}"). */
static gboolean line_literal(const char *line, gsize len, guint64 *n)
{
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len < 3 || line[len - 1] != '}')
		return FALSE;
	gsize i = len - 1;

	while (i > 0 && g_ascii_isdigit(line[i - 1]))
		i--;
	if (i == 0 || i == len - 1 || line[i - 1] != '{' || len - 1 - i > 19)
		return FALSE;
	*n = g_ascii_strtoull(line + i, NULL, 10);
	return TRUE;
}

/* The size of the buffer a connection keeps for reading responses into. */
#define RESPONSE_BUFFER (16 * 1024)

/* Read one whole response (literals included), parse it and absorb its connection-level
 * effects. Any failure leaves the stream at an unknown position, so the connection dies. */
static imap_response *conn_read_response(mf_imap_conn *c, GError **err)
{
	g_autoptr(GBytes) bytes = NULL;
	imap_response *r;
	gsize rlen = 0;

	if (c->state == CONN_DEAD) {
		g_set_error(err, MF_ERROR, MF_ERR_NET, "connection to %s is closed", c->host);
		return NULL;
	}
	if (!c->acc)
		c->acc = g_byte_array_sized_new(RESPONSE_BUFFER);
	GByteArray *acc = c->acc;

	g_byte_array_set_size(acc, 0);
	for (;;) {
		gsize n, start = acc->len;

		if (!mf_stream_read_line_into(c->s, acc, MAX_LINE, &n, err))
			goto dead;
		int fr = imap_frame(acc->data, acc->len, MAX_LITERAL, &rlen);

		if (fr == 1)
			break;
		guint64 lit;

		if (fr < 0 || !line_literal((const char *)acc->data + start, n, &lit) ||
		    lit > MAX_LITERAL || acc->len + lit + MAX_LINE > MAX_RESPONSE) {
			g_autofree char *what = printable_prefix(acc->data, acc->len);

			g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL,
				    "%s sent a response that cannot be framed: %s", c->host, what);
			goto dead;
		}
		if (!mf_stream_read_exact(c->s, acc, (gsize)lit, err))
			goto dead;
	}
	if (rlen != acc->len) {
		g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "%s: response framing mismatch", c->host);
		goto dead;
	}
	mf_log_protocol(c->label, FALSE, (const char *)acc->data, acc->len, FALSE);
	/* A listing's lines are copied out at their size and the buffer kept: a new buffer of a
	 * KiB or more per line is a large-bin allocation, and each one makes malloc consolidate
	 * every small block freed since the last. A big response (a body) is handed over. */
	if (acc->len <= RESPONSE_BUFFER) {
		bytes = g_bytes_new(acc->data, acc->len);
	} else {
		bytes = g_byte_array_free_to_bytes(acc);
		c->acc = NULL;
	}
	r = imap_response_parse(bytes, err);

	if (!r) {
		g_prefix_error(err, "%s: ", c->host);
		goto dead;
	}
	conn_absorb(c, r);
	return r;
dead:
	conn_die(c);
	return NULL;
}

static gboolean conn_write(mf_imap_conn *c, const GString *out, GError **err)
{
	if (!mf_stream_write(c->s, out->str, out->len, err)) {
		conn_die(c);
		return FALSE;
	}
	return TRUE;
}

/* Append "TAG VERB ARGS\r\n" to out after the allow-list check; the only way a command is
 * formed. `redact` keeps the line out of the debug trace's clear text. */
static gboolean conn_queue_line(mf_imap_conn *c, GString *out, const char *tag, int cmd,
				const char *args, gboolean redact)
{
	const char *verb = conn_verb(cmd);
	g_autoptr(GString) line = g_string_new(NULL);

	g_string_printf(line, "%s %s", tag, verb ? verb : "?");
	if (args && *args)
		g_string_append_printf(line, " %s", args);
	if (!verb || !mf_imap_line_is_read_only(line->str)) {
		g_critical("%s: refusing to send a command outside the read-only vocabulary (%s)",
			   c->label, verb ? verb : "unknown");
		if (redact)
			explicit_bzero(line->str, line->len);
		return FALSE;
	}
	g_string_append(line, "\r\n");
	mf_log_protocol(c->label, TRUE, line->str, line->len, redact);
	g_string_append_len(out, line->str, line->len);
	if (redact)
		explicit_bzero(line->str, line->len);
	return TRUE;
}

static void conn_next_tag(mf_imap_conn *c, char *tag, gsize size)
{
	g_snprintf(tag, size, "A%04u", ++c->tag_seq);
}

static void conn_set_status_error(mf_imap_conn *c, const char *verb, const imap_response *r,
				  GError **err)
{
	g_autofree char *text = resp_text(r);

	if (resp_is_throttle(r))
		g_set_error(err, MF_ERROR, MF_ERR_THROTTLED, "%s is limiting us: %s", c->host, text);
	else if (r->code && !g_ascii_strcasecmp(r->code, "NONEXISTENT"))
		g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND, "%s: %s", c->host, text);
	else
		g_set_error(err, MF_ERROR, MF_ERR_SERVER, "%s refused %s: %s", c->host, verb, text);
}

static void conn_set_bye_error(mf_imap_conn *c, const imap_response *r, GError **err)
{
	g_autofree char *text = resp_text(r);

	if (resp_is_throttle(r))
		g_set_error(err, MF_ERROR, MF_ERR_THROTTLED, "%s is limiting us: %s", c->host, text);
	else
		g_set_error(err, MF_ERROR, MF_ERR_NET, "%s closed the connection: %s", c->host, text);
}

/* ---- batches (pipelining) ------------------------------------------------------------ */

typedef struct {
	char tag[16];
	int cmd;
	GString *line;
	mf_imap_data_cb cb;
	gpointer ud;
	gboolean sent, done;
} BatchCmd;

struct mf_imap_batch {
	mf_imap_conn *c;
	GPtrArray *cmds;    /* BatchCmd* */
	gboolean refused;   /* a command failed the allow-list */
	mf_imap_feed_cb feed; /* or NULL */
	gpointer feed_ud;
	guint feed_window;
	mf_imap_done_cb on_done; /* or NULL */
	gpointer done_ud;
};

void mf_imap_batch_set_feed(mf_imap_batch *b, guint window, mf_imap_feed_cb feed,
			    gpointer user_data)
{
	b->feed = feed;
	b->feed_ud = user_data;
	b->feed_window = MAX(window, 1);
}

void mf_imap_batch_set_on_done(mf_imap_batch *b, mf_imap_done_cb on_done, gpointer user_data)
{
	b->on_done = on_done;
	b->done_ud = user_data;
}

static void batch_cmd_free(gpointer p)
{
	BatchCmd *bc = p;

	g_string_free(bc->line, TRUE);
	g_free(bc);
}

mf_imap_batch *mf_imap_batch_new(mf_imap_conn *c)
{
	mf_imap_batch *b = g_new0(mf_imap_batch, 1);

	b->c = c;
	b->cmds = g_ptr_array_new_with_free_func(batch_cmd_free);
	return b;
}

void mf_imap_batch_free(mf_imap_batch *b)
{
	if (!b)
		return;
	g_ptr_array_free(b->cmds, TRUE);
	g_free(b);
}

static void batch_add_cmd(mf_imap_batch *b, int cmd, const char *args, mf_imap_data_cb cb,
			  gpointer ud)
{
	BatchCmd *bc = g_new0(BatchCmd, 1);

	conn_next_tag(b->c, bc->tag, sizeof bc->tag);
	bc->cmd = cmd;
	bc->cb = cb;
	bc->ud = ud;
	bc->line = g_string_new(NULL);
	if (!conn_queue_line(b->c, bc->line, bc->tag, cmd, args, FALSE))
		b->refused = TRUE;
	g_ptr_array_add(b->cmds, bc);
}

guint mf_imap_batch_add(mf_imap_batch *b, MfImapCmd cmd, const char *args, mf_imap_data_cb cb,
			gpointer user_data)
{
	batch_add_cmd(b, (int)cmd, args, cb, user_data);
	return b->cmds->len - 1;
}

static gboolean is_data_keyword(const char *k)
{
	static const char *const data[] = { "FETCH", "LIST", "LSUB", "SEARCH", "ESEARCH", "STATUS",
					    "VANISHED" };

	for (gsize i = 0; i < G_N_ELEMENTS(data); i++)
		if (!strcmp(k, data[i]))
			return TRUE;
	return FALSE;
}

/* "* ESEARCH (TAG "A0003") ..." names its command; everything else goes to the oldest
 * command still in flight that wants data. */
static BatchCmd *batch_route(mf_imap_batch *b, const imap_response *r)
{
	if (!strcmp(r->keyword, "ESEARCH") && r->args && r->args->len > 0) {
		const imap_value *v = r->args->pdata[0];

		if (v->type == IMAP_V_LIST && v->items->len >= 2) {
			const imap_value *k = v->items->pdata[0], *t = v->items->pdata[1];

			if (k->str && !g_ascii_strcasecmp(k->str, "TAG") && t->str)
				for (guint i = 0; i < b->cmds->len; i++) {
					BatchCmd *bc = b->cmds->pdata[i];

					if (!strcmp(bc->tag, t->str))
						return bc->done ? NULL : bc;
				}
		}
	}
	for (guint i = 0; i < b->cmds->len; i++) {
		BatchCmd *bc = b->cmds->pdata[i];

		if (bc->sent && !bc->done && bc->cb)
			return bc;
	}
	return NULL;
}

gboolean mf_imap_batch_run(mf_imap_batch *b, GError **err)
{
	mf_imap_conn *c = b->c;
	guint n = b->cmds->len, next = 0, done = 0, inflight = 0;
	gsize inflight_bytes = 0;
	GError *first = NULL;
	gint64 t0 = g_get_monotonic_time();

	if (b->refused) {
		g_set_error(err, MF_ERROR, MF_ERR_FAILED,
			    "refusing to send a command that could change the mailbox");
		return FALSE;
	}
	if (c->state == CONN_DEAD) {
		g_set_error(err, MF_ERROR, MF_ERR_NET, "connection to %s is closed", c->host);
		return FALSE;
	}
	for (;;) {
		/* Unsent commands count against the window too: they are next. */
		while (b->feed && inflight + (n - next) < b->feed_window) {
			if (!b->feed(b, b->feed_ud))
				b->feed = NULL;
			n = b->cmds->len;
		}
		if (b->refused) {
			/* Fed after others were sent: their answers are not read, so the connection
			 * cannot be used again. */
			g_set_error(err, MF_ERROR, MF_ERR_FAILED,
				    "refusing to send a command that could change the mailbox");
			conn_die(c);
			goto fail;
		}
		if (done == n)
			break;
		if (next < n) {
			g_autoptr(GString) out = g_string_new(NULL);
			gboolean was_idle = inflight == 0;

			while (next < n) {
				BatchCmd *bc = b->cmds->pdata[next];

				if (inflight_bytes > 0 && inflight_bytes + bc->line->len > PIPELINE_WINDOW)
					break;
				g_string_append_len(out, bc->line->str, bc->line->len);
				mf_stats_command(c->stats, conn_verb(bc->cmd));
				bc->sent = TRUE;
				inflight++;
				inflight_bytes += bc->line->len;
				next++;
			}
			if (out->len && !conn_write(c, out, err))
				goto fail;
			if (out->len && was_idle)
				mf_stats_round_trip(c->stats);
		}
		g_autoptr(imap_response) r = conn_read_response(c, err);

		if (!r)
			goto fail;
		if (r->kind == IMAP_RESP_TAGGED) {
			BatchCmd *bc = NULL;
			guint bi = 0;

			for (guint i = 0; i < n && !bc; i++) {
				BatchCmd *x = b->cmds->pdata[i];

				if (x->sent && !x->done && r->tag && !strcmp(x->tag, r->tag)) {
					bc = x;
					bi = i;
				}
			}
			if (!bc) {
				g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL,
					    "%s answered a command we did not send (tag %s)", c->host,
					    r->tag ? r->tag : "?");
				conn_die(c);
				goto fail;
			}
			bc->done = TRUE;
			done++;
			inflight--;
			inflight_bytes -= bc->line->len;
			if (r->status != IMAP_ST_OK && !first)
				conn_set_status_error(c, conn_verb(bc->cmd), r, &first);
			else if (r->status == IMAP_ST_OK && b->on_done)
				b->on_done(b, bi, b->done_ud);
		} else if (r->kind == IMAP_RESP_CONTINUATION) {
			g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL,
				    "%s asked for a continuation nobody requested", c->host);
			conn_die(c);
			goto fail;
		} else if (r->status == IMAP_ST_BYE) {
			conn_set_bye_error(c, r, err);
			goto fail;
		} else if (r->keyword && is_data_keyword(r->keyword)) {
			BatchCmd *bc = batch_route(b, r);

			if (bc && bc->cb)
				bc->cb(r, bc->ud);
		}
	}
	if (first) {
		g_propagate_error(err, first);
		return FALSE;
	}
	if (n == 1)
		c->min_wait_us = MIN(c->min_wait_us, g_get_monotonic_time() - t0);
	return TRUE;
fail:
	g_clear_error(&first);
	return FALSE;
}

gint64 mf_imap_conn_round_trip_us(const mf_imap_conn *c)
{
	return c->min_wait_us == G_MAXINT64 ? -1 : c->min_wait_us;
}

static gboolean conn_run_cmd(mf_imap_conn *c, int cmd, const char *args, mf_imap_data_cb cb,
			     gpointer ud, GError **err)
{
	g_autoptr(mf_imap_batch) b = mf_imap_batch_new(c);

	batch_add_cmd(b, cmd, args, cb, ud);
	return mf_imap_batch_run(b, err);
}

gboolean mf_imap_conn_run(mf_imap_conn *c, MfImapCmd cmd, const char *args, mf_imap_data_cb cb,
			  gpointer user_data, GError **err)
{
	return conn_run_cmd(c, (int)cmd, args, cb, user_data, err);
}

/* ---- connection setup ---------------------------------------------------------------- */

static gboolean conn_read_greeting(mf_imap_conn *c, gboolean *preauth, GError **err)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(imap_response) r = conn_read_response(c, &e);

	if (!r) {
		if (g_error_matches(e, MF_ERROR, MF_ERR_PROTOCOL))
			g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL,
				    "%s does not greet like an IMAP server (%s)", c->host, e->message);
		else
			g_propagate_error(err, g_steal_pointer(&e));
		return FALSE;
	}
	if (r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_ST_OK) {
		*preauth = FALSE;
		return TRUE;
	}
	if (r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_ST_PREAUTH) {
		*preauth = TRUE;
		return TRUE;
	}
	if (r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_ST_BYE) {
		g_autofree char *text = resp_text(r);

		conn_die(c);
		g_set_error(err, MF_ERROR, resp_is_throttle(r) ? MF_ERR_THROTTLED : MF_ERR_NET,
			    "%s refused the connection: %s", c->host, text);
		return FALSE;
	}
	conn_die(c);
	g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "%s does not greet like an IMAP server", c->host);
	return FALSE;
}

static gboolean conn_starttls(mf_imap_conn *c, GError **err)
{
	conn_set_state(c, CONN_STARTTLS);
	if (!conn_run_cmd(c, CMD_STARTTLS, NULL, NULL, NULL, err)) {
		conn_die(c);
		g_prefix_error(err, "STARTTLS failed: ");
		return FALSE;
	}
	if (!mf_stream_start_tls(c->s, err)) {
		conn_die(c);
		return FALSE;
	}
	/* RFC 3501 §6.2.1: what the server said before TLS may have been forged. */
	conn_clear_caps(c);
	return TRUE;
}

static gboolean conn_capability(mf_imap_conn *c, GError **err)
{
	conn_set_state(c, CONN_CAPABILITY);
	if (!conn_run_cmd(c, MF_IMAP_CAPABILITY, NULL, NULL, NULL, err))
		return FALSE;
	if (!c->caps_known) {
		conn_die(c);
		g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "%s sent no capability list", c->host);
		return FALSE;
	}
	return TRUE;
}

/* Quoted when plain printable ASCII, else a synchronising literal: the string is split into
 * the segments written between the server's "+" go-aheads. */
static void login_append_astring(GPtrArray *segs, GString **cur, const char *s)
{
	gboolean plain = strlen(s) < 1000;

	for (const char *p = s; *p && plain; p++)
		if ((guchar)*p < 0x20 || (guchar)*p > 0x7e)
			plain = FALSE;
	g_autofree char *q = plain ? imap_quote(s) : NULL;

	if (q) {
		g_string_append(*cur, q);
		explicit_bzero(q, strlen(q));
		return;
	}
	g_string_append_printf(*cur, "{%zu}", strlen(s));
	g_ptr_array_add(segs, *cur);
	*cur = g_string_new(s);
}

/* Wait for the server's go-ahead for the next literal; the tagged answer instead means the
 * command failed early (it is returned in *tagged). */
static gboolean conn_wait_continuation(mf_imap_conn *c, imap_response **tagged, GError **err)
{
	for (;;) {
		imap_response *r = conn_read_response(c, err);

		if (!r)
			return FALSE;
		if (r->kind == IMAP_RESP_CONTINUATION) {
			imap_response_free(r);
			return TRUE;
		}
		if (r->kind == IMAP_RESP_TAGGED) {
			*tagged = r;
			return TRUE;
		}
		if (r->status == IMAP_ST_BYE) {
			conn_set_bye_error(c, r, err);
			imap_response_free(r);
			return FALSE;
		}
		imap_response_free(r);
	}
}

static imap_response *conn_wait_tagged(mf_imap_conn *c, const char *tag, GError **err)
{
	for (;;) {
		imap_response *r = conn_read_response(c, err);

		if (!r)
			return NULL;
		if (r->kind == IMAP_RESP_TAGGED && r->tag && !strcmp(r->tag, tag))
			return r;
		if (r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_ST_BYE) {
			conn_set_bye_error(c, r, err);
			imap_response_free(r);
			return NULL;
		}
		if (r->kind != IMAP_RESP_UNTAGGED) {
			g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "%s sent an unexpected response",
				    c->host);
			conn_die(c);
			imap_response_free(r);
			return NULL;
		}
		imap_response_free(r);
	}
}

/* Write the login command. Every piece carries the password, so everything is traced
 * redacted and wiped after use. Returns the tagged answer. */
static imap_response *conn_send_login(mf_imap_conn *c, const mf_imap_conn_opts *o, GError **err)
{
	char tag[16];
	g_autoptr(GPtrArray) segs = g_ptr_array_new();
	GString *cur = g_string_new(NULL);
	g_autoptr(GString) first = g_string_new(NULL);
	imap_response *tagged = NULL;
	gboolean ok = TRUE;

	conn_next_tag(c, tag, sizeof tag);
	if (mf_imap_conn_has_cap(c, "AUTH=PLAIN")) {
		gsize ul = strlen(o->user), pl = strlen(o->password);
		g_autofree guint8 *raw = g_malloc(ul + pl + 2);

		raw[0] = '\0';
		memcpy(raw + 1, o->user, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, o->password, pl);
		char *b64 = g_base64_encode(raw, ul + pl + 2);

		explicit_bzero(raw, ul + pl + 2);
		if (mf_imap_conn_has_cap(c, "SASL-IR")) {
			g_string_printf(cur, "PLAIN %s", b64);
		} else {
			g_string_assign(cur, "PLAIN");
			g_ptr_array_add(segs, cur);
			cur = g_string_new(b64);
		}
		wipe_free(b64);
		g_ptr_array_add(segs, cur);
		cur = NULL;
		ok = conn_queue_line(c, first, tag, CMD_AUTHENTICATE, ((GString *)segs->pdata[0])->str,
				     TRUE);
	} else {
		login_append_astring(segs, &cur, o->user);
		g_string_append_c(cur, ' ');
		login_append_astring(segs, &cur, o->password);
		g_ptr_array_add(segs, cur);
		cur = NULL;
		ok = conn_queue_line(c, first, tag, CMD_LOGIN, ((GString *)segs->pdata[0])->str, TRUE);
	}
	if (!ok) {
		g_set_error(err, MF_ERROR, MF_ERR_FAILED, "cannot form the login command");
		goto out;
	}
	/* Segment 0 is the command line; each later one follows a "+" and ends with CRLF. */
	gint64 t0 = g_get_monotonic_time();

	if (!conn_write(c, first, err))
		goto out;
	mf_stats_command(c->stats, mf_imap_conn_has_cap(c, "AUTH=PLAIN") ? "AUTHENTICATE" : "LOGIN");
	mf_stats_round_trip(c->stats);
	for (guint i = 1; i < segs->len && !tagged; i++) {
		if (!conn_wait_continuation(c, &tagged, err))
			goto out;
		if (tagged)
			break;
		GString *seg = segs->pdata[i];

		g_string_append(seg, "\r\n");
		/* A literal or SASL line is all secret: the trace shows only that it was sent. */
		mf_log_protocol(c->label, TRUE, "(continuation)", strlen("(continuation)"), TRUE);
		if (!conn_write(c, seg, err))
			goto out;
		mf_stats_round_trip(c->stats);
	}
	if (!tagged)
		tagged = conn_wait_tagged(c, tag, err);
	/* A login in one line is the first measure of the round trip (the server's work is in
	 * it too, as in every command's): the mount decides with it how to open the pool. */
	if (tagged && segs->len == 1)
		c->min_wait_us = MIN(c->min_wait_us, g_get_monotonic_time() - t0);
	if (tagged && (!tagged->tag || strcmp(tagged->tag, tag))) {
		g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "%s answered a command we did not send",
			    c->host);
		conn_die(c);
		g_clear_pointer(&tagged, imap_response_free);
	}
out:
	explicit_bzero(first->str, first->allocated_len);
	for (guint i = 0; i < segs->len; i++)
		wipe_string_free(segs->pdata[i]);
	if (cur)
		wipe_string_free(cur);
	return tagged;
}

static gboolean conn_login(mf_imap_conn *c, const mf_imap_conn_opts *o, GError **err)
{
	conn_set_state(c, CONN_LOGIN);
	if (!mf_imap_conn_has_cap(c, "AUTH=PLAIN") && mf_imap_conn_has_cap(c, "LOGINDISABLED")) {
		g_set_error(err, MF_ERROR, MF_ERR_AUTH,
			    "login failed for %s on %s: the server disables LOGIN and offers no AUTH=PLAIN",
			    o->user, c->host);
		return FALSE;
	}
	g_autoptr(imap_response) r = conn_send_login(c, o, err);

	if (!r)
		return FALSE;
	if (r->status == IMAP_ST_OK)
		return TRUE;
	g_autofree char *text = resp_text(r);

	if (resp_is_throttle(r))
		g_set_error(err, MF_ERROR, MF_ERR_THROTTLED, "login for %s on %s refused for now: %s",
			    o->user, c->host, text);
	else
		g_set_error(err, MF_ERROR, MF_ERR_AUTH, "login failed for %s on %s: %s", o->user,
			    c->host, text);
	return FALSE;
}

/* NetEase refuses SELECT/EXAMINE from clients that have not said who they are; Gmail asks
 * for it. ENABLE QRESYNC (RFC 7162) goes in the same round trip. Neither answer matters: a
 * refused ID is ignored, a refused ENABLE just leaves QRESYNC off. */
static gboolean conn_send_id_enable(mf_imap_conn *c, gboolean id, gboolean enable, GError **err)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(mf_imap_batch) b = mf_imap_batch_new(c);

	if (id)
		batch_add_cmd(b, CMD_ID, "(\"name\" \"mailfs\" \"version\" \"" MAILFS_VERSION "\")", NULL,
			      NULL);
	if (enable)
		batch_add_cmd(b, CMD_ENABLE, "QRESYNC", NULL, NULL);
	if (mf_imap_batch_run(b, &e))
		return TRUE;
	if (c->state == CONN_DEAD) {
		g_propagate_error(err, g_steal_pointer(&e));
		return FALSE;
	}
	mf_log_debug("%s: ID or ENABLE refused: %s", c->label, e->message);
	return TRUE;
}

mf_imap_conn *mf_imap_conn_open(const mf_imap_conn_opts *o, GError **err)
{
	mf_stream_opts so = {
		.host = o->host, .port = o->port, .cafile = o->cafile, .timeout_sec = o->timeout_sec,
		.stats = o->stats, .label = o->label,
	};
	mf_stream *s = mf_stream_connect(&so, err);

	if (!s)
		return NULL;
	mf_imap_conn *c = g_new0(mf_imap_conn, 1);
	gboolean preauth = FALSE, tls_required = !o->allow_plaintext;

	c->s = s;
	c->state = CONN_GREETING;
	c->min_wait_us = G_MAXINT64;
	c->label = g_strdup(o->label ? o->label : "imap");
	c->host = g_strdup(o->host);
	c->user = g_strdup(o->user);
	c->stats = o->stats;
	c->caps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (o->implicit_tls && !mf_stream_start_tls(s, err))
		goto fail;
	if (!conn_read_greeting(c, &preauth, err))
		goto fail;
	if (preauth && !mf_stream_is_tls(s) && tls_required) {
		/* A man in the middle can answer PREAUTH to skip STARTTLS (CVE-2020-14093). */
		g_set_error(err, MF_ERROR, MF_ERR_PLAINTEXT,
			    "%s sent PREAUTH on a plain-text connection; refusing to continue without TLS "
			    "(use imaps:// or -o allow_plaintext)",
			    c->host);
		goto fail;
	}
	if (!c->caps_known && !conn_capability(c, err))
		goto fail;
	/* STARTTLS whenever offered: allow_plaintext permits a clear session, it does not ask
	 * for one. */
	if (!mf_stream_is_tls(s) && !preauth) {
		if (mf_imap_conn_has_cap(c, "STARTTLS")) {
			if (!conn_starttls(c, err) || !conn_capability(c, err))
				goto fail;
		} else if (tls_required) {
			g_set_error(err, MF_ERROR, MF_ERR_PLAINTEXT,
				    "%s offers no STARTTLS; refusing to send the password in clear "
				    "(use imaps:// or -o allow_plaintext)",
				    c->host);
			goto fail;
		}
	}
	if (!preauth) {
		c->caps_known = FALSE; /* the login answer may carry the new list */
		if (!conn_login(c, o, err))
			goto fail;
	}
	conn_set_state(c, CONN_AUTHENTICATED);
	/* Capabilities change after login (Dovecot adds ESEARCH, etc.). */
	if (!c->caps_known && !conn_capability(c, err))
		goto fail;
	conn_set_state(c, CONN_AUTHENTICATED);
	gboolean id = mf_imap_conn_has_cap(c, "ID");
	gboolean enable = o->enable_qresync && mf_imap_conn_has_cap(c, "QRESYNC") &&
			  mf_imap_conn_has_cap(c, "ENABLE");

	if ((id || enable) && !conn_send_id_enable(c, id, enable, err))
		goto fail;
	return c;
fail:
	mf_imap_conn_free(c);
	return NULL;
}

/* ---- authenticated state -------------------------------------------------------------- */

static gboolean conn_examine(mf_imap_conn *c, const char *mailbox, const char *params,
			     mf_imap_data_cb cb, gpointer ud, GError **err)
{
	g_autofree char *q = imap_quote(mailbox);

	if (!q) {
		g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND, "folder name %s cannot be sent to %s",
			    mailbox, c->host);
		return FALSE;
	}
	g_autofree char *args = params ? g_strdup_printf("%s %s", q, params) : g_strdup(q);

	/* Whatever the outcome, the previous mailbox is no longer selected (RFC 3501 §6.3.1). */
	g_clear_pointer(&c->selected, g_free);
	c->uidvalidity = c->seen_uidvalidity = 0;
	c->uidnext = c->seen_uidnext = 0;
	c->highestmodseq = c->seen_highestmodseq = 0;
	c->exists = 0;
	conn_set_state(c, CONN_AUTHENTICATED);
	if (!conn_run_cmd(c, CMD_EXAMINE, args, cb, ud, err)) {
		if (err && *err && (*err)->code == MF_ERR_NOT_FOUND) {
			g_autofree char *msg = g_strdup((*err)->message);

			g_clear_error(err);
			g_set_error(err, MF_ERROR, MF_ERR_NOT_FOUND, "folder %s does not exist (%s)",
				    mailbox, msg);
		}
		return FALSE;
	}
	c->selected = g_strdup(mailbox);
	c->uidvalidity = c->seen_uidvalidity;
	c->uidnext = c->seen_uidnext;
	c->highestmodseq = c->seen_highestmodseq;
	conn_set_state(c, CONN_SELECTED);
	return TRUE;
}

gboolean mf_imap_conn_examine(mf_imap_conn *c, const char *mailbox, GError **err)
{
	return conn_examine(c, mailbox, NULL, NULL, NULL, err);
}

gboolean mf_imap_conn_examine_since(mf_imap_conn *c, const char *mailbox, guint32 uidvalidity,
				    guint64 modseq, mf_imap_data_cb cb, gpointer user_data,
				    GError **err)
{
	g_autofree char *params = NULL;

	if (c->qresync && uidvalidity && modseq)
		params = g_strdup_printf("(QRESYNC (%u %" G_GUINT64_FORMAT "))", uidvalidity, modseq);
	else if (c->qresync || mf_imap_conn_has_cap(c, "CONDSTORE"))
		params = g_strdup("(CONDSTORE)");
	return conn_examine(c, mailbox, params, cb, user_data, err);
}

const char *mf_imap_conn_selected(const mf_imap_conn *c)
{
	return c->state == CONN_SELECTED ? c->selected : NULL;
}

guint32 mf_imap_conn_uidvalidity(const mf_imap_conn *c)
{
	return c->uidvalidity;
}

guint32 mf_imap_conn_exists(const mf_imap_conn *c)
{
	return c->exists;
}

guint32 mf_imap_conn_uidnext(const mf_imap_conn *c)
{
	return c->uidnext;
}

guint64 mf_imap_conn_highestmodseq(const mf_imap_conn *c)
{
	return c->highestmodseq;
}

gboolean mf_imap_conn_qresync(const mf_imap_conn *c)
{
	return c->qresync;
}

gboolean mf_imap_conn_is_dead(const mf_imap_conn *c)
{
	return c->state == CONN_DEAD;
}

gboolean mf_imap_conn_has_cap(const mf_imap_conn *c, const char *cap)
{
	g_autofree char *u = g_ascii_strup(cap, -1);

	return g_hash_table_contains(c->caps, u);
}

const char *mf_imap_conn_label(const mf_imap_conn *c)
{
	return c->label;
}

void mf_imap_conn_free(mf_imap_conn *c)
{
	if (!c)
		return;
	mf_stream_free(c->s);
	g_hash_table_unref(c->caps);
	g_free(c->label);
	g_free(c->host);
	g_free(c->user);
	g_free(c->selected);
	if (c->acc)
		g_byte_array_unref(c->acc);
	g_free(c);
}

void mf_imap_conn_logout(mf_imap_conn *c)
{
	if (!c)
		return;
	if (c->state != CONN_DEAD) {
		g_autoptr(GString) out = g_string_new(NULL);
		char tag[16];

		conn_next_tag(c, tag, sizeof tag);
		c->state = CONN_LOGOUT;
		if (conn_queue_line(c, out, tag, CMD_LOGOUT, NULL, FALSE) && conn_write(c, out, NULL)) {
			imap_response *r;

			mf_stats_command(c->stats, "LOGOUT");

			/* The BYE comes first; wait for the tagged OK so close_notify follows it. */
			while ((r = conn_read_response(c, NULL)) != NULL) {
				gboolean last = r->kind == IMAP_RESP_TAGGED;

				imap_response_free(r);
				if (last)
					break;
			}
		}
	}
	mf_imap_conn_free(c);
}
