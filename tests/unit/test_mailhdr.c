/* RFC 2047 / RFC 5322 header decoding as real mail needs it (protocol-notes.md section 3.2). */
#include <string.h>
#include <glib.h>
#include "mailhdr.h"

static void check_text(const char *raw, const char *want)
{
	g_autofree char *got = mf_decode_text(raw);

	g_assert_nonnull(got);
	g_assert_true(g_utf8_validate(got, -1, NULL));
	g_assert_cmpstr(got, ==, want);
}

static void test_text_examples(void)
{
	check_text("=?UTF-8?B?w6lkaXRpb24=?= =?UTF-8?Q?_sp=C3=A9ciale?=", "\xc3\xa9" "dition sp\xc3\xa9" "ciale");
	check_text("=?iso-8859-1?q?caf=E9?=bar", "caf\xc3\xa9" "bar");
	check_text("=?ISO-2022-JP?B?GyRCJEskWyRzJDQbKEI=?=",
		   "\xe3\x81\xab\xe3\x81\xbb\xe3\x82\x93\xe3\x81\x94");
	check_text("=?ks_c_5601-1987?B?x9GxuQ==?=", "\xed\x95\x9c\xea\xb5\xad");
	check_text("=?x-unknown?Q?abc?=", "abc");
	check_text("caf\xe9", "caf\xc3\xa9");
	check_text("=?utf-8?q?a/b?=", "a/b");
	check_text("", "");
	check_text("plain ASCII subject", "plain ASCII subject");
}

static void test_text_greek(void)
{
	const char *greek = "\xce\x91\xcf\x81\xcf\x87\xce\xb5\xce\xaf\xce\xb1";
	g_autofree char *re = g_strconcat("Re: ", greek, NULL);

	check_text("=?UTF-8?B?zpHPgc+HzrXOr86x?=", greek);
	check_text("Re: =?utf-8?q?=CE=91=CF=81=CF=87=CE=B5=CE=AF=CE=B1?=", re);
	/* ISO-8859-7 */
	check_text("=?iso-8859-7?b?wfH35d/h?=", greek);
	/* raw UTF-8 (SMTPUTF8 mail) passes through */
	check_text(greek, greek);
}

static void test_text_robust(void)
{
	g_autofree char *nfc = NULL;

	/* folded */
	check_text("=?UTF-8?Q?Lunch?=\r\n =?UTF-8?Q?_on_Friday?=", "Lunch on Friday");
	check_text("Lunch\r\n\ton Friday", "Lunch\ton Friday");
	/* a multi-byte character split across two encoded words (RFC 2047 forbids it; mail does it) */
	check_text("=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=", "caf\xc3\xa9");
	/* windows-1252 curly quotes in raw 8-bit */
	check_text("\x93quoted\x94", "\xe2\x80\x9cquoted\xe2\x80\x9d");
	/* broken encoded words stay as text */
	check_text("=?utf-8?b?broken", "=?utf-8?b?broken");
	check_text("=?utf-8?q?unterminated", "=?utf-8?q?unterminated");
	/* invalid UTF-8 inside a UTF-8 encoded word still yields valid UTF-8 */
	{
		g_autofree char *s = mf_decode_text("=?utf-8?q?a=FF=FEb?=");
		g_assert_true(g_utf8_validate(s, -1, NULL));
		g_assert_true(g_str_has_prefix(s, "a"));
	}
	/* decomposed input comes out NFC */
	nfc = mf_decode_text("=?utf-8?q?e=CC=81?=");
	g_assert_cmpstr(nfc, ==, "\xc3\xa9");
	g_assert_null(mf_decode_text(NULL));
}

static void check_phrase(const char *raw, const char *want)
{
	g_autofree char *got = mf_decode_phrase(raw);

	g_assert_cmpstr(got, ==, want);
}

