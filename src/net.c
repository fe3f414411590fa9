/* The byte stream under IMAP and POP3: TCP, an optional OpenSSL layer, a read buffer and a
 * progress timeout on every wait. The socket is non-blocking throughout so that poll() can
 * bound each wait; blocking semantics are rebuilt on top for the callers. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mferror.h"
#include "net.h"

#define READ_CHUNK (64 * 1024)
/* Literal payloads are read straight into the caller's array in steps of this size, so a
 * server announcing a huge literal cannot make us allocate it before sending it. */
#define DIRECT_STEP (1024 * 1024)
/* The TLS read buffer: room for several full TLS records per read(2). */
#define NET_TLS_READ_BUFFER (64 * 1024)

struct mf_stream {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char *host;      /* without IPv6 brackets */
	char *hostport;  /* "host:port", for messages */
	guint16 port;
	char *cafile;
	int timeout_sec;
	mf_stats *stats;
	char *label;
	guint8 *rbuf;
	gsize rpos, rlen;
};

/* OpenSSL writes through write(2), so a peer that already closed would raise SIGPIPE and
 * kill the daemon; nobody in this process wants that signal's default action. */
static void net_ignore_sigpipe_once(void)
{
	static gsize done;

	if (g_once_init_enter(&done)) {
		struct sigaction old;

		if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
			signal(SIGPIPE, SIG_IGN);
		g_once_init_leave(&done, 1);
	}
}

static void net_set_timeout_error(mf_stream *s, GError **err)
{
	g_set_error(err, MF_ERROR, MF_ERR_TIMEOUT, "no answer from %s within %d s", s->hostport,
		    s->timeout_sec);
}

/* Wait until fd is ready for `events`, at most the progress timeout. */
static gboolean net_wait(mf_stream *s, short events, GError **err)
{
	struct pollfd p = { .fd = s->fd, .events = events };
	int ms = s->timeout_sec > 0 ? s->timeout_sec * 1000 : -1;

	for (;;) {
		int r = poll(&p, 1, ms);

		if (r > 0)
			return TRUE;
		if (r == 0) {
			net_set_timeout_error(s, err);
			return FALSE;
		}
		if (errno != EINTR) {
			g_set_error(err, MF_ERROR, MF_ERR_NET, "waiting for %s failed: %s", s->hostport,
				    g_strerror(errno));
			return FALSE;
		}
	}
}

static char *net_strip_brackets(const char *host)
{
	gsize n = strlen(host);

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
		return g_strndup(host + 1, n - 2);
	return g_strdup(host);
}

static gboolean net_is_ip_literal(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

/* One non-blocking connect attempt bounded by the timeout; returns the fd or -1 with errno. */
static int net_try_connect(const struct addrinfo *ai, int timeout_sec, int *timed_out)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);

	*timed_out = 0;
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno == EINPROGRESS) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int ms = timeout_sec > 0 ? timeout_sec * 1000 : -1;
		int r, soerr = 0;
		socklen_t sl = sizeof soerr;

		do
			r = poll(&p, 1, ms);
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			*timed_out = 1;
			close(fd);
			errno = ETIMEDOUT;
			return -1;
		}
		if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
			return fd;
		if (r > 0)
			errno = soerr ? soerr : EIO;
	}
	int saved = errno;

	close(fd);
	errno = saved;
	return -1;
}

