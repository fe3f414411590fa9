/* Little-endian length-prefixed records with a SHA-256 trailer: the codec of the index files a
 * backend keeps between mounts (imap_index.c, pop3_index.c). Pure: bytes in, bytes out.
 *
 *	magic (8 bytes)  u32 version  records...  32 bytes SHA-256 of everything before
 *
 * u32 and u64 are little-endian; a string is a u32 length + that many bytes (no NUL), with
 * length 0xFFFFFFFF for NULL. Every read is checked against the bytes left: the files come
 * from a cache directory where they may be truncated, damaged or written by someone else. */
#pragma once
#include <glib.h>
#include "msg.h"

#define MF_REC_MAGIC_LEN 8
#define MF_REC_SUM_LEN 32
#define MF_REC_NULL_STR G_MAXUINT32

/* ---- writing: append to a growing file ---- */

/* A new file holding magic and version; `reserve` is a guess of its final size. */
GByteArray *mf_rec_begin(const char magic[MF_REC_MAGIC_LEN], guint32 version, gsize reserve);
void mf_rec_put_u32(GByteArray *b, guint32 v);
void mf_rec_put_u64(GByteArray *b, guint64 v);
void mf_rec_put_str(GByteArray *b, const char *s);
/* Appends the SHA-256 of all of b and returns the finished file (b is consumed). */
GBytes *mf_rec_seal(GByteArray *b);

/* ---- reading ---- */

typedef struct {
	const guint8 *p, *end; /* the bytes not read yet (the trailer excluded) */
	gboolean utf8;         /* refuse strings that are not valid UTF-8 */
} mf_rec_reader;

/* Starts reading a file: FALSE if it is too short to hold magic, version and trailer or starts
 * with another magic. Else *version is read and r covers the bytes between version and trailer.
 * The trailer is not checked yet, so the caller can refuse another version before that. */
gboolean mf_rec_open(mf_rec_reader *r, const guint8 *data, gsize len,
		     const char magic[MF_REC_MAGIC_LEN], guint32 *version);
/* Whether the last MF_REC_SUM_LEN bytes are the SHA-256 of the rest. */
gboolean mf_rec_verify(const guint8 *data, gsize len);

/* Each is FALSE (and reads nothing) when the bytes left are too few. */
gboolean mf_rec_get_u32(mf_rec_reader *r, guint32 *v);
gboolean mf_rec_get_u64(mf_rec_reader *r, guint64 *v);
/* A new string, or NULL for the NULL marker. FALSE if truncated, longer than max, holding a
 * NUL (a C string cannot carry it, and two different files must not read alike) or, with
 * r->utf8, not UTF-8. */
gboolean mf_rec_get_str(mf_rec_reader *r, gsize max, char **out);
gsize mf_rec_left(const mf_rec_reader *r);

/* The text fields of a message both indexes keep, in this order: date_raw, from, from_name,
 * to, subject, message_id. Reading replaces them in m; on FALSE some may be set. */
void mf_rec_put_meta_text(GByteArray *b, const mf_msg_meta *m);
gboolean mf_rec_get_meta_text(mf_rec_reader *r, mf_msg_meta *m);
