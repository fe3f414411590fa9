/* Pure IMAP4rev1 response parser (RFC 3501 section 9, RFC 9051): framing, one response into a
 * value tree, and decoders for the FETCH and LIST data the backend uses. Every read is bounds
 * checked against the buffer; hostile input fails with MF_ERR_PROTOCOL and an offset, never
 * with a crash. The fuzzer in tests/fuzz/fuzz_imap_parse.c holds us to that. */
#include <string.h>
#include "imap_lex.h"
#include "imap_parse.h"
#include "mferror.h"

/* Deep enough for any real BODYSTRUCTURE, shallow enough that recursion stays cheap. */
#define IMAP_MAX_DEPTH 64
/* Literals up to this size also get a NUL-terminated copy in imap_value.str. */
#define IMAP_STR_COPY_MAX (64 * 1024)
/* More digits than this cannot be a sane literal length (and would overflow 64 bits). */
#define IMAP_MAX_LENGTH_DIGITS 20

typedef imap_cursor cursor;

static gboolean G_GNUC_PRINTF(3, 4) fail(GError **err, gsize pos, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_autofree char *what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "IMAP response: %s at offset %" G_GSIZE_FORMAT,
		    what, pos);
	return FALSE;
}

static gboolean G_GNUC_PRINTF(2, 3) fail_data(GError **err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_autofree char *what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "IMAP response: %s", what);
	return FALSE;
}

static gboolean parse_number(const char *s, gsize n, guint64 max, guint64 *out)
{
	return imap_lex_number(s, n, max, out);
}

/* ---------------------------------------------------------------- framing */

/* Does this line (without its LF) announce a literal? 1 with *n set, 0 if not, -1 if it tries
 * to and the length is garbage or too big. A '{' followed by a digit is an attempt; text that
 * merely ends in braces ("{foo}") is not. */
static int literal_at_line_end(const guint8 *line, gsize n, guint64 max_literal, guint64 *len)
{
	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (n < 2 || line[n - 1] != '}')
		return 0;
	const guint8 *open = NULL;
	for (gsize i = n - 1; i-- > 0;) {
		if (line[i] == '{') {
			open = line + i;
			break;
		}
	}
	if (!open)
		return 0;
	const char *num = (const char *)open + 1;
	gsize num_len = (gsize)((const char *)line + n - 1 - num);
	if (num_len == 0 || (num_len == 1 && num[0] == '+'))
		return -1;
	if (num[0] < '0' || num[0] > '9')
		return 0;
	if (num[num_len - 1] == '+')
		num_len--;
	if (num_len > IMAP_MAX_LENGTH_DIGITS || !parse_number(num, num_len, G_MAXUINT64, len))
		return -1;
	if (*len > max_literal)
		return -1;
	return 1;
}

int imap_frame(const guint8 *buf, gsize len, guint64 max_literal, gsize *resp_len)
{
	gsize pos = 0;

	while (pos < len) {
		const guint8 *lf = memchr(buf + pos, '\n', len - pos);
		if (!lf)
			return 0;
		gsize eol = (gsize)(lf - buf);
		guint64 lit;
		int r = literal_at_line_end(buf + pos, eol - pos, max_literal, &lit);
		if (r < 0)
			return -1;
		if (r == 0) {
			*resp_len = eol + 1;
			return 1;
		}
		pos = eol + 1;
		if (len - pos < lit)
			return 0;
		pos += (gsize)lit;
	}
	return 0;
}

/* ---------------------------------------------------------------- values */

/* NIL carries nothing, so every NIL in every response is this one value. */
static imap_value nil_value = { .type = IMAP_V_NIL };

/* An atom or string whose text (n bytes and a NUL) lives in the same allocation as the value:
 * one malloc per value matters when a listing parses half a million of them. */
static imap_value *value_new_inline(ImapValueType type, gsize n)
{
	imap_value *v = g_malloc(sizeof *v + n + 1);

	v->type = type;
	v->bytes = NULL;
	v->items = NULL;
	v->str = (char *)(v + 1);
	v->str[n] = '\0';
	return v;
}

static gboolean value_str_is_inline(const imap_value *v)
{
	return v->str == (const char *)(v + 1);
}

