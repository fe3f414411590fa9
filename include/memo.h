/* A bounded, thread-safe memo of string functions: raw text -> what a pure function made of
 * it. Senders and thread subjects recur throughout a mailbox, so decoding and sanitising each
 * once saves most of that work in a big listing. When full it forgets everything at once:
 * simple, bounded, and a mailbox's recurring values come straight back. */
#pragma once
#include <glib.h>

typedef struct mf_memo mf_memo;

mf_memo *mf_memo_new(guint max_entries);
void mf_memo_free(mf_memo *m);
/* A new copy of the value remembered for key, or NULL. */
char *mf_memo_get(mf_memo *m, const char *key);
/* Remembers a copy of value for key and returns value (still the caller's). */
char *mf_memo_put(mf_memo *m, const char *key, char *value);
