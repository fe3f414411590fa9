/* What the filesystem knows about one message: backend-neutral, decoded to UTF-8. The
 * backends fill it from an IMAP ENVELOPE or from POP3 "TOP n 0" headers.
 *
 * Reference counted, and never changed once a second holder may have it: a backend's index
 * and the filesystem's tree share one copy of every envelope (a big folder holds tens of
 * thousands), so a change is made to a copy that then replaces the holder's reference
 * (mf_msg_meta_copy). The count is atomic: the holders live on different threads. */
#pragma once
#include <glib.h>

#define MF_NO_DATE G_MININT64

typedef struct {
	guint32 uid;          /* IMAP UID; for POP3 a stable ordinal the backend chooses */
	char *id;             /* the unique part of the file name: decimal UID (IMAP) or escaped UIDL (POP3) */
	guint64 size;         /* octets a read returns: RFC822.SIZE / LIST size until verified */
	gboolean size_exact;  /* TRUE once the size was confirmed by fetching the whole body */
	gint64 internaldate;  /* epoch seconds; MF_NO_DATE if unknown (POP3) */
	gint64 date;          /* epoch seconds from the Date header; MF_NO_DATE if missing/invalid */
	char *date_raw;       /* Date header as sent, or NULL */
	char *from;           /* decoded, "Name <addr>" list, or NULL */
	char *from_name;      /* the display name of the first sender, else its address, or NULL */
	char *to;             /* decoded list, or NULL */
	char *subject;        /* decoded, or NULL */
	char *message_id;     /* or NULL */
	char *flags;          /* space-separated IMAP flags, NULL when the backend has none */
	gatomicrefcount ref;
	gboolean packed;      /* the strings live in the meta's own allocation */
} mf_msg_meta;

/* The strings of a meta, in the order mf_msg_meta_new_packed takes them. */
enum {
	MF_META_ID,
	MF_META_DATE_RAW,
	MF_META_FROM,
	MF_META_FROM_NAME,
	MF_META_TO,
	MF_META_SUBJECT,
	MF_META_MESSAGE_ID,
	MF_META_FLAGS,
	MF_META_N_STRINGS
};

/* One reference, to a meta with every field unset. */
mf_msg_meta *mf_msg_meta_new(void);
/* The same, with the given strings (each NULL or borrowed) copied into the meta's own
 * allocation: one block instead of nine, for the thousands a listing makes. Its strings are
 * never replaced in place; a change goes to a copy anyway (mf_msg_meta_copy). */
mf_msg_meta *mf_msg_meta_new_packed(const char *const strings[MF_META_N_STRINGS]);
mf_msg_meta *mf_msg_meta_ref(mf_msg_meta *m);
void mf_msg_meta_unref(mf_msg_meta *m);
/* A new, unshared meta with the same fields: the one to change. */
mf_msg_meta *mf_msg_meta_copy(const mf_msg_meta *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(mf_msg_meta, mf_msg_meta_unref)
