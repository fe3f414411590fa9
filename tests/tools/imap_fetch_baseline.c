/* The yardstick for "ls -l" of a big folder: the least work any IMAP client must do to learn
 * every message's name, size and date. TLS connect, LOGIN, EXAMINE, ONE
 * UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE), read up to the tagged OK,
 * LOGOUT. It uses OpenSSL directly and none of mailfs, so a bug in mailfs cannot make the
 * baseline slower.
 *
 * Usage: imap_fetch_baseline [-c CAFILE] [-m MAILBOX] HOST PORT USER
 * The password comes from $MAILFS_PASSWORD, like mailfs. Prints one line of key=value pairs
 * (seconds and TLS payload bytes) on stdout; exit status 0 only if every command said OK. */
#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	SSL *ssl;
	char buf[64 * 1024];
	size_t pos, len;
	guint64 bytes_in, bytes_out;
	guint tag;
} baseline_conn;

static double baseline_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static G_NORETURN void baseline_die(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static G_NORETURN void baseline_die(const char *fmt, ...)
{
	va_list ap;
	unsigned long e;

	fputs("imap_fetch_baseline: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	while ((e = ERR_get_error()) != 0)
		fprintf(stderr, "  openssl: %s\n", ERR_error_string(e, NULL));
	exit(1);
}

static int baseline_tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -1, rc;

	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		baseline_die("cannot resolve %s: %s", host, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		baseline_die("cannot connect to %s:%s: %s", host, port, g_strerror(errno));
	return fd;
}

static SSL *baseline_tls_connect(int fd, const char *host, const char *cafile)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	int ok;

	if (!ctx)
		baseline_die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	ok = cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL)
		    : SSL_CTX_set_default_verify_paths(ctx);
	if (!ok)
		baseline_die("cannot load CA certificates%s%s", cafile ? " from " : "",
			     cafile ? cafile : "");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL keeps its own reference */
	/* An IP literal must match an iPAddress SAN; a name is checked and sent as SNI. */
	if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)) {
		SSL_set1_host(ssl, host);
		SSL_set_tlsext_host_name(ssl, host);
	}
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		baseline_die("TLS handshake with %s failed (%s)", host,
			     X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
	return ssl;
}

static size_t baseline_fill(baseline_conn *c)
{
	int n = SSL_read(c->ssl, c->buf, sizeof(c->buf));

	if (n <= 0)
		baseline_die("connection closed by the server");
	c->pos = 0;
	c->len = (size_t)n;
	c->bytes_in += (guint64)n;
	return c->len;
}

/* Appends one line, CRLF included, to `out`; FALSE if it ends in a {n} literal announcement. */
static gboolean baseline_read_line(baseline_conn *c, GString *out, guint64 *literal)
{
	for (;;) {
		char *nl;

		if (c->pos == c->len)
			baseline_fill(c);
		nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
		if (!nl) {
			g_string_append_len(out, c->buf + c->pos, (gssize)(c->len - c->pos));
			c->pos = c->len;
			continue;
		}
		g_string_append_len(out, c->buf + c->pos, nl + 1 - (c->buf + c->pos));
		c->pos = (size_t)(nl + 1 - c->buf);
		break;
	}
	if (out->len >= 4 && out->str[out->len - 3] == '}') {
		const char *open = memrchr(out->str, '{', out->len - 3);

		if (open) {
			*literal = g_ascii_strtoull(open + 1, NULL, 10);
			return FALSE;
		}
	}
	return TRUE;
}

static void baseline_read_literal(baseline_conn *c, GString *out, guint64 n)
{
	while (n > 0) {
		size_t take;

		if (c->pos == c->len)
			baseline_fill(c);
		take = MIN(n, c->len - c->pos);
		g_string_append_len(out, c->buf + c->pos, (gssize)take);
		c->pos += take;
		n -= take;
	}
}

static void baseline_send(baseline_conn *c, const char *line)
{
	size_t len = strlen(line);

	if (SSL_write(c->ssl, line, (int)len) != (int)len)
		baseline_die("write failed");
	c->bytes_out += len;
}

/* Sends one tagged command and reads every response up to its tagged completion.
 * Returns the number of untagged FETCH responses seen. `shown` replaces the command text in
 * error messages so that the password never reaches stderr. */
