/* Unit tests for the pure POP3 response parser. */
#include <string.h>
#include "pop3_parse.h"
#include "mferror.h"

static void status_ok(const char *line, Pop3StatusKind kind, const char *code, const char *text)
{
	pop3_status s;
	g_autoptr(GError) err = NULL;

	g_assert_true(pop3_status_parse(line, strlen(line), &s, &err));
	g_assert_no_error(err);
	g_assert_cmpint(s.kind, ==, kind);
	g_assert_cmpstr(s.code, ==, code);
	g_assert_cmpstr(s.text, ==, text);
	pop3_status_clear(&s);
}

static void test_status(void)
{
	status_ok("+OK Dovecot (Debian) ready.\r\n", POP3_OK, NULL, "Dovecot (Debian) ready.");
	status_ok("+OK\r\n", POP3_OK, NULL, "");
	status_ok("+ok lower\n", POP3_OK, NULL, "lower");
	status_ok("-ERR [IN-USE] Mailbox is locked by another POP3 session\r\n", POP3_ERR, "IN-USE",
		  "Mailbox is locked by another POP3 session");
	status_ok("-ERR [LOGIN-DELAY] wait 5 min\r\n", POP3_ERR, "LOGIN-DELAY", "wait 5 min");
	status_ok("-ERR [AUTH] Authentication failed.\r\n", POP3_ERR, "AUTH", "Authentication failed.");
	status_ok("-ERR [sys/temp] try later\r\n", POP3_ERR, "SYS/TEMP", "try later");
	status_ok("-ERR\r\n", POP3_ERR, NULL, "");
	/* Brackets that are no response code stay text. */
	status_ok("-ERR [not a code] x\r\n", POP3_ERR, NULL, "[not a code] x");
	status_ok("-ERR [UNTERMINATED x\r\n", POP3_ERR, NULL, "[UNTERMINATED x");
	status_ok("+ \r\n", POP3_CONT, NULL, "");
	status_ok("+\r\n", POP3_CONT, NULL, "");
	status_ok("+ dGVzdA==\r\n", POP3_CONT, NULL, "dGVzdA==");
	status_ok("+OK 2 320\r\n", POP3_OK, NULL, "2 320");

	const char *bad[] = { "", "\r\n", "OK\r\n", "+OKAY\r\n", "-ERROR x\r\n", "* OK\r\n", "+x\r\n" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		pop3_status s;
		g_autoptr(GError) err = NULL;
		g_assert_false(pop3_status_parse(bad[i], strlen(bad[i]), &s, &err));
		g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
		pop3_status_clear(&s);
	}
	pop3_status s;
	g_autoptr(GError) err = NULL;
	g_assert_false(pop3_status_parse("+OK a\0b\r\n", 9, &s, &err));
	g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
}

static GBytes *feed_all(const char *const *lines, int expect_last, gsize max)
{
	g_autoptr(pop3_multiline) m = pop3_multiline_new(max);
	int r = 0;

	for (const char *const *l = lines; *l; l++) {
		g_autoptr(GError) err = NULL;
		r = pop3_multiline_feed(m, *l, strlen(*l), &err);
		if (r < 0) {
			g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
			break;
		}
		g_assert_no_error(err);
		if (r == 1)
			g_assert_null(l[1]);
	}
	g_assert_cmpint(r, ==, expect_last);
	return pop3_multiline_steal(m);
}

static void test_multiline(void)
{
	const char *const msg[] = { "From: a@b\r\n", "\r\n", "..leading dot\r\n", ".\r\n", NULL };
	g_autoptr(GBytes) b = feed_all(msg, 1, 1000);
	gsize n;
	const char *d = g_bytes_get_data(b, &n);
	g_assert_cmpmem(d, n, "From: a@b\r\n\r\n.leading dot\r\n", 27);

	/* A lone "." inside the text is stuffed as ".."; ".\r" on its own is not the end. */
	const char *const stuffed[] = { "..\r\n", ". \r\n", "x\n", ".\n", NULL };
	g_autoptr(GBytes) s = feed_all(stuffed, 1, 1000);
	d = g_bytes_get_data(s, &n);
	g_assert_cmpmem(d, n, ".\r\n \r\nx\n", 8);

	/* 8-bit bytes and NUL are kept as sent. */
	g_autoptr(pop3_multiline) m = pop3_multiline_new(100);
	g_assert_cmpint(pop3_multiline_feed(m, "\xff\0\x80\r\n", 5, NULL), ==, 0);
	g_assert_cmpint(pop3_multiline_feed(m, ".\r\n", 3, NULL), ==, 1);
	g_autoptr(GBytes) e = pop3_multiline_steal(m);
	d = g_bytes_get_data(e, &n);
	g_assert_cmpmem(d, n, "\xff\0\x80\r\n", 5);
	/* Fed after the end. */
	g_autoptr(GError) err = NULL;
	g_assert_cmpint(pop3_multiline_feed(m, "x\r\n", 3, &err), ==, -1);
	g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);

	/* Empty body. */
	const char *const empty[] = { ".\r\n", NULL };
	g_autoptr(GBytes) z = feed_all(empty, 1, 0);
	g_assert_cmpuint(g_bytes_get_size(z), ==, 0);

	/* Size limit: exactly max is fine, one more byte is not. */
	const char *const fits[] = { "12345678\r\n", ".\r\n", NULL };
	g_autoptr(GBytes) f = feed_all(fits, 1, 10);
	const char *const over[] = { "123456789\r\n", NULL };
	g_autoptr(GBytes) o = feed_all(over, -1, 10);

	/* A line without LF is an error, not a hang. */
	const char *const nolf[] = { "abc", NULL };
	g_autoptr(GBytes) x = feed_all(nolf, -1, 100);
	const char *const zero[] = { "", NULL };
	g_autoptr(GBytes) y = feed_all(zero, -1, 100);
}

