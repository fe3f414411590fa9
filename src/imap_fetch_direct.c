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
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
	return n == 3 && imap_lex_caseeq(s, "nil", 3);
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

/* Where an nstring's text is, read without copying it: envelopes are mostly strings that are
 * copied once, straight into the allocation that keeps them. */
typedef struct {
	gsize at;      /* the opening quote, or the first octet of a literal's text */
	gsize n;       /* length of the text (a literal's is cut at its first NUL, as the tree's) */
	gboolean nil;
	gboolean escaped; /* a quoted string with backslashes: unquote it from `at` to `end` */
	gsize end;
} span;

/* {n}CRLF and n octets. */
static gboolean read_literal(imap_cursor *c, span *sp)
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
	sp->at = c->pos;
	sp->n = strnlen((const char *)c->p + c->pos, (gsize)n);
	c->pos += (gsize)n;
	return TRUE;
}

/* Past the octets that cannot end or escape a quoted string, 16 at a time where SSE2 is
 * there (always on x86-64): the quoted strings of an envelope are most of a listing's bytes.
 * Stops at or before the first '"', '\\', CR, LF or NUL; the caller finishes byte by byte. */
static const guint8 *skip_plain(const guint8 *q, const guint8 *end)
{
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), nul = _mm_setzero_si128();

	while (end - q >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)q);
		__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
					   _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
							_mm_cmpeq_epi8(v, nul)));
		int mask = _mm_movemask_epi8(hit);

		if (mask)
			return q + __builtin_ctz((unsigned)mask);
		q += 16;
	}
#endif
	return q;
}

/* A quoted string, a literal or NIL. */
static gboolean read_span(imap_cursor *c, span *sp)
{
	int ch = imap_lex_peek(c);

	*sp = (span){ 0 };
	if (ch == '"') {
		/* Most strings are short and hold nothing to unescape: one pass finds their end. */
		static const guint8 special[256] = { ['"'] = 1, ['\\'] = 1, ['\r'] = 1, ['\n'] = 1,
						     [0] = 1 };
		const guint8 *open = c->p + c->pos + 1, *end = c->p + c->len;
		const guint8 *q = skip_plain(open, end);

		while (q < end && !special[*q])
			q++;
		sp->at = c->pos;
		if (q < end && *q == '"') {
			sp->at++;
			sp->n = (gsize)(q - open);
			c->pos = (gsize)(q - c->p) + 1;
			return TRUE;
		}
		gsize bad;

		if (imap_lex_quoted_span(c, &sp->end, &sp->n, &bad) != 0)
			return FALSE;
		sp->escaped = TRUE;
		c->pos = sp->end;
		return TRUE;
	}
	if (ch == '{')
		return read_literal(c, sp);
	const char *s;
	gsize n;

	sp->nil = TRUE;
	return read_atom(c, &s, &n) && is_nil(s, n);
}

/* The span's text and a NUL into out (n + 1 bytes). */
static void span_copy(const imap_cursor *c, const span *sp, char *out)
{
	if (sp->escaped) {
		imap_cursor q = *c;

		q.pos = sp->at;
		imap_lex_unquote(&q, sp->end, out);
	} else {
		memcpy(out, c->p + sp->at, sp->n);
	}
	out[sp->n] = '\0';
}

static gboolean read_nstring(imap_cursor *c, char **out)
{
	span sp;

	*out = NULL;
	if (!read_span(c, &sp))
		return FALSE;
	if (!sp.nil) {
		*out = g_malloc(sp.n + 1);
		span_copy(c, &sp, *out);
	}
	return TRUE;
}

/* NIL, or a list of (name adl mailbox host): a first pass checks it and sizes it, a second
 * copies it into one allocation. `out` NULL: check only (a list nothing shows). */
