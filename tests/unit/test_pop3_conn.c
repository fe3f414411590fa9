/* POP3 session and backend against a scripted in-process server on loopback: what is sent
 * (allow-list, pipelining, no QUIT after TOP, no credentials without TLS), and what the backend
 * makes of the replies (ids, stable uids, dot-unstuffing, exact sizes). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "backend.h"
#include "mferror.h"
#include "pop3_conn.h"
#include "pop3_index.h"
#include <glib/gstdio.h>

typedef struct {
	const char *uidl;
	const char *text; /* the message, CRLF line ends */
} fake_msg;

typedef struct {
	int lfd;
	guint16 port;
	GThread *thread;
	const char *capa;      /* CAPA body lines, or NULL for -ERR */
	const char *stls;      /* reply line to STLS */
	const char *greeting;
	const fake_msg *msgs;
	guint n;
	GMutex lock;
	GPtrArray *log;        /* command lines received, "<session>:<line>" */
	guint sessions;
	gboolean stop;
} fake_server;

static void send_str(int fd, const char *s)
{
	gsize len = strlen(s);
	while (len) {
		ssize_t w = write(fd, s, len);
		if (w <= 0)
			return;
		s += w;
		len -= (gsize)w;
	}
}

/* The message dot-stuffed, with CRLF added if it lacks one, as RFC 1939 section 3 says. */
static void send_stuffed(int fd, const char *text, gsize max_lines)
{
	g_autoptr(GString) out = g_string_new("+OK\r\n");
	gboolean in_body = FALSE;
	gsize body_lines = 0;
	const char *p = text;

	while (*p) {
		const char *nl = strstr(p, "\r\n");
		gsize len = nl ? (gsize)(nl - p) : strlen(p);
		if (in_body && body_lines++ >= max_lines)
			break;
		if (*p == '.')
			g_string_append_c(out, '.');
		g_string_append_len(out, p, len);
		g_string_append(out, "\r\n");
		if (len == 0)
			in_body = TRUE;
		p += len + (nl ? 2 : 0);
	}
	g_string_append(out, ".\r\n");
	send_str(fd, out->str);
}

static void serve(fake_server *fs, int fd, guint session)
{
	g_autoptr(GString) in = g_string_new(NULL);
	char buf[4096];

	send_str(fd, fs->greeting);
	for (;;) {
		char *nl;
		while (!(nl = strstr(in->str, "\r\n"))) {
			ssize_t r = read(fd, buf, sizeof buf);
			if (r <= 0)
				return;
			g_string_append_len(in, buf, r);
		}
		g_autofree char *line = g_strndup(in->str, (gsize)(nl - in->str));
		g_string_erase(in, 0, nl - in->str + 2);
		g_mutex_lock(&fs->lock);
		g_ptr_array_add(fs->log, g_strdup_printf("%u:%s", session, line));
		g_mutex_unlock(&fs->lock);
		guint a = 0, b = 0;
		if (!strcmp(line, "CAPA")) {
			if (!fs->capa) {
				send_str(fd, "-ERR unknown command\r\n");
			} else {
				send_str(fd, "+OK\r\n");
				send_str(fd, fs->capa);
				send_str(fd, ".\r\n");
			}
		} else if (!strcmp(line, "STLS")) {
			send_str(fd, fs->stls);
		} else if (g_str_has_prefix(line, "USER ") || g_str_has_prefix(line, "PASS ")) {
			send_str(fd, strcmp(line, "PASS wrong") ? "+OK\r\n" : "-ERR [AUTH] bad\r\n");
		} else if (g_str_has_prefix(line, "APOP ")) {
			/* RFC 1939 section 7 example: secret "tanstaaf". */
			send_str(fd, strcmp(line, "APOP alice c4c9334bac560ecc979e58001b3e22fb") ? "-ERR [AUTH] no\r\n"
											      : "+OK\r\n");
		} else if (!strcmp(line, "UIDL") || !strcmp(line, "LIST")) {
			g_autoptr(GString) out = g_string_new("+OK\r\n");
			for (guint i = 0; i < fs->n; i++) {
				if (line[0] == 'U')
					g_string_append_printf(out, "%u %s\r\n", i + 1, fs->msgs[i].uidl);
				else
					g_string_append_printf(out, "%u %zu\r\n", i + 1, strlen(fs->msgs[i].text));
			}
			g_string_append(out, ".\r\n");
			send_str(fd, out->str);
		} else if (sscanf(line, "UIDL %u", &a) == 1) {
			g_autofree char *r = a >= 1 && a <= fs->n
						     ? g_strdup_printf("+OK %u %s\r\n", a, fs->msgs[a - 1].uidl)
						     : g_strdup("-ERR no such message\r\n");
			send_str(fd, r);
		} else if (sscanf(line, "TOP %u %u", &a, &b) == 2 && a >= 1 && a <= fs->n) {
			send_stuffed(fd, fs->msgs[a - 1].text, b);
		} else if (!strcmp(line, "QUIT")) {
			send_str(fd, "+OK bye\r\n");
			return;
		} else {
			send_str(fd, "-ERR no\r\n");
		}
	}
}

