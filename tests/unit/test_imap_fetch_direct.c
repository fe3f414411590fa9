/* The direct FETCH decoder (imap_fetch_direct.c): listing-shaped responses are decoded
 * without the value tree and to exactly what the tree gives; every other shape is declined
 * (and then decoded, or refused, by the tree as before). */
#include <string.h>

#include "../fuzz/fetch_equal.h"

/* Direct result (or NULL) of s, after checking it against the tree when there is one. */
static imap_fetch *direct(const char *s, gsize len)
{
	g_autoptr(GBytes) b = g_bytes_new(s, len);
	imap_fetch *d = imap_fetch_decode_direct(b);

	if (d) {
		g_autoptr(imap_response) r = imap_response_parse_tree(b, NULL);
		g_assert_nonnull(r);
		g_autoptr(imap_fetch) t = imap_fetch_from_response(r, NULL);
		g_assert_nonnull(t);
		if (!fetch_equal(d, t))
			g_error("direct and tree decodings differ for: %s", s);
	}
	return d;
}

#define LISTING(env) "* 12 FETCH (UID 4711 FLAGS (\\Seen $Label1) INTERNALDATE " \
	"\"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE " env ")\r\n"

static void test_listing_shape(void)
{
	const char *s = LISTING("(\"Wed, 17 Jul 1996 02:23:25 -0700\" \"=?utf-8?Q?Gr=C3=BC=C3=9Fe?=\" "
				"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
				"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL "
				"((NIL NIL \"imap\" \"cac.washington.edu\")) "
				"((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) "
				"NIL NIL \"<B27397-0100000@cac.washington.edu>\")");
	g_autoptr(imap_fetch) f = direct(s, strlen(s));

	g_assert_nonnull(f);
	g_assert_cmpuint(f->seq, ==, 12);
	g_assert_cmpuint(f->uid, ==, 4711);
	g_assert_cmpstr(f->flags, ==, "\\Seen $Label1");
	g_assert_cmpint(f->internaldate, ==, 837596665);
	g_assert_cmpuint(f->rfc822_size, ==, 4286);
	g_assert_cmpstr(f->envelope->subject, ==, "=?utf-8?Q?Gr=C3=BC=C3=9Fe?=");
	g_assert_cmpuint(f->envelope->from->len, ==, 1);
	g_assert_cmpstr(f->envelope->from->items[0].name, ==, "Terry Gray");
	g_assert_cmpstr(f->envelope->from->items[0].host, ==, "cac.washington.edu");
	g_assert_cmpuint(f->envelope->to->len, ==, 1);
	g_assert_null(f->envelope->to->items[0].name);
	g_assert_cmpstr(f->envelope->to->items[0].mailbox, ==, "imap");
	g_assert_cmpstr(f->envelope->message_id, ==, "<B27397-0100000@cac.washington.edu>");

	/* Through the normal entry point it is the same object, by reference. */
	g_autoptr(GBytes) b = g_bytes_new(s, strlen(s));
	g_autoptr(imap_response) r = imap_response_parse(b, NULL);
	g_assert_nonnull(r->fetch);
	g_assert_cmpuint(r->args->len, ==, 0);
	g_autoptr(imap_fetch) again = imap_fetch_from_response(r, NULL);
	g_assert_true(again == r->fetch);
	g_assert_true(fetch_equal(again, f));
}

