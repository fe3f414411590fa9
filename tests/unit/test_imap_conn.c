/* The read-only allow-list every IMAP command line passes before it is written. */
#include "imap_conn.h"

static void test_allowed(void)
{
	const char *ok[] = {
		"A0001 CAPABILITY",
		"A0002 NOOP",
		"A0003 LOGOUT",
		"A0004 STARTTLS",
		"A0005 LOGIN \"alice\" \"secret\"",
		"A0006 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==",
		"A0007 ID (\"name\" \"mailfs\")",
		"A0008 LIST \"\" \"*\"",
		"A0009 EXAMINE \"INBOX\"",
		"A0010 UID SEARCH RETURN (ALL) ALL",
		"A0011 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
		"A0012 UID FETCH 4711 (UID BODY.PEEK[])",
		"A0013 UID FETCH 4711 (UID BODY.PEEK[]<1048576.1048576>)",
		"A0014 uid fetch 1 (body.peek[header.fields (date from)])",
		"A0015 UID FETCH 1 (BINARY.PEEK[1])",
		"A0016 ENABLE QRESYNC",
		"A0017 ENABLE CONDSTORE",
		"A0018 EXAMINE \"INBOX\" (QRESYNC (67890007 20050715194045000))",
		"A0019 EXAMINE \"INBOX\" (CONDSTORE)",
		"A0020 UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE 12345)",
		"A0021 FETCH 1,5001,10001 (UID RFC822.SIZE)",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(ok); i++)
		g_assert_true(mf_imap_line_is_read_only(ok[i]));
}

static void test_refused(void)
{
	const char *bad[] = {
		"A0001 SELECT INBOX",            /* EXAMINE only: SELECT may clear \Recent */
		"A0002 STORE 1 +FLAGS (\\Seen)",
		"A0003 UID STORE 1 +FLAGS (\\Deleted)",
		"A0004 EXPUNGE",
		"A0005 UID EXPUNGE 1",
		"A0006 COPY 1 Trash",
		"A0007 UID COPY 1 Trash",
		"A0008 UID MOVE 1 Trash",
		"A0009 APPEND INBOX {10}",
		"A0010 DELETE INBOX",
		"A0011 RENAME INBOX Old",
		"A0012 CREATE Foo",
		"A0013 UID FETCH 1 (BODY[])",    /* sets \Seen */
		"A0014 UID FETCH 1 (body[text])",
		"A0015 UID FETCH 1 RFC822",
		"A0016 UID FETCH 1 (RFC822.TEXT)",
		"A0017 UID FETCH 1 (RFC822.HEADER)",
		"A0018 UID FETCH 1 (RFC822)",
		"A0019 UID FETCH 1 (BINARY[1])",
		"A0020 FETCH 1 (BODY.PEEK[])",   /* content is named by UID only */
		"A0031 FETCH 1 (UID BODY.PEEK[HEADER])",
		"A0032 FETCH 1:* (BINARY.SIZE[1])",
		"A0021 UID FETCHX 1 (UID)",
		"A0022 NOOP\r\nA0023 EXPUNGE",   /* a smuggled second line */
		"A0024 EXAMINE INBOX\n",
		"EXAMINE INBOX",
		" A0025 NOOP",
		"A-1 NOOP",
		"",
		"A0026 CLOSE",                   /* CLOSE expunges on a SELECTed mailbox */
		"A0027 IDLE",
		"A0028 ENABLE UTF8=ACCEPT",     /* only the extensions we handle */
		"A0029 ENABLE QRESYNC CONDSTORE",
		"A0030 ENABLE",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		if (mf_imap_line_is_read_only(bad[i]))
			g_error("accepted: %s", bad[i]);
	}
	g_assert_false(mf_imap_line_is_read_only(NULL));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap_conn/allowed", test_allowed);
	g_test_add_func("/imap_conn/refused", test_refused);
	return g_test_run();
}