static gpointer fake_thread(gpointer data)
{
	fake_server *fs = data;

	for (;;) {
		int fd = accept(fs->lfd, NULL, NULL);
		if (fd < 0 || fs->stop) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		serve(fs, fd, ++fs->sessions);
		close(fd);
	}
}

static fake_server *fake_start(const char *capa, const fake_msg *msgs, guint n)
{
	fake_server *fs = g_new0(fake_server, 1);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;

	fs->capa = capa;
	fs->stls = "-ERR no TLS here\r\n";
	fs->greeting = "+OK fake POP3 ready\r\n";
	fs->msgs = msgs;
	fs->n = n;
	fs->log = g_ptr_array_new_with_free_func(g_free);
	g_mutex_init(&fs->lock);
	fs->lfd = socket(AF_INET, SOCK_STREAM, 0);
	g_assert_cmpint(bind(fs->lfd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
	g_assert_cmpint(listen(fs->lfd, 4), ==, 0);
	g_assert_cmpint(getsockname(fs->lfd, (struct sockaddr *)&sa, &sl), ==, 0);
	fs->port = ntohs(sa.sin_port);
	fs->thread = g_thread_new("fake-pop3", fake_thread, fs);
	return fs;
}

static void fake_stop(fake_server *fs)
{
	fs->stop = TRUE;
	/* Wake accept() with one last connection. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(fs->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
	g_thread_join(fs->thread);
	close(fd);
	close(fs->lfd);
	g_ptr_array_unref(fs->log);
	g_mutex_clear(&fs->lock);
	g_free(fs);
}

/* The log as one string "1:CAPA|1:USER alice|...", for compact assertions. */
static char *fake_log(fake_server *fs)
{
	g_autoptr(GString) s = g_string_new(NULL);

	g_mutex_lock(&fs->lock);
	for (guint i = 0; i < fs->log->len; i++)
		g_string_append_printf(s, "%s%s", i ? "|" : "", (char *)fs->log->pdata[i]);
	g_mutex_unlock(&fs->lock);
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/* The commands of the last session, "UIDL 2|TOP 2 57", without its login. */
static char *fake_last_session(fake_server *fs)
{
	g_autoptr(GString) s = g_string_new(NULL);
	g_autofree char *pfx = NULL;

	g_mutex_lock(&fs->lock);
	pfx = g_strdup_printf("%u:", fs->sessions);
	for (guint i = 0; i < fs->log->len; i++) {
		const char *ln = fs->log->pdata[i];
		if (!g_str_has_prefix(ln, pfx))
			continue;
		ln += strlen(pfx);
		if (!strcmp(ln, "CAPA") || g_str_has_prefix(ln, "USER ") || g_str_has_prefix(ln, "PASS "))
			continue;
		g_string_append_printf(s, "%s%s", s->len ? "|" : "", ln);
	}
	g_mutex_unlock(&fs->lock);
	return g_string_free(g_steal_pointer(&s), FALSE);
}

static void account_init(mf_account *a, guint16 port, const char *password, gboolean plaintext)
{
	memset(a, 0, sizeof *a);
	a->scheme = (char *)"pop3";
	a->user = (char *)"alice";
	a->host = (char *)"127.0.0.1";
	a->port = port;
	a->password = (char *)password;
	a->allow_plaintext = plaintext;
	a->timeout_sec = 5;
}

static const fake_msg msgs[] = {
	{ "aaa", "From: Alice <a@example.org>\r\nSubject: one\r\n\r\nbody\r\n.dotted line\r\n" },
	{ "dup", "Subject: two\r\n\r\nno final newline" },
	{ "dup", "Subject: three\r\n\r\n.\r\n..\r\n" },
	{ "a/b%c~d", "Subject: four\r\n\r\nx\r\n" },
};

#define CAPA_FULL "TOP\r\nUIDL\r\nUSER\r\nPIPELINING\r\nEXPIRE 0\r\n"

static void test_allow_list(void)
{
	g_assert_true(pop3_command_allowed("UIDL"));
	g_assert_true(pop3_command_allowed("top 1 0"));
	g_assert_true(pop3_command_allowed("QUIT"));
	g_assert_false(pop3_command_allowed("DELE 1"));
	g_assert_false(pop3_command_allowed("RSET"));
	g_assert_false(pop3_command_allowed("RETR 1"));
	g_assert_false(pop3_command_allowed("UIDL\r\nDELE 1"));
	g_assert_false(pop3_command_allowed("TOPX 1"));
	g_assert_false(pop3_command_allowed(""));
	g_autofree char *longline = g_strnfill(300, 'A');
	g_assert_false(pop3_command_allowed(longline));
}

static void test_apop_digest(void)
{
	/* RFC 1939 section 7 example. */
	g_autofree char *d = pop3_apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf");
	g_assert_cmpstr(d, ==, "c4c9334bac560ecc979e58001b3e22fb");
}

static void test_plaintext_refused(void)
{
	fake_server *fs = fake_start(CAPA_FULL, msgs, 4);
	mf_account a;
	g_autoptr(GError) err = NULL;

	account_init(&a, fs->port, "secret", FALSE);
	g_assert_null(pop3_conn_open(&a, "t", &err));
	g_assert_error(err, MF_ERROR, MF_ERR_PLAINTEXT);
	/* Without CAPA STLS is tried blindly; refused, still no credentials. */
	fs->capa = NULL;
	g_autoptr(GError) err2 = NULL;
	g_assert_null(pop3_conn_open(&a, "t", &err2));
	g_assert_error(err2, MF_ERROR, MF_ERR_PLAINTEXT);
	g_autofree char *log = fake_log(fs);
	g_assert_cmpstr(log, ==, "1:CAPA|2:CAPA|2:STLS");
	fake_stop(fs);
}

static void test_stls_injection(void)
{
	fake_server *fs = fake_start("STLS\r\nUSER\r\n", msgs, 4);
	mf_account a;
	g_autoptr(GError) err = NULL;

	/* A man in the middle appends a reply to the STLS go-ahead. */
	fs->stls = "+OK begin TLS\r\n+OK injected\r\n";
	account_init(&a, fs->port, "secret", FALSE);
	g_assert_null(pop3_conn_open(&a, "t", &err));
	g_assert_error(err, MF_ERROR, MF_ERR_PROTOCOL);
	g_autofree char *log = fake_log(fs);
	g_assert_null(strstr(log, "PASS"));
	fake_stop(fs);
}

static void test_session(void)
{
	fake_server *fs = fake_start(CAPA_FULL, msgs, 4);
	mf_account a;
	g_autoptr(GError) err = NULL;

	account_init(&a, fs->port, "wrong", TRUE);
	g_assert_null(pop3_conn_open(&a, "t", &err));
	g_assert_error(err, MF_ERROR, MF_ERR_AUTH);

	/* Only UIDL and LIST: a clean QUIT. */
	account_init(&a, fs->port, "secret", TRUE);
	pop3_conn *c = pop3_conn_open(&a, "t", NULL);
	g_assert_nonnull(c);
	g_assert_true(pop3_conn_capa(c)->pipelining);
	g_autoptr(GPtrArray) scan = pop3_conn_scan(c, NULL);
	g_assert_cmpuint(scan->len, ==, 4);
	pop3_entry *e = scan->pdata[1];
	g_assert_cmpstr(e->uid, ==, "dup");
	g_assert_cmpuint(e->size, ==, strlen(msgs[1].text));
	pop3_conn_close(c);
	g_autofree char *log = fake_log(fs);
	g_assert_cmpstr(log, ==, "1:CAPA|1:USER alice|1:PASS wrong|"
				 "2:CAPA|2:USER alice|2:PASS secret|2:UIDL|2:LIST|2:QUIT");
	fake_stop(fs);
}

static void test_apop_login(void)
{
	fake_server *fs = fake_start(NULL, msgs, 4);
	mf_account a;

	fs->greeting = "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n";
	account_init(&a, fs->port, "tanstaaf", TRUE);
	a.apop = TRUE;
	pop3_conn *c = pop3_conn_open(&a, "t", NULL);
	g_assert_nonnull(c);
	g_assert_null(pop3_conn_capa(c));
	pop3_conn_close(c);
	a.password = (char *)"wrong";
	g_autoptr(GError) err = NULL;
	g_assert_null(pop3_conn_open(&a, "t", &err));
	g_assert_error(err, MF_ERROR, MF_ERR_AUTH);
	g_autofree char *log = fake_log(fs);
	/* No CAPA: STLS is tried, refused, and plaintext was allowed. */
	g_assert_true(g_str_has_prefix(log, "1:CAPA|1:STLS|1:APOP alice c4c9334bac560ecc979e58001b3e22fb|1:QUIT|"));
	fake_stop(fs);
}

static GPtrArray *bodies;

static void collect(const mf_msg_meta *m, GBytes *body, gpointer ud)
{
	g_ptr_array_add(bodies, g_bytes_ref(body));
}

static void test_backend(void)
{
	fake_server *fs = fake_start(CAPA_FULL, msgs, 4);
	mf_account a;
	g_autoptr(GError) err = NULL;

	account_init(&a, fs->port, "secret", TRUE);
	mf_backend *b = mf_pop3_backend_new(&a);
	g_assert_cmpuint(b->caps, ==, 0);
	g_autoptr(GPtrArray) folders = b->ops->list_folders(b, &err);
	g_assert_cmpuint(folders->len, ==, 1);
	mf_folder *f = folders->pdata[0];
	g_assert_cmpstr(f->raw, ==, "INBOX");
	g_assert_true(f->selectable);

	g_autoptr(mf_listing) l = b->ops->list_messages(b, f, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(l->msgs->len, ==, 4);
	const char *ids[] = { "aaa", "dup", "dup~2", "a%2Fb%25c%7Ed" };
	const char *subjects[] = { "one", "two", "three", "four" };
	for (guint i = 0; i < 4; i++) {
		mf_msg_meta *m = l->msgs->pdata[i];
		g_assert_cmpuint(m->uid, ==, i + 1);
		g_assert_cmpstr(m->id, ==, ids[i]);
		g_assert_cmpstr(m->subject, ==, subjects[i]);
		g_assert_cmpuint(m->size, ==, strlen(msgs[i].text));
		g_assert_null(m->flags);
	}
	g_assert_cmpstr(((mf_msg_meta *)l->msgs->pdata[0])->from_name, ==, "Alice");

	/* Whole bodies, un-stuffed, exactly LIST size (incl. the one without a final CRLF). A
	 * unique UIDL is found by "UIDL n" from the listing, a duplicated one by a scan. */
	for (guint i = 0; i < 4; i++) {
		g_autoptr(GBytes) body = b->ops->fetch(b, f, l->uidvalidity, l->msgs->pdata[i], 0, 0, &err);
		g_assert_no_error(err);
		gsize n;
		const char *d = g_bytes_get_data(body, &n);
		g_assert_cmpmem(d, n, msgs[i].text, strlen(msgs[i].text));
		g_autofree char *cmds = fake_last_session(fs);
		g_autofree char *want = i == 1 || i == 2
			? g_strdup_printf("UIDL|LIST|TOP %u %zu", i + 1, strlen(msgs[i].text) + 1)
			: g_strdup_printf("UIDL %u|TOP %u %zu", i + 1, i + 1, strlen(msgs[i].text) + 1);
		g_assert_cmpstr(cmds, ==, want);
	}
	g_autoptr(GBytes) part = b->ops->fetch(b, f, l->uidvalidity, l->msgs->pdata[0], 3, 4, &err);
	gsize pn;
	const char *pd = g_bytes_get_data(part, &pn);
	g_assert_cmpmem(pd, pn, msgs[0].text + 3, 4);
	bodies = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_assert_true(b->ops->fetch_many(b, f, l->uidvalidity, l->msgs, collect, NULL, &err));
	g_assert_cmpuint(bodies->len, ==, 4);
	g_clear_pointer(&bodies, g_ptr_array_unref);

	/* A refresh keeps uids, TOPs nothing known, and a vanished message is NOT_FOUND. */
	fs->n = 3;
	g_autoptr(mf_listing) l2 = b->ops->list_messages(b, f, &err);
	g_assert_cmpuint(l2->msgs->len, ==, 3);
	for (guint i = 0; i < 3; i++)
		g_assert_cmpuint(((mf_msg_meta *)l2->msgs->pdata[i])->uid, ==, i + 1);
	g_autoptr(GError) gone = NULL;
	g_assert_null(b->ops->fetch(b, f, l->uidvalidity, l->msgs->pdata[3], 0, 0, &gone));
	g_assert_error(gone, MF_ERROR, MF_ERR_NOT_FOUND);
	g_autoptr(GError) stale = NULL;
	g_assert_null(b->ops->fetch(b, f, 77, l->msgs->pdata[0], 0, 0, &stale));
	g_assert_error(stale, MF_ERROR, MF_ERR_STALE);

	b->ops->free(b);
	g_autofree char *log = fake_log(fs);
	/* Never RETR, DELE or RSET; QUIT only in sessions that sent no TOP. */
	g_assert_null(strstr(log, "RETR"));
	g_assert_null(strstr(log, "DELE"));
	g_assert_null(strstr(log, "RSET"));
	g_auto(GStrv) lines = g_strsplit(log, "|", -1);
	for (guint s = 1; s <= fs->sessions; s++) {
		g_autofree char *pfx = g_strdup_printf("%u:", s);
		gboolean top = FALSE, quit = FALSE;
		for (char **ln = lines; *ln; ln++) {
			if (!g_str_has_prefix(*ln, pfx))
				continue;
			top |= g_str_has_prefix(*ln + strlen(pfx), "TOP");
			quit |= g_str_has_prefix(*ln + strlen(pfx), "QUIT");
		}
		g_assert_false(top && quit);
	}
	/* The refresh (session 8) only TOPs nothing: it was all known, and QUITs. */
	g_assert_nonnull(strstr(log, "8:UIDL|8:LIST|8:QUIT"));
	fake_stop(fs);
}

/* Another client reordered the maildrop under us (as a deletion does): "UIDL n" now names
 * another message, so the TOP already in flight is dropped and the message found by a scan. */
static const fake_msg swapped[] = { msgs[1], msgs[0], msgs[2], msgs[3] };

static void assert_body(GBytes *body, const fake_msg *want)
{
	gsize n;
	const char *d = g_bytes_get_data(body, &n);

	g_assert_cmpmem(d, n, want->text, strlen(want->text));
}

static void test_backend_moved(gconstpointer capa)
{
	fake_server *fs = fake_start(capa, msgs, 4);
	gboolean pipelined = strstr(capa, "PIPELINING") != NULL;
	mf_account a;
	g_autoptr(GError) err = NULL;

	account_init(&a, fs->port, "secret", TRUE);
	mf_backend *b = mf_pop3_backend_new(&a);
	g_autoptr(GPtrArray) folders = b->ops->list_folders(b, &err);
	mf_folder *f = folders->pdata[0];
	g_autoptr(mf_listing) l = b->ops->list_messages(b, f, &err);
	g_assert_no_error(err);

	fs->msgs = swapped;
	g_autoptr(GBytes) body = b->ops->fetch(b, f, l->uidvalidity, l->msgs->pdata[0], 0, 0, &err);
	g_assert_no_error(err);
	assert_body(body, &msgs[0]);
	g_autofree char *cmds = fake_last_session(fs);
	/* Without PIPELINING the TOP waits for the UIDL answer, so a wrong one is never sent. */
	g_assert_cmpstr(cmds, ==, pipelined ? "UIDL 1|TOP 1 66|UIDL|LIST|TOP 2 66"
					    : "UIDL 1|UIDL|LIST|TOP 2 66");

	/* The scan renumbered the index: now the first try is right. */
	g_autoptr(GBytes) again = b->ops->fetch(b, f, l->uidvalidity, l->msgs->pdata[0], 0, 0, &err);
	assert_body(again, &msgs[0]);
	g_autofree char *cmds2 = fake_last_session(fs);
	g_assert_cmpstr(cmds2, ==, "UIDL 2|TOP 2 66");

	/* fetch_many: messages with unique UIDLs by number, UIDL n and TOP pairs (pipelined when
	 * offered); with a duplicated UIDL among them, which needs a scan, all by the scan. */
	bodies = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_autoptr(GPtrArray) unique = g_ptr_array_new();
	g_ptr_array_add(unique, l->msgs->pdata[0]);
	g_ptr_array_add(unique, l->msgs->pdata[3]);
	g_assert_true(b->ops->fetch_many(b, f, l->uidvalidity, unique, collect, NULL, &err));
	g_assert_no_error(err);
	g_assert_cmpuint(bodies->len, ==, 2);
	assert_body(bodies->pdata[0], &msgs[0]);
	assert_body(bodies->pdata[1], &msgs[3]);
	g_autofree char *cmds5 = fake_last_session(fs);
	g_assert_cmpstr(cmds5, ==, "UIDL 2|TOP 2 66|UIDL 4|TOP 4 21");
	g_ptr_array_set_size(bodies, 0);
	g_assert_true(b->ops->fetch_many(b, f, l->uidvalidity, l->msgs, collect, NULL, &err));
	g_assert_no_error(err);
	g_assert_cmpuint(bodies->len, ==, 4);
	g_clear_pointer(&bodies, g_ptr_array_unref);
	g_autofree char *cmds3 = fake_last_session(fs);
	g_assert_cmpstr(cmds3, ==, "UIDL|LIST|TOP 2 66|TOP 1 33|TOP 3 26|TOP 4 21");

	/* Gone entirely: -ERR to "UIDL 4", then the scan does not list it. */
	fs->n = 3;
	g_autoptr(GError) gone = NULL;
	g_assert_null(b->ops->fetch(b, f, l->uidvalidity, l->msgs->pdata[3], 0, 0, &gone));
	g_assert_error(gone, MF_ERROR, MF_ERR_NOT_FOUND);
	g_autofree char *cmds4 = fake_last_session(fs);
	g_assert_cmpstr(cmds4, ==, pipelined ? "UIDL 4|TOP 4 21|UIDL|LIST" : "UIDL 4|UIDL|LIST|QUIT");
	b->ops->free(b);
	g_autofree char *log = fake_log(fs);
	g_assert_null(strstr(log, "RETR"));
	fake_stop(fs);
}

/* More pairs than one pipelining window holds: every body arrives, in order, no scan. */
static void test_backend_many(void)
{
	enum { N = 70 };
	fake_msg many[N];
	g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; i < N; i++) {
		char *u = g_strdup_printf("u%03u", i), *t = g_strdup_printf("Subject: m%u\r\n\r\nbody %u\r\n", i, i);
		g_ptr_array_add(keep, u);
		g_ptr_array_add(keep, t);
		many[i] = (fake_msg){ u, t };
	}
	fake_server *fs = fake_start(CAPA_FULL, many, N);
	mf_account a;
	g_autoptr(GError) err = NULL;

	account_init(&a, fs->port, "secret", TRUE);
	mf_backend *b = mf_pop3_backend_new(&a);
	g_autoptr(GPtrArray) folders = b->ops->list_folders(b, &err);
	g_autoptr(mf_listing) l = b->ops->list_messages(b, folders->pdata[0], &err);
	g_assert_no_error(err);
	bodies = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_assert_true(b->ops->fetch_many(b, folders->pdata[0], l->uidvalidity, l->msgs, collect, NULL, &err));
	g_assert_no_error(err);
	g_assert_cmpuint(bodies->len, ==, N);
	for (guint i = 0; i < N; i++)
		assert_body(bodies->pdata[i], &many[i]);
	g_clear_pointer(&bodies, g_ptr_array_unref);
	g_autofree char *cmds = fake_last_session(fs);
	g_assert_true(g_str_has_prefix(cmds, "UIDL 1|TOP 1 "));
	g_assert_null(strstr(cmds, "UIDL|"));
	b->ops->free(b);
	fake_stop(fs);
}

static char *index_file(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		if (g_str_has_prefix(name, "pop3-") && g_str_has_suffix(name, ".idx"))
			return g_build_filename(dir, name, NULL);
	}
	return NULL;
}

static mf_listing *list_once(fake_server *fs, mf_account *a, mf_backend **keep)
{
	mf_backend *b = mf_pop3_backend_new(a);
	g_autoptr(GPtrArray) folders = b->ops->list_folders(b, NULL);
	g_autoptr(GError) err = NULL;
	mf_listing *l = b->ops->list_messages(b, folders->pdata[0], &err);

	g_assert_no_error(err);
	if (keep)
		*keep = b;
	else
		b->ops->free(b);
	return l;
}

static void test_backend_index(void)
{
	fake_server *fs = fake_start(CAPA_FULL, msgs, 4);
	g_autofree char *dir = g_dir_make_tmp("mailfs-pop3-XXXXXX", NULL);
	mf_account a;

	account_init(&a, fs->port, "secret", TRUE);
	a.state_dir = dir;
	g_autoptr(mf_listing) l1 = list_once(fs, &a, NULL);
	g_autofree char *path = index_file(dir);
	g_assert_nonnull(path);
	GStatBuf st;
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);

	/* A remount: UIDL and LIST, no TOP, the same uids and names. */
	g_autoptr(mf_listing) l2 = list_once(fs, &a, NULL);
	g_autofree char *cmds = fake_last_session(fs);
	g_assert_cmpstr(cmds, ==, "UIDL|LIST|QUIT");
	g_assert_cmpuint(l2->msgs->len, ==, 4);
	for (guint i = 0; i < 4; i++) {
		mf_msg_meta *x = l1->msgs->pdata[i], *y = l2->msgs->pdata[i];
		g_assert_cmpuint(x->uid, ==, y->uid);
		g_assert_cmpstr(x->id, ==, y->id);
		g_assert_cmpstr(x->subject, ==, y->subject);
		g_assert_cmpstr(x->from_name, ==, y->from_name);
		g_assert_cmpuint(x->size, ==, y->size);
	}

	/* A read straight after mounting needs no listing: the number comes from the file. */
	{
		mf_backend *b = mf_pop3_backend_new(&a);
		g_autoptr(GPtrArray) folders = b->ops->list_folders(b, NULL);
		g_autoptr(GError) err = NULL;
		g_autoptr(GBytes) body = b->ops->fetch(b, folders->pdata[0], l1->uidvalidity,
						       l1->msgs->pdata[3], 0, 0, &err);
		g_assert_no_error(err);
		assert_body(body, &msgs[3]);
		g_autofree char *c = fake_last_session(fs);
		g_assert_cmpstr(c, ==, "UIDL 4|TOP 4 21");
		b->ops->free(b);
	}

	/* Mail deleted and mail arrived between mounts: known uids stay, the new message gets a
	 * new uid (never the deleted one's), and only it is TOPped. */
	static const fake_msg later[] = { msgs[1], msgs[2], msgs[3], { "zzz", "Subject: new\r\n\r\nhi\r\n" } };
	fs->msgs = later;
	g_autoptr(mf_listing) l3 = list_once(fs, &a, NULL);
	g_autofree char *cmds3 = fake_last_session(fs);
	g_assert_cmpstr(cmds3, ==, "UIDL|LIST|TOP 4 0");
	g_assert_cmpuint(l3->msgs->len, ==, 4);
	const guint32 uids[] = { 2, 3, 4, 5 };
	const char *subjects[] = { "two", "three", "four", "new" };
	for (guint i = 0; i < 4; i++) {
		mf_msg_meta *m = l3->msgs->pdata[i];
		g_assert_cmpuint(m->uid, ==, uids[i]);
		g_assert_cmpstr(m->subject, ==, subjects[i]);
	}

	/* A damaged file is ignored (every header read again) and replaced. */
	g_autofree char *data = NULL;
	gsize len;
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	data[len / 2] ^= 0x20;
	g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
	g_autoptr(mf_listing) l4 = list_once(fs, &a, NULL);
	g_autofree char *cmds4 = fake_last_session(fs);
	g_assert_cmpstr(cmds4, ==, "UIDL|LIST|TOP 1 0|TOP 2 0|TOP 3 0|TOP 4 0");
	g_assert_cmpstr(((mf_msg_meta *)l4->msgs->pdata[3])->subject, ==, "new");
	g_autofree char *fixed = NULL;
	g_assert_true(g_file_get_contents(path, &fixed, &len, NULL));
	g_autoptr(pop3_index) x = pop3_index_parse((const guint8 *)fixed, len, NULL, NULL, NULL);
	g_assert_nonnull(x);
	g_assert_cmpuint(g_hash_table_size(x->by_id), ==, 4);

	/* Nothing changed: the file is not rewritten. */
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	ino_t ino = st.st_ino;
	g_autoptr(mf_listing) l5 = list_once(fs, &a, NULL);
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	g_assert_cmpuint(st.st_ino, ==, ino);

	g_autofree char *log = fake_log(fs);
	g_assert_null(strstr(log, "RETR"));
	g_assert_null(strstr(log, "DELE"));
	g_unlink(path);
	g_rmdir(dir);
	fake_stop(fs);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pop3_conn/allow-list", test_allow_list);
	g_test_add_func("/pop3_conn/apop-digest", test_apop_digest);
	g_test_add_func("/pop3_conn/plaintext-refused", test_plaintext_refused);
	g_test_add_func("/pop3_conn/stls-injection", test_stls_injection);
	g_test_add_func("/pop3_conn/session", test_session);
	g_test_add_func("/pop3_conn/apop-login", test_apop_login);
	g_test_add_func("/pop3_conn/backend", test_backend);
	g_test_add_data_func("/pop3_conn/backend-moved", CAPA_FULL, test_backend_moved);
	g_test_add_data_func("/pop3_conn/backend-moved-unpipelined", "TOP\r\nUIDL\r\nUSER\r\n",
			     test_backend_moved);
	g_test_add_func("/pop3_conn/backend-many", test_backend_many);
	g_test_add_func("/pop3_conn/backend-index", test_backend_index);
	return g_test_run();
}
