/* Modified UTF-7: known pairs both ways, round trips, and every non-canonical form rejected. */
#include <glib.h>
#include "mutf7.h"

static void check_pair(const char *encoded, const char *utf8)
{
	g_autofree char *dec = mf_mutf7_decode(encoded);
	g_autofree char *enc = mf_mutf7_encode(utf8);

	g_assert_cmpstr(dec, ==, utf8);
	g_assert_cmpstr(enc, ==, encoded);
}

static void check_rejected(const char *encoded)
{
	g_autofree char *dec = mf_mutf7_decode(encoded);

	if (dec)
		g_error("\"%s\" was accepted as \"%s\"", encoded, dec);
}

static void check_round_trip(const char *utf8)
{
	g_autofree char *enc = mf_mutf7_encode(utf8);
	g_autofree char *dec = NULL;

	g_assert_nonnull(enc);
	for (const char *p = enc; *p; p++)
		g_assert_true(*p >= 0x20 && *p <= 0x7e);
	dec = mf_mutf7_decode(enc);
	g_assert_cmpstr(dec, ==, utf8);
}

static void test_ascii(void)
{
	check_pair("INBOX", "INBOX");
	check_pair("", "");
	check_pair("Sent Items", "Sent Items");
	check_pair("a~b!c\"d#e$f%g'h(i)j*k+l,m-n.o/p:q;r<s=t>u?v@w[x\\y]z^_`{|}", "a~b!c\"d#e$f%g'h(i)j*k+l,m-n.o/p:q;r<s=t>u?v@w[x\\y]z^_`{|}");
}

static void test_ampersand(void)
{
	check_pair("&-", "&");
	check_pair("&-&-", "&&");
	check_pair("Tom &- Jerry", "Tom & Jerry");
	check_pair("&-&APw-", "&\xc3\xbc");
	check_pair("&APw-&-&APw-", "\xc3\xbc&\xc3\xbc");
}

static void test_known_pairs(void)
{
	check_pair("Entw&APw-rfe", "Entw\xc3\xbcrfe");
	check_pair("&ZeVnLIqe-", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	/* RFC 3501's own example. */
	check_pair("~peter/mail/&U,BTFw-/&ZeVnLIqe-",
		   "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	/* A control character is not printable, so it must be encoded. */
	check_pair("a&AAk-b", "a\tb");
}

static void test_greek(void)
{
	/* Αρχεία */
	const char *greek = "\xce\x91\xcf\x81\xcf\x87\xce\xb5\xce\xaf\xce\xb1";
	g_autofree char *enc = mf_mutf7_encode(greek);

	g_assert_cmpstr(enc, ==, "&A5EDwQPHA7UDrwOx-");
	check_round_trip(greek);
	check_round_trip("Re: \xce\x91\xcf\x81\xcf\x87\xce\xb5\xce\xaf\xce\xb1 & more");
}

static void test_surrogates(void)
{
	/* U+1F600 GRINNING FACE = D83D DE00 */
	check_pair("&2D3eAA-", "\xf0\x9f\x98\x80");
	check_pair("x&2D3eANg93gE-y", "x\xf0\x9f\x98\x80\xf0\x9f\x98\x81y");
	check_round_trip("\xf0\x9f\x93\xa7 Mail \xf0\x9f\x93\xa8\xc3\xa9\xf0\x9f\x98\x80");
	/* Last code point of plane 16. */
	check_round_trip("\xf4\x8f\xbf\xbf");
}

static void test_round_trips(void)
{
	const char *samples[] = {
		"\xc3\xa9", "\xc3\xa9\xc3\xa9", "\xc3\xa9\xc3\xa9\xc3\xa9", "a\xc3\xa9z",
		"\xe2\x82\xac", "\xef\xbf\xbd", "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d",
		"\xed\x95\x9c\xea\xb5\xad", "Posteingang/\303\234bersicht", "\x7f", "\x01\x02",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(samples); i++)
		check_round_trip(samples[i]);
}

static void test_encode_rejects_bad_utf8(void)
{
	g_assert_null(mf_mutf7_encode("caf\xe9"));
	g_assert_null(mf_mutf7_encode("\xed\xa0\x80"));
	g_assert_null(mf_mutf7_encode(NULL));
}

static void test_rejections(void)
{
	/* unterminated shift */
	check_rejected("&");
	check_rejected("abc&");
	check_rejected("&Jjo");
	check_rejected("Entw&APw");
	/* null shift: adjacent shifts must be one */
	check_rejected("&AOk-&AOk-");
	check_rejected("&AGE-&AGI-");
	/* encoded printable ASCII, including '&' and space */
	check_rejected("&AGE-");
	check_rejected("&ACY-");
	check_rejected("&ACA-");
	check_rejected("&AOkAYQ-");
	/* encoded NUL */
	check_rejected("&AAA-");
	/* bad base64: '/' is not modified base64, '=' padding, other bytes */
	check_rejected("&U/BTFw-");
	check_rejected("&APw=-");
	check_rejected("&AP w-");
	check_rejected("&AP.w-");
	/* leftover non-zero bits: APw = 0x00FC + 2 bits; APx sets them */
	check_rejected("&APx-");
	/* an extra sextet beyond the last unit */
	check_rejected("&APwA-");
	/* odd byte count: 3 bytes */
	check_rejected("&AOkA-");
	/* lone surrogates (high, low, high followed by non-surrogate) */
	check_rejected("&2D0-");
	check_rejected("&3gA-");
	check_rejected("&2D0A6Q-");
	/* a surrogate pair split across shifts */
	check_rejected("&2D0-x&3gA-");
	/* raw 8-bit and control bytes */
	check_rejected("Entw\xc3\xbcrfe");
	check_rejected("a\tb");
	check_rejected("\x7f");
	/* empty encoded run is only valid as "&-" */
	g_assert_null(mf_mutf7_decode(NULL));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mutf7/ascii", test_ascii);
	g_test_add_func("/mutf7/ampersand", test_ampersand);
	g_test_add_func("/mutf7/known-pairs", test_known_pairs);
	g_test_add_func("/mutf7/greek", test_greek);
	g_test_add_func("/mutf7/surrogates", test_surrogates);
	g_test_add_func("/mutf7/round-trips", test_round_trips);
	g_test_add_func("/mutf7/encode-rejects-bad-utf8", test_encode_rejects_bad_utf8);
	g_test_add_func("/mutf7/rejections", test_rejections);
	return g_test_run();
}
