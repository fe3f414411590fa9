/* libFuzzer target for the POP3 index parser. Each input is tried as it is and sealed with a
 * correct checksum (fuzz_sealed.h); whatever parses must serialise back to the same bytes,
 * and its listing must be in strict uid order. */
#include "fuzz_sealed.h"
#include "pop3_index.h"

static void check(const guint8 *d, gsize n, gboolean sealed)
{
	pop3_index *x = pop3_index_parse(d, n, NULL, NULL, NULL);

	if (!x)
		return;
	/* Parsed again as its own account and generator: nothing may be dropped. */
	pop3_index *y = pop3_index_parse(d, n, x->account, x->generator, NULL);
	g_assert(y != NULL);
	if (sealed)
		fuzz_assert_same_bytes(pop3_index_serialise(y, y->generator), d, n);
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