mf_stream *mf_stream_connect(const mf_stream_opts *o, GError **err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	g_autofree char *host = net_strip_brackets(o->host);
	char port[8];
	int fd = -1, last_errno = 0, any_timeout = 0;

	net_ignore_sigpipe_once();
	g_snprintf(port, sizeof port, "%u", o->port);
	int rc = getaddrinfo(host, port, &hints, &res);

	if (rc != 0) {
		g_set_error(err, MF_ERROR, MF_ERR_NET, "cannot resolve %s: %s", host, gai_strerror(rc));
		return NULL;
	}
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		int timed_out;

		fd = net_try_connect(ai, o->timeout_sec, &timed_out);
		if (fd < 0) {
			last_errno = errno;
			any_timeout |= timed_out;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (any_timeout && last_errno == ETIMEDOUT)
			g_set_error(err, MF_ERROR, MF_ERR_TIMEOUT, "no answer from %s:%s within %d s",
				    host, port, o->timeout_sec);
		else
			g_set_error(err, MF_ERROR, MF_ERR_NET, "cannot connect to %s:%s: %s", host, port,
				    g_strerror(last_errno ? last_errno : EHOSTUNREACH));
		return NULL;
	}
	int one = 1;

	/* Commands are small and each one is waited for: Nagle would only add latency. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);

	mf_stream *s = g_new0(mf_stream, 1);

	s->fd = fd;
	s->host = g_steal_pointer(&host);
	s->port = o->port;
	s->hostport = g_strdup_printf("%s:%u", s->host, o->port);
	s->cafile = g_strdup(o->cafile);
	s->timeout_sec = o->timeout_sec;
	s->stats = o->stats;
	s->label = g_strdup(o->label ? o->label : "net");
	s->rbuf = g_malloc(READ_CHUNK);
	if (s->stats)
		mf_stats_connection(s->stats);
	return s;
}

static const char *net_ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown error";
}

/* TLS reads go through a buffer of their own: one read(2) takes whatever has arrived, several
 * records at a time, and OpenSSL then takes each record (header, then body) from it. OpenSSL's
 * own read-ahead would do the first, but it moves what is left of its buffer to the front at
 * every record: with the 2-4 KiB records Dovecot sends, that copied a listing's bytes about
 * ten times over (16% of a listing's instructions, by callgrind). The buffer is drained before
 * the socket is read again, so SSL_ERROR_WANT_READ still means the socket has nothing: waiting
 * in poll() stays correct. Writes go to the socket unbuffered. */
static gboolean net_tls_attach(SSL *ssl, int fd)
{
	BIO *sock = BIO_new_socket(fd, BIO_NOCLOSE);
	BIO *rbuf = sock ? BIO_new(BIO_f_buffer()) : NULL;

	if (!rbuf || BIO_set_read_buffer_size(rbuf, NET_TLS_READ_BUFFER) != 1 || !BIO_up_ref(sock)) {
		BIO_free(rbuf);
		BIO_free(sock);
		return FALSE;
	}
	/* The chain holds one reference to the socket BIO, the write side the other. */
	SSL_set_bio(ssl, BIO_push(rbuf, sock), sock);
	return TRUE;
}

static SSL_CTX *net_tls_ctx_new(const char *cafile, GError **err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		g_set_error(err, MF_ERROR, MF_ERR_TLS, "cannot create a TLS context: %s", net_ssl_reason());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* CRIME: compression belongs to the protocol (IMAP COMPRESS), never to TLS. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_default_verify_paths(ctx);
	if (cafile) {
		if (!g_file_test(cafile, G_FILE_TEST_IS_REGULAR)) {
			g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "cannot read CA file %s: %s", cafile,
				    g_file_test(cafile, G_FILE_TEST_EXISTS) ? "not a regular file"
									  : "no such file");
			SSL_CTX_free(ctx);
			return NULL;
		}
		ERR_clear_error();
		if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
			g_set_error(err, MF_ERROR, MF_ERR_CONFIG,
				    "cannot load CA file %s: %s (expected PEM certificates)", cafile,
				    net_ssl_reason());
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

/* Loading the system trust store parses every certificate in it: ~20 ms of CPU, more than
 * the rest of a connection's set-up. So the context is made once per CA file and shared by
 * every connection (SSL_new on a shared, unmodified context is thread-safe); the trust store
 * is therefore read when the first connection is made, not again. */
static GMutex net_ctx_lock;
static SSL_CTX *net_ctx_cached;
static char *net_ctx_cafile;

static SSL_CTX *net_tls_ctx_get(const char *cafile, GError **err)
{
	SSL_CTX *ctx = NULL;

	g_mutex_lock(&net_ctx_lock);
	if (net_ctx_cached && g_strcmp0(net_ctx_cafile, cafile) == 0) {
		ctx = net_ctx_cached;
		SSL_CTX_up_ref(ctx);
	}
	g_mutex_unlock(&net_ctx_lock);
	if (ctx)
		return ctx;
	ctx = net_tls_ctx_new(cafile, err);
	if (!ctx)
		return NULL;
	g_mutex_lock(&net_ctx_lock);
	if (net_ctx_cached)
		SSL_CTX_free(net_ctx_cached);
	SSL_CTX_up_ref(ctx);
	net_ctx_cached = ctx;
	g_free(net_ctx_cafile);
	net_ctx_cafile = g_strdup(cafile);
	g_mutex_unlock(&net_ctx_lock);
	return ctx;
}

static void net_set_handshake_error(mf_stream *s, int ssl_err, GError **err)
{
	long vr = SSL_get_verify_result(s->ssl);

	if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
		g_set_error(err, MF_ERROR, MF_ERR_TLS,
			    "TLS certificate presented by %s is not valid for that name: %s "
			    "(connect by a name the certificate lists)",
			    s->host, X509_verify_cert_error_string(vr));
	else if (vr != X509_V_OK)
		g_set_error(err, MF_ERROR, MF_ERR_TLS,
			    "TLS certificate of %s not trusted: %s (use -o cafile=FILE to trust a private CA)",
			    s->host, X509_verify_cert_error_string(vr));
	else if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN ||
		 ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		g_set_error(err, MF_ERROR, MF_ERR_TLS,
			    "TLS handshake with %s failed: connection closed by the server", s->hostport);
	else if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_WRONG_VERSION_NUMBER)
		g_set_error(err, MF_ERROR, MF_ERR_TLS,
			    "TLS handshake with %s failed: %s (is this a plain-text port? use imap:// for STARTTLS)",
			    s->hostport, net_ssl_reason());
	else
		g_set_error(err, MF_ERROR, MF_ERR_TLS, "TLS handshake with %s failed: %s", s->hostport,
			    net_ssl_reason());
}

gboolean mf_stream_start_tls(mf_stream *s, GError **err)
{
	if (s->ssl) {
		g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL, "TLS is already active on %s", s->hostport);
		return FALSE;
	}
	/* Anything read before the handshake came unprotected and would otherwise be taken as
	 * the first TLS-protected response (CVE-2020-14954). */
	if (mf_stream_buffered(s) != 0) {
		g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL,
			    "%s sent data before the TLS handshake; refusing it (response injection?)",
			    s->hostport);
		return FALSE;
	}
	s->ctx = net_tls_ctx_get(s->cafile, err);
	if (!s->ctx)
		return FALSE;
	s->ssl = SSL_new(s->ctx);
	if (!s->ssl || !net_tls_attach(s->ssl, s->fd)) {
		g_set_error(err, MF_ERROR, MF_ERR_TLS, "cannot set up TLS: %s", net_ssl_reason());
		return FALSE;
	}
	if (net_is_ip_literal(s->host)) {
		/* No SNI for addresses (RFC 6066 §3); check the IP SAN instead of a DNS name. */
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), s->host);
	} else {
		SSL_set_tlsext_host_name(s->ssl, s->host);
		SSL_set1_host(s->ssl, s->host);
	}
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(s->ssl);

		if (r == 1)
			return TRUE;
		int e = SSL_get_error(s->ssl, r);

		if (e == SSL_ERROR_WANT_READ) {
			if (!net_wait(s, POLLIN, err))
				return FALSE;
		} else if (e == SSL_ERROR_WANT_WRITE) {
			if (!net_wait(s, POLLOUT, err))
				return FALSE;
		} else {
			net_set_handshake_error(s, e, err);
			return FALSE;
		}
	}
}

