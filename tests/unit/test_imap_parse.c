/* Unit tests for the pure IMAP response parser: framing, every response kind, FETCH and LIST
 * decoding, dates, quoting, real server lines and hostile input. */
#include <string.h>
#include "imap_parse.h"
#include "mferror.h"

#define MAXLIT (1024 * 1024)

static imap_response *parse_n(const char *s, gsize n, GError **err)
{
	g_autoptr(GBytes) b = g_bytes_new(s, n);
	return imap_response_parse(b, err);
}

static imap_response *parse_ok(const char *s)
{
	g_autoptr(GError) err = NULL;
	imap_response *r = parse_n(s, strlen(s), &err);
	g_assert_no_error(err);
	g_assert_nonnull(r);
	return r;
}

static void assert_parse_fails_n(const char *s, gsize n)
{
	g_autoptr(GError) err = NULL;
	imap_response *r = parse_n(s, n, &err);
	g_assert_null(r);
	g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
	g_assert_true(g_str_has_prefix(err->message, "IMAP response: "));
}

static void assert_parse_fails(const char *s)
{
	assert_parse_fails_n(s, strlen(s));
}

static imap_fetch *fetch_ok(const char *s)
{
	g_autoptr(imap_response) r = parse_ok(s);
	g_autoptr(GError) err = NULL;
	imap_fetch *f = imap_fetch_from_response(r, &err);
	g_assert_no_error(err);
	g_assert_nonnull(f);
	return f;
}

static const imap_value *arg(const imap_response *r, guint i)
{
	g_assert_cmpuint(i, <, r->args->len);
	return r->args->pdata[i];
}

static void assert_bytes(GBytes *b, const char *expect, gsize n)
{
	g_assert_nonnull(b);
	gsize len;
	const char *d = g_bytes_get_data(b, &len);
	g_assert_cmpmem(d, len, expect, n);
}

/* ---------------------------------------------------------------- framing */

static int frame(const char *s, gsize n, gsize *len)
{
	return imap_frame((const guint8 *)s, n, MAXLIT, len);
}

static void test_frame_simple(void)
{
	gsize len = 0;
	const char *two = "* 5 EXISTS\r\n* 1 RECENT\r\n";

	g_assert_cmpint(frame(two, strlen(two), &len), ==, 1);
	g_assert_cmpuint(len, ==, 12);
	g_assert_cmpint(frame(two + 12, strlen(two) - 12, &len), ==, 1);
	g_assert_cmpuint(len, ==, 12);
	/* Partial input: nothing, no LF yet, CR without LF. */
	g_assert_cmpint(frame("", 0, &len), ==, 0);
	g_assert_cmpint(frame("* 5 EXI", 7, &len), ==, 0);
	g_assert_cmpint(frame("* 5 EXISTS\r", 11, &len), ==, 0);
}

static void test_frame_literals(void)
{
	const char *s = "* 1 FETCH (BODY[] {5}\r\nab\r\nc UID 7)\r\nA1 OK done\r\n";
	gsize total = strlen(s), resp = strlen("* 1 FETCH (BODY[] {5}\r\nab\r\nc UID 7)\r\n");
	gsize len = 0;

	g_assert_cmpint(frame(s, total, &len), ==, 1);
	g_assert_cmpuint(len, ==, resp);
	/* Every prefix short of the whole response needs more bytes, never a wrong answer. */
	for (gsize i = 0; i < resp; i++)
		g_assert_cmpint(frame(s, i, &len), ==, 0);
	/* Two literals in one response, LITERAL+ and literal8 forms. */
	const char *t = "* 2 FETCH (BODY[HEADER] {3+}\r\nabc BODY[] ~{2}\r\n\r\n)\r\n";
	g_assert_cmpint(frame(t, strlen(t), &len), ==, 1);
	g_assert_cmpuint(len, ==, strlen(t));
	/* A literal whose bytes end exactly at the buffer end: the response continues after it. */
	const char *u = "* 3 FETCH (BODY[] {2}\r\nxy";
	g_assert_cmpint(frame(u, strlen(u), &len), ==, 0);
	/* Zero-length literal. */
	const char *z = "* 4 FETCH (BODY[] {0}\r\n)\r\n";
	g_assert_cmpint(frame(z, strlen(z), &len), ==, 1);
	g_assert_cmpuint(len, ==, strlen(z));
	/* Text that merely ends in braces is not a literal. */
	const char *txt = "* OK hello {world}\r\n";
	g_assert_cmpint(frame(txt, strlen(txt), &len), ==, 1);
	g_assert_cmpuint(len, ==, strlen(txt));
}

