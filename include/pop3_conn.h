/* One short POP3 session over include/net.h: greeting, CAPA, STLS, authentication, then
 * read-only commands (UIDL, LIST, TOP), pipelined when the server offers PIPELINING.
 * Only an allow-list of commands can ever be sent: never DELE, never RSET, never RETR, nothing
 * that changes the maildrop or its flags. A session holds the maildrop lock, so callers keep it short. Not thread-safe. */
#pragma once
#include <glib.h>
#include "backend.h"
#include "pop3_parse.h"

typedef struct pop3_conn pop3_conn;

/* Connect and authenticate; on return the session is in the TRANSACTION state. `label` names
 * the connection in the debug trace ("pop3#3"). */
pop3_conn *pop3_conn_open(const mf_account *a, const char *label, GError **err);
/* What CAPA said after TLS was established; NULL if the server does not know CAPA. */
const pop3_capa *pop3_conn_capa(const pop3_conn *c);

/* UIDL and LIST in one exchange, merged by message number: pop3_entry* with uid and size, in
 * message-number order. MF_ERR_SERVER if the server cannot do UIDL. */
GPtrArray *pop3_conn_scan(pop3_conn *c, GError **err);

/* Called for each message, in order, as its reply arrives. `payload` is the un-stuffed reply,
 * or NULL with `error` set when the server answered -ERR for that message (the batch goes on). */
typedef void (*pop3_reply_cb)(guint32 msg, GBytes *payload, const GError *error, gpointer user_data);
/* "TOP msg lines" for each of msgs; lines NULL means 0 (the header block only). A line count
 * above the body's gives the whole message, which is how bodies are read: unlike RETR, TOP
 * leaves no trace (Dovecot sets \Seen on RETR even when the session ends without QUIT).
 * max_bytes bounds one reply. RETR is not on the allow-list at all. */
gboolean pop3_conn_top(pop3_conn *c, const guint32 *msgs, const guint64 *lines, guint n,
		       gsize max_bytes, pop3_reply_cb cb, gpointer user_data, GError **err);

/* Read messages by the numbers a previous session gave them: for each i, "UIDL msgs[i]" and
 * "TOP msgs[i] lines[i]". With PIPELINING the pairs go out together (windowed), otherwise the
 * TOP is sent only after the UIDL answer. cb gets a TOP payload only if the UIDL answer named
 * exactly uidls[i] (RFC 1939 section 7 "UIDL msg"); if it named another message or none,
 * cb gets payload NULL and an MF_ERR_STALE error (the caller scans and retries), and the TOP
 * bytes already on their way are read and dropped. A -ERR to the TOP itself is MF_ERR_SERVER. */
gboolean pop3_conn_top_checked(pop3_conn *c, const guint32 *msgs, const char *const *uidls,
			       const guint64 *lines, guint n, gsize max_bytes, pop3_reply_cb cb,
			       gpointer user_data, GError **err);

/* End the session. QUIT is sent only if no message content (TOP) was requested and the
 * session is healthy; otherwise the connection is just closed, so the server never enters the
 * UPDATE state in which it may mark retrieved mail as read or popped, or delete it (EXPIRE 0).
 * See doc/design.md "POP3: reading without a trace". NULL is fine. */
void pop3_conn_close(pop3_conn *c);

/* Is this command line on the read-only allow-list (exposed for tests)? */
gboolean pop3_command_allowed(const char *line);
/* The APOP digest: lower-case hex MD5 of timestamp + password (RFC 1939 section 7). */
char *pop3_apop_digest(const char *timestamp, const char *password);