static GBytes *bytes(const char *s)
{
	return g_bytes_new(s, strlen(s));
}

static void test_capa(void)
{
	g_autoptr(GBytes) dovecot = bytes("CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"
					  "STLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n");
	g_autoptr(pop3_capa) c = pop3_capa_parse(dovecot);
	g_assert_true(c->top && c->uidl && c->resp_codes && c->pipelining && c->auth_resp_code);
	g_assert_true(c->stls && c->user && c->sasl_plain);
	g_assert_cmpuint(g_strv_length(c->sasl), ==, 2);
	g_assert_cmpstr(c->sasl[1], ==, "LOGIN");
	g_assert_false(c->has_expire);
	g_assert_false(c->has_login_delay);

	g_autoptr(GBytes) gmail = bytes("USER\r\nRESP-CODES\r\nEXPIRE 0\r\nLOGIN-DELAY 300\r\nTOP\r\nUIDL\r\n"
					"X-GOOGLE-RICO\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n");
	g_autoptr(pop3_capa) g = pop3_capa_parse(gmail);
	g_assert_true(g->has_expire);
	g_assert_false(g->expire_never);
	g_assert_cmpint(g->expire_days, ==, 0);
	g_assert_true(g->has_login_delay);
	g_assert_cmpint(g->login_delay, ==, 300);
	g_assert_false(g->pipelining);
	g_assert_false(g->stls);
	g_assert_cmpuint(g_strv_length(g->sasl), ==, 3);

	g_autoptr(GBytes) misc = bytes("expire never\nIMPLEMENTATION  Shlemazle-Plotz-v302 \nsasl\n\n"
				       "LOGIN-DELAY 900 USER\nEXPIRE 30 USER\nsasl  cram-md5\tplain\n");
	g_autoptr(pop3_capa) m = pop3_capa_parse(misc);
	g_assert_true(m->has_expire);
	g_assert_false(m->expire_never); /* the later line wins */
	g_assert_cmpint(m->expire_days, ==, 30);
	g_assert_cmpstr(m->implementation, ==, "Shlemazle-Plotz-v302");
	g_assert_cmpint(m->login_delay, ==, 900);
	g_assert_true(m->sasl_plain);
	g_assert_cmpstr(m->sasl[0], ==, "CRAM-MD5");

	g_autoptr(GBytes) junk = bytes("EXPIRE soon\r\n");
	g_autoptr(pop3_capa) j = pop3_capa_parse(junk);
	g_assert_true(j->has_expire);
	g_assert_cmpint(j->expire_days, ==, 0);

	g_autoptr(GBytes) none = bytes("");
	g_autoptr(pop3_capa) n = pop3_capa_parse(none);
	g_assert_nonnull(n->sasl);
	g_assert_null(n->sasl[0]);
}