static guint baseline_command(baseline_conn *c, const char *cmd, const char *shown)
{
	g_autofree char *tag = g_strdup_printf("b%u", ++c->tag);
	g_autofree char *line = g_strdup_printf("%s %s\r\n", tag, cmd);
	g_autoptr(GString) resp = g_string_sized_new(4096);
	size_t taglen = strlen(tag);
	guint fetches = 0;

	baseline_send(c, line);
	for (;;) {
		guint64 literal = 0;

		g_string_truncate(resp, 0);
		while (!baseline_read_line(c, resp, &literal))
			baseline_read_literal(c, resp, literal);
		if (resp->len > taglen && strncmp(resp->str, tag, taglen) == 0 &&
		    resp->str[taglen] == ' ') {
			if (strncmp(resp->str + taglen + 1, "OK", 2) != 0)
				baseline_die("%s failed: %.200s", shown, resp->str + taglen + 1);
			return fetches;
		}
		if (resp->str[0] == '*' && strstr(resp->str, " FETCH ("))
			fetches++;
		else if (strncmp(resp->str, "* BYE", 5) == 0 &&
			 strncmp(shown, "LOGOUT", 6) != 0)
			baseline_die("server said %.200s", resp->str);
	}
}

static char *baseline_quote(const char *s)
{
	GString *q = g_string_new("\"");

	for (; *s; s++) {
		if (*s == '\r' || *s == '\n')
			baseline_die("user name or password contains a line break");
		if (*s == '"' || *s == '\\')
			g_string_append_c(q, '\\');
		g_string_append_c(q, *s);
	}
	g_string_append_c(q, '"');
	return g_string_free(q, FALSE);
}

int main(int argc, char **argv)
{
	const char *cafile = NULL, *mailbox = "INBOX", *password;
	g_autofree char *login = NULL, *examine = NULL, *quser = NULL, *qpass = NULL;
	g_autofree char *qbox = NULL;
	baseline_conn c = { 0 };
	g_autoptr(GString) greeting = g_string_new(NULL);
	double t0, t_conn, t_login, t_list0, t_list1, t_end;
	guint64 literal = 0;
	guint fetched;
	int opt, fd;

	while ((opt = getopt(argc, argv, "c:m:h")) != -1) {
		switch (opt) {
		case 'c':
			cafile = optarg;
			break;
		case 'm':
			mailbox = optarg;
			break;
		default:
			fprintf(stderr, "Usage: %s [-c CAFILE] [-m MAILBOX] HOST PORT USER\n"
					"The password is read from $MAILFS_PASSWORD.\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (argc - optind != 3)
		baseline_die("expected HOST PORT USER (see -h)");
	password = getenv("MAILFS_PASSWORD");
	if (!password)
		baseline_die("set MAILFS_PASSWORD");

	t0 = baseline_now();
	fd = baseline_tcp_connect(argv[optind], argv[optind + 1]);
	c.ssl = baseline_tls_connect(fd, argv[optind], cafile);
	while (!baseline_read_line(&c, greeting, &literal))
		baseline_read_literal(&c, greeting, literal);
	if (strncmp(greeting->str, "* OK", 4) != 0)
		baseline_die("unexpected greeting: %.200s", greeting->str);
	t_conn = baseline_now();

	quser = baseline_quote(argv[optind + 2]);
	qpass = baseline_quote(password);
	login = g_strdup_printf("LOGIN %s %s", quser, qpass);
	baseline_command(&c, login, "LOGIN");
	t_login = baseline_now();

	t_list0 = baseline_now();
	qbox = baseline_quote(mailbox);
	examine = g_strdup_printf("EXAMINE %s", qbox);
	baseline_command(&c, examine, "EXAMINE");
	fetched = baseline_command(&c, "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
				   "UID FETCH");
	t_list1 = baseline_now();

	baseline_command(&c, "LOGOUT", "LOGOUT");
	SSL_shutdown(c.ssl);
	SSL_free(c.ssl);
	close(fd);
	t_end = baseline_now();

	printf("messages=%u bytes_in=%" G_GUINT64_FORMAT " bytes_out=%" G_GUINT64_FORMAT
	       " connect_s=%.6f login_s=%.6f listing_s=%.6f total_s=%.6f\n",
	       fetched, c.bytes_in, c.bytes_out, t_conn - t0, t_login - t_conn,
	       t_list1 - t_list0, t_end - t0);
	return 0;
}