static void test_phrase(void)
{
	check_phrase("=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=", "J\xc3\xb6rg M\xc3\xbcller");
	check_phrase("\"Doe, John\"", "Doe, John");
	check_phrase("Doe, John", "Doe, John");
	check_phrase("\"=?UTF-8?Q?J=C3=B6rg?=\"", "J\xc3\xb6rg");
	check_phrase("\"Bob \\\"The\\\" Builder\"", "Bob \"The\" Builder");
	check_phrase("Bob \"The\" Builder", "Bob \"The\" Builder");
	check_phrase("J\xf6rg", "J\xc3\xb6rg");
	check_phrase("  Alice Smith ", "Alice Smith");
	check_phrase("\"\"", "");
	g_assert_null(mf_decode_phrase(NULL));
}

static void check_date(const char *raw, gint64 want)
{
	gint64 got = 0;

	if (!mf_parse_date(raw, 0, &got))
		g_error("date \"%s\" rejected", raw);
	g_assert_cmpint(got, ==, want);
}

static void check_bad_date(const char *raw, gint64 now)
{
	gint64 got = 0;

	if (mf_parse_date(raw, now, &got))
		g_error("date \"%s\" accepted as %" G_GINT64_FORMAT, raw, got);
}

static void test_dates(void)
{
	check_date("Thu, 26 Nov 2026 10:42:00 +0000", 1795689720);
	check_date("Thu, 26 Nov 2026 11:42:00 +0100", 1795689720);
	check_date("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)", 837595405);
	check_date("Wed, 17 Jul 1996 02:23:25 -0700 (PDT (nested) \\) comment)", 837595405);
	check_date("Fri, 13 Mar 2026 11:42:00 +0100 (CET)", 1773398520);
	check_date("13 Mar 2026 10:42 GMT", 1773398520);
	check_date("  Fri,\r\n 13 Mar 2026 10:42:00 +0000", 1773398520);
	check_date("fri, 13 mar 2026 10:42:00 +0000", 1773398520);
	/* asctime order (month before day): the day is not mistaken for a 2-digit year */
	check_date("Thu Nov 26 10:42:00 2026", 1795689720);
	check_date("Thu, Nov 26 2026 10:42:00 +0000", 1795689720);
	check_date("26-Nov-2026 10:42:00 +0000", 1795689720);
}

static void test_dates_obsolete(void)
{
	/* RFC 5322 4.3: 2-digit years 00-49 are 20xx, 50-99 are 19xx; 3-digit years + 1900 */
	check_date("17 Jul 96 02:23:00 PDT", 837595380);
	check_date("Thu, 17 Jul 03 02:23 +0000", 1058408580);
	check_date("1 Jan 75 00:00 +0000", 157766400);
	check_date("1 Jan 103 00:00 +0000", 1041379200);
	/* military zones are unreliable: -0000 */
	check_date("Fri, 13 Mar 2026 10:42:00 A", 1773398520);
	check_date("Fri, 13 Mar 2026 10:42:00 Z", 1773398520);
}

static void test_dates_bad(void)
{
	gint64 now = 1773398520;

	check_bad_date(NULL, 0);
	check_bad_date("", 0);
	check_bad_date("garbage", 0);
	check_bad_date("(only a comment)", 0);
	check_bad_date("30 Feb 2020 25:61 +0000", 0);
	check_bad_date("Thu, 1 Jan 1970 00:00:00 +0000", 0);
	check_bad_date("Mon, 1 Jan 1900 00:00:00 +0000", 0);
	/* future: more than a day after now */
	check_bad_date("Mon, 31 Dec 2099 10:00 +0000", now);
	check_bad_date("Sun, 15 Mar 2026 10:42:00 +0000", now);
	/* within a day of now is fine (clock skew, time zones) */
	{
		gint64 t;

		g_assert_true(mf_parse_date("Sat, 14 Mar 2026 10:00:00 +0000", now, &t));
		g_assert_true(mf_parse_date("Mon, 31 Dec 2099 10:00 +0000", 0, &t));
	}
}

static const char block[] =
	"Return-Path: <alice@example.org>\r\n"
	"Received: from mx.example.org by mail.example.com;\r\n"
	"\tThu, 26 Nov 2026 10:42:01 +0000\r\n"
	"Date: Thu, 26 Nov 2026 11:42:00 +0100\r\n"
	"From: \"Smith, Alice\" <alice@example.org>\r\n"
	"To: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <jm@example.com>,\r\n"
	" \"Doe, John\" <jd@example.com>, bob@example.com\r\n"
	"Subject: =?UTF-8?Q?Lunch_on?=\r\n"
	" =?UTF-8?Q?_Friday_=E2=98=95?=\r\n"
	"Message-ID: <4711@example.org>\r\n"
	"MIME-Version: 1.0\r\n"
	"\r\n";

