/* libFuzzer target for the IMAP response parser: frame the input like a connection reader,
 * parse every framed response, and run the FETCH and LIST decoders on whatever parses. The
 * unframed input also goes straight to the parser, which must cope with any byte string. */
#include <string.h>
#include "imap_parse.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

static void decode(GBytes *b)
{
	imap_response *r = imap_response_parse(b, NULL);

	if (!r)
		return;
	imap_fetch *f = imap_fetch_from_response(r, NULL);
	if (f && f->body)
		g_assert(g_bytes_get_size(f->body) <= g_bytes_get_size(b));
	imap_fetch_free(f);
	imap_list_entry_free(imap_list_from_response(r, NULL));
	for (guint i = 0; i < r->args->len; i++) {
		const imap_value *v = r->args->pdata[i];
		if (v->type == IMAP_V_STRING && v->str) {
			gint64 t;
			imap_parse_internaldate(v->str, &t);
			g_free(imap_quote(v->str));
		}
	}
	imap_response_free(r);
}

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	gsize off = 0, len;

	/* A small literal cap so that the fuzzer explores the limit, not memory. */
	while (off < size && imap_frame(data + off, size - off, 4096, &len) == 1) {
		g_assert(len > 0 && len <= size - off);
		GBytes *b = g_bytes_new(data + off, len);
		decode(b);
		g_bytes_unref(b);
		off += len;
	}
	GBytes *all = g_bytes_new(data, size);
	decode(all);
	g_bytes_unref(all);
	return 0;
}
