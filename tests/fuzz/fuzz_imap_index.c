/* libFuzzer target for the folder index parser. Each input is tried as it is and sealed with
 * a correct checksum (fuzz_sealed.h); whatever parses must serialise back to the same bytes. */
#include "fuzz_sealed.h"
#include "imap_index.h"

#define GEN "fuzz"

static void check(const guint8 *d, gsize n, gboolean sealed)
{
	mf_imap_index *x = mf_imap_index_parse(d, n, NULL, NULL, NULL);

	if (!x)
		return;
	/* Only a file written by GEN can be reproduced byte for byte. */
	mf_imap_index *y = mf_imap_index_parse(d, n, x->mailbox, GEN, NULL);
	if (y && sealed)
		fuzz_assert_same_bytes(mf_imap_index_serialise(y, GEN), d, n);
	GPtrArray *l = mf_imap_index_listing(x);
	g_ptr_array_unref(l);
	mf_imap_index_free(y);
	mf_imap_index_free(x);
}
