/* Modified UTF-7 (RFC 3501 5.1.3) mailbox names. Strict: non-canonical encodings are errors,
 * so two distinct server names never decode to the same string. Pure. */
#pragma once
#include <glib.h>

/* NULL if `in` is not canonical modified UTF-7. */
char *mf_mutf7_decode(const char *in);
/* UTF-8 -> modified UTF-7 (canonical). NULL if `in` is not valid UTF-8. */
char *mf_mutf7_encode(const char *in);