gboolean mf_stream_is_tls(const mf_stream *s)
{
	return s->ssl != NULL;
}

void mf_stream_free(mf_stream *s)
{
	if (!s)
		return;
	if (s->ssl) {
		/* Best effort close_notify (RFC 8314 §3.4); the peer's answer is not awaited. */
		ERR_clear_error();
		SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	if (s->ctx)
		SSL_CTX_free(s->ctx);
	ERR_clear_error();
	if (s->fd >= 0)
		close(s->fd);
	g_free(s->host);
	g_free(s->hostport);
	g_free(s->cafile);
	g_free(s->label);
	g_free(s->rbuf);
	g_free(s);
}

static void net_set_closed_error(mf_stream *s, GError **err)
{
	g_set_error(err, MF_ERROR, MF_ERR_NET, "connection to %s closed by the server", s->hostport);
}

/* Read some bytes (at least one) into buf. */
static gboolean net_recv(mf_stream *s, void *buf, gsize n, gsize *got, GError **err)
{
	for (;;) {
		if (s->ssl) {
			ERR_clear_error();
			errno = 0;
			if (SSL_read_ex(s->ssl, buf, n, got) == 1)
				break;
			int e = SSL_get_error(s->ssl, 0);

			if (e == SSL_ERROR_WANT_READ) {
				if (!net_wait(s, POLLIN, err))
					return FALSE;
				continue;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				if (!net_wait(s, POLLOUT, err))
					return FALSE;
				continue;
			}
			if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0) ||
			    ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
				net_set_closed_error(s, err);
				return FALSE;
			}
			if (e == SSL_ERROR_SYSCALL)
				g_set_error(err, MF_ERROR, MF_ERR_NET, "reading from %s failed: %s",
					    s->hostport, g_strerror(errno));
			else
				g_set_error(err, MF_ERROR, MF_ERR_TLS, "TLS error reading from %s: %s",
					    s->hostport, net_ssl_reason());
			return FALSE;
		}
		ssize_t r = recv(s->fd, buf, n, 0);

		if (r > 0) {
			*got = (gsize)r;
			break;
		}
		if (r == 0) {
			net_set_closed_error(s, err);
			return FALSE;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (!net_wait(s, POLLIN, err))
				return FALSE;
		} else if (errno != EINTR) {
			g_set_error(err, MF_ERROR, MF_ERR_NET, "reading from %s failed: %s", s->hostport,
				    g_strerror(errno));
			return FALSE;
		}
	}
	if (s->stats)
		mf_stats_add_bytes_in(s->stats, *got);
	return TRUE;
}