static void test_frame_broken(void)
{
	gsize len;
	const char *big = "* 1 FETCH (BODY[] {1048577}\r\n";
	const char *huge = "* 1 FETCH (BODY[] {99999999999999999999999}\r\n";
	const char *overflow = "* 1 FETCH (BODY[] {18446744073709551616}\r\n";
	const char *junk = "* 1 FETCH (BODY[] {12x}\r\n";
	const char *empty = "* 1 FETCH (BODY[] {}\r\n";
	const char *plus = "* 1 FETCH (BODY[] {+}\r\n";

	g_assert_cmpint(frame(big, strlen(big), &len), ==, -1);
	g_assert_cmpint(frame(huge, strlen(huge), &len), ==, -1);
	g_assert_cmpint(frame(overflow, strlen(overflow), &len), ==, -1);
	g_assert_cmpint(frame(junk, strlen(junk), &len), ==, -1);
	g_assert_cmpint(frame(empty, strlen(empty), &len), ==, -1);
	g_assert_cmpint(frame(plus, strlen(plus), &len), ==, -1);
	/* Exactly at the limit is fine (needs more bytes). */
	const char *edge = "* 1 FETCH (BODY[] {1048576}\r\n";
	g_assert_cmpint(frame(edge, strlen(edge), &len), ==, 0);
	/* max_literal 0 rejects any non-empty literal. */
	const char *one = "* 1 FETCH (BODY[] {1}\r\nx)\r\n";
	g_assert_cmpint(imap_frame((const guint8 *)one, strlen(one), 0, &len), ==, -1);
}

/* ---------------------------------------------------------------- responses */

