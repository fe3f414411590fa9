/* Header decoding with GMime: RFC 2047 encoded words, charset aliases, raw 8-bit fallback,
 * RFC 5322 dates (obsolete forms too), address lists. Pure; every result is valid UTF-8. */
#pragma once
#include <glib.h>
#include "msg.h"

/* Must be called once before any other function (idempotent, thread-safe). */
void mf_mailhdr_init(void);

/* Unfold and decode an unstructured header value (Subject). Never NULL for non-NULL input. */
char *mf_decode_text(const char *raw);

/* Decode a display name from an IMAP ENVELOPE address (RFC 2047, may be NULL). */
char *mf_decode_phrase(const char *raw);

/* RFC 5322 date (and obsolete forms) -> epoch seconds UTC. FALSE if missing, unparsable or
 * implausible (before 1970 or more than a day in the future of `now`; now=0 means no check). */
gboolean mf_parse_date(const char *raw, gint64 now, gint64 *out);

/* Append one mailbox to an address list being written: `Name <addr>`, the name quoted when
 * it holds RFC 5322 specials; just the name when there is no address, just the address when
 * there is no name. The caller writes the ", " between entries. */
void mf_append_address(GString *out, const char *decoded_name, const char *addr);

/* Fill date/date_raw/from/from_name/to/subject/message_id from a raw header block (POP3
 * "TOP n 0", or BODY[HEADER]). Bytes need not be valid UTF-8. */
void mf_msg_meta_from_headers(mf_msg_meta *m, const char *hdr, gsize len);