static gboolean net_fill(mf_stream *s, GError **err)
{
	gsize got;

	g_assert(s->rpos == s->rlen);
	s->rpos = s->rlen = 0;
	if (!net_recv(s, s->rbuf, READ_CHUNK, &got, err))
		return FALSE;
	s->rlen = got;
	return TRUE;
}

gboolean mf_stream_write(mf_stream *s, const void *buf, gsize len, GError **err)
{
	const guint8 *p = buf;

	while (len > 0) {
		gsize done = 0;

		if (s->ssl) {
			ERR_clear_error();
			errno = 0;
			if (SSL_write_ex(s->ssl, p, len, &done) != 1) {
				int e = SSL_get_error(s->ssl, 0);

				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
					if (!net_wait(s, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, err))
						return FALSE;
					continue;
				}
				if (e == SSL_ERROR_SYSCALL && errno != 0)
					g_set_error(err, MF_ERROR, MF_ERR_NET, "writing to %s failed: %s",
						    s->hostport, g_strerror(errno));
				else
					g_set_error(err, MF_ERROR, MF_ERR_TLS, "TLS error writing to %s: %s",
						    s->hostport, net_ssl_reason());
				return FALSE;
			}
		} else {
			ssize_t r = send(s->fd, p, len, MSG_NOSIGNAL);

			if (r < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					if (!net_wait(s, POLLOUT, err))
						return FALSE;
					continue;
				}
				if (errno == EINTR)
					continue;
				g_set_error(err, MF_ERROR, MF_ERR_NET, "writing to %s failed: %s", s->hostport,
					    g_strerror(errno));
				return FALSE;
			}
			done = (gsize)r;
		}
		if (s->stats)
			mf_stats_add_bytes_out(s->stats, done);
		p += done;
		len -= done;
	}
	return TRUE;
}

gboolean mf_stream_read_line_into(mf_stream *s, GByteArray *out, gsize max, gsize *len,
				  GError **err)
{
	gsize n = 0;

	for (;;) {
		if (s->rpos == s->rlen && !net_fill(s, err))
			return FALSE;
		const guint8 *start = s->rbuf + s->rpos;
		gsize avail = s->rlen - s->rpos;
		const guint8 *nl = memchr(start, '\n', avail);
		gsize take = nl ? (gsize)(nl - start) + 1 : avail;

		if (n + take > max) {
			g_set_error(err, MF_ERROR, MF_ERR_PROTOCOL,
				    "%s sent a line longer than %" G_GSIZE_FORMAT " bytes", s->hostport, max);
			return FALSE;
		}
		g_byte_array_append(out, start, (guint)take);
		n += take;
		s->rpos += take;
		if (nl)
			break;
	}
	if (len)
		*len = n;
	return TRUE;
}

char *mf_stream_read_line(mf_stream *s, gsize *len, gsize max, GError **err)
{
	g_autoptr(GByteArray) line = g_byte_array_new();

	if (!mf_stream_read_line_into(s, line, max, len, err))
		return NULL;
	g_byte_array_append(line, (const guint8 *)"", 1);
	return (char *)g_byte_array_free(g_steal_pointer(&line), FALSE);
}

gboolean mf_stream_read_exact(mf_stream *s, GByteArray *out, gsize n, GError **err)
{
	gsize from_buf = MIN(n, s->rlen - s->rpos);

	g_byte_array_append(out, s->rbuf + s->rpos, (guint)from_buf);
	s->rpos += from_buf;
	n -= from_buf;
	while (n > 0) {
		if (n < READ_CHUNK) {
			/* Small remainder: go through the buffer so the following line is read
			 * in the same system call. */
			if (!net_fill(s, err))
				return FALSE;
			gsize take = MIN(n, s->rlen);

			g_byte_array_append(out, s->rbuf, (guint)take);
			s->rpos = take;
			n -= take;
			continue;
		}
		gsize step = MIN(n, (gsize)DIRECT_STEP), old = out->len, got;

		g_byte_array_set_size(out, (guint)(old + step));
		if (!net_recv(s, out->data + old, step, &got, err)) {
			g_byte_array_set_size(out, (guint)old);
			return FALSE;
		}
		g_byte_array_set_size(out, (guint)(old + got));
		n -= got;
	}
	return TRUE;
}

gsize mf_stream_buffered(const mf_stream *s)
{
	return s->rlen - s->rpos;
}