static void test_tagged(void)
{
	g_autoptr(imap_response) r = parse_ok("A0001 OK [READ-ONLY] EXAMINE completed (0.001 secs)\r\n");
	g_assert_cmpint(r->kind, ==, IMAP_RESP_TAGGED);
	g_assert_cmpstr(r->tag, ==, "A0001");
	g_assert_cmpint(r->status, ==, IMAP_ST_OK);
	g_assert_cmpstr(r->code, ==, "READ-ONLY");
	g_assert_null(r->code_arg);
	g_assert_cmpstr(r->text, ==, "EXAMINE completed (0.001 secs)");

	g_autoptr(imap_response) no = parse_ok("a2 no [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	g_assert_cmpint(no->status, ==, IMAP_ST_NO);
	g_assert_cmpstr(no->code, ==, "AUTHENTICATIONFAILED");

	g_autoptr(imap_response) bad = parse_ok("x BAD\r\n");
	g_assert_cmpint(bad->status, ==, IMAP_ST_BAD);
	g_assert_cmpstr(bad->text, ==, "");

	/* LF-only line ends and extra spaces are tolerated. */
	g_autoptr(imap_response) lf = parse_ok("t7   OK   done\n");
	g_assert_cmpint(lf->status, ==, IMAP_ST_OK);
	g_assert_cmpstr(lf->text, ==, "done");

	assert_parse_fails("A1 FETCH something\r\n");
	assert_parse_fails("A1 BYE bye\r\n");
	assert_parse_fails("A1\r\n");
	assert_parse_fails(" OK no tag\r\n");
}

static void test_untagged_status(void)
{
	g_autoptr(imap_response) r = parse_ok("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n");
	g_assert_cmpint(r->kind, ==, IMAP_RESP_UNTAGGED);
	g_assert_cmpint(r->status, ==, IMAP_ST_OK);
	g_assert_cmpstr(r->code, ==, "UIDVALIDITY");
	g_assert_cmpstr(r->code_arg, ==, "3857529045");
	g_assert_cmpstr(r->text, ==, "UIDs valid");
	g_assert_null(r->keyword);

	g_autoptr(imap_response) pf = parse_ok("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n");
	g_assert_cmpstr(pf->code, ==, "PERMANENTFLAGS");
	g_assert_cmpstr(pf->code_arg, ==, "(\\Deleted \\Seen \\*)");

	g_autoptr(imap_response) bye = parse_ok("* BYE [UNAVAILABLE] Server shutting down.\r\n");
	g_assert_cmpint(bye->status, ==, IMAP_ST_BYE);
	g_assert_cmpstr(bye->code, ==, "UNAVAILABLE");

	g_autoptr(imap_response) pre = parse_ok("* PREAUTH IMAP4rev1 server logged in as Smith\r\n");
	g_assert_cmpint(pre->status, ==, IMAP_ST_PREAUTH);

	g_autoptr(imap_response) lc = parse_ok("* ok [alert] lower case\r\n");
	g_assert_cmpint(lc->status, ==, IMAP_ST_OK);
	g_assert_cmpstr(lc->code, ==, "ALERT");

	/* Dovecot greeting with the capability list in the code. */
	g_autoptr(imap_response) g = parse_ok(
		"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
		"AUTH=PLAIN] Dovecot (Debian) ready.\r\n");
	g_assert_cmpstr(g->code, ==, "CAPABILITY");
	g_assert_true(g_str_has_prefix(g->code_arg, "IMAP4rev1 SASL-IR"));
	g_assert_cmpstr(g->text, ==, "Dovecot (Debian) ready.");

	/* Gmail's BYE when throttling. */
	g_autoptr(imap_response) q = parse_ok(
		"* BYE [OVERQUOTA] Account exceeded command or bandwidth limits. x1mb1234\r\n");
	g_assert_cmpstr(q->code, ==, "OVERQUOTA");

	/* A ']' inside a quoted code argument does not end the code. */
	g_autoptr(imap_response) bc = parse_ok("a BAD [BADCHARSET (\"x]y\" UTF-8)] no\r\n");
	g_assert_cmpstr(bc->code_arg, ==, "(\"x]y\" UTF-8)");
	g_assert_cmpstr(bc->text, ==, "no");

	assert_parse_fails("* OK [UIDVALIDITY 1 unterminated\r\n");
	assert_parse_fails("* OK [] empty code\r\n");
}

static void test_continuation(void)
{
	g_autoptr(imap_response) r = parse_ok("+ idling\r\n");
	g_assert_cmpint(r->kind, ==, IMAP_RESP_CONTINUATION);
	g_assert_cmpstr(r->text, ==, "idling");
	g_assert_cmpint(r->status, ==, IMAP_ST_NONE);

	g_autoptr(imap_response) e = parse_ok("+\r\n");
	g_assert_cmpstr(e->text, ==, "");
	g_autoptr(imap_response) b64 = parse_ok("+ YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzBeBiVHeceP2CWY0SR0fAQAgAAQEBAQ=\r\n");
	g_assert_true(g_str_has_prefix(b64->text, "YGgGCSqG"));
}

static void test_numbered(void)
{
	g_autoptr(imap_response) r = parse_ok("* 172 EXISTS\r\n");
	g_assert_true(r->has_number);
	g_assert_cmpuint(r->number, ==, 172);
	g_assert_cmpstr(r->keyword, ==, "EXISTS");
	g_assert_cmpuint(r->args->len, ==, 0);
	g_assert_cmpint(r->status, ==, IMAP_ST_NONE);

	g_autoptr(imap_response) x = parse_ok("* 0 expunge\r\n");
	g_assert_cmpuint(x->number, ==, 0);
	g_assert_cmpstr(x->keyword, ==, "EXPUNGE");

	g_autoptr(imap_response) m = parse_ok("* 4294967295 EXISTS\r\n");
	g_assert_cmpuint(m->number, ==, G_MAXUINT32);
	assert_parse_fails("* 4294967296 EXISTS\r\n");
	assert_parse_fails("* 12\r\n");
	assert_parse_fails("*\r\n");
}

static void test_keyword_data(void)
{
	/* Gmail's capability line. */
	g_autoptr(imap_response) c = parse_ok(
		"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 "
		"XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH\r\n");
	g_assert_false(c->has_number);
	g_assert_cmpstr(c->keyword, ==, "CAPABILITY");
	g_assert_cmpuint(c->args->len, ==, 16);
	g_assert_cmpint(arg(c, 0)->type, ==, IMAP_V_ATOM);
	g_assert_cmpstr(arg(c, 0)->str, ==, "IMAP4rev1");
	g_assert_cmpstr(arg(c, 15)->str, ==, "AUTH=XOAUTH");

	g_autoptr(imap_response) fl = parse_ok("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n");
	g_assert_cmpuint(fl->args->len, ==, 1);
	g_assert_cmpint(arg(fl, 0)->type, ==, IMAP_V_LIST);
	g_assert_cmpuint(arg(fl, 0)->items->len, ==, 6);

	g_autoptr(imap_response) se = parse_ok("* search 2 84 882\r\n");
	g_assert_cmpstr(se->keyword, ==, "SEARCH");
	g_assert_cmpuint(se->args->len, ==, 3);
	g_assert_cmpstr(arg(se, 2)->str, ==, "882");
	g_autoptr(imap_response) se0 = parse_ok("* SEARCH\r\n");
	g_assert_cmpuint(se0->args->len, ==, 0);

	g_autoptr(imap_response) es = parse_ok("* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 2,10:11\r\n");
	g_assert_cmpstr(es->keyword, ==, "ESEARCH");
	g_assert_cmpuint(es->args->len, ==, 8);
	g_assert_cmpstr(((imap_value *)arg(es, 0)->items->pdata[1])->str, ==, "A282");
	g_assert_cmpstr(arg(es, 7)->str, ==, "2,10:11");

	g_autoptr(imap_response) st = parse_ok("* STATUS \"Sent Items\" (MESSAGES 231 UIDNEXT 44292)\r\n");
	g_assert_cmpstr(st->keyword, ==, "STATUS");
	g_assert_cmpint(arg(st, 0)->type, ==, IMAP_V_STRING);
	g_assert_cmpstr(arg(st, 0)->str, ==, "Sent Items");
	g_assert_cmpuint(arg(st, 1)->items->len, ==, 4);

	g_autoptr(imap_response) en = parse_ok("* ENABLED CONDSTORE QRESYNC\r\n");
	g_assert_cmpuint(en->args->len, ==, 2);

	g_autoptr(imap_response) id = parse_ok("* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n");
	g_assert_cmpint(((imap_value *)arg(id, 0)->items->pdata[3])->type, ==, IMAP_V_NIL);
	g_autoptr(imap_response) idn = parse_ok("* ID NIL\r\n");
	g_assert_cmpint(arg(idn, 0)->type, ==, IMAP_V_NIL);

	g_autoptr(imap_response) ns = parse_ok("* NAMESPACE ((\"\" \".\")) NIL ((\"#shared.\" \".\"))\r\n");
	g_assert_cmpuint(ns->args->len, ==, 3);
	g_assert_cmpint(arg(ns, 1)->type, ==, IMAP_V_NIL);

	/* Unknown data: a generic value list. */
	g_autoptr(imap_response) un = parse_ok("* XFOO bar (1 2 (3)) \"q\" {3}\r\nabc nil\r\n");
	g_assert_cmpstr(un->keyword, ==, "XFOO");
	g_assert_cmpuint(un->args->len, ==, 5);
	g_assert_cmpint(arg(un, 3)->type, ==, IMAP_V_STRING);
	g_assert_cmpstr(arg(un, 3)->str, ==, "abc");
	g_assert_cmpint(arg(un, 4)->type, ==, IMAP_V_NIL);
}

static void test_quoted(void)
{
	g_autoptr(imap_response) r = parse_ok("* XQ \"a \\\"b\\\" c\\\\d\" \"\" \"x\\y\" \"caf\xc3\xa9\"\r\n");
	g_assert_cmpstr(arg(r, 0)->str, ==, "a \"b\" c\\d");
	/* Quoted text lives in str only; imap_value_bytes() gives it as octets all the same. */
	g_assert_null(arg(r, 0)->bytes);
	g_autoptr(GBytes) qb = imap_value_bytes(arg(r, 0));
	assert_bytes(qb, "a \"b\" c\\d", 9);
	gsize qn;
	g_assert_cmpstr(imap_value_data(arg(r, 0), &qn), ==, "a \"b\" c\\d");
	g_assert_cmpuint(qn, ==, 9);
	g_assert_cmpstr(arg(r, 1)->str, ==, "");
	g_assert_cmpstr(arg(r, 2)->str, ==, "x\\y");
	g_assert_cmpstr(arg(r, 3)->str, ==, "caf\xc3\xa9");

	assert_parse_fails("* XQ \"unterminated\r\n");
	assert_parse_fails("* XQ \"ends in escape\\\"\r\n");
}

static void test_literal_values(void)
{
	const char s[] = "* XL {9}\r\nab\r\n\xff\x80\x01yz {0}\r\n\r\n";
	g_autoptr(GBytes) b = g_bytes_new(s, sizeof s - 1);
	g_autoptr(GError) err = NULL;
	g_autoptr(imap_response) r = imap_response_parse(b, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(r->args->len, ==, 2);
	assert_bytes(arg(r, 0)->bytes, "ab\r\n\xff\x80\x01yz", 9);
	g_assert_cmpstr(arg(r, 0)->str, ==, "ab\r\n\xff\x80\x01yz");
	/* Zero-copy: the literal points into the response buffer. */
	g_assert_true(g_bytes_get_data(arg(r, 0)->bytes, NULL) == (const guint8 *)g_bytes_get_data(b, NULL) + 10);
	g_assert_cmpuint(g_bytes_get_size(arg(r, 1)->bytes), ==, 0);

	/* Over 64 KiB: bytes only, no str copy. */
	gsize n = 70000;
	g_autoptr(GString) big = g_string_new("* XL {70000}\r\n");
	for (gsize i = 0; i < n; i++)
		g_string_append_c(big, (char)('a' + i % 26));
	g_string_append(big, "\r\n");
	g_autoptr(imap_response) rb = parse_ok(big->str);
	g_assert_null(arg(rb, 0)->str);
	g_assert_cmpuint(g_bytes_get_size(arg(rb, 0)->bytes), ==, n);

	assert_parse_fails("* XL {5}\r\nab\r\n");
	assert_parse_fails("* XL {5}xx\r\nabcde\r\n");
	assert_parse_fails("* XL {99999999999999999999999}\r\nab\r\n");
}

static void test_section_atoms(void)
{
	g_autoptr(imap_response) r = parse_ok(
		"* 1 FETCH (BODY[HEADER.FIELDS (DATE FROM)]<0> {4}\r\nab\r\n BODY[]<10> NIL)\r\n");
	const imap_value *l = arg(r, 0);
	g_assert_cmpuint(l->items->len, ==, 4);
	g_assert_cmpstr(((imap_value *)l->items->pdata[0])->str, ==, "BODY[HEADER.FIELDS (DATE FROM)]<0>");
	g_assert_cmpstr(((imap_value *)l->items->pdata[2])->str, ==, "BODY[]<10>");
	assert_parse_fails("* 1 FETCH (BODY[HEADER.FIELDS (DATE FROM) {4}\r\nab\r\n)\r\n");
}

/* ---------------------------------------------------------------- FETCH */

static void test_fetch_listing(void)
{
	g_autoptr(imap_fetch) f = fetch_ok(
		"* 12 FETCH (UID 4827313 FLAGS (\\Seen \\Answered $Label1) INTERNALDATE "
		"\"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
		"\"=?utf-8?q?IMAP4rev1_WG_mtg_summary?=\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		"((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\") "
		"(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\"))\r\n");
	g_assert_cmpuint(f->seq, ==, 12);
	g_assert_true(f->has_uid);
	g_assert_cmpuint(f->uid, ==, 4827313);
	g_assert_true(f->has_flags);
	g_assert_cmpstr(f->flags, ==, "\\Seen \\Answered $Label1");
	g_assert_true(f->has_internaldate);
	g_assert_cmpint(f->internaldate, ==, 837596665);
	g_assert_true(f->has_size);
	g_assert_cmpuint(f->rfc822_size, ==, 44827);
	g_assert_nonnull(f->envelope);
	imap_envelope *e = f->envelope;
	g_assert_cmpstr(e->date, ==, "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)");
	/* RFC 2047 is left to the caller. */
	g_assert_cmpstr(e->subject, ==, "=?utf-8?q?IMAP4rev1_WG_mtg_summary?=");
	g_assert_cmpuint(e->from->len, ==, 1);
	const imap_address *a = &e->from->items[0];
	g_assert_cmpstr(a->name, ==, "Terry Gray");
	g_assert_cmpstr(a->mailbox, ==, "gray");
	g_assert_cmpstr(a->host, ==, "cac.washington.edu");
	g_assert_cmpuint(e->to->len, ==, 1);
	g_assert_null(e->to->items[0].name);
	g_assert_cmpstr(e->to->items[0].mailbox, ==, "imap");
	g_assert_cmpstr(e->message_id, ==, "<B27397-0100000@cac.washington.edu>");
	g_assert_null(f->body);
	g_assert_null(f->header);
}

static void test_fetch_envelope_edge(void)
{
	/* NIL and "" fields, NIL address lists, group syntax, a literal subject. */
	g_autoptr(imap_fetch) f = fetch_ok(
		"* 3 FETCH (ENVELOPE (NIL \"\" NIL NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL) "
		"(NIL NIL NIL NIL)) NIL NIL \"\" NIL) UID 9)\r\n");
	imap_envelope *e = f->envelope;
	g_assert_null(e->date);
	g_assert_cmpstr(e->subject, ==, "");
	g_assert_null(e->from);
	g_assert_cmpuint(e->to->len, ==, 2);
	const imap_address *start = &e->to->items[0], *end = &e->to->items[1];
	g_assert_cmpstr(start->mailbox, ==, "undisclosed-recipients");
	g_assert_null(start->host);
	g_assert_null(end->mailbox);
	g_assert_null(e->message_id);

	g_autoptr(imap_fetch) l = fetch_ok("* 4 FETCH (ENVELOPE (NIL {11}\r\nLine\r\n fold NIL NIL NIL NIL NIL NIL NIL NIL))\r\n");
	g_assert_cmpstr(l->envelope->subject, ==, "Line\r\n fold");

	/* A short or odd envelope costs fields, not the listing. */
	g_autoptr(imap_fetch) s = fetch_ok("* 5 FETCH (ENVELOPE (\"d\" \"s\" (garbage (NIL NIL \"x\"))))\r\n");
	g_assert_cmpstr(s->envelope->subject, ==, "s");
	g_assert_null(s->envelope->from);
	g_assert_null(s->envelope->message_id);
}

static void test_fetch_body(void)
{
	const char s[] = "* 7 FETCH (UID 42 BODY[] {13}\r\nA: b\r\n\r\n\xe9t\xe9\r\n)\r\n";
	g_autoptr(GBytes) b = g_bytes_new(s, sizeof s - 1);
	g_autoptr(imap_response) r = imap_response_parse(b, NULL);
	g_assert_nonnull(r);
	g_autoptr(imap_fetch) f = imap_fetch_from_response(r, NULL);
	g_assert_nonnull(f);
	assert_bytes(f->body, "A: b\r\n\r\n\xe9t\xe9\r\n", 13);
	g_assert_false(f->body_partial);
	g_assert_cmpuint(f->body_origin, ==, 0);
	g_assert_cmpuint(f->uid, ==, 42);

	g_autoptr(imap_fetch) p = fetch_ok("* 7 FETCH (UID 42 BODY[]<1024> {3}\r\nxyz)\r\n");
	assert_bytes(p->body, "xyz", 3);
	g_assert_true(p->body_partial);
	g_assert_cmpuint(p->body_origin, ==, 1024);

	/* Partial fetch beyond the end: an empty literal, or NIL from some servers. */
	g_autoptr(imap_fetch) e = fetch_ok("* 7 FETCH (BODY[]<99999> \"\" UID 42)\r\n");
	g_assert_cmpuint(g_bytes_get_size(e->body), ==, 0);
	g_autoptr(imap_fetch) n = fetch_ok("* 7 FETCH (UID 42 BODY[] NIL)\r\n");
	g_assert_nonnull(n->body);
	g_assert_cmpuint(g_bytes_get_size(n->body), ==, 0);

	g_autoptr(imap_fetch) h = fetch_ok(
		"* 8 fetch (uid 5 body[header.fields (date from subject)] {13}\r\nFrom: a@b\r\n\r\n)\r\n");
	assert_bytes(h->header, "From: a@b\r\n\r\n", 13);
	g_assert_null(h->body);
	g_assert_cmpuint(h->uid, ==, 5);

	/* Unknown items (MODSEQ, BODYSTRUCTURE, other sections) are skipped. */
	g_autoptr(imap_fetch) u = fetch_ok(
		"* 9 FETCH (MODSEQ (12345) X-GM-LABELS (\"\\\\Inbox\") BODYSTRUCTURE (\"text\" \"plain\" "
		"(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL) BODY[TEXT] {2}\r\nhi UID 10)\r\n");
	g_assert_cmpuint(u->uid, ==, 10);
	g_assert_null(u->body);
}

static void test_fetch_bad(void)
{
	const char *bad[] = {
		"* 1 FETCH (UID)\r\n",
		"* 1 FETCH (UID abc)\r\n",
		"* 1 FETCH (UID 4294967296)\r\n",
		"* 1 FETCH (RFC822.SIZE -1)\r\n",
		"* 1 FETCH (FLAGS \\Seen)\r\n",
		"* 1 FETCH (BODY[]<x> {1}\r\na)\r\n",
		"* 1 FETCH (BODY[] (a list))\r\n",
		"* 1 FETCH UID 5\r\n",
		"* 1 FETCH\r\n",
		"* 1 EXISTS\r\n",
		"* 1 FETCH ((UID) 5)\r\n",
	};
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(imap_response) r = parse_ok(bad[i]);
		g_autoptr(GError) err = NULL;
		g_autoptr(imap_fetch) f = imap_fetch_from_response(r, &err);
		g_assert_null(f);
		g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
	}
	/* A garbled INTERNALDATE only loses the date. */
	g_autoptr(imap_fetch) d = fetch_ok("* 1 FETCH (UID 3 INTERNALDATE \"yesterday\")\r\n");
	g_assert_false(d->has_internaldate);
}

/* ---------------------------------------------------------------- LIST */

static imap_list_entry *list_ok(const char *s)
{
	g_autoptr(imap_response) r = parse_ok(s);
	g_autoptr(GError) err = NULL;
	imap_list_entry *e = imap_list_from_response(r, &err);
	g_assert_no_error(err);
	return e;
}

static void test_list(void)
{
	imap_list_entry *e = list_ok("* LIST (\\HasNoChildren) \"/\" \"INBOX/Sub folder\"\r\n");
	g_assert_cmpstr(e->name, ==, "INBOX/Sub folder");
	g_assert_cmpint(e->delimiter, ==, '/');
	g_assert_cmpstr(e->flags, ==, "\\HasNoChildren");
	g_assert_false(e->noselect);
	imap_list_entry_free(e);

	e = list_ok("* LIST (\\noselect \\HasChildren) \".\" [Gmail]\r\n");
	g_assert_cmpstr(e->name, ==, "[Gmail]");
	g_assert_true(e->noselect);
	g_assert_cmpstr(e->flags, ==, "\\noselect \\HasChildren");
	imap_list_entry_free(e);

	e = list_ok("* LSUB () NIL INBOX\r\n");
	g_assert_cmpint(e->delimiter, ==, '\0');
	g_assert_cmpstr(e->flags, ==, "");
	imap_list_entry_free(e);

	e = list_ok("* LIST (\\NonExistent) \"\\\\\" {8}\r\nFoo\\Bar\"\r\n");
	g_assert_cmpint(e->delimiter, ==, '\\');
	g_assert_cmpstr(e->name, ==, "Foo\\Bar\"");
	g_assert_true(e->noselect);
	imap_list_entry_free(e);

	/* LIST-EXTENDED data after the name is ignored; modified UTF-7 stays raw. */
	e = list_ok("* LIST (\\Sent) \"/\" \"Gesendete &AMQ-l\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n");
	g_assert_cmpstr(e->name, ==, "Gesendete &AMQ-l");
	imap_list_entry_free(e);

	const char *bad[] = {
		"* LIST \\Noselect \"/\" foo\r\n",
		"* LIST () \"//\" foo\r\n",
		"* LIST () \"/\"\r\n",
		"* LIST () \"/\" \"\"\r\n",
		"* LIST () \"/\" {4}\r\na\r\nb\r\n",
		"* LIST ((x)) \"/\" foo\r\n",
		"* FLAGS () \"/\" foo\r\n",
	};
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(imap_response) r = parse_ok(bad[i]);
		g_autoptr(GError) err = NULL;
		imap_list_entry *x = imap_list_from_response(r, &err);
		g_assert_null(x);
		g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
	}
	const char nul[] = "* LIST () \"/\" {3}\r\na\0b\r\n";
	g_autoptr(GBytes) b = g_bytes_new(nul, sizeof nul - 1);
	g_autoptr(imap_response) r = imap_response_parse(b, NULL);
	g_assert_nonnull(r);
	g_autoptr(GError) err = NULL;
	g_assert_null(imap_list_from_response(r, &err));
	g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
}

/* ---------------------------------------------------------------- dates, quoting */

static void test_internaldate(void)
{
	gint64 t;

	g_assert_true(imap_parse_internaldate("17-Jul-1996 02:44:25 -0700", &t));
	g_assert_cmpint(t, ==, 837596665);
	g_assert_true(imap_parse_internaldate(" 7-Jul-1996 02:44:25 +0000", &t));
	g_assert_cmpint(t, ==, 836707465);
	g_assert_true(imap_parse_internaldate("7-jul-1996 02:44:25 +0000", &t));
	g_assert_cmpint(t, ==, 836707465);
	g_assert_true(imap_parse_internaldate("01-Jan-1970 00:00:00 +0000", &t));
	g_assert_cmpint(t, ==, 0);
	g_assert_true(imap_parse_internaldate("01-Jan-1970 01:00:00 +0100", &t));
	g_assert_cmpint(t, ==, 0);
	g_assert_true(imap_parse_internaldate("29-Feb-2024 23:59:60 +0000", &t));
	g_assert_cmpint(t, ==, 1709251200);
	g_assert_true(imap_parse_internaldate("26-Nov-2026 10:42:00 +0530", &t));
	g_assert_cmpint(t, ==, 1795669920);

	const char *bad[] = { "", "yesterday", "29-Feb-2023 00:00:00 +0000", "32-Jan-2020 00:00:00 +0000",
			      "01-Foo-2020 00:00:00 +0000", "01-Jan-2020 24:00:00 +0000",
			      "01-Jan-2020 00:00:00", "01-Jan-2020 00:00:00 0000",
			      "01-Jan-2020 00:00:00 +0000 junk", "01-Jan-20 00:00:00 +0000",
			      "001-Jan-2020 00:00:00 +0000", "01-Jan-2020 00:60:00 +0000",
			      "01-Jan-2020 00:00:00 +0060" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_false(imap_parse_internaldate(bad[i], &t));
	g_assert_false(imap_parse_internaldate(NULL, &t));
}

static void test_quote(void)
{
	g_autofree char *a = imap_quote("INBOX");
	g_autofree char *b = imap_quote("a \"b\" \\c");
	g_autofree char *c = imap_quote("");
	g_assert_cmpstr(a, ==, "\"INBOX\"");
	g_assert_cmpstr(b, ==, "\"a \\\"b\\\" \\\\c\"");
	g_assert_cmpstr(c, ==, "\"\"");
	g_assert_null(imap_quote("a\r\nb"));
	g_assert_null(imap_quote("a\nb"));

	/* Round trip through the parser. */
	g_autofree char *line = g_strdup_printf("* XQ %s\r\n", b);
	g_autoptr(imap_response) r = parse_ok(line);
	g_assert_cmpstr(arg(r, 0)->str, ==, "a \"b\" \\c");
}

/* ---------------------------------------------------------------- real streams, hostile input */

/* Frame and parse a whole byte stream the way a connection reader does. */
static guint parse_stream(const char *s, gsize n, imap_response **last)
{
	gsize off = 0;
	guint count = 0;

	while (off < n) {
		gsize len;
		g_assert_cmpint(imap_frame((const guint8 *)s + off, n - off, MAXLIT, &len), ==, 1);
		g_autoptr(GBytes) b = g_bytes_new(s + off, len);
		g_autoptr(GError) err = NULL;
		imap_response *r = imap_response_parse(b, &err);
		g_assert_no_error(err);
		if (last) {
			if (*last)
				imap_response_free(*last);
			*last = r;
		} else {
			imap_response_free(r);
		}
		off += len;
		count++;
	}
	return count;
}

static void test_real_streams(void)
{
	/* Exchange sends an untagged response after the tagged OK. */
	const char *exchange = "* 1 FETCH (UID 17 FLAGS (\\Seen))\r\n"
			       "A3 OK FETCH completed.\r\n"
			       "* 2 EXISTS\r\n";
	imap_response *last = NULL;
	g_assert_cmpuint(parse_stream(exchange, strlen(exchange), &last), ==, 3);
	g_assert_cmpstr(last->keyword, ==, "EXISTS");
	imap_response_free(last);

	const char *dovecot =
		"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.\r\n"
		"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
		"* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n"
		"* 3 EXISTS\r\n"
		"* 0 RECENT\r\n"
		"* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
		"* OK [UIDNEXT 4] Predicted next UID\r\n"
		"* OK [HIGHESTMODSEQ 5] Highest\r\n"
		"a2 OK [READ-ONLY] Examine completed (0.001 + 0.000 secs).\r\n"
		"* 1 FETCH (UID 1 RFC822.SIZE 523 FLAGS (\\Seen) BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] {36}\r\n"
		"Subject: hi\r\nFrom: a@example.org\r\n\r\n)\r\n"
		"a3 OK Fetch completed (0.001 + 0.000 secs).\r\n";
	g_assert_cmpuint(parse_stream(dovecot, strlen(dovecot), NULL), ==, 11);

	const char *gmail =
		"* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
		"* LIST (\\HasChildren \\Noselect) \"/\" \"[Gmail]\"\r\n"
		"* LIST (\\All \\HasNoChildren) \"/\" \"[Gmail]/All Mail\"\r\n"
		"* LIST (\\HasNoChildren \\Trash) \"/\" \"[Gmail]/Trash\"\r\n"
		"a4 OK Success\r\n";
	g_assert_cmpuint(parse_stream(gmail, strlen(gmail), NULL), ==, 5);
}

static void test_hostile(void)
{
	assert_parse_fails("");
	assert_parse_fails("* 1 FETCH (UID 1\r\n");
	assert_parse_fails("* 1 FETCH (UID 1))\r\n");
	assert_parse_fails("* 1 FETCH UID 1)\r\n");
	assert_parse_fails("* 5 EXISTS");
	assert_parse_fails("* 5 EXISTS\r\n* 6 EXISTS\r\n");
	assert_parse_fails("* 5 EXISTS\rX\n");
	assert_parse_fails("* XL {3}\r\nab");
	assert_parse_fails_n("* XA a\0b\r\n", 10);
	assert_parse_fails_n("* OK te\0xt\r\n", 12);
	assert_parse_fails_n("* XQ \"a\0b\"\r\n", 12);
	assert_parse_fails_n("* OK [AL\0ERT] x\r\n", 17);
	assert_parse_fails("* XA \x01\r\n");

	/* Nesting: 64 levels are fine, 65 are refused. */
	for (int depth = 63; depth <= 65; depth++) {
		g_autoptr(GString) s = g_string_new("* XN ");
		for (int i = 0; i < depth; i++)
			g_string_append_c(s, '(');
		for (int i = 0; i < depth; i++)
			g_string_append_c(s, ')');
		g_string_append(s, "\r\n");
		g_autoptr(GError) err = NULL;
		g_autoptr(imap_response) r = parse_n(s->str, s->len, &err);
		if (depth <= 64)
			g_assert_nonnull(r);
		else
			g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
	}
	/* 100000 open parentheses: must neither recurse that deep nor crash. */
	g_autoptr(GString) deep = g_string_new("* XN ");
	for (int i = 0; i < 100000; i++)
		g_string_append_c(deep, '(');
	g_string_append(deep, "\r\n");
	assert_parse_fails(deep->str);

	/* Every truncation of a valid response either needs more bytes or fails cleanly. */
	const char *ok = "* 1 FETCH (UID 5 BODY[]<0> {4}\r\nab\r\n ENVELOPE (\"d\" \"s\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n";
	for (gsize i = 0; i < strlen(ok); i++) {
		gsize len;
		g_assert_cmpint(frame(ok, i, &len), ==, 0);
		g_autoptr(GBytes) b = g_bytes_new(ok, i);
		g_autoptr(GError) err = NULL;
		g_autoptr(imap_response) r = imap_response_parse(b, &err);
		g_assert_null(r);
		g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap_parse/frame/simple", test_frame_simple);
	g_test_add_func("/imap_parse/frame/literals", test_frame_literals);
	g_test_add_func("/imap_parse/frame/broken", test_frame_broken);
	g_test_add_func("/imap_parse/response/tagged", test_tagged);
	g_test_add_func("/imap_parse/response/untagged-status", test_untagged_status);
	g_test_add_func("/imap_parse/response/continuation", test_continuation);
	g_test_add_func("/imap_parse/response/numbered", test_numbered);
	g_test_add_func("/imap_parse/response/keyword-data", test_keyword_data);
	g_test_add_func("/imap_parse/value/quoted", test_quoted);
	g_test_add_func("/imap_parse/value/literal", test_literal_values);
	g_test_add_func("/imap_parse/value/section-atoms", test_section_atoms);
	g_test_add_func("/imap_parse/fetch/listing", test_fetch_listing);
	g_test_add_func("/imap_parse/fetch/envelope-edge", test_fetch_envelope_edge);
	g_test_add_func("/imap_parse/fetch/body", test_fetch_body);
	g_test_add_func("/imap_parse/fetch/bad", test_fetch_bad);
	g_test_add_func("/imap_parse/list", test_list);
	g_test_add_func("/imap_parse/internaldate", test_internaldate);
	g_test_add_func("/imap_parse/quote", test_quote);
	g_test_add_func("/imap_parse/real-streams", test_real_streams);
	g_test_add_func("/imap_parse/hostile", test_hostile);
	return g_test_run();
}
