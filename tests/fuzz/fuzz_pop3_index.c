/* libFuzzer target for the POP3 index parser. A checksum guards the real file, which a fuzzer
 * cannot forge, so each input is tried twice: as it is, and sealed with a correct SHA-256 so
 * that the structure checks behind the checksum are exercised too. Whatever parses must
 * serialise back to exactly the sealed bytes, and its listing must be in strict uid order. */
#include <string.h>
#include "pop3_index.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

static void check(const guint8 *d, gsize n, gboolean sealed)
{
	pop3_index *x = pop3_index_parse(d, n, NULL, NULL, NULL);

	if (!x)
		return;
	/* Parsed again as its own account and generator: nothing may be dropped. */
	pop3_index *y = pop3_index_parse(d, n, x->account, x->generator, NULL);
	g_assert(y != NULL);
	if (sealed) {
		GBytes *b = pop3_index_serialise(y, y->generator);
		gsize bn;
		const guint8 *bd = g_bytes_get_data(b, &bn);

		g_assert(bn == n && memcmp(bd, d, n) == 0);
		g_bytes_unref(b);
	}
	GPtrArray *l = pop3_index_listing(x);
	for (guint i = 0; i < l->len; i++) {
		const mf_msg_meta *m = l->pdata[i];

		g_assert(m->uid > 0 && m->uid < x->next_uid);
		g_assert(i == 0 || ((const mf_msg_meta *)l->pdata[i - 1])->uid < m->uid);
		g_assert(pop3_index_lookup(x, m->id) != NULL);
	}
	g_ptr_array_unref(l);
	pop3_index_free(y);
	pop3_index_free(x);
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