static void test_lines(void)
{
	guint32 msg;
	char *uid = NULL;
	guint64 size;
	g_autoptr(GError) err = NULL;

	g_assert_true(pop3_uidl_line_parse("1 000000017fc2a13b\r\n", 20, &msg, &uid, &err));
	g_assert_cmpuint(msg, ==, 1);
	g_assert_cmpstr(uid, ==, "000000017fc2a13b");
	g_free(uid);
	g_assert_true(pop3_uidl_line_parse("2  QhdPYR:00=M!", 15, &msg, &uid, &err));
	g_assert_cmpstr(uid, ==, "QhdPYR:00=M!");
	g_free(uid);
	g_assert_true(pop3_list_line_parse("3 12345\r\n", 9, &msg, &size, &err));
	g_assert_cmpuint(msg, ==, 3);
	g_assert_cmpuint(size, ==, 12345);
	g_assert_true(pop3_list_line_parse("4 120 extra info", 16, &msg, &size, &err));
	g_assert_cmpuint(size, ==, 120);
	g_assert_no_error(err);

	char long_uid[300];
	memset(long_uid, 'a', sizeof long_uid);
	long_uid[0] = '1';
	long_uid[1] = ' ';
	const char *bad_uidl[] = { "", "x y", "0 abc", "1", "1 ", "1 a b", "1 caf\xc3\xa9", "4294967296 a", "-1 a" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad_uidl); i++) {
		g_autoptr(GError) e = NULL;
		uid = NULL;
		g_assert_false(pop3_uidl_line_parse(bad_uidl[i], strlen(bad_uidl[i]), &msg, &uid, &e));
		g_assert_null(uid);
		g_assert_error(e, MF_ERROR, MF_ERR_PROTOCOL);
	}
	g_autoptr(GError) e1 = NULL;
	g_assert_false(pop3_uidl_line_parse(long_uid, sizeof long_uid, &msg, &uid, &e1));
	g_assert_true(pop3_uidl_line_parse(long_uid, 2 + 255, &msg, &uid, NULL));
	g_free(uid);

	const char *bad_list[] = { "", "1", "1 x", "1 12x", "x 12", "1 -5", "1 18446744073709551616" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad_list); i++) {
		g_autoptr(GError) e = NULL;
		g_assert_false(pop3_list_line_parse(bad_list[i], strlen(bad_list[i]), &msg, &size, &e));
		g_assert_error(e, MF_ERROR, MF_ERR_PROTOCOL);
	}
}

static void test_listings(void)
{
	g_autoptr(GBytes) u = bytes("1 aaa\r\n2 bbb\r\n3 aaa\r\n");
	g_autoptr(GError) err = NULL;
	g_autoptr(GPtrArray) uidl = pop3_uidl_parse(u, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(uidl->len, ==, 3);
	pop3_entry *e = uidl->pdata[2];
	g_assert_cmpuint(e->msg, ==, 3);
	g_assert_cmpstr(e->uid, ==, "aaa"); /* duplicates are the backend's business */

	g_autoptr(GBytes) l = bytes("1 120\r\n2 4000\r\n");
	g_autoptr(GPtrArray) list = pop3_list_parse(l, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(list->len, ==, 2);
	g_assert_cmpuint(((pop3_entry *)list->pdata[1])->size, ==, 4000);
	g_assert_null(((pop3_entry *)list->pdata[1])->uid);

	g_autoptr(GBytes) empty = bytes("");
	g_autoptr(GPtrArray) none = pop3_uidl_parse(empty, &err);
	g_assert_cmpuint(none->len, ==, 0);

	g_autoptr(GBytes) dup = bytes("1 a\r\n1 b\r\n");
	g_autoptr(GError) e1 = NULL;
	g_assert_null(pop3_uidl_parse(dup, &e1));
	g_assert_error(e1, MF_ERROR, MF_ERR_PROTOCOL);
	g_autoptr(GBytes) bad = bytes("1 100\r\n2 x\r\n");
	g_autoptr(GError) e2 = NULL;
	g_assert_null(pop3_list_parse(bad, &e2));
	g_assert_error(e2, MF_ERROR, MF_ERR_PROTOCOL);
}

static void test_apop(void)
{
	g_autofree char *t = pop3_apop_timestamp("POP3 server ready <1896.697170952@dbc.mtview.ca.us>");
	g_assert_cmpstr(t, ==, "<1896.697170952@dbc.mtview.ca.us>");
	g_autofree char *t2 = pop3_apop_timestamp("Hello <x> there <1.2@h> ");
	g_assert_cmpstr(t2, ==, "<1.2@h>");
	const char *bad[] = { "Dovecot ready.", "<>", "<abc>", "<a b@c>", "<a@b", "<a\xc3\xa9@b>", "<a\x01@b>" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_null(pop3_apop_timestamp(bad[i]));
	g_assert_null(pop3_apop_timestamp(NULL));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pop3_parse/status", test_status);
	g_test_add_func("/pop3_parse/multiline", test_multiline);
	g_test_add_func("/pop3_parse/capa", test_capa);
	g_test_add_func("/pop3_parse/lines", test_lines);
	g_test_add_func("/pop3_parse/listings", test_listings);
	g_test_add_func("/pop3_parse/apop", test_apop);
	return g_test_run();
}