static gboolean read_addresses(imap_cursor *c, imap_address_list **out)
{
	const char *s;
	gsize n;

	if (out)
		*out = NULL;
	if (imap_lex_peek(c) != '(')
		return read_atom(c, &s, &n) && is_nil(s, n);
	gsize start = ++c->pos, bytes = 0;
	guint count = 0;
	imap_address_list *l = NULL;
	char *store = NULL;

	for (int pass = out ? 0 : 1; pass < 2; pass++) {
		if (pass == 1 && out) {
			if (count == 0)
				break;
			l = *out = g_malloc(sizeof(*l) + count * sizeof(imap_address) + bytes);
			l->len = 0;
			store = (char *)&l->items[count];
			c->pos = start;
		}
		for (int more; (more = list_next(c)) != 0;) {
			if (more < 0 || imap_lex_peek(c) != '(')
				return FALSE;
			c->pos++;
			span f[4];

			for (guint i = 0; i < G_N_ELEMENTS(f); i++)
				if (list_next(c) != 1 || !read_span(c, &f[i]))
					return FALSE;
			if (list_next(c) != 0)
				return FALSE;
			if (pass == 0) {
				count++;
				for (guint i = 0; i < G_N_ELEMENTS(f); i++)
					if (i != 1 && !f[i].nil)
						bytes += f[i].n + 1;
				continue;
			}
			if (!l)
				continue;
			imap_address *a = &l->items[l->len++];
			const char **dst[4] = { &a->name, NULL, &a->mailbox, &a->host };

			for (guint i = 0; i < G_N_ELEMENTS(f); i++) {
				if (!dst[i])
					continue;
				*dst[i] = NULL;
				if (f[i].nil)
					continue;
				span_copy(c, &f[i], store);
				*dst[i] = store;
				store += f[i].n + 1;
			}
		}
	}
	return TRUE;
}

static gboolean read_envelope(imap_cursor *c, imap_envelope **out)
{
	if (imap_lex_peek(c) != '(')
		return FALSE;
	c->pos++;
	imap_envelope *e = *out = g_new0(imap_envelope, 1);
	/* date subject from sender reply-to to cc bcc in-reply-to message-id; the fields NULL
	 * here are checked and dropped. */
	char **strings[10] = { &e->date, &e->subject, [9] = &e->message_id };
	imap_address_list **lists[10] = { [2] = &e->from, [5] = &e->to };
	span skipped;

	for (guint i = 0; i < G_N_ELEMENTS(strings); i++) {
		if (list_next(c) != 1)
			return FALSE;
		gboolean ok = strings[i] ? read_nstring(c, strings[i])
			      : i == 8	 ? read_span(c, &skipped)
					 : read_addresses(c, lists[i]);
		if (!ok)
			return FALSE;
	}
	return list_next(c) == 0;
}

static gboolean read_flags(imap_cursor *c, char **out)
{
	if (imap_lex_peek(c) != '(')
		return FALSE;
	gsize start = ++c->pos, bytes = 0;

	*out = NULL;
	/* Sized first, then copied: flags are kept in the index and the tree as they are. */
	for (int pass = 0; pass < 2; pass++) {
		char *w = NULL;

		if (pass == 1) {
			w = *out = g_malloc(bytes + 1);
			c->pos = start;
		}
		for (int more; (more = list_next(c)) != 0;) {
			const char *flag;
			gsize n;

			if (more < 0 || imap_lex_peek(c) == '(' || imap_lex_peek(c) == '"' ||
			    imap_lex_peek(c) == '{' || !read_atom(c, &flag, &n) || is_nil(flag, n))
				return FALSE;
			if (pass == 0) {
				bytes += n + 1;
				continue;
			}
			if (w != *out)
				*w++ = ' ';
			memcpy(w, flag, n);
			w += n;
		}
		if (w)
			*w = '\0';
	}
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
		span sp;
		char d[64];

		/* A literal date is rare enough to leave to the tree, and a long one is no date. */
		if (imap_lex_peek(c) == '{' || !read_span(c, &sp) || (!sp.nil && sp.n >= sizeof d))
			return FALSE;
		if (!sp.nil)
			span_copy(c, &sp, d);
		f->has_internaldate = !sp.nil && imap_parse_internaldate(d, &f->internaldate);
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
