/* Pure POP3 response parsing (RFC 1939, RFC 2449 CAPA and response codes, RFC 5034 AUTH):
 * bytes in, structures out, no I/O (fuzzed in tests/fuzz/fuzz_pop3_parse.c). Lines are given
 * with their line end (CRLF, or a bare LF from sloppy servers). */
#pragma once
#include <glib.h>

typedef enum {
	POP3_OK,   /* "+OK ..." */
	POP3_ERR,  /* "-ERR ..." */
	POP3_CONT, /* "+ ..." (SASL continuation during AUTH) */
} Pop3StatusKind;

typedef struct {
	Pop3StatusKind kind;
	char *code; /* RFC 2449 response code, upper-cased ("IN-USE", "LOGIN-DELAY", "AUTH",
		     * "SYS/TEMP"), or NULL */
	char *text; /* the rest of the line without the line end, never NULL */
} pop3_status;

/* One status line. MF_ERR_PROTOCOL if it is neither +OK, -ERR nor a continuation. */
gboolean pop3_status_parse(const char *line, gsize len, pop3_status *out, GError **err);
void pop3_status_clear(pop3_status *s);

/* Incremental reader of a multi-line response body (after its +OK line): feed one line at a
 * time until it returns 1 for the terminating ".". Dot-stuffing is removed; all other bytes,
 * line ends included, are kept exactly as sent. */
typedef struct pop3_multiline pop3_multiline;
/* max_bytes bounds the un-stuffed payload (a hostile server must not exhaust memory). */
pop3_multiline *pop3_multiline_new(gsize max_bytes);
/* 1: complete, 0: feed more, -1: error (line without LF, payload too big, fed after the end). */
int pop3_multiline_feed(pop3_multiline *m, const char *line, gsize len, GError **err);
/* The payload so far (after 1: all of it); the reader is left empty. */
GBytes *pop3_multiline_steal(pop3_multiline *m);
void pop3_multiline_free(pop3_multiline *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(pop3_multiline, pop3_multiline_free)

/* What CAPA advertised (RFC 2449 section 6). */
typedef struct {
	gboolean top, uidl, user, pipelining, stls, resp_codes, auth_resp_code, utf8;
	gboolean sasl_plain;
	char **sasl;              /* SASL mechanisms, upper-cased, NULL-terminated, never NULL */
	gboolean has_expire;      /* EXPIRE was advertised */
	gboolean expire_never;    /* "EXPIRE NEVER" */
	gint64 expire_days;       /* "EXPIRE n": 0 = the server may delete whatever was RETRieved */
	gboolean has_login_delay;
	gint64 login_delay;       /* seconds */
	char *implementation;     /* or NULL */
} pop3_capa;
/* The CAPA payload (one capability per line). Unknown lines are ignored; never fails. */
pop3_capa *pop3_capa_parse(GBytes *payload);
void pop3_capa_free(pop3_capa *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(pop3_capa, pop3_capa_free)

/* "n uid" (a UIDL listing line or the text of "+OK n uid"). RFC 1939 allows 1-70 characters in
 * 0x21..0x7E; up to 255 are accepted so that one sloppy server does not make a mailbox
 * unreadable, but never a byte outside that range. */
gboolean pop3_uidl_line_parse(const char *line, gsize len, guint32 *msg, char **uid, GError **err);
/* "n size" (a LIST scan line or the text of "+OK n size"). */
gboolean pop3_list_line_parse(const char *line, gsize len, guint32 *msg, guint64 *size, GError **err);

typedef struct {
	guint32 msg;  /* message number in this session */
	char *uid;    /* UIDL, or NULL when only LIST was parsed */
	guint64 size; /* LIST size */
} pop3_entry;
void pop3_entry_free(pop3_entry *e);
/* Whole UIDL / LIST payloads: pop3_entry*, in the server's order. A malformed line fails the
 * whole listing (MF_ERR_PROTOCOL). */
GPtrArray *pop3_uidl_parse(GBytes *payload, GError **err);
GPtrArray *pop3_list_parse(GBytes *payload, GError **err);

/* The APOP timestamp "<...@...>" from a greeting's text, or NULL if it has none (or a malformed
 * one: only printable ASCII is accepted, so an attacker cannot smuggle bytes into the digest). */
char *pop3_apop_timestamp(const char *greeting_text);
