/* A byte stream to a server: TCP with an optional TLS layer (implicit or upgraded by
 * STARTTLS/STLS), buffered reads, and a progress timeout on every wait. Knows nothing of
 * IMAP or POP3. Not thread-safe: one user at a time (the connection pools guarantee it). */
#pragma once
#include <glib.h>
#include "stats.h"

typedef struct mf_stream mf_stream;

typedef struct {
	const char *host;     /* name or address; also the TLS host name checked */
	guint16 port;
	const char *cafile;   /* extra trusted CA file, or NULL; the system store is always used */
	int timeout_sec;      /* progress timeout for connect, handshake and every read/write */
	mf_stats *stats;      /* byte counters, may be NULL */
	const char *label;    /* "imap#1", for the debug trace */
} mf_stream_opts;

/* TCP connect (all addresses of host tried in turn). No TLS yet. */
mf_stream *mf_stream_connect(const mf_stream_opts *o, GError **err);
/* Start TLS (TLS >= 1.2, chain + host-name verified, SNI). For STARTTLS the caller first reads
 * the server's go-ahead; this fails with MF_ERR_PROTOCOL if unread plaintext is still buffered
 * (response injection, CVE-2020-14954). */
gboolean mf_stream_start_tls(mf_stream *s, GError **err);
gboolean mf_stream_is_tls(const mf_stream *s);
void mf_stream_free(mf_stream *s);

gboolean mf_stream_write(mf_stream *s, const void *buf, gsize len, GError **err);

/* One line ending in LF (CRLF normally), returned with the line end, NUL-terminated, length in
 * *len. Fails with MF_ERR_PROTOCOL if longer than max bytes. */
char *mf_stream_read_line(mf_stream *s, gsize *len, gsize max, GError **err);
/* The same line appended to `out` (no NUL added), for a caller assembling a larger unit. On
 * failure `out` may hold part of the line. */
gboolean mf_stream_read_line_into(mf_stream *s, GByteArray *out, gsize max, gsize *len,
				  GError **err);
/* Exactly n bytes appended to `out`. */
gboolean mf_stream_read_exact(mf_stream *s, GByteArray *out, gsize n, GError **err);
/* Bytes already read from the socket and not yet consumed. */
gsize mf_stream_buffered(const mf_stream *s);
