/* Logging: stderr in the foreground, syslog in the background. The protocol trace (-d) goes
 * through mf_log_protocol(), which redacts every registered secret, so no password reaches a
 * log even if a command carrying it is traced by mistake. */
#pragma once
#include <glib.h>

void mf_log_init(gboolean foreground, gboolean debug);
/* Switch to syslog after daemonizing. */
void mf_log_use_syslog(void);
gboolean mf_log_debug_enabled(void);

/* Register a string that must never appear in any log output. Copied. */
void mf_log_add_secret(const char *secret);

void mf_log_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void mf_log_warn(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void mf_log_info(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void mf_log_debug(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* Debug trace of one protocol line. `conn` labels the connection ("imap#2"), `sent` is the
 * direction. Long lines and literal payloads are shortened. No-op unless debug is on.
 * Callers must still pass `redact=TRUE` for lines that carry credentials (LOGIN, PASS, AUTH). */
void mf_log_protocol(const char *conn, gboolean sent, const char *data, gsize len, gboolean redact);