static void value_free(gpointer p)
{
	imap_value *v = p;

	if (!v || v == &nil_value)
		return;
	if (v->bytes)
		g_bytes_unref(v->bytes);
	if (!value_str_is_inline(v))
		g_free(v->str);
	if (v->items)
		g_ptr_array_unref(v->items);
	g_free(v);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(imap_value, value_free)

const char *imap_value_data(const imap_value *v, gsize *len)
{
	if (v->bytes)
		return g_bytes_get_data(v->bytes, len);
	*len = v->str ? strlen(v->str) : 0;
	return v->str;
}

GBytes *imap_value_bytes(const imap_value *v)
{
	gsize n;
	const char *d;

	if (v->bytes)
		return g_bytes_ref(v->bytes);
	d = imap_value_data(v, &n);
	return g_bytes_new(d, n);
}

static gboolean expect_end(cursor *c, GError **err)
{
	if (imap_lex_peek(c) == '\r')
		c->pos++;
	if (imap_lex_peek(c) != '\n')
		return c->pos >= c->len ? fail(err, c->pos, "missing CRLF")
				       : fail(err, c->pos, "unexpected byte 0x%02x", imap_lex_peek(c));
	c->pos++;
	if (c->pos != c->len)
		return fail(err, c->pos, "bytes after the end of the response");
	return TRUE;
}

/* Text up to the line end, for human-readable parts. NUL is never valid there. */
static char *read_text(cursor *c, GError **err)
{
	gsize start = c->pos;

	while (!imap_lex_at_eol(c)) {
		if (c->p[c->pos] == '\0') {
			fail(err, c->pos, "NUL byte in text");
			return NULL;
		}
		c->pos++;
	}
	return g_strndup((const char *)c->p + start, c->pos - start);
}

static gboolean scan_atom(cursor *c, gsize *start, GError **err)
{
	gsize bad;

	switch (imap_lex_atom(c, start, &bad)) {
	case -1:
		return fail(err, bad, "unterminated '[' in atom");
	case -2:
		return fail(err, bad, "expected an atom");
	}
	return TRUE;
}

static imap_value *parse_value(cursor *c, int depth, GError **err);

/* Items are collected on the stack and the list's array is allocated once, at its final size. */
#define LIST_STACK_ITEMS 16

static imap_value *parse_list(cursor *c, int depth, GError **err)
{
	gsize open = c->pos;
	imap_value *stack_items[LIST_STACK_ITEMS];
	imap_value **items = stack_items;
	guint n = 0, cap = LIST_STACK_ITEMS;
	imap_value *v = NULL;

	if (depth >= IMAP_MAX_DEPTH) {
		fail(err, c->pos, "lists nested deeper than %d", IMAP_MAX_DEPTH);
		return NULL;
	}
	c->pos++;
	for (;;) {
		imap_lex_skip_spaces(c);
		if (imap_lex_peek(c) == ')') {
			c->pos++;
			break;
		}
		if (imap_lex_at_eol(c)) {
			fail(err, open, "unbalanced parentheses: '(' never closed");
			goto out;
		}
		imap_value *item = parse_value(c, depth + 1, err);
		if (!item)
			goto out;
		if (n == cap) {
			cap *= 2;
			if (items == stack_items)
				items = g_memdup2(stack_items, sizeof stack_items);
			items = g_renew(imap_value *, items, cap);
		}
		items[n++] = item;
	}
	v = g_new(imap_value, 1);
	v->type = IMAP_V_LIST;
	v->bytes = NULL;
	v->str = NULL;
	v->items = g_ptr_array_new_full(n, value_free);
	for (guint i = 0; i < n; i++)
		g_ptr_array_add(v->items, items[i]);
	n = 0;
out:
	for (guint i = 0; i < n; i++)
		value_free(items[i]);
	if (items != stack_items)
		g_free(items);
	return v;
}

/* Two passes: find the end and the unescaped length, then copy once. */
static imap_value *parse_quoted(cursor *c, GError **err)
{
	gsize end, n, bad;

	switch (imap_lex_quoted_span(c, &end, &n, &bad)) {
	case -1:
		fail(err, bad, "unterminated quoted string");
		return NULL;
	case -2:
		fail(err, bad, "NUL byte in quoted string");
		return NULL;
	}
	imap_value *v = value_new_inline(IMAP_V_STRING, n);
	imap_lex_unquote(c, end, v->str);
	c->pos = end;
	return v;
}

/* {n}CRLF, {n+}CRLF (LITERAL+ echo) or ~{n}CRLF (literal8) followed by n octets. */
static imap_value *parse_literal(cursor *c, GError **err)
{
	gsize open = c->pos;

	if (imap_lex_peek(c) == '~')
		c->pos++;
	c->pos++; /* '{' */
	gsize digits = c->pos;
	while (imap_lex_peek(c) >= '0' && imap_lex_peek(c) <= '9')
		c->pos++;
	guint64 n;
	if (c->pos - digits > IMAP_MAX_LENGTH_DIGITS ||
	    !parse_number((const char *)c->p + digits, c->pos - digits, G_MAXUINT64, &n)) {
		fail(err, open, "bad literal length");
		return NULL;
	}
	if (imap_lex_peek(c) == '+')
		c->pos++;
	if (imap_lex_peek(c) != '}') {
		fail(err, c->pos, "bad literal length");
		return NULL;
	}
	c->pos++;
	if (imap_lex_peek(c) == '\r')
		c->pos++;
	if (imap_lex_peek(c) != '\n') {
		fail(err, c->pos, "literal length not followed by CRLF");
		return NULL;
	}
	c->pos++;
	if (n > c->len - c->pos) {
		fail(err, open, "literal of %" G_GUINT64_FORMAT " bytes runs past the end", n);
		return NULL;
	}
	imap_value *v;
	if (n <= IMAP_STR_COPY_MAX) {
		v = value_new_inline(IMAP_V_STRING, (gsize)n);
		memcpy(v->str, c->p + c->pos, (gsize)n);
	} else {
		v = g_new0(imap_value, 1);
		v->type = IMAP_V_STRING;
	}
	v->bytes = g_bytes_new_from_bytes(c->buf, c->pos, (gsize)n);
	c->pos += (gsize)n;
	return v;
}

static imap_value *parse_value(cursor *c, int depth, GError **err)
{
	int ch = imap_lex_peek(c);

	if (ch == '(')
		return parse_list(c, depth, err);
	if (ch == '"')
		return parse_quoted(c, err);
	if (ch == '{' || (ch == '~' && c->pos + 1 < c->len && c->p[c->pos + 1] == '{'))
		return parse_literal(c, err);
	if (ch == ')') {
		fail(err, c->pos, "unbalanced parentheses: unexpected ')'");
		return NULL;
	}
	if (imap_lex_at_eol(c)) {
		fail(err, c->pos, "expected a value");
		return NULL;
	}
	if (imap_lex_is_atom_stop(ch)) {
		fail(err, c->pos, "unexpected byte 0x%02x", ch);
		return NULL;
	}
	gsize start;
	if (!scan_atom(c, &start, err))
		return NULL;
	gsize n = c->pos - start;
	if (n == 3 && imap_lex_caseeq((const char *)c->p + start, "nil", 3))
		return &nil_value;
	imap_value *v = value_new_inline(IMAP_V_ATOM, n);
	memcpy(v->str, c->p + start, n);
	return v;
}

/* ---------------------------------------------------------------- responses */

void imap_response_free(imap_response *r)
{
	if (!r)
		return;
	g_free(r->tag);
	g_free(r->code);
	g_free(r->code_arg);
	g_free(r->text);
	g_free(r->keyword);
	if (r->args)
		g_ptr_array_unref(r->args);
	imap_fetch_free(r->fetch);
	g_free(r);
}

static ImapStatus status_from_word(const char *w)
{
	if (strcmp(w, "OK") == 0)
		return IMAP_ST_OK;
	if (strcmp(w, "NO") == 0)
		return IMAP_ST_NO;
	if (strcmp(w, "BAD") == 0)
		return IMAP_ST_BAD;
	if (strcmp(w, "BYE") == 0)
		return IMAP_ST_BYE;
	if (strcmp(w, "PREAUTH") == 0)
		return IMAP_ST_PREAUTH;
	return IMAP_ST_NONE;
}

/* A word at the start of a response (tag, status, keyword): up to a space or the line end. */
static char *read_word(cursor *c, gboolean stop_at_bracket)
{
	gsize start = c->pos;

	while (!imap_lex_is_atom_stop(imap_lex_peek(c)) && !(stop_at_bracket && imap_lex_peek(c) == '['))
		c->pos++;
	return g_strndup((const char *)c->p + start, c->pos - start);
}

/* resp-text: optional "[CODE args]" then human text. */
static gboolean parse_resp_text(cursor *c, imap_response *r, GError **err)
{
	imap_lex_skip_spaces(c);
	if (imap_lex_peek(c) == '[') {
		gsize open = c->pos;
		c->pos++;
		gsize start = c->pos;
		while (!imap_lex_at_eol(c) && imap_lex_peek(c) != ' ' && imap_lex_peek(c) != ']' && imap_lex_peek(c) != '\0')
			c->pos++;
		if (c->pos == start)
			return fail(err, c->pos, "empty response code");
		r->code = g_ascii_strup((const char *)c->p + start, (gssize)(c->pos - start));
		imap_lex_skip_spaces(c);
		start = c->pos;
		int depth = 1;
		gboolean quoted = FALSE;
		for (;;) {
			int ch = imap_lex_peek(c);
			if (ch < 0 || ch == '\r' || ch == '\n')
				return fail(err, open, "unterminated response code");
			if (ch == '\0')
				return fail(err, c->pos, "NUL byte in response code");
			if (quoted) {
				if (ch == '\\' && c->pos + 1 < c->len && c->p[c->pos + 1] != '\r' &&
				    c->p[c->pos + 1] != '\n')
					c->pos++;
				else if (ch == '"')
					quoted = FALSE;
			} else if (ch == '"') {
				quoted = TRUE;
			} else if (ch == '[') {
				depth++;
			} else if (ch == ']' && --depth == 0) {
				break;
			}
			c->pos++;
		}
		gsize end = c->pos;
		while (end > start && (c->p[end - 1] == ' ' || c->p[end - 1] == '\t'))
			end--;
		if (end > start)
			r->code_arg = g_strndup((const char *)c->p + start, end - start);
		c->pos++; /* ']' */
		imap_lex_skip_spaces(c);
	}
	r->text = read_text(c, err);
	return r->text != NULL;
}

static gboolean parse_args(cursor *c, imap_response *r, GError **err)
{
	for (;;) {
		imap_lex_skip_spaces(c);
		if (imap_lex_at_eol(c))
			return TRUE;
		imap_value *v = parse_value(c, 0, err);
		if (!v)
			return FALSE;
		g_ptr_array_add(r->args, v);
	}
}

static gboolean parse_untagged(cursor *c, imap_response *r, GError **err)
{
	imap_lex_skip_spaces(c);
	int ch = imap_lex_peek(c);
	if (ch >= '0' && ch <= '9') {
		gsize start = c->pos;
		while (imap_lex_peek(c) >= '0' && imap_lex_peek(c) <= '9')
			c->pos++;
		guint64 n;
		if (!parse_number((const char *)c->p + start, c->pos - start, G_MAXUINT32, &n))
			return fail(err, start, "message number out of range");
		r->has_number = TRUE;
		r->number = (guint32)n;
		imap_lex_skip_spaces(c);
		g_autofree char *kw = read_word(c, FALSE);
		if (!*kw)
			return fail(err, c->pos, "missing keyword after message number");
		r->keyword = g_ascii_strup(kw, -1);
		return parse_args(c, r, err);
	}
	g_autofree char *word = read_word(c, TRUE);
	if (!*word)
		return fail(err, c->pos, "missing keyword after '*'");
	g_autofree char *up = g_ascii_strup(word, -1);
	r->status = status_from_word(up);
	if (r->status != IMAP_ST_NONE)
		return parse_resp_text(c, r, err);
	r->keyword = g_steal_pointer(&up);
	return parse_args(c, r, err);
}

static gboolean parse_tagged(cursor *c, imap_response *r, GError **err)
{
	r->tag = read_word(c, FALSE);
	if (!*r->tag)
		return fail(err, c->pos, "missing tag");
	imap_lex_skip_spaces(c);
	g_autofree char *word = read_word(c, TRUE);
	g_autofree char *up = g_ascii_strup(word, -1);
	r->status = status_from_word(up);
	if (r->status != IMAP_ST_OK && r->status != IMAP_ST_NO && r->status != IMAP_ST_BAD)
		return fail(err, c->pos, "tagged response is not OK, NO or BAD");
	return parse_resp_text(c, r, err);
}

imap_response *imap_response_parse(GBytes *buf, GError **err)
{
	imap_fetch *f = imap_fetch_decode_direct(buf);

	if (!f)
		return imap_response_parse_tree(buf, err);
	imap_response *r = g_new0(imap_response, 1);

	r->kind = IMAP_RESP_UNTAGGED;
	r->has_number = TRUE;
	r->number = f->seq;
	r->keyword = g_strdup("FETCH");
	r->args = g_ptr_array_new_with_free_func(value_free);
	r->fetch = f;
	return r;
}

imap_response *imap_response_parse_tree(GBytes *buf, GError **err)
{
	cursor c = { .buf = buf };

	c.p = g_bytes_get_data(buf, &c.len);
	if (c.len == 0) {
		fail_data(err, "empty response");
		return NULL;
	}
	g_autoptr(imap_response) r = g_new0(imap_response, 1);
	r->args = g_ptr_array_new_with_free_func(value_free);
	gboolean ok;
	if (c.p[0] == '+') {
		r->kind = IMAP_RESP_CONTINUATION;
		c.pos = 1;
		ok = parse_resp_text(&c, r, err);
	} else if (c.p[0] == '*') {
		r->kind = IMAP_RESP_UNTAGGED;
		c.pos = 1;
		ok = parse_untagged(&c, r, err);
	} else {
		r->kind = IMAP_RESP_TAGGED;
		ok = parse_tagged(&c, r, err);
	}
	if (!ok || !expect_end(&c, err))
		return NULL;
	return g_steal_pointer(&r);
}

/* ---------------------------------------------------------------- FETCH */

static const imap_value *list_item(const imap_value *v, guint i)
{
	return v && v->type == IMAP_V_LIST && i < v->items->len ? v->items->pdata[i] : NULL;
}

/* The text of an nstring value, cut at its first NUL: literal text may exceed the str copy
 * limit or carry a NUL. FALSE for NIL (and for anything that is not a string). */
static gboolean value_nstring(const imap_value *v, const char **s, gsize *n)
{
	if (!v || (v->type != IMAP_V_STRING && v->type != IMAP_V_ATOM))
		return FALSE;
	if (v->str) {
		*s = v->str;
		*n = strlen(v->str);
		return TRUE;
	}
	*s = imap_value_data(v, n);
	*n = *s ? strnlen(*s, *n) : 0;
	return *s != NULL;
}

static char *value_dup_nstring(const imap_value *v)
{
	const char *s;
	gsize n;

	return value_nstring(v, &s, &n) ? g_strndup(s, n) : NULL;
}

/* (name adl mailbox host) ...; group markers (host NIL) are kept as entries, items that are not
 * address lists are skipped: a quirky server should cost a display name, not the listing. Two
 * passes, so that the list and its strings are one allocation. */
static imap_address_list *address_list(const imap_value *v)
{
	static const guint fields[3] = { 0, 2, 3 }; /* name, mailbox, host; the adl is obsolete */
	guint count = 0;
	gsize bytes = 0;

	if (!v || v->type != IMAP_V_LIST)
		return NULL;
	for (guint i = 0; i < v->items->len; i++) {
		const imap_value *a = v->items->pdata[i];
		if (a->type != IMAP_V_LIST || a->items->len < 4)
			continue;
		count++;
		for (guint k = 0; k < G_N_ELEMENTS(fields); k++) {
			const char *s;
			gsize n;
			if (value_nstring(list_item(a, fields[k]), &s, &n))
				bytes += n + 1;
		}
	}
	if (count == 0)
		return NULL;
	imap_address_list *out = g_malloc(sizeof(*out) + count * sizeof(imap_address) + bytes);
	char *store = (char *)&out->items[count];
	out->len = 0;
	for (guint i = 0; i < v->items->len; i++) {
		const imap_value *a = v->items->pdata[i];
		if (a->type != IMAP_V_LIST || a->items->len < 4)
			continue;
		imap_address *ad = &out->items[out->len++];
		const char **dst[3] = { &ad->name, &ad->mailbox, &ad->host };
		for (guint k = 0; k < G_N_ELEMENTS(fields); k++) {
			const char *s;
			gsize n;
			*dst[k] = NULL;
			if (!value_nstring(list_item(a, fields[k]), &s, &n))
				continue;
			memcpy(store, s, n);
			store[n] = '\0';
			*dst[k] = store;
			store += n + 1;
		}
	}
	return out;
}

void imap_envelope_free(imap_envelope *e)
{
	if (!e)
		return;
	g_free(e->date);
	g_free(e->subject);
	g_free(e->message_id);
	g_free(e->from);
	g_free(e->to);
	g_free(e);
}

static imap_envelope *envelope_from_value(const imap_value *v)
{
	imap_envelope *e = g_new0(imap_envelope, 1);

	e->date = value_dup_nstring(list_item(v, 0));
	e->subject = value_dup_nstring(list_item(v, 1));
	e->from = address_list(list_item(v, 2));
	e->to = address_list(list_item(v, 5));
	e->message_id = value_dup_nstring(list_item(v, 9));
	return e;
}

void imap_fetch_free(imap_fetch *f)
{
	if (!f)
		return;
	if (f->extra_refs) {
		f->extra_refs--;
		return;
	}
	g_free(f->flags);
	imap_envelope_free(f->envelope);
	if (f->body)
		g_bytes_unref(f->body);
	if (f->header)
		g_bytes_unref(f->header);
	g_free(f);
}

static gboolean value_to_number(const imap_value *v, guint64 max, guint64 *out)
{
	return v->type == IMAP_V_ATOM && parse_number(v->str, strlen(v->str), max, out);
}

/* The octets of a body section; NIL (sent by some servers for a vanished message or an empty
 * section) is an empty body. */
static GBytes *section_bytes(const imap_value *v, const char *item, GError **err)
{
	if (v->type == IMAP_V_NIL)
		return g_bytes_new(NULL, 0);
	if (v->type != IMAP_V_STRING) {
		fail_data(err, "FETCH %s is not a string", item);
		return NULL;
	}
	return imap_value_bytes(v);
}

static void replace_bytes(GBytes **slot, GBytes *b)
{
	if (*slot)
		g_bytes_unref(*slot);
	*slot = b;
}

/* "BODY[<section>]<origin>" split into section and origin: 1, 0 if `name` is not such an item,
 * -1 (with err) if the origin is garbage. */
static int split_section(const char *name, const char *prefix, char **section, gboolean *partial,
			 guint64 *origin, GError **err)
{
	gsize plen = strlen(prefix);

	if (g_ascii_strncasecmp(name, prefix, plen) != 0)
		return 0;
	const char *s = name + plen;
	const char *close = strrchr(s, ']');
	if (!close)
		return 0;
	*partial = FALSE;
	*origin = 0;
	const char *rest = close + 1;
	gsize n = strlen(rest);
	if (n > 0) {
		if (n < 3 || rest[0] != '<' || rest[n - 1] != '>' ||
		    !parse_number(rest + 1, n - 2, G_MAXUINT64, origin)) {
			fail_data(err, "bad partial origin in FETCH item %s", name);
			return -1;
		}
		*partial = TRUE;
	}
	*section = g_ascii_strup(s, close - s);
	return 1;
}

static gboolean fetch_item(imap_fetch *f, const char *name, const imap_value *v, GError **err)
{
	guint64 n;

	if (g_ascii_strcasecmp(name, "UID") == 0) {
		if (!value_to_number(v, G_MAXUINT32, &n) || n == 0)
			return fail_data(err, "FETCH UID is not a valid number");
		f->has_uid = TRUE;
		f->uid = (guint32)n;
	} else if (g_ascii_strcasecmp(name, "RFC822.SIZE") == 0) {
		if (!value_to_number(v, G_MAXUINT64, &n))
			return fail_data(err, "FETCH RFC822.SIZE is not a number");
		f->has_size = TRUE;
		f->rfc822_size = n;
	} else if (g_ascii_strcasecmp(name, "FLAGS") == 0) {
		if (v->type != IMAP_V_LIST)
			return fail_data(err, "FETCH FLAGS is not a list");
		g_autoptr(GString) s = g_string_new(NULL);
		for (guint i = 0; i < v->items->len; i++) {
			const imap_value *fl = v->items->pdata[i];
			if (fl->type != IMAP_V_ATOM)
				return fail_data(err, "FETCH FLAGS holds something that is not a flag");
			if (s->len)
				g_string_append_c(s, ' ');
			g_string_append(s, fl->str);
		}
		g_free(f->flags);
		f->flags = g_string_free(g_steal_pointer(&s), FALSE);
		f->has_flags = TRUE;
	} else if (g_ascii_strcasecmp(name, "INTERNALDATE") == 0) {
		/* A garbled date only costs the fallback timestamp. */
		f->has_internaldate = v->type == IMAP_V_STRING && v->str &&
				      imap_parse_internaldate(v->str, &f->internaldate);
	} else if (g_ascii_strcasecmp(name, "ENVELOPE") == 0) {
		if (v->type != IMAP_V_LIST)
			return fail_data(err, "FETCH ENVELOPE is not a list");
		imap_envelope_free(f->envelope);
		f->envelope = envelope_from_value(v);
	} else if (g_ascii_strcasecmp(name, "RFC822") == 0) {
		GBytes *b = section_bytes(v, name, err);
		if (!b)
			return FALSE;
		replace_bytes(&f->body, b);
		f->body_origin = 0;
		f->body_partial = FALSE;
	} else if (g_ascii_strcasecmp(name, "RFC822.HEADER") == 0) {
		GBytes *b = section_bytes(v, name, err);
		if (!b)
			return FALSE;
		replace_bytes(&f->header, b);
	} else {
		g_autofree char *section = NULL;
		gboolean partial;
		guint64 origin;
		int m = split_section(name, "BODY[", &section, &partial, &origin, err);
		if (m == 0)
			m = split_section(name, "BINARY[", &section, &partial, &origin, err);
		if (m < 0)
			return FALSE;
		if (m == 0)
			return TRUE; /* an item we did not ask for */
		if (section[0] == '\0') {
			GBytes *b = section_bytes(v, name, err);
			if (!b)
				return FALSE;
			replace_bytes(&f->body, b);
			f->body_origin = origin;
			f->body_partial = partial;
		} else if (g_str_has_prefix(section, "HEADER")) {
			GBytes *b = section_bytes(v, name, err);
			if (!b)
				return FALSE;
			replace_bytes(&f->header, b);
		}
	}
	return TRUE;
}

imap_fetch *imap_fetch_from_response(const imap_response *r, GError **err)
{
	if (r->kind != IMAP_RESP_UNTAGGED || !r->has_number || g_strcmp0(r->keyword, "FETCH") != 0) {
		fail_data(err, "not a FETCH response");
		return NULL;
	}
	if (r->fetch) {
		r->fetch->extra_refs++;
		return r->fetch;
	}
	const imap_value *list = r->args->len ? r->args->pdata[0] : NULL;
	if (!list || list->type != IMAP_V_LIST) {
		fail_data(err, "FETCH %u without a parenthesised item list", r->number);
		return NULL;
	}
	if (list->items->len % 2) {
		fail_data(err, "FETCH %u item list has an item without a value", r->number);
		return NULL;
	}
	g_autoptr(imap_fetch) f = g_new0(imap_fetch, 1);
	f->seq = r->number;
	for (guint i = 0; i < list->items->len; i += 2) {
		const imap_value *name = list->items->pdata[i];
		if (name->type != IMAP_V_ATOM) {
			fail_data(err, "FETCH %u item name is not an atom", r->number);
			return NULL;
		}
		if (!fetch_item(f, name->str, list->items->pdata[i + 1], err))
			return NULL;
	}
	return g_steal_pointer(&f);
}

/* ---------------------------------------------------------------- LIST */

void imap_list_entry_free(imap_list_entry *e)
{
	if (!e)
		return;
	g_free(e->name);
	g_free(e->flags);
	g_free(e);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(imap_list_entry, imap_list_entry_free)

imap_list_entry *imap_list_from_response(const imap_response *r, GError **err)
{
	if (r->kind != IMAP_RESP_UNTAGGED || r->has_number ||
	    (g_strcmp0(r->keyword, "LIST") != 0 && g_strcmp0(r->keyword, "LSUB") != 0)) {
		fail_data(err, "not a LIST or LSUB response");
		return NULL;
	}
	if (r->args->len < 3) {
		fail_data(err, "%s response with fewer than 3 fields", r->keyword);
		return NULL;
	}
	const imap_value *attrs = r->args->pdata[0];
	const imap_value *delim = r->args->pdata[1];
	const imap_value *name = r->args->pdata[2];
	if (attrs->type != IMAP_V_LIST) {
		fail_data(err, "%s attributes are not a list", r->keyword);
		return NULL;
	}
	g_autoptr(imap_list_entry) e = g_new0(imap_list_entry, 1);
	g_autoptr(GString) flags = g_string_new(NULL);
	for (guint i = 0; i < attrs->items->len; i++) {
		const imap_value *a = attrs->items->pdata[i];
		if (a->type != IMAP_V_ATOM) {
			fail_data(err, "%s attribute is not an atom", r->keyword);
			return NULL;
		}
		if (flags->len)
			g_string_append_c(flags, ' ');
		g_string_append(flags, a->str);
		if (g_ascii_strcasecmp(a->str, "\\Noselect") == 0 ||
		    g_ascii_strcasecmp(a->str, "\\NonExistent") == 0)
			e->noselect = TRUE;
	}
	e->flags = g_string_free(g_steal_pointer(&flags), FALSE);
	if (delim->type == IMAP_V_STRING && delim->str && strlen(delim->str) == 1 &&
	    (!delim->bytes || g_bytes_get_size(delim->bytes) == 1)) {
		e->delimiter = delim->str[0];
	} else if (delim->type != IMAP_V_NIL) {
		fail_data(err, "%s hierarchy delimiter is not one quoted character or NIL", r->keyword);
		return NULL;
	}
	if (name->type != IMAP_V_ATOM && name->type != IMAP_V_STRING) {
		fail_data(err, "%s mailbox name is not a string", r->keyword);
		return NULL;
	}
	gsize n;
	const char *d = imap_value_data(name, &n);
	if (n == 0 || memchr(d, '\0', n) || memchr(d, '\r', n) || memchr(d, '\n', n)) {
		fail_data(err, "%s mailbox name is empty or holds NUL, CR or LF", r->keyword);
		return NULL;
	}
	e->name = g_strndup(d, n);
	return g_steal_pointer(&e);
}

/* ---------------------------------------------------------------- dates and quoting */

/* Days since 1970-01-01 of a proleptic Gregorian date (the well-known era arithmetic). */
static gint64 days_from_civil(gint64 y, int m, int d)
{
	y -= m <= 2;
	gint64 era = (y >= 0 ? y : y - 399) / 400;
	gint64 yoe = y - era * 400;
	gint64 doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	gint64 doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static gboolean read_digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char ch = (*s)[i];
		if (ch < '0' || ch > '9')
			return FALSE;
		v = v * 10 + (ch - '0');
	}
	*s += n;
	*out = v;
	return TRUE;
}

gboolean imap_parse_internaldate(const char *s, gint64 *out)
{
	static const char months[12][4] = { "jan", "feb", "mar", "apr", "may", "jun",
					    "jul", "aug", "sep", "oct", "nov", "dec" };
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int day, mon = -1, year, hh, mm, ss, zh, zm;

	if (!s)
		return FALSE;
	while (*s == ' ')
		s++;
	/* date-day-fixed is (SP DIGIT) / 2DIGIT; the leading space is gone, so 1 or 2 digits. */
	if (s[0] >= '0' && s[0] <= '9' && s[1] == '-') {
		if (!read_digits(&s, 1, &day))
			return FALSE;
	} else if (!read_digits(&s, 2, &day)) {
		return FALSE;
	}
	if (*s++ != '-')
		return FALSE;
	for (int i = 0; i < 12; i++) {
		if (imap_lex_caseeq(s, months[i], 3)) {
			mon = i;
			break;
		}
	}
	if (mon < 0)
		return FALSE;
	s += 3;
	if (*s++ != '-' || !read_digits(&s, 4, &year) || *s++ != ' ')
		return FALSE;
	if (!read_digits(&s, 2, &hh) || *s++ != ':' || !read_digits(&s, 2, &mm) || *s++ != ':' ||
	    !read_digits(&s, 2, &ss) || *s++ != ' ')
		return FALSE;
	char sign = *s++;
	if ((sign != '+' && sign != '-') || !read_digits(&s, 2, &zh) || !read_digits(&s, 2, &zm))
		return FALSE;
	while (*s == ' ')
		s++;
	if (*s != '\0')
		return FALSE;
	gboolean leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (day < 1 || day > mdays[mon] || (mon == 1 && day == 29 && !leap) || hh > 23 || mm > 59 ||
	    ss > 60 || zh > 23 || zm > 59)
		return FALSE;
	gint64 t = days_from_civil(year, mon + 1, day) * 86400 + hh * 3600 + mm * 60 + ss;
	gint64 zone = zh * 3600 + zm * 60;
	*out = sign == '+' ? t - zone : t + zone;
	return TRUE;
}

char *imap_quote(const char *s)
{
	if (!s || strpbrk(s, "\r\n"))
		return NULL;
	GString *q = g_string_sized_new(strlen(s) + 2);
	g_string_append_c(q, '"');
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_c(q, '\\');
		g_string_append_c(q, *p);
	}
	g_string_append_c(q, '"');
	return g_string_free(q, FALSE);
}
