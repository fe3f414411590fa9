/* libFuzzer target for the POP3 parser: every line as a status line and as UIDL/LIST lines, the
 * whole input through the multi-line reader (checking that un-stuffing never grows the data),
 * and the payload parsers and APOP timestamp extraction on the raw input. */
#include <string.h>
#include "pop3_parse.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	const char *p = (const char *)data;
	pop3_multiline *m = pop3_multiline_new(size / 2 + 1);
	gsize pos = 0;

	while (pos < size) {
		const char *nl = memchr(p + pos, '\n', size - pos);
		gsize len = nl ? (gsize)(nl - p) - pos + 1 : size - pos;
		pop3_status st;
		guint32 msg;
		guint64 sz;
		char *uid = NULL;

		pop3_status_parse(p + pos, len, &st, NULL);
		pop3_status_clear(&st);
		if (pop3_uidl_line_parse(p + pos, len, &msg, &uid, NULL))
			g_assert(uid && *uid && msg > 0);
		g_free(uid);
		pop3_list_line_parse(p + pos, len, &msg, &sz, NULL);
		if (pop3_multiline_feed(m, p + pos, len, NULL) != 0) {
			GBytes *b = pop3_multiline_steal(m);
			g_assert(g_bytes_get_size(b) <= size);
			g_bytes_unref(b);
			pop3_multiline_free(m);
			m = pop3_multiline_new(size / 2 + 1);
		}
		pos += len;
	}
	pop3_multiline_free(m);

	GBytes *all = g_bytes_new(data, size);
	pop3_capa_free(pop3_capa_parse(all));
	GPtrArray *a = pop3_uidl_parse(all, NULL);
	if (a)
		g_ptr_array_unref(a);
	a = pop3_list_parse(all, NULL);
	if (a)
		g_ptr_array_unref(a);
	g_bytes_unref(all);

	char *text = g_strndup(p, size);
	g_free(pop3_apop_timestamp(text));
	g_free(text);
	return 0;
}
