/* Pure POP3 response parsing: status lines with RFC 2449 response codes, the multi-line reader
 * with dot-unstuffing (RFC 1939 section 3), CAPA, UIDL and LIST listings, and the APOP
 * greeting timestamp. No I/O; every index is checked against the given length. */
#include <string.h>
#include "pop3_parse.h"
#include "mferror.h"

#define POP3_UID_MAX 255

static gboolean G_GNUC_PRINTF(2, 3) fail(GError **err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_autofree char *what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "POP3 response: %s", what);
	return FALSE;
}

/* Length without the trailing CRLF / LF. */
static gsize strip_eol(const char *line, gsize len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

static gboolean has_prefix_word(const char *s, gsize len, const char *word)
{
	gsize n = strlen(word);

	return len >= n && g_ascii_strncasecmp(s, word, n) == 0 &&
	       (len == n || s[n] == ' ' || s[n] == '\t');
}

/* RFC 2449 section 8: resp-code = "[" resp-level *("/" resp-level) "]", levels of atom chars. */
static gboolean is_code_char(char ch)
{
	return g_ascii_isalnum(ch) || ch == '-' || ch == '/' || ch == '.' || ch == '_';
}

gboolean pop3_status_parse(const char *line, gsize len, pop3_status *out, GError **err)
{
	memset(out, 0, sizeof *out);
	len = strip_eol(line, len);
	if (memchr(line, '\0', len))
		return fail(err, "NUL byte in status line");
	gsize skip;
	if (has_prefix_word(line, len, "+OK")) {
		out->kind = POP3_OK;
		skip = 3;
	} else if (has_prefix_word(line, len, "-ERR")) {
		out->kind = POP3_ERR;
		skip = 4;
	} else if (has_prefix_word(line, len, "+")) {
		out->kind = POP3_CONT;
		skip = 1;
	} else {
		return fail(err, "status line starts with neither +OK nor -ERR");
	}
	/* A continuation carries base64 (or nothing); only one space separates it. */
	if (out->kind == POP3_CONT) {
		if (skip < len)
			skip++;
		out->text = g_strndup(line + skip, len - skip);
		return TRUE;
	}
	while (skip < len && (line[skip] == ' ' || line[skip] == '\t'))
		skip++;
	if (skip < len && line[skip] == '[') {
		gsize end = skip + 1;
		while (end < len && is_code_char(line[end]))
			end++;
		if (end < len && line[end] == ']' && end > skip + 1) {
			out->code = g_ascii_strup(line + skip + 1, (gssize)(end - skip - 1));
			skip = end + 1;
			while (skip < len && (line[skip] == ' ' || line[skip] == '\t'))
				skip++;
		}
	}
	out->text = g_strndup(line + skip, len - skip);
	return TRUE;
}

void pop3_status_clear(pop3_status *s)
{
	g_clear_pointer(&s->code, g_free);
	g_clear_pointer(&s->text, g_free);
}

/* ---------------------------------------------------------------- multi-line */

struct pop3_multiline {
	GByteArray *buf;
	gsize max;
	gboolean done;
};

pop3_multiline *pop3_multiline_new(gsize max_bytes)
{
	pop3_multiline *m = g_new0(pop3_multiline, 1);

	m->buf = g_byte_array_new();
	/* GByteArray lengths are guint. */
	m->max = MIN(max_bytes, (gsize)G_MAXUINT);
	return m;
}

int pop3_multiline_feed(pop3_multiline *m, const char *line, gsize len, GError **err)
{
	if (m->done) {
		fail(err, "data after the end of a multi-line response");
		return -1;
	}
	if (len == 0 || line[len - 1] != '\n') {
		fail(err, "line without a line end in a multi-line response");
		return -1;
	}
	if (line[0] == '.') {
		if (strip_eol(line, len) == 1) {
			m->done = TRUE;
			return 1;
		}
		/* Byte-stuffed: the first '.' is not part of the message. */
		line++;
		len--;
	}
	if (len > m->max - m->buf->len) {
		fail(err, "multi-line response longer than %" G_GSIZE_FORMAT " bytes", m->max);
		return -1;
	}
	g_byte_array_append(m->buf, (const guint8 *)line, (guint)len);
	return 0;
}

GBytes *pop3_multiline_steal(pop3_multiline *m)
{
	GBytes *b = g_byte_array_free_to_bytes(m->buf);

	m->buf = g_byte_array_new();
	return b;
}

void pop3_multiline_free(pop3_multiline *m)
{
	if (!m)
		return;
	g_byte_array_unref(m->buf);
	g_free(m);
}

/* ---------------------------------------------------------------- listings */

/* Calls fn for every non-empty line of a payload (line ends removed). */
typedef gboolean (*line_fn)(const char *line, gsize len, gpointer data, GError **err);

static gboolean for_each_line(GBytes *payload, line_fn fn, gpointer data, GError **err)
{
	gsize size;
	const char *p = g_bytes_get_data(payload, &size);
	gsize pos = 0;

	while (pos < size) {
		const char *nl = memchr(p + pos, '\n', size - pos);
		gsize end = nl ? (gsize)(nl - p) : size;
		gsize len = end - pos;
		if (len > 0 && p[pos + len - 1] == '\r')
			len--;
		if (len > 0 && !fn(p + pos, len, data, err))
			return FALSE;
		pos = end + 1;
	}
	return TRUE;
}

static gsize skip_blanks(const char *s, gsize len, gsize i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/* A decimal number at s[*i], advancing *i. */
static gboolean read_number(const char *s, gsize len, gsize *i, guint64 max, guint64 *out)
{
	guint64 v = 0;
	gsize start = *i;

	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		guint d = (guint)(s[*i] - '0');
		if (v > (max - d) / 10)
			return FALSE;
		v = v * 10 + d;
		(*i)++;
	}
	*out = v;
	return *i > start;
}

static gboolean read_msg_number(const char *s, gsize len, gsize *i, guint32 *msg)
{
	guint64 n;

	*i = skip_blanks(s, len, *i);
	if (!read_number(s, len, i, G_MAXUINT32, &n) || n == 0)
		return FALSE;
	*msg = (guint32)n;
	return *i < len && (s[*i] == ' ' || s[*i] == '\t');
}

gboolean pop3_uidl_line_parse(const char *line, gsize len, guint32 *msg, char **uid, GError **err)
{
	gsize i = 0;

	len = strip_eol(line, len);
	if (!read_msg_number(line, len, &i, msg))
		return fail(err, "UIDL line without a message number");
	i = skip_blanks(line, len, i);
	gsize start = i;
	while (i < len && line[i] >= 0x21 && line[i] <= 0x7e)
		i++;
	gsize n = i - start;
	if (n == 0 || n > POP3_UID_MAX || skip_blanks(line, len, i) != len)
		return fail(err, "UIDL of message %u is empty, too long or not printable ASCII", *msg);
	*uid = g_strndup(line + start, n);
	return TRUE;
}

gboolean pop3_list_line_parse(const char *line, gsize len, guint32 *msg, guint64 *size, GError **err)
{
	gsize i = 0;

	len = strip_eol(line, len);
	if (!read_msg_number(line, len, &i, msg))
		return fail(err, "LIST line without a message number");
	i = skip_blanks(line, len, i);
	/* RFC 1939 section 5 lets servers put anything after the size. */
	if (!read_number(line, len, &i, G_MAXUINT64, size) ||
	    (i < len && line[i] != ' ' && line[i] != '\t'))
		return fail(err, "LIST size of message %u is not a number", *msg);
	return TRUE;
}

void pop3_entry_free(pop3_entry *e)
{
	if (!e)
		return;
	g_free(e->uid);
	g_free(e);
}

typedef struct {
	GPtrArray *out;
	GHashTable *seen;
	gboolean uidl;
} listing_ctx;

static gboolean listing_line(const char *line, gsize len, gpointer data, GError **err)
{
	listing_ctx *ctx = data;
	g_autoptr(GError) local = NULL;
	pop3_entry *e = g_new0(pop3_entry, 1);
	gboolean ok = ctx->uidl ? pop3_uidl_line_parse(line, len, &e->msg, &e->uid, &local)
				: pop3_list_line_parse(line, len, &e->msg, &e->size, &local);

	if (!ok) {
		pop3_entry_free(e);
		g_propagate_error(err, g_steal_pointer(&local));
		return FALSE;
	}
	if (!g_hash_table_add(ctx->seen, GUINT_TO_POINTER(e->msg))) {
		guint32 msg = e->msg;
		pop3_entry_free(e);
		return fail(err, "message %u listed twice", msg);
	}
	g_ptr_array_add(ctx->out, e);
	return TRUE;
}

static GPtrArray *parse_listing(GBytes *payload, gboolean uidl, GError **err)
{
	listing_ctx ctx = {
		.out = g_ptr_array_new_with_free_func((GDestroyNotify)pop3_entry_free),
		.seen = g_hash_table_new(NULL, NULL),
		.uidl = uidl,
	};
	gboolean ok = for_each_line(payload, listing_line, &ctx, err);

	g_hash_table_unref(ctx.seen);
	if (!ok) {
		g_ptr_array_unref(ctx.out);
		return NULL;
	}
	return ctx.out;
}

GPtrArray *pop3_uidl_parse(GBytes *payload, GError **err)
{
	return parse_listing(payload, TRUE, err);
}

GPtrArray *pop3_list_parse(GBytes *payload, GError **err)
{
	return parse_listing(payload, FALSE, err);
}

/* ---------------------------------------------------------------- CAPA */

/* "n" or "n USER" (the value may differ per user before login); FALSE for "NEVER" or junk. */
static gboolean capa_number(char **words, gint64 *out)
{
	guint64 n;
	gsize i = 0;

	if (!words[1] || !read_number(words[1], strlen(words[1]), &i, G_MAXINT64, &n) ||
	    words[1][i] != '\0')
		return FALSE;
	*out = (gint64)n;
	return TRUE;
}

static gboolean capa_line(const char *line, gsize len, gpointer data, GError **err)
{
	pop3_capa *c = data;
	g_autofree char *copy = g_strndup(line, len);
	g_auto(GStrv) words = g_strsplit_set(g_strstrip(copy), " \t", -1);
	GPtrArray *sasl;

	if (!words[0] || !*words[0])
		return TRUE;
	g_autofree char *kw = g_ascii_strup(words[0], -1);
	if (strcmp(kw, "TOP") == 0) {
		c->top = TRUE;
	} else if (strcmp(kw, "UIDL") == 0) {
		c->uidl = TRUE;
	} else if (strcmp(kw, "USER") == 0) {
		c->user = TRUE;
	} else if (strcmp(kw, "PIPELINING") == 0) {
		c->pipelining = TRUE;
	} else if (strcmp(kw, "STLS") == 0) {
		c->stls = TRUE;
	} else if (strcmp(kw, "RESP-CODES") == 0) {
		c->resp_codes = TRUE;
	} else if (strcmp(kw, "AUTH-RESP-CODE") == 0) {
		c->auth_resp_code = TRUE;
	} else if (strcmp(kw, "UTF8") == 0) {
		c->utf8 = TRUE;
	} else if (strcmp(kw, "SASL") == 0) {
		sasl = g_ptr_array_new();
		for (char **w = c->sasl; *w; w++)
			g_ptr_array_add(sasl, *w);
		for (char **w = words + 1; *w; w++) {
			if (!**w)
				continue;
			char *mech = g_ascii_strup(*w, -1);
			if (strcmp(mech, "PLAIN") == 0)
				c->sasl_plain = TRUE;
			g_ptr_array_add(sasl, mech);
		}
		g_ptr_array_add(sasl, NULL);
		g_free(c->sasl); /* the strings moved to the new vector */
		c->sasl = (char **)g_ptr_array_free(sasl, FALSE);
	} else if (strcmp(kw, "EXPIRE") == 0) {
		c->has_expire = TRUE;
		c->expire_never = words[1] && g_ascii_strcasecmp(words[1], "NEVER") == 0;
		if (!c->expire_never && !capa_number(words, &c->expire_days))
			c->expire_days = 0; /* unparsable: assume the worst */
	} else if (strcmp(kw, "LOGIN-DELAY") == 0) {
		c->has_login_delay = capa_number(words, &c->login_delay);
	} else if (strcmp(kw, "IMPLEMENTATION") == 0) {
		g_free(c->implementation);
		c->implementation = g_strdup(g_strchug(copy + strlen(words[0])));
	}
	return TRUE;
}

pop3_capa *pop3_capa_parse(GBytes *payload)
{
	pop3_capa *c = g_new0(pop3_capa, 1);

	c->sasl = g_new0(char *, 1);
	for_each_line(payload, capa_line, c, NULL);
	return c;
}

void pop3_capa_free(pop3_capa *c)
{
	if (!c)
		return;
	g_strfreev(c->sasl);
	g_free(c->implementation);
	g_free(c);
}

/* ---------------------------------------------------------------- APOP */

char *pop3_apop_timestamp(const char *text)
{
	if (!text)
		return NULL;
	const char *open = strrchr(text, '<');
	if (!open)
		return NULL;
	const char *close = strchr(open, '>');
	if (!close || close == open + 1)
		return NULL;
	gboolean at = FALSE;
	for (const char *p = open + 1; p < close; p++) {
		if (*p < 0x21 || *p > 0x7e || *p == '<')
			return NULL;
		at |= *p == '@';
	}
	if (!at)
		return NULL;
	return g_strndup(open, (gsize)(close - open) + 1);
}
