/* libFuzzer target for the folder index parser. A checksum guards the real file, which a
 * fuzzer cannot forge, so each input is tried twice: as it is, and sealed with a correct
 * SHA-256 so that the structure checks behind the checksum are exercised too. Whatever
 * parses must serialise back to exactly the sealed bytes. */
#include <string.h>
#include "imap_index.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

#define GEN "fuzz"

static void check(const guint8 *d, gsize n, gboolean sealed)
{
	mf_imap_index *x = mf_imap_index_parse(d, n, NULL, NULL, NULL);

	if (!x)
		return;
	/* Only a file written by GEN can be reproduced byte for byte. */
	mf_imap_index *y = mf_imap_index_parse(d, n, x->mailbox, GEN, NULL);
	if (y && sealed) {
		GBytes *b = mf_imap_index_serialise(y, GEN);
		gsize bn;
		const guint8 *bd = g_bytes_get_data(b, &bn);

		g_assert(bn == n && memcmp(bd, d, n) == 0);
		g_bytes_unref(b);
	}
	GPtrArray *l = mf_imap_index_listing(x);
	g_ptr_array_unref(l);
	mf_imap_index_free(y);
	mf_imap_index_free(x);
}

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	check(data, size, FALSE);

	guint8 *s = g_malloc(size + 32);
	guint8 sum[32];
	gsize sum_len = sizeof sum;
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);

	memcpy(s, data, size);
	g_checksum_update(ck, data, size);
	g_checksum_get_digest(ck, sum, &sum_len);
	g_checksum_free(ck);
	memcpy(s + size, sum, 32);
	check(s, size + 32, TRUE);
	g_free(s);
	return 0;
}
