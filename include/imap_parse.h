/* Pure IMAP4rev1 response parser: bytes in, structures out, no I/O (fuzzed in tests/fuzz).
 * Tolerant of real servers (extra spaces, unknown response codes, lower-case keywords), strict
 * where safety depends on it (literal lengths, nesting depth, number ranges). */
#pragma once
#include <glib.h>

/* Framing: does buf[0..len) start with one complete response, literals included?
 * Returns 1 and sets *resp_len (bytes up to and including the final CRLF), 0 if more bytes are
 * needed, -1 if the framing is broken (e.g. a literal length that is not a number or > max_literal). */
int imap_frame(const guint8 *buf, gsize len, guint64 max_literal, gsize *resp_len);

typedef enum { IMAP_V_NIL, IMAP_V_ATOM, IMAP_V_STRING, IMAP_V_LIST } ImapValueType;

typedef struct imap_value {
	ImapValueType type;
	/* A STRING from a literal: its octets (any byte, NUL included) as a zero-copy slice of
	 * the response buffer; NULL for atoms and quoted strings, whose text is all in `str`
	 * (they cannot hold NUL). imap_value_data()/imap_value_bytes() give the octets of either. */
	GBytes *bytes;
	/* ATOM / STRING: NUL-terminated text, except for literals longer than 64 KiB (NULL). */
	char *str;
	GPtrArray *items;     /* LIST: imap_value*, owned */
} imap_value;

/* The octets of an ATOM or STRING value (borrowed), and a new reference to them. */
const char *imap_value_data(const imap_value *v, gsize *len);
GBytes *imap_value_bytes(const imap_value *v);

typedef enum {
	IMAP_RESP_TAGGED,       /* tag OK/NO/BAD */
	IMAP_RESP_UNTAGGED,     /* "* ..." */
	IMAP_RESP_CONTINUATION, /* "+ ..." */
} ImapRespKind;

typedef enum { IMAP_ST_NONE, IMAP_ST_OK, IMAP_ST_NO, IMAP_ST_BAD, IMAP_ST_BYE, IMAP_ST_PREAUTH } ImapStatus;

typedef struct imap_response {
	ImapRespKind kind;
	char *tag;              /* TAGGED only */
	ImapStatus status;      /* TAGGED, or untagged OK/NO/BAD/BYE/PREAUTH; else NONE */
	char *code;             /* response code atom upper-cased ("UIDVALIDITY", "ALERT"), or NULL */
	char *code_arg;         /* the rest inside [...] as text, or NULL */
	char *text;             /* human-readable text after the status / code */
	/* Untagged data other than status: "* 12 FETCH (...)" -> number=12, keyword="FETCH";
	 * "* CAPABILITY IMAP4rev1 ..." -> has_number=FALSE, keyword="CAPABILITY". Keyword upper-cased. */
	gboolean has_number;
	guint32 number;
	char *keyword;
	GPtrArray *args;        /* imap_value* after the keyword, owned */
	/* A FETCH of the shape a listing gets (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE) is
	 * decoded straight from the bytes, without a value tree: then `fetch` holds it and args
	 * is empty. Use imap_fetch_from_response() either way. */
	struct imap_fetch *fetch;
} imap_response;

/* Parse exactly one framed response (as returned by imap_frame). `buf` is kept referenced by
 * literal slices. NULL + MF_ERR_PROTOCOL on malformed input. */
imap_response *imap_response_parse(GBytes *buf, GError **err);
/* The same, always through the value tree (no direct FETCH decoding): the reference the
 * direct decoder is tested against. */
imap_response *imap_response_parse_tree(GBytes *buf, GError **err);
void imap_response_free(imap_response *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(imap_response, imap_response_free)

typedef struct {
	const char *name;     /* personal name, raw (RFC 2047 still encoded) or NULL */
	const char *mailbox;  /* local part or NULL */
	const char *host;     /* domain or NULL (group syntax) */
} imap_address;

/* An address list in one allocation (g_free it): the addresses, then their strings. A listing
 * decodes two per message, so this is one allocation where a list of strings would be ten. */
typedef struct {
	guint len;
	imap_address items[];
} imap_address_list;

/* The parts of an ENVELOPE that mailfs shows. Sender, Reply-To, Cc, Bcc and In-Reply-To are
 * read for their syntax and dropped: nothing names a file or an attribute after them. */
typedef struct {
	char *date, *subject, *message_id;  /* raw, NULL for NIL */
	imap_address_list *from, *to;       /* NULL for NIL or an empty list */
} imap_envelope;
void imap_envelope_free(imap_envelope *e);

/* One "* n FETCH (...)" response, decoded. Fields not present have has_* FALSE / NULL. */
typedef struct imap_fetch {
	guint32 seq;
	gboolean has_uid;      guint32 uid;
	gboolean has_flags;    char *flags;           /* space-separated, e.g. "\\Seen \\Answered" */
	gboolean has_internaldate; gint64 internaldate; /* seconds since the epoch, UTC */
	gboolean has_size;     guint64 rfc822_size;
	imap_envelope *envelope;                       /* or NULL */
	/* BODY[] or BODY[]<origin>: the octets and the origin offset (0 when not partial). */
	GBytes *body;          guint64 body_origin;  gboolean body_partial;
	/* BODY[HEADER.FIELDS (...)] or BODY[HEADER] if requested: raw header bytes */
	GBytes *header;
	guint extra_refs;     /* internal: holders besides the first (see imap_fetch_free) */
} imap_fetch;
/* A new reference: imap_fetch_free() it. */
imap_fetch *imap_fetch_from_response(const imap_response *r, GError **err);
/* The direct decoder (imap_fetch_direct.c) on its own: a FETCH of the listing's shape, or
 * NULL for anything it leaves to the value tree. */
imap_fetch *imap_fetch_decode_direct(GBytes *buf);
/* Drops one reference; the last one frees. */
void imap_fetch_free(imap_fetch *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(imap_fetch, imap_fetch_free)

/* "* LIST (\\Noselect \\HasChildren) "/" "INBOX/Sub"" */
typedef struct {
	char *name;        /* raw server name (modified UTF-7 unless UTF8=ACCEPT) */
	char delimiter;    /* '\0' for NIL */
	char *flags;       /* space-separated attributes, original case */
	gboolean noselect; /* \Noselect or \NonExistent */
} imap_list_entry;
imap_list_entry *imap_list_from_response(const imap_response *r, GError **err);
void imap_list_entry_free(imap_list_entry *e);

/* "17-Jul-1996 02:44:25 -0700" -> epoch seconds. */
gboolean imap_parse_internaldate(const char *s, gint64 *out);

/* Quote a string for a command argument ("..." with \\ and \" escaped). NULL if it contains
 * CR, LF or NUL (those need a literal). */
char *imap_quote(const char *s);
