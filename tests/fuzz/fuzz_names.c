/* libFuzzer target for everything that turns server bytes into a file or directory name:
 * RFC 2047 text and phrases, whole header blocks (POP3 TOP), message ids, dates, modified
 * UTF-7 folder names and folder components. Whatever the server sends, a name must be safe
 * (mf_name_is_safe: valid UTF-8, no '/', controls or bidi tricks, no leading '.' or '-') and
 * at most 255 bytes, and the same input must always give the same name.
 *
 * Input layout: up to five NUL-separated fields, used as subject, sender, id, folder name and
 * date; the whole input is also parsed as a header block. */
#include <string.h>
#include "mailhdr.h"
#include "mutf7.h"
#include "name.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

static void check_name(const char *name)
{
	g_assert_nonnull(name);
	g_assert_true(mf_name_is_safe(name));
	g_assert_cmpuint(strlen(name), <=, MF_NAME_MAX);
	g_assert_true(g_str_has_suffix(name, ".eml"));
}

static void check_message_name(const mf_msg_meta *m)
{
	g_autofree char *a = mf_make_message_name(m);
	g_autofree char *b = mf_make_message_name(m);

	check_name(a);
	g_assert_cmpstr(a, ==, b);
}

static void check_component(const char *decoded)
{
	g_autofree char *c = mf_folder_component(decoded);

	g_assert_nonnull(c);
	g_assert_true(mf_name_is_safe(c));
	g_assert_cmpuint(strlen(c), <=, MF_NAME_MAX);
	g_assert_cmpstr(c, !=, ".");
	g_assert_cmpstr(c, !=, "..");
	g_assert_null(strchr(c, '/'));
}

static void check_mutf7(const char *raw)
{
	g_autofree char *dec = mf_mutf7_decode(raw);

	if (dec) {
		/* Strict: only a canonical encoding decodes, so encoding gives the input back. */
		g_assert_true(g_utf8_validate(dec, -1, NULL));
		g_autofree char *enc = mf_mutf7_encode(dec);
		g_assert_cmpstr(enc, ==, raw);
		check_component(dec);
	} else {
		check_component(raw); /* shown raw */
	}
	if (g_utf8_validate(raw, -1, NULL)) {
		g_autofree char *enc = mf_mutf7_encode(raw);
		g_assert_nonnull(enc);
		g_autofree char *back = mf_mutf7_decode(enc);
		g_assert_cmpstr(back, ==, raw);
	}
}

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	static gboolean ready;
	const char *field[5] = { NULL };
	g_autofree char *copy = g_malloc(size + 1);
	gsize nfields = 0;

	if (!ready) {
		mf_mailhdr_init();
		ready = TRUE;
	}
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (char *p = copy; nfields < G_N_ELEMENTS(field) && p <= copy + size; p += strlen(p) + 1)
		field[nfields++] = p;

	/* A header block straight from the wire (POP3 TOP n 0). */
	g_autoptr(mf_msg_meta) hm = mf_msg_meta_new();
	mf_msg_meta_from_headers(hm, (const char *)data, size);
	g_assert_true(!hm->subject || g_utf8_validate(hm->subject, -1, NULL));
	g_assert_true(!hm->from_name || g_utf8_validate(hm->from_name, -1, NULL));
	hm->uid = 4711;
	check_message_name(hm);
	hm->id = g_strdup(field[0]);
	check_message_name(hm);

	/* IMAP ENVELOPE fields, decoded the way the IMAP backend does. */
	g_autofree char *subject = mf_decode_text(field[0]);
	g_assert_nonnull(subject);
	g_assert_true(g_utf8_validate(subject, -1, NULL));
	g_autofree char *sender = nfields > 1 ? mf_decode_phrase(field[1]) : NULL;
	g_assert_true(!sender || g_utf8_validate(sender, -1, NULL));
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();
	m->uid = G_MAXUINT32;
	m->subject = g_strdup(subject);
	m->from_name = g_strdup(sender);
	m->id = nfields > 2 ? g_strdup(field[2]) : NULL;
	if (nfields > 4) {
		gint64 t = 0;
		if (mf_parse_date(field[4], 0, &t))
			m->date = t;
		else
			memcpy(&m->internaldate, field[4], MIN(strlen(field[4]), sizeof(gint64)));
	}
	check_message_name(m);

	/* Raw, possibly invalid UTF-8 in every field (a backend that skipped decoding). */
	g_autoptr(mf_msg_meta) r = mf_msg_meta_new();
	r->subject = g_strdup(field[0]);
	r->from_name = nfields > 1 ? g_strdup(field[1]) : NULL;
	r->id = nfields > 2 ? g_strdup(field[2]) : NULL;
	r->date = (gint64)size * 86400 * 365;
	check_message_name(r);

	/* Folder names. */
	check_mutf7(nfields > 3 ? field[3] : field[0]);
	check_component(field[0]);
	return 0;
}
