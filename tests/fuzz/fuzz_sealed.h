/* The libFuzzer entry point of the index fuzz targets, which define check(). A checksum guards
 * a real index file, which a fuzzer cannot forge, so each input is tried twice: as it is, and
 * sealed with a correct SHA-256 trailer so that the structure checks behind the checksum are
 * exercised too. */
#pragma once
#include <string.h>
#include "recfile.h"

/* Provided by the target: parses d and checks what came out; `sealed` says the trailer is known
 * to be correct. */
static void check(const guint8 *d, gsize n, gboolean sealed);

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	check(data, size, FALSE);

	GByteArray *b = g_byte_array_sized_new((guint)size + MF_REC_SUM_LEN);

	g_byte_array_append(b, data, (guint)size);
	GBytes *s = mf_rec_seal(b);

	check(g_bytes_get_data(s, NULL), g_bytes_get_size(s), TRUE);
	g_bytes_unref(s);
	return 0;
}

/* Whatever parsed from sealed bytes must serialise back to exactly them. Consumes b. */
static inline void fuzz_assert_same_bytes(GBytes *b, const guint8 *d, gsize n)
{
	gsize bn;
	const guint8 *bd = g_bytes_get_data(b, &bn);

	g_assert(bn == n && memcmp(bd, d, n) == 0);
	g_bytes_unref(b);
}
