/* Logging sink for the whole daemon. Foreground: stderr; background: syslog (LOG_DAEMON).
 * Every message passes through redact() so that a registered secret never leaves the process,
 * whatever a caller formats by mistake. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include "log.h"

static gboolean log_debug;
static gboolean log_syslog;
static GMutex log_lock;
static GPtrArray *log_secrets;  /* char*, guarded by log_lock */

void mf_log_init(gboolean foreground, gboolean debug)
{
	log_debug = debug;
	log_syslog = FALSE;
	(void)foreground;
}

void mf_log_use_syslog(void)
{
	openlog("mailfs", LOG_PID, LOG_DAEMON);
	log_syslog = TRUE;
}

gboolean mf_log_debug_enabled(void)
{
	return log_debug;
}

void mf_log_add_secret(const char *secret)
{
	if (!secret || !*secret)
		return;
	g_mutex_lock(&log_lock);
	if (!log_secrets)
		log_secrets = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(log_secrets, g_strdup(secret));
	g_mutex_unlock(&log_lock);
}

/* Replace every occurrence of a secret by "***". Called with log_lock held. */
static void redact(GString *s)
{
	if (!log_secrets)
		return;
	for (guint i = 0; i < log_secrets->len; i++) {
		const char *sec = log_secrets->pdata[i];
		gsize n = strlen(sec);
		char *p;
		while ((p = memmem(s->str, s->len, sec, n)) != NULL) {
			gssize pos = p - s->str;
			g_string_erase(s, pos, n);
			g_string_insert(s, pos, "***");
		}
	}
}

static void emit(int prio, const char *prefix, const char *fmt, va_list ap)
{
	g_autoptr(GString) s = g_string_new(NULL);
	g_string_vprintf(s, fmt, ap);
	g_mutex_lock(&log_lock);
	redact(s);
	if (log_syslog)
		syslog(prio, "%s%s", prefix, s->str);
	else
		fprintf(stderr, "mailfs: %s%s\n", prefix, s->str);
	g_mutex_unlock(&log_lock);
}

#define DEFINE_LOG(fn, prio, prefix, guard)            \
	void fn(const char *fmt, ...)                  \
	{                                              \
		va_list ap;                            \
		if (!(guard))                          \
			return;                        \
		va_start(ap, fmt);                     \
		emit(prio, prefix, fmt, ap);           \
		va_end(ap);                            \
	}

DEFINE_LOG(mf_log_error, LOG_ERR, "", TRUE)
DEFINE_LOG(mf_log_warn, LOG_WARNING, "warning: ", TRUE)
DEFINE_LOG(mf_log_info, LOG_INFO, "", TRUE)
DEFINE_LOG(mf_log_debug, LOG_DEBUG, "debug: ", log_debug)

/* Protocol lines are shown with control bytes escaped and literal payloads cut, so a trace of
 * a 20 MB FETCH stays readable. */
void mf_log_protocol(const char *conn, gboolean sent, const char *data, gsize len, gboolean redact_line)
{
	if (!log_debug)
		return;
	g_autoptr(GString) s = g_string_new(NULL);
	g_string_append_printf(s, "%s %s ", conn ? conn : "?", sent ? ">" : "<");
	if (redact_line) {
		/* Keep the tag and the command word only, and only when both are there: a bare SASL
		 * response line is nothing but credentials. */
		const char *sp1 = memchr(data, ' ', len);
		const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (sp1 + 1 - data)) : NULL;
		if (sp2)
			g_string_append_len(s, data, sp2 - data);
		g_string_append(s, " <credentials hidden>");
	} else {
		gsize shown = MIN(len, 300);
		for (gsize i = 0; i < shown; i++) {
			unsigned char c = data[i];
			if (c == '\r' || c == '\n')
				continue;
			if (c < 0x20 || c == 0x7f)
				g_string_append_printf(s, "\\x%02x", c);
			else
				g_string_append_c(s, c);
		}
		if (len > shown)
			g_string_append_printf(s, "... (%" G_GSIZE_FORMAT " bytes)", len);
	}
	mf_log_debug("%s", s->str);
}
