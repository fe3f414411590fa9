/* libFuzzer target: the direct FETCH decoder against the value tree. Whatever the direct
 * decoder accepts, the tree must accept too and decode to the same fields; what it declines
 * costs only speed. */
#include "fetch_equal.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

static void compare(GBytes *b)
{
	imap_fetch *d = imap_fetch_decode_direct(b);

	if (!d)
		return;
	imap_response *r = imap_response_parse_tree(b, NULL);
	g_assert(r);
	imap_fetch *t = imap_fetch_from_response(r, NULL);
	g_assert(t);
	g_assert(fetch_equal(d, t));
	imap_fetch_free(t);
	imap_response_free(r);
	imap_fetch_free(d);
}

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	gsize off = 0, len;

	while (off < size && imap_frame(data + off, size - off, 4096, &len) == 1) {
		GBytes *b = g_bytes_new(data + off, len);

		compare(b);
		g_bytes_unref(b);
		off += len;
	}
	GBytes *whole = g_bytes_new(data, size);

	compare(whole);
	g_bytes_unref(whole);
	return 0;
}