static void test_block(void)
{
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();

	mf_msg_meta_from_headers(m, block, strlen(block));
	g_assert_cmpint(m->date, ==, 1795689720);
	g_assert_cmpstr(m->date_raw, ==, "Thu, 26 Nov 2026 11:42:00 +0100");
	g_assert_cmpstr(m->from, ==, "\"Smith, Alice\" <alice@example.org>");
	g_assert_cmpstr(m->from_name, ==, "Smith, Alice");
	g_assert_cmpstr(m->to, ==, "J\xc3\xb6rg M\xc3\xbcller <jm@example.com>, \"Doe, John\" <jd@example.com>, bob@example.com");
	g_assert_cmpstr(m->subject, ==, "Lunch on Friday \xe2\x98\x95");
	g_assert_cmpstr(m->message_id, ==, "<4711@example.org>");
	/* the backend's fields are left alone */
	g_assert_cmpint(m->internaldate, ==, MF_NO_DATE);
	g_assert_null(m->id);
}

static void test_block_lf_no_blank_line(void)
{
	const char *hdr = "From: =?iso-8859-1?q?J=F6rg?= <j@x.org>\n"
			  "Subject: caf\xe9\n"
			  "Date: 17 Jul 96 02:23:00 PDT";
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();

	mf_msg_meta_from_headers(m, hdr, strlen(hdr));
	g_assert_cmpstr(m->from_name, ==, "J\xc3\xb6rg");
	g_assert_cmpstr(m->from, ==, "J\xc3\xb6rg <j@x.org>");
	g_assert_cmpstr(m->subject, ==, "caf\xc3\xa9");
	g_assert_cmpint(m->date, ==, 837595380);
	g_assert_null(m->to);
	g_assert_null(m->message_id);
}

static void test_block_stops_at_body(void)
{
	const char *msg = "Subject: real\n\nSubject: in the body\nFrom: nobody@x\n";
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();

	mf_msg_meta_from_headers(m, msg, strlen(msg));
	g_assert_cmpstr(m->subject, ==, "real");
	g_assert_null(m->from);
	g_assert_null(m->from_name);
	g_assert_cmpint(m->date, ==, MF_NO_DATE);
}

static void test_block_odd(void)
{
	/* raw 8-bit name, lower-case field names, space before the colon, a NUL byte, first wins */
	const char hdr[] = "from : J\xf6rg <j@x.org>\r\n"
			   "subject: a\0b\r\n"
			   "Subject: second\r\n"
			   "DATE: garbage\r\n";
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();

	mf_msg_meta_from_headers(m, hdr, sizeof(hdr) - 1);
	g_assert_cmpstr(m->from_name, ==, "J\xc3\xb6rg");
	g_assert_cmpstr(m->subject, ==, "a b");
	g_assert_cmpint(m->date, ==, MF_NO_DATE);
	g_assert_cmpstr(m->date_raw, ==, "garbage");
}

static void test_block_groups(void)
{
	const char *hdr = "From: Team: =?utf-8?q?Zo=C3=AB?= <zoe@x.org>, ann@x.org;\r\n"
			  "To: Undisclosed recipients:;\r\n";
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();

	mf_msg_meta_from_headers(m, hdr, strlen(hdr));
	g_assert_cmpstr(m->from, ==, "Team: Zo\xc3\xab <zoe@x.org>, ann@x.org;");
	g_assert_cmpstr(m->from_name, ==, "Zo\xc3\xab");
	g_assert_cmpstr(m->to, ==, "Undisclosed recipients:;");
}

