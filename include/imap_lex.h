/* The lexical layer shared by the IMAP response parser (imap_parse.c) and the direct FETCH
 * decoder (imap_fetch_direct.c), so that both read atoms, quoted strings and spaces by the
 * same rules. Internal to those two files; every read is bounds checked. */
#pragma once
#include <glib.h>

typedef struct {
	GBytes *buf;
	const guint8 *p;
	gsize len;
	gsize pos;
} imap_cursor;

static inline int imap_lex_peek(const imap_cursor *c)
{
	return c->pos < c->len ? c->p[c->pos] : -1;
}

static inline gboolean imap_lex_at_eol(const imap_cursor *c)
{
	int ch = imap_lex_peek(c);

	return ch < 0 || ch == '\r' || ch == '\n';
}

/* Servers are not supposed to send runs of spaces or tabs, but some do. */
static inline void imap_lex_skip_spaces(imap_cursor *c)
{
	while (imap_lex_peek(c) == ' ' || imap_lex_peek(c) == '\t')
		c->pos++;
}

/* A table, not a chain of comparisons: atoms (NIL, numbers, item names) are read at every
 * field of every envelope of a listing. */
static inline gboolean imap_lex_is_atom_stop(int ch)
{
	static const guint8 stop[256] = {
		[0 ... ' '] = 1, [0x7f] = 1, ['('] = 1, [')'] = 1, ['{'] = 1, ['"'] = 1,
	};

	return ch < 0 || stop[ch & 0xff];
}

/* Whether the n octets at s are `lower` (lower-case ASCII) in any case: the NIL and month
 * names that every envelope holds, without a call per comparison. */
static inline gboolean imap_lex_caseeq(const char *s, const char *lower, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		guchar c = (guchar)s[i];

		if ((c >= 'A' && c <= 'Z' ? c | 0x20 : c) != (guchar)lower[i])
			return FALSE;
	}
	return TRUE;
}

/* Decimal digits only, no sign, no overflow past `max`. */
static inline gboolean imap_lex_number(const char *s, gsize n, guint64 max, guint64 *out)
{
	guint64 v = 0;

	if (n == 0)
		return FALSE;
	for (gsize i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return FALSE;
		guint d = (guint)(s[i] - '0');
		if (v > (max - d) / 10)
			return FALSE;
		v = v * 10 + d;
	}
	*out = v;
	return TRUE;
}

/* An atom, where a "[...]" part may hold spaces and parentheses: BODY[HEADER.FIELDS (DATE)]<0>
 * is one item name. 0 with the cursor after it; -1 for an unterminated '[' (*bad = where it
 * opened); -2 for no atom at all (*bad = the position). */
static inline int imap_lex_atom(imap_cursor *c, gsize *start, gsize *bad)
{
	*start = c->pos;
	for (;;) {
		int ch = imap_lex_peek(c);
		if (ch == '[') {
			gsize open = c->pos;
			int depth = 0;
			for (;;) {
				ch = imap_lex_peek(c);
				if (ch < 0 || ch == '\r' || ch == '\n' || ch == '\0') {
					*bad = open;
					return -1;
				}
				c->pos++;
				if (ch == '[')
					depth++;
				else if (ch == ']' && --depth == 0)
					break;
			}
			continue;
		}
		if (imap_lex_is_atom_stop(ch))
			break;
		c->pos++;
	}
	*bad = c->pos;
	return c->pos == *start ? -2 : 0;
}

/* A quoted string at the cursor ('"'): first pass. 0 with *end just past the closing quote and
 * *n the unescaped length; -1 unterminated (*bad = the opening quote), -2 a NUL (*bad = it). */
static inline int imap_lex_quoted_span(const imap_cursor *c, gsize *end, gsize *n, gsize *bad)
{
	gsize i = c->pos + 1;

	*n = 0;
	for (;;) {
		int ch = i < c->len ? c->p[i] : -1;
		if (ch < 0 || ch == '\r' || ch == '\n') {
			*bad = c->pos;
			return -1;
		}
		if (ch == '\0') {
			*bad = i;
			return -2;
		}
		i++;
		if (ch == '"')
			break;
		/* Any other backslash is kept as is: servers write "\Seen"-style text unescaped. */
		if (ch == '\\' && i < c->len && (c->p[i] == '\\' || c->p[i] == '"'))
			i++;
		(*n)++;
	}
	*end = i;
	return 0;
}

/* Second pass: the unescaped text of the quoted string [c->pos, end) into out (n bytes). */
static inline void imap_lex_unquote(const imap_cursor *c, gsize end, char *out)
{
	for (gsize j = c->pos + 1; j < end - 1; j++) {
		if (c->p[j] == '\\' && (c->p[j + 1] == '\\' || c->p[j + 1] == '"'))
			j++;
		*out++ = (char)c->p[j];
	}
}
