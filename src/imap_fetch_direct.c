/* A FETCH response of the shape every listing gets, decoded straight from its bytes: no value
 * tree, no copies of copies, one allocation per string kept. A folder listing is thousands of
 * these, and on a small machine the client's CPU time is taken from the server's.
 *
 * Only a strict subset is accepted: the items UID, FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE
 * and MODSEQ in upper case; strings quoted, as literals, or NIL; an envelope of exactly ten
 * fields and addresses of exactly four. Anything else is declined (NULL) and goes through the
 * value tree of imap_parse.c, which stays the reference: whatever is accepted here decodes to
 * what the tree gives (tests/fuzz/fuzz_imap_fetch_direct.c compares the two). */
#include <string.h>

#include "imap_lex.h"
#include "imap_parse.h"

/* Literals longer than this are left to the tree, which keeps big ones as slices. */
#define DIRECT_LITERAL_MAX (64 * 1024)

/* A literal8 ("~{") is a value of its own in the tree, never an atom. */
static gboolean at_literal8(const imap_cursor *c)
{
	return imap_lex_peek(c) == '~' && c->pos + 1 < c->len && c->p[c->pos + 1] == '{';
}

/* An atom at the cursor: its bytes and length. */
static gboolean read_atom(imap_cursor *c, const char **s, gsize *n)
{
	gsize start, bad;

	if (at_literal8(c) || imap_lex_atom(c, &start, &bad) != 0)
		return FALSE;
	*s = (const char *)c->p + start;
	*n = c->pos - start;
	return TRUE;
}

static gboolean is_nil(const char *s, gsize n)
{
	return n == 3 && g_ascii_strncasecmp(s, "NIL", 3) == 0;
}

/* Inside a list: 1 when an element follows, 0 at the closing ')' (consumed), -1 at the end
 * of the line (a broken list: the tree reports it). */
static int list_next(imap_cursor *c)
{
	imap_lex_skip_spaces(c);
	if (imap_lex_peek(c) == ')') {
		c->pos++;
		return 0;
	}
	return imap_lex_at_eol(c) ? -1 : 1;
}

/* {n}CRLF and n octets, as a C string (cut at a NUL, as the tree's strings are). */
static gboolean read_literal(imap_cursor *c, char **out)
{
	gsize digits = ++c->pos;

	while (imap_lex_peek(c) >= '0' && imap_lex_peek(c) <= '9')
		c->pos++;
	guint64 n;

	if (!imap_lex_number((const char *)c->p + digits, c->pos - digits, DIRECT_LITERAL_MAX, &n))
		return FALSE;
	if (imap_lex_peek(c) == '+')
		c->pos++;
	if (imap_lex_peek(c) != '}')
		return FALSE;
	c->pos++;
	if (imap_lex_peek(c) == '\r')
		c->pos++;
	if (imap_lex_peek(c) != '\n')
		return FALSE;
	c->pos++;
	if (n > c->len - c->pos)
		return FALSE;
	*out = g_strndup((const char *)c->p + c->pos, (gsize)n);
	c->pos += (gsize)n;
	return TRUE;
}

/* A quoted string, a literal or NIL (*out NULL). */
static gboolean read_nstring(imap_cursor *c, char **out)
{
	int ch = imap_lex_peek(c);

	*out = NULL;
	if (ch == '"') {
		/* Most strings hold nothing to unescape: one memchr finds the end. */
		const guint8 *open = c->p + c->pos + 1;
		const guint8 *close = memchr(open, '"', c->len - c->pos - 1);

		if (close && !memchr(open, '\\', (gsize)(close - open)) &&
		    !memchr(open, '\r', (gsize)(close - open)) &&
		    !memchr(open, '\n', (gsize)(close - open)) &&
		    !memchr(open, '\0', (gsize)(close - open))) {
			*out = g_strndup((const char *)open, (gsize)(close - open));
			c->pos = (gsize)(close - c->p) + 1;
			return TRUE;
		}
		gsize end, n, bad;

		if (imap_lex_quoted_span(c, &end, &n, &bad) != 0)
			return FALSE;
		*out = g_malloc(n + 1);
		imap_lex_unquote(c, end, *out);
		(*out)[n] = '\0';
		c->pos = end;
		return TRUE;
	}
	if (ch == '{')
		return read_literal(c, out);
	const char *s;
	gsize n;

	return read_atom(c, &s, &n) && is_nil(s, n);
}

/* NIL, or a list of (name adl mailbox host). */
static gboolean read_addresses(imap_cursor *c, GPtrArray **out)
{
	const char *s;
	gsize n;

	*out = g_ptr_array_new_with_free_func((GDestroyNotify)imap_address_free);
	if (imap_lex_peek(c) != '(')
		return read_atom(c, &s, &n) && is_nil(s, n);
	c->pos++;
	for (int more; (more = list_next(c)) != 0;) {
		if (more < 0 || imap_lex_peek(c) != '(')
			return FALSE;
		c->pos++;
		imap_address *a = g_new0(imap_address, 1);
		g_autofree char *adl = NULL;
		char **fields[4] = { &a->name, &adl, &a->mailbox, &a->host };

		g_ptr_array_add(*out, a);
		for (guint i = 0; i < G_N_ELEMENTS(fields); i++)
			if (list_next(c) != 1 || !read_nstring(c, fields[i]))
				return FALSE;
		if (list_next(c) != 0)
			return FALSE;
	}
	return TRUE;
}

