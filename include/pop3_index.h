/* What a POP3 mount remembers of the maildrop, between sessions and between mounts: for each
 * message (by UIDL) the ordinal uid the filesystem knows it by, its LIST size, its number in
 * the last session that listed it, and what its header ("TOP n 0") said. With it a remount
 * costs UIDL + LIST and a TOP only for new mail, and reading one message needs "UIDL n"
 * instead of the whole UIDL listing to find it.
 *
 * The file format (version 1), all integers little-endian:
 *
 *	"MFPOP3IX"  u32 version  str generator  str account  u32 next_uid  u32 count
 *	count x { str uidl  u32 occurrence  u32 uid  u32 msg  u32 state  u64 size  i64 date
 *	          str date_raw, from, from_name, to, subject, message_id }
 *	32 bytes SHA-256 of everything before
 *
 * where str is u32 length + bytes (no NUL), 0xFFFFFFFF for NULL; records in ascending uid;
 * state bit 0 = the header fields were read. The generator names the program version that
 * decoded the headers: another version may name files differently, so its header fields are
 * dropped (to be read again) but its uids are kept, so inode numbers survive an upgrade.
 * Parsing is pure and checks everything: the bytes come from a file that may be truncated or
 * written by someone else. */
#pragma once
#include <glib.h>
#include "msg.h"

#define POP3_INDEX_VERSION 1

typedef struct {
	char *uidl;        /* as the server sent it: 1-255 bytes of 0x21..0x7E */
	guint32 occurrence;/* 1 for the first message with this UIDL, 2 for the next, ... */
	guint32 msg;       /* its number in the last session that listed it, if its UIDL was
			    * unique there (else "UIDL n" cannot tell duplicates apart); 0: none */
	gboolean headers;  /* meta's header fields are what TOP n 0 said (else: still to read) */
	mf_msg_meta *meta; /* id (pop3_index_id), uid, size (LIST), header fields; owned */
} pop3_index_entry;

typedef struct {
	char *account;     /* whose maildrop ("user@host:port") */
	char *generator;   /* who wrote the file, or NULL (built in memory) */
	guint32 next_uid;  /* the next ordinal to hand out: uids are never reused */
	GHashTable *by_id; /* meta->id -> pop3_index_entry*, owned */
} pop3_index;

pop3_index *pop3_index_new(const char *account);
void pop3_index_free(pop3_index *x);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(pop3_index, pop3_index_free)

/* The file-name id of the occurrence-th message with this UIDL: printable ASCII already, so
 * only '/' (path separator), '%' (the escape) and '~' (the duplicate marker) are escaped,
 * which keeps distinct UIDLs distinct; duplicates get "~2", "~3" in message order. */
char *pop3_index_id(const char *uidl, guint32 occurrence);

/* A new entry with meta id/uid/size set, no header fields. */
pop3_index_entry *pop3_index_entry_new(const char *uidl, guint32 occurrence, guint32 uid,
				       guint64 size);
void pop3_index_entry_free(pop3_index_entry *e);
/* Adds e (keyed by e->meta->id), replacing an entry with that id. */
void pop3_index_add(pop3_index *x, pop3_index_entry *e);
pop3_index_entry *pop3_index_lookup(const pop3_index *x, const char *id);

/* References to all metas, ascending uid (the array drops them). */
GPtrArray *pop3_index_listing(const pop3_index *x);

/* The file bytes for x, written by `generator` (e.g. "mailfs 0.1.0"). */
GBytes *pop3_index_serialise(const pop3_index *x, const char *generator);
/* x from file bytes, or NULL + MF_ERR_PROTOCOL (bad magic, checksum or structure, or another
 * account's file when `account` is not NULL) or MF_ERR_STALE (another format version).
 * A file from another generator (when `generator` is not NULL) loads without header fields.
 * Metas get size_exact = FALSE and no internaldate. */
pop3_index *pop3_index_parse(const guint8 *data, gsize len, const char *account,
			     const char *generator, GError **err);