static void test_block_sender_fallbacks(void)
{
	const char *bare = "From: alice@example.org\r\n";
	const char *empty_group = "From: Undisclosed recipients:;\r\n";
	const char *junk = "From: <<<\r\n";
	const char *empty = "From: \r\nSubject:\r\n";
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();

	mf_msg_meta_from_headers(m, bare, strlen(bare));
	g_assert_cmpstr(m->from_name, ==, "alice@example.org");
	g_assert_cmpstr(m->from, ==, "alice@example.org");

	mf_msg_meta_from_headers(m, empty_group, strlen(empty_group));
	g_assert_cmpstr(m->from_name, ==, "Undisclosed recipients");

	/* unparsable: kept as text rather than lost */
	mf_msg_meta_from_headers(m, junk, strlen(junk));
	g_assert_nonnull(m->from);
	g_assert_true(g_utf8_validate(m->from, -1, NULL));

	mf_msg_meta_from_headers(m, empty, strlen(empty));
	g_assert_null(m->from);
	g_assert_null(m->from_name);
	g_assert_cmpstr(m->subject, ==, "");
}

static void test_block_empty(void)
{
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();

	mf_msg_meta_from_headers(m, "", 0);
	g_assert_null(m->subject);
	mf_msg_meta_from_headers(m, NULL, 0);
	g_assert_null(m->from);
	mf_msg_meta_from_headers(m, "\r\n", 2);
	g_assert_null(m->date_raw);
}

/* ---- remembered decodings ---- */

/* The same encoded value decoded again gives the same text, each time a string of its own. */
static void test_memo_repeat(void)
{
	static const struct {
		gboolean phrase;
		const char *raw, *want;
	} cases[] = {
		{ FALSE, "=?UTF-8?B?w6lkaXRpb24=?= =?UTF-8?Q?_sp=C3=A9ciale?=", "\xc3\xa9" "dition sp\xc3\xa9" "ciale" },
		{ FALSE, "Re: =?utf-8?q?=CE=91=CF=81=CF=87=CE=B5=CE=AF=CE=B1?=",
		  "Re: \xce\x91\xcf\x81\xcf\x87\xce\xb5\xce\xaf\xce\xb1" },
		{ FALSE, "=?UTF-8?Q?Lunch?=\r\n =?UTF-8?Q?_on_Friday?=", "Lunch on Friday" },
		{ FALSE, "\x93quoted\x94", "\xe2\x80\x9cquoted\xe2\x80\x9d" },
		{ FALSE, "=?utf-8?q?e=CC=81?=", "\xc3\xa9" },
		{ TRUE, "=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=", "J\xc3\xb6rg M\xc3\xbcller" },
		{ TRUE, "\"Doe, John\"", "Doe, John" },
		{ TRUE, "\"Bob \\\"The\\\" Builder\"", "Bob \"The\" Builder" },
		{ TRUE, "J\xf6rg", "J\xc3\xb6rg" },
		{ TRUE, "\"\"", "" },
	};

	for (guint round = 0; round < 3; round++)
		for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
			char *a = cases[i].phrase ? mf_decode_phrase(cases[i].raw) : mf_decode_text(cases[i].raw);
			char *b = cases[i].phrase ? mf_decode_phrase(cases[i].raw) : mf_decode_text(cases[i].raw);

			g_assert_cmpstr(a, ==, cases[i].want);
			g_assert_cmpstr(b, ==, cases[i].want);
			g_assert_true(a != b);
			/* A caller may change or free its copy: the next one is untouched. */
			if (*a)
				a[0] = '#';
			g_free(a);
			g_free(b);
		}
}

/* Text and phrase decodings of one raw value are remembered apart. */
static void test_memo_kinds(void)
{
	const char *raw = "\"Doe, =?utf-8?q?J=C3=B6rg?= memo\"";

	for (guint round = 0; round < 3; round++) {
		g_autofree char *p = mf_decode_phrase(raw);
		g_autofree char *t = mf_decode_text(raw);
		g_autofree char *p2 = mf_decode_phrase(raw);

		g_assert_cmpstr(p, ==, "Doe, J\xc3\xb6rg memo");
		g_assert_cmpstr(t, ==, "\"Doe, J\xc3\xb6rg memo\"");
		g_assert_cmpstr(p2, ==, p);
	}
}