static gboolean read_envelope(imap_cursor *c, imap_envelope **out)
{
	if (imap_lex_peek(c) != '(')
		return FALSE;
	c->pos++;
	imap_envelope *e = *out = g_new0(imap_envelope, 1);
	char **strings[10] = { &e->date, &e->subject, [8] = &e->in_reply_to, &e->message_id };
	GPtrArray **lists[10] = { [2] = &e->from, &e->sender, &e->reply_to, &e->to, &e->cc, &e->bcc };
	gboolean ok = TRUE;

	for (guint i = 0; i < G_N_ELEMENTS(strings); i++) {
		if (ok)
			ok = list_next(c) == 1 &&
			     (strings[i] ? read_nstring(c, strings[i]) : read_addresses(c, lists[i]));
		/* The envelope's address lists are never NULL, even in one declined halfway. */
		if (lists[i] && !*lists[i])
			*lists[i] = g_ptr_array_new_with_free_func((GDestroyNotify)imap_address_free);
	}
	return ok && list_next(c) == 0;
}

static gboolean read_flags(imap_cursor *c, char **out)
{
	if (imap_lex_peek(c) != '(')
		return FALSE;
	c->pos++;
	GString *s = g_string_sized_new(32);

	*out = NULL;
	for (int more; (more = list_next(c)) != 0;) {
		const char *flag;
		gsize n;

		if (more < 0 || imap_lex_peek(c) == '(' || imap_lex_peek(c) == '"' ||
		    imap_lex_peek(c) == '{' || !read_atom(c, &flag, &n) || is_nil(flag, n)) {
			g_string_free(s, TRUE);
			return FALSE;
		}
		if (s->len)
			g_string_append_c(s, ' ');
		g_string_append_len(s, flag, (gssize)n);
	}
	*out = g_string_free(s, FALSE);
	return TRUE;
}

static gboolean read_number(imap_cursor *c, guint64 max, guint64 *out)
{
	const char *s;
	gsize n;

	return read_atom(c, &s, &n) && imap_lex_number(s, n, max, out);
}

/* MODSEQ (n): servers with CONDSTORE add it; nothing here needs it. */
static gboolean skip_modseq(imap_cursor *c)
{
	guint64 v;

	if (imap_lex_peek(c) != '(')
		return FALSE;
	c->pos++;
	return list_next(c) == 1 && read_number(c, G_MAXUINT64, &v) && list_next(c) == 0;
}

static gboolean item_is(const char *s, gsize n, const char *name)
{
	return n == strlen(name) && memcmp(s, name, n) == 0;
}

static gboolean read_item(imap_cursor *c, imap_fetch *f, const char *name, gsize len)
{
	guint64 v;

	if (item_is(name, len, "UID")) {
		if (!read_number(c, G_MAXUINT32, &v) || v == 0)
			return FALSE;
		f->has_uid = TRUE;
		f->uid = (guint32)v;
	} else if (item_is(name, len, "RFC822.SIZE")) {
		if (!read_number(c, G_MAXUINT64, &v))
			return FALSE;
		f->has_size = TRUE;
		f->rfc822_size = v;
	} else if (item_is(name, len, "FLAGS")) {
		char *flags;

		if (!read_flags(c, &flags))
			return FALSE;
		g_free(f->flags);
		f->flags = flags;
		f->has_flags = TRUE;
	} else if (item_is(name, len, "INTERNALDATE")) {
		g_autofree char *d = NULL;

		/* A literal date is rare enough to leave to the tree. */
		if (imap_lex_peek(c) == '{' || !read_nstring(c, &d))
			return FALSE;
		f->has_internaldate = d && imap_parse_internaldate(d, &f->internaldate);
	} else if (item_is(name, len, "ENVELOPE")) {
		imap_envelope *e = NULL;
		gboolean ok = read_envelope(c, &e);

		if (!ok) {
			imap_envelope_free(e);
			return FALSE;
		}
		imap_envelope_free(f->envelope);
		f->envelope = e;
	} else {
		return item_is(name, len, "MODSEQ") && skip_modseq(c);
	}
	return TRUE;
}

static gboolean read_fetch(imap_cursor *c, imap_fetch *f)
{
	const char *s;
	gsize n;
	guint64 seq;

	if (imap_lex_peek(c) != '*')
		return FALSE;
	c->pos++;
	imap_lex_skip_spaces(c);
	gsize digits = c->pos;

	while (imap_lex_peek(c) >= '0' && imap_lex_peek(c) <= '9')
		c->pos++;
	if (!imap_lex_number((const char *)c->p + digits, c->pos - digits, G_MAXUINT32, &seq))
		return FALSE;
	f->seq = (guint32)seq;
	imap_lex_skip_spaces(c);
	gsize kw = c->pos;

	while (!imap_lex_is_atom_stop(imap_lex_peek(c)))
		c->pos++;
	if (!item_is((const char *)c->p + kw, c->pos - kw, "FETCH"))
		return FALSE;
	imap_lex_skip_spaces(c);
	if (imap_lex_peek(c) != '(')
		return FALSE;
	c->pos++;
	for (int more; (more = list_next(c)) != 0;) {
		if (more < 0 || !read_atom(c, &s, &n) || list_next(c) != 1 || !read_item(c, f, s, n))
			return FALSE;
	}
	imap_lex_skip_spaces(c);
	if (imap_lex_peek(c) == '\r')
		c->pos++;
	if (imap_lex_peek(c) != '\n')
		return FALSE;
	return ++c->pos == c->len;
}

imap_fetch *imap_fetch_decode_direct(GBytes *buf)
{
	imap_cursor c = { .buf = buf };

	c.p = g_bytes_get_data(buf, &c.len);
	if (c.len < 10 || c.p[0] != '*')
		return NULL;
	imap_fetch *f = g_new0(imap_fetch, 1);

	if (read_fetch(&c, f))
		return f;
	imap_fetch_free(f);
	return NULL;
}