/* Shapes the decoder takes, each checked against the tree. */
static void test_accepted_variants(void)
{
	static const char *const ok[] = {
		"* 1 FETCH (UID 1)\r\n",
		"* 1 FETCH (UID 1)\n",
		"*  1   FETCH(UID\t1 )\r\n",
		"* 1 FETCH ()\r\n",
		"* 2 FETCH (FLAGS ())\r\n",
		"* 3 FETCH (MODSEQ (12345) UID 9 FLAGS (\\Seen))\r\n",
		"* 4 FETCH (INTERNALDATE NIL UID 4)\r\n",
		"* 4 FETCH (INTERNALDATE \"garbage\" UID 4)\r\n",
		"* 5 FETCH (UID 5 UID 6)\r\n", /* the last one counts, in both */
		"* 6 FETCH (ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 7 FETCH (ENVELOPE (\"d\" {12}\r\nSay \"hi\" \\ x NIL NIL NIL NIL NIL NIL NIL nil))\r\n",
		"* 8 FETCH (ENVELOPE (\"d\" \"s\" ((\"A \\\"B\\\" \\\\\" NIL \"a\" \"b\")) () NIL NIL NIL NIL NIL NIL))\r\n",
		"* 9 FETCH (ENVELOPE (\"d\" \"s\" ((NIL NIL \"list\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 10 FETCH (ENVELOPE (\"d\" {5}\r\na\0b c NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 11 FETCH (RFC822.SIZE 18446744073709551615)\r\n",
		"* 4294967295 FETCH (UID 4294967295)\r\n",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(ok); i++) {
		gsize len = strlen(ok[i]);

		/* The NUL inside the literal of case 10 is part of the response. */
		if (strstr(ok[i], "{5}\r\na"))
			len = strlen(ok[i]) + 1 + strlen(ok[i] + strlen(ok[i]) + 1);
		g_autoptr(imap_fetch) f = direct(ok[i], len);
		if (!f)
			g_error("declined: %s", ok[i]);
	}
}

/* Shapes left to the tree: either it decodes them (then the same way as ever) or it reports
 * the error; the direct decoder must not guess. */
static void test_declined(void)
{
	static const char *const declined[] = {
		"* 1 fetch (UID 1)\r\n",                 /* keyword case */
		"* 1 FETCH (uid 1)\r\n",                 /* item case */
		"* 1 FETCH (UID 1 BODY[] {3}\r\nabc)\r\n",
		"* 1 FETCH (UID 1 BODY[]<0> \"ab\")\r\n",
		"* 1 FETCH (UID 1 X-GM-LABELS (\\Inbox))\r\n",
		"* 1 FETCH (UID 0)\r\n",
		"* 1 FETCH (UID 4294967296)\r\n",
		"* 1 FETCH (UID abc)\r\n",
		"* 1 FETCH (UID)\r\n",
		"* 1 FETCH (UID 1 FLAGS (NIL))\r\n",
		"* 1 FETCH (FLAGS (\"\\Seen\"))\r\n",
		"* 1 FETCH (FLAGS ((\\Seen)))\r\n",
		"* 1 FETCH (FLAGS (~{1}\r\nx))\r\n",
		"* 1 FETCH (FLAGS NIL)\r\n",
		"* 1 FETCH (INTERNALDATE {26}\r\n17-Jul-1996 02:44:25 -0700)\r\n",
		"* 1 FETCH (ENVELOPE (\"d\" \"s\" NIL NIL NIL NIL NIL NIL NIL))\r\n",       /* 9 fields */
		"* 1 FETCH (ENVELOPE (\"d\" \"s\" NIL NIL NIL NIL NIL NIL NIL NIL NIL))\r\n", /* 11 */
		"* 1 FETCH (ENVELOPE (\"d\" \"s\" ((NIL \"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE (\"d\" \"s\" ((NIL NIL \"a\" \"b\" NIL)) NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE (\"d\" \"s\" (garbage) NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE (atom \"s\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE (~{1}\r\nx \"s\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE NIL)\r\n",
		"* 1 FETCH (MODSEQ 5)\r\n",
		"* 1 FETCH (UID 1) extra\r\n",
		"* 1 FETCH (UID 1)",
		"* 1 FETCH (UID 1)\r\nX",
		"* 1 FETCH (UID 1\r\n",
		"* 1 FETCH UID 1\r\n",
		"* FETCH (UID 1)\r\n",
		"* 99999999999 FETCH (UID 1)\r\n",
		"* 1 EXISTS\r\n",
		"A1 OK done\r\n",
		"* 1 FETCH (ENVELOPE (\"unterminated NIL NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE (\"d\" {99}\r\nshort NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(declined); i++) {
		g_autoptr(imap_fetch) f = direct(declined[i], strlen(declined[i]));
		if (f)
			g_error("decoded directly, should be left to the tree: %s", declined[i]);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap_fetch_direct/listing-shape", test_listing_shape);
	g_test_add_func("/imap_fetch_direct/accepted", test_accepted_variants);
	g_test_add_func("/imap_fetch_direct/declined", test_declined);
	return g_test_run();
}