static char *memo_raw(gboolean phrase, guint i)
{
	return phrase ? g_strdup_printf("=?iso-8859-1?q?J=F6rg_%u?=", i) :
			g_strdup_printf("=?utf-8?q?caf=C3=A9_n=C2=B0?= %u", i);
}

static char *memo_want(gboolean phrase, guint i)
{
	return phrase ? g_strdup_printf("J\xc3\xb6rg %u", i) : g_strdup_printf("caf\xc3\xa9 n\xc2\xb0 %u", i);
}

/* More distinct values than the memo holds (4096): still right when it is cleared, right for
 * a value decoded before and after a clearing, and right for one asked for all along. */
static void test_memo_overflow(void)
{
	const guint n = 4096 * 2 + 100;

	for (int phrase = 0; phrase < 2; phrase++) {
		for (guint pass = 0; pass < 2; pass++)
			for (guint i = 0; i < n; i++) {
				g_autofree char *raw = memo_raw(phrase, i), *want = memo_want(phrase, i);
				g_autofree char *got = phrase ? mf_decode_phrase(raw) : mf_decode_text(raw);

				g_assert_cmpstr(got, ==, want);
				if (i % 97 == 0) {
					g_autofree char *hot = phrase ? mf_decode_phrase("=?utf-8?q?Hot_=E2=98=95?=") :
									mf_decode_text("=?utf-8?q?Hot_=E2=98=95?=");
					g_assert_cmpstr(hot, ==, "Hot \xe2\x98\x95");
				}
			}
	}
}

typedef struct {
	guint first, count;
	gboolean ok;
} memo_job;

static gpointer memo_worker(gpointer p)
{
	memo_job *j = p;

	j->ok = TRUE;
	for (guint k = 0; k < 2; k++)
		for (guint i = j->first; i < j->first + j->count; i++) {
			gboolean phrase = (i + k) % 2;
			g_autofree char *raw = memo_raw(phrase, i), *want = memo_want(phrase, i);
			g_autofree char *got = phrase ? mf_decode_phrase(raw) : mf_decode_text(raw);

			if (g_strcmp0(got, want) != 0)
				j->ok = FALSE;
		}
	return NULL;
}

/* Several threads filling, hitting and clearing the memo at once (overlapping values). */
static void test_memo_threads(void)
{
	memo_job jobs[4];
	GThread *t[4];

	for (guint i = 0; i < 4; i++) {
		jobs[i] = (memo_job){ 20000 + i * 1500, 3000, FALSE };
		t[i] = g_thread_new("memo", memo_worker, &jobs[i]);
	}
	for (guint i = 0; i < 4; i++) {
		g_thread_join(t[i]);
		g_assert_true(jobs[i].ok);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	mf_mailhdr_init();
	mf_mailhdr_init();
	g_test_add_func("/mailhdr/text/examples", test_text_examples);
	g_test_add_func("/mailhdr/text/greek", test_text_greek);
	g_test_add_func("/mailhdr/text/robust", test_text_robust);
	g_test_add_func("/mailhdr/phrase", test_phrase);
	g_test_add_func("/mailhdr/date/rfc5322", test_dates);
	g_test_add_func("/mailhdr/date/obsolete", test_dates_obsolete);
	g_test_add_func("/mailhdr/date/bad", test_dates_bad);
	g_test_add_func("/mailhdr/block/folded", test_block);
	g_test_add_func("/mailhdr/block/lf-no-blank-line", test_block_lf_no_blank_line);
	g_test_add_func("/mailhdr/block/stops-at-body", test_block_stops_at_body);
	g_test_add_func("/mailhdr/block/odd", test_block_odd);
	g_test_add_func("/mailhdr/block/groups", test_block_groups);
	g_test_add_func("/mailhdr/block/sender-fallbacks", test_block_sender_fallbacks);
	g_test_add_func("/mailhdr/block/empty", test_block_empty);
	g_test_add_func("/mailhdr/memo/repeat", test_memo_repeat);
	g_test_add_func("/mailhdr/memo/kinds", test_memo_kinds);
	g_test_add_func("/mailhdr/memo/overflow", test_memo_overflow);
	g_test_add_func("/mailhdr/memo/threads", test_memo_threads);
	return g_test_run();
}
