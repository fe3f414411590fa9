/* The folder tree from a LIST answer. Pure: no I/O. */
#pragma once
#include <glib.h>
#include "backend.h"
#include "imap_parse.h"

/* mf_folder* (owned, sorted by path so parents come before children) from imap_list_entry*:
 * raw names split at the server's delimiter, each component decoded from strict modified
 * UTF-7 (when not canonical: shown raw with '&' and
 * 8-bit bytes as %XX and always containing "%26", which no decoded name displays) and made safe with mf_folder_component(), joined with
 * '/'. INBOX in any case is shown as "INBOX". Parents the server did not list are added as
 * non-selectable; \Noselect and \NonExistent entries are non-selectable. */
GPtrArray *mf_imap_folders_build(const GPtrArray *entries);
