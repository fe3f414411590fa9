/* The remembered listing of one IMAP folder: what the last synchronisation learned (epoch,
 * UIDNEXT, HIGHESTMODSEQ, every message's envelope and flags), and its on-disk form so that a
 * remount starts from it instead of downloading every envelope again.
 *
 * The file format (version 1), all integers little-endian:
 *
 *	"MFIMAPIX"  u32 version  str generator  str mailbox
 *	u32 uidvalidity  u32 uidnext  u64 highestmodseq  u32 count
 *	count x { u32 uid  u64 size  i64 internaldate  i64 date
 *	          str date_raw, from, from_name, to, subject, message_id, flags }
 *	32 bytes SHA-256 of everything before
 *
 * where str is u32 length + bytes (no NUL), length 0xFFFFFFFF for NULL. The generator names
 * the program version that decoded the envelopes: another version may name files differently,
 * so its index is not used. Parsing is pure and validates everything (the bytes come from a
 * file anyone with access to the cache directory could have written or truncated). */
#pragma once
#include <glib.h>
#include "msg.h"

#define MF_IMAP_INDEX_VERSION 1

typedef struct {
	char *mailbox;          /* raw server name */
	guint32 uidvalidity;
	guint32 uidnext;        /* 0: unknown */
	guint64 highestmodseq;  /* 0: none (no CONDSTORE, or NOMODSEQ) */
	GHashTable *msgs;       /* uid -> mf_msg_meta*, owned */
} mf_imap_index;

mf_imap_index *mf_imap_index_new(const char *mailbox, guint32 uidvalidity);
void mf_imap_index_free(mf_imap_index *x);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(mf_imap_index, mf_imap_index_free)

/* References to all metas, ascending UID (the array drops them). */
GPtrArray *mf_imap_index_listing(const mf_imap_index *x);

/* The file bytes for x, written by `generator` (e.g. "mailfs 0.1.0"). */
GBytes *mf_imap_index_serialise(const mf_imap_index *x, const char *generator);
/* x from file bytes, or NULL + MF_ERR_PROTOCOL (bad magic, checksum, structure, or written
 * for another mailbox), MF_ERR_STALE (another format version or generator). Metas get
 * id = decimal UID and size_exact = FALSE. */
mf_imap_index *mf_imap_index_parse(const guint8 *data, gsize len, const char *mailbox,
				   const char *generator, GError **err);
