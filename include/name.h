/* File and directory names. Pure functions; see doc/design.md "Names" for the format. */
#pragma once
#include <glib.h>
#include "msg.h"

#define MF_NAME_MAX 255

/* "YYYY-MM-DD HHMM <sender> - <subject>.<id>.eml", UTC. The date is Date:, else INTERNALDATE.
 * Always valid UTF-8 (NFC), <= 255 bytes, no '/', NUL, C0/C1 controls or bidi controls, never
 * starting with '.' or '-', ends with ".<id>.eml". Depends only on the envelope fields and id. */
char *mf_make_message_name(const mf_msg_meta *m);

/* One path component for a decoded folder name: '/' and unsafe characters escaped, a leading
 * '.' escaped, never "." or "..", <= 255 bytes. Deterministic and collision-free for distinct
 * inputs (escapes are '%XX' and '%' itself is escaped). */
char *mf_folder_component(const char *decoded);

/* Does `name` satisfy every rule above (used by tests and as a debug assertion)? */
gboolean mf_name_is_safe(const char *name);

/* NFC of valid UTF-8 (newly allocated; NULL only if s is not valid UTF-8), calling
 * g_utf8_normalize() only when some character is not known to be stable under NFC. Shared
 * with mailhdr.c, which promises NFC too. */
char *mf_utf8_nfc(const char *s, gssize len);
/* Is c one of the characters that let mf_utf8_nfc() skip normalising (exposed for tests)? */
gboolean mf_utf8_nfc_stable(gunichar c);
