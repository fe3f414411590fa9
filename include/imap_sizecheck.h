/* Whether a server's RFC822.SIZE is the size of the BODY[] it serves. Some servers' is not
 * (protocol-notes.md), and a listing shows sizes before any body is read, so a few are
 * checked: the last octet of the first, middle and last message, BODY.PEEK[]<size-1.2>, must
 * be exactly one octet. */
#pragma once
#include <glib.h>
#include "imap_conn.h"
#include "msg.h"
#include "stats.h"

/* Checks `mailbox` on `c`, EXAMINEd first unless it is selected already: three round trips.
 * *wrong becomes a message whose size is wrong (uid, id and size set), or NULL when none
 * was caught; a probe the server refuses proves nothing either way. FALSE (and err) only
 * when the check could not be made: the mailbox could not be opened, or the connection died. */
gboolean mf_imap_check_sizes(mf_imap_conn *c, const char *mailbox, mf_stats *stats,
			     mf_msg_meta **wrong, GError **err);
