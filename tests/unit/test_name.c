/* File names from envelopes and folder names: format, sanitising, hostile input, limits. */
#include <string.h>
#include <glib.h>
#include "mailhdr.h"
#include "name.h"

#define T_2026_11_26_1042 1795689720

static mf_msg_meta *meta(const char *from_name, const char *subject, const char *id)
{
	mf_msg_meta *m = mf_msg_meta_new();

	m->date = T_2026_11_26_1042;
	m->from_name = g_strdup(from_name);
	m->subject = g_strdup(subject);
	m->id = g_strdup(id);
	return m;
}

/* Every property the header promises, for any name mf_make_message_name returns. */
static char *checked_name(const mf_msg_meta *m)
{
	char *name = mf_make_message_name(m);
	g_autofree char *suffix = g_strdup_printf(".%s.eml", m->id);
	g_autofree char *nfc = NULL;

	g_assert_nonnull(name);
	if (!mf_name_is_safe(name))
		g_error("unsafe name \"%s\"", name);
	g_assert_cmpuint(strlen(name), <=, MF_NAME_MAX);
	nfc = g_utf8_normalize(name, -1, G_NORMALIZE_NFC);
	g_assert_cmpstr(nfc, ==, name);
	if (m->id && strlen(m->id) <= 70 && !strchr(m->id, '/'))
		g_assert_true(g_str_has_suffix(name, suffix));
	g_assert_null(strstr(name, "  "));
	return name;
}

static void check_name(const char *from_name, const char *subject, const char *want)
{
	g_autoptr(mf_msg_meta) m = meta(from_name, subject, "4711");
	g_autofree char *name = checked_name(m);

	g_assert_cmpstr(name, ==, want);
}

static void test_format(void)
{
	check_name("Alice Smith", "Lunch on Friday", "2026-11-26 1042 Alice Smith - Lunch on Friday.4711.eml");
	check_name("Alice Smith", "Re: Fwd: Lunch", "2026-11-26 1042 Alice Smith - Re: Fwd: Lunch.4711.eml");
	check_name(NULL, NULL, "2026-11-26 1042 (no sender) - (no subject).4711.eml");
	check_name("", "", "2026-11-26 1042 (no sender) - (no subject).4711.eml");
	check_name(" \t ", "\r\n \xe2\x80\x8b ", "2026-11-26 1042 (no sender) - (no subject).4711.eml");
}

static void test_dates(void)
{
	g_autoptr(mf_msg_meta) m = meta("A", "S", "1");
	g_autofree char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

	a = checked_name(m);
	g_assert_cmpstr(a, ==, "2026-11-26 1042 A - S.1.eml");
	/* no Date: -> INTERNALDATE */
	m->date = MF_NO_DATE;
	m->internaldate = 86400 * 365;
	b = checked_name(m);
	g_assert_cmpstr(b, ==, "1971-01-01 0000 A - S.1.eml");
	/* neither */
	m->internaldate = MF_NO_DATE;
	c = checked_name(m);
	g_assert_cmpstr(c, ==, "0000-00-00 0000 A - S.1.eml");
	/* out of GDateTime's range: no crash, the unknown date */
	m->date = G_MAXINT64 / 2;
	d = checked_name(m);
	g_assert_cmpstr(d, ==, "0000-00-00 0000 A - S.1.eml");
}

static void test_date_from_header_in_utc(void)
{
	const char *hdr = "Date: Thu, 26 Nov 2026 11:42:00 +0100\r\nFrom: Alice Smith <a@x>\r\nSubject: Lunch\r\n";
	g_autoptr(mf_msg_meta) m = mf_msg_meta_new();
	g_autofree char *name = NULL;

	mf_msg_meta_from_headers(m, hdr, strlen(hdr));
	m->id = g_strdup("9");
	name = checked_name(m);
	g_assert_cmpstr(name, ==, "2026-11-26 1042 Alice Smith - Lunch.9.eml");
}

static void test_sanitise(void)
{
	/* slash, decoded from an encoded word */
	check_name("A", "a/b", "2026-11-26 1042 A - a\xe2\x88\x95" "b.4711.eml");
	/* controls, tabs, CR/LF, DEL and C1 become spaces, runs collapse, ends trimmed */
	check_name("A\tB", "  x\r\n\ty\x7fz\xc2\x85w  ", "2026-11-26 1042 A B - x y z w.4711.eml");
	/* RTL override and friends removed */
	check_name("A", "invoice\xe2\x80\xae" "fdp.exe", "2026-11-26 1042 A - invoicefdp.exe.4711.eml");
	check_name("A\xe2\x80\x8f", "\xe2\x81\xa6x\xe2\x81\xa9\xd8\x9c\xef\xbb\xbfy\xe2\x81\xa0z",
		   "2026-11-26 1042 A - xyz.4711.eml");
	/* NFC */
	check_name("Jo\xcc\x88rg", "Cafe\xcc\x81", "2026-11-26 1042 J\xc3\xb6rg - Caf\xc3\xa9.4711.eml");
	/* a leading '-' or '.' in the subject is harmless after the date */
	check_name("-rf", ".hidden", "2026-11-26 1042 -rf - .hidden.4711.eml");
	/* invalid UTF-8 (should never reach here, but must not escape) */
	{
		g_autoptr(mf_msg_meta) m = meta("caf\xe9", "\xff\xfe", "1");
		g_autofree char *name = checked_name(m);
		(void)name;
	}
}

static void test_decoded_hostile_subjects(void)
{
	const char *raw[] = {
		"=?utf-8?q?a=2Fb?=",
		"=?utf-8?q?nul=00inside?=",
		"=?utf-8?q?=E2=80=AEtxt.exe?=",
		"=?utf-8?b?broken",
		"=?utf-8?q?=0D=0A=09?=",
		"=?utf-8?q?=C2=A0=C2=A0?=",
		"..",
		"-",
		"=?utf-8?q?=FF?=",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(raw); i++) {
		g_autofree char *subject = mf_decode_text(raw[i]);
		g_autoptr(mf_msg_meta) m = meta("x", subject, "17");
		g_autofree char *name = checked_name(m);

		g_assert_true(g_str_has_prefix(name, "2026-11-26 1042 x - "));
	}
}

static void test_long_subject(void)
{
	g_autoptr(GString) big = g_string_new(NULL);
	g_autoptr(mf_msg_meta) m = NULL;
	g_autofree char *name = NULL;

	for (int i = 0; i < 10240 / 10; i++)
		g_string_append(big, "Subject / ");
	m = meta("Alice Smith", big->str, "4711");
	name = checked_name(m);
	g_assert_cmpuint(strlen(name), >=, MF_NAME_MAX - 3);
	g_assert_true(g_str_has_prefix(name, "2026-11-26 1042 Alice Smith - Subject \xe2\x88\x95 Subject"));
	/* the cut leaves no trailing space before the id */
	g_assert_null(strstr(name, " .4711.eml"));
}

static void test_long_sender(void)
{
	g_autoptr(mf_msg_meta) m = meta("An Extremely Long Display Name That Goes On And On", "Hi", "1");
	g_autofree char *name = checked_name(m);

	/* 40 bytes, then the cut's trailing space trimmed */
	g_assert_cmpstr(name, ==, "2026-11-26 1042 An Extremely Long Display Name That Goes - Hi.1.eml");
}

/* Fill the subject so that the byte limit falls at each offset inside a multi-byte sequence. */
static void check_cut_at(const char *filler_unit, const char *tail_unit)
{
	for (int shift = 0; shift < 8; shift++) {
		g_autoptr(GString) s = g_string_new(NULL);
		g_autoptr(mf_msg_meta) m = NULL;
		g_autofree char *name = NULL;

		for (int i = 0; i < shift; i++)
			g_string_append(s, filler_unit);
		for (int i = 0; i < 200; i++)
			g_string_append(s, tail_unit);
		m = meta("Bob", s->str, "123");
		name = checked_name(m);
		g_assert_cmpuint(strlen(name), <=, MF_NAME_MAX);
		g_assert_cmpuint(strlen(name), >, MF_NAME_MAX - 12);
	}
}

static void test_cut_emoji(void)
{
	/* U+1F600, 4 bytes */
	check_cut_at("x", "\xf0\x9f\x98\x80");
}

static void test_cut_combining(void)
{
	/* a + U+0301 + U+0323 (NFC: U+1EA1 U+0301, i.e. a base plus a mark that does not compose) */
	const char *unit = "a\xcc\xa3\xcc\x81";

	for (int shift = 0; shift < 8; shift++) {
		g_autoptr(GString) s = g_string_new(NULL);
		g_autoptr(mf_msg_meta) m = NULL;
		g_autofree char *name = NULL;
		const char *cut;

		for (int i = 0; i < shift; i++)
			g_string_append_c(s, 'x');
		for (int i = 0; i < 200; i++)
			g_string_append(s, unit);
		m = meta("Bob", s->str, "123");
		name = checked_name(m);
		/* the character before ".123.eml" is the last mark of a complete sequence */
		cut = strstr(name, ".123.eml");
		g_assert_nonnull(cut);
		g_assert_cmpint(memcmp(cut - 2, "\xcc\x81", 2), ==, 0);
	}
}

static void test_cut_flags(void)
{
	/* U+1F1EB U+1F1F7 (FR flag): never leave half a pair */
	const char *flag = "\xf0\x9f\x87\xab\xf0\x9f\x87\xb7";

	for (int shift = 0; shift < 8; shift++) {
		g_autoptr(GString) s = g_string_new(NULL);
		g_autoptr(mf_msg_meta) m = NULL;
		g_autofree char *name = NULL;
		const char *p;
		int n = 0;

		for (int i = 0; i < shift; i++)
			g_string_append_c(s, 'x');
		for (int i = 0; i < 100; i++)
			g_string_append(s, flag);
		m = meta("Bob", s->str, "1");
		name = checked_name(m);
		for (p = name; (p = strstr(p, "\xf0\x9f\x87")); p += 4)
			n++;
		g_assert_cmpint(n % 2, ==, 0);
	}
}

static void test_long_id(void)
{
	const char *id70 = "0123456789abcdefghijABCDEFGHIJ0123456789abcdefghijABCDEFGHIJ!#$%&'()*+";
	g_autoptr(GString) big = g_string_new(NULL);
	g_autoptr(mf_msg_meta) m = NULL;
	g_autofree char *name = NULL;
	g_autofree char *suffix = g_strdup_printf(".%s.eml", id70);

	g_assert_cmpuint(strlen(id70), ==, 70);
	for (int i = 0; i < 300; i++)
		g_string_append_c(big, 's');
	m = meta("A Sender With A Name Of Exactly Forty By", big->str, id70);
	name = checked_name(m);
	g_assert_true(g_str_has_suffix(name, suffix));
	g_assert_cmpuint(strlen(name), ==, MF_NAME_MAX);
	g_assert_true(g_str_has_prefix(name, "2026-11-26 1042 A Sender With A Name Of Exactly Forty By - sss"));
}

static void test_hostile_id(void)
{
	g_autoptr(GString) huge = g_string_new(NULL);
	g_autoptr(mf_msg_meta) a = meta("A", "S", "x/y");
	g_autoptr(mf_msg_meta) b = NULL;
	g_autoptr(mf_msg_meta) c = NULL;
	g_autofree char *na = NULL, *nb = NULL, *nc = NULL;

	na = checked_name(a);
	g_assert_cmpstr(na, ==, "2026-11-26 1042 A - S.x%2Fy.eml");
	for (int i = 0; i < 600; i++)
		g_string_append_c(huge, 'a' + i % 26);
	b = meta("A", "S", huge->str);
	nb = checked_name(b);
	g_string_append_c(huge, 'z');
	c = meta("A", "S", huge->str);
	nc = checked_name(c);
	g_assert_cmpstr(nb, !=, nc);
	/* no id at all: the uid */
	g_free(a->id);
	a->id = NULL;
	a->uid = 99;
	g_free(na);
	na = mf_make_message_name(a);
	g_assert_cmpstr(na, ==, "2026-11-26 1042 A - S.99.eml");
}

static void test_determinism_and_uniqueness(void)
{
	g_autoptr(mf_msg_meta) a = meta("Alice", "Same", "1");
	g_autoptr(mf_msg_meta) b = meta("Alice", "Same", "2");
	g_autoptr(mf_msg_meta) a2 = mf_msg_meta_copy(a);
	g_autofree char *na = checked_name(a);
	g_autofree char *nb = checked_name(b);
	g_autofree char *na2 = NULL;

	g_assert_cmpstr(na, !=, nb);
	/* flags and sizes do not matter */
	a2->flags = g_strdup("\\Seen \\Flagged");
	a2->size = 12345;
	a2->size_exact = TRUE;
	na2 = checked_name(a2);
	g_assert_cmpstr(na, ==, na2);
}

static void check_component(const char *in, const char *want)
{
	g_autofree char *got = mf_folder_component(in);

	g_assert_cmpstr(got, ==, want);
	g_assert_true(mf_name_is_safe(got));
}

static void test_folder_component(void)
{
	check_component("INBOX", "INBOX");
	check_component("Entw\xc3\xbcrfe", "Entw\xc3\xbcrfe");
	check_component("a/b", "a%2Fb");
	check_component("100%", "100%25");
	check_component("%2F", "%252F");
	check_component(".", "%2E");
	check_component("..", "%2E.");
	check_component(".hidden", "%2Ehidden");
	check_component("-rf", "%2Drf");
	check_component("a.b-c", "a.b-c");
	check_component("tab\there", "tab%09here");
	check_component("\xe2\x80\xae" "evil", "%E2%80%AEevil");
	check_component("caf\xe9", "caf%E9");
	check_component("", "%00");
	check_component("Sent Items", "Sent Items");
}

static void test_folder_component_distinct(void)
{
	const char *inputs[] = { "a/b", "a%2Fb", "a%252Fb", ".x", "%2Ex", "-x", "%2Dx", "", "%00",
				 "caf\xe9", "caf%E9", "\t", "%09" };
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(inputs); i++) {
		char *c = mf_folder_component(inputs[i]);

		if (g_hash_table_contains(seen, c))
			g_error("collision on \"%s\"", c);
		g_hash_table_add(seen, c);
	}
}

static void test_folder_component_long(void)
{
	g_autoptr(GString) a = g_string_new(NULL);
	g_autoptr(GString) b = NULL;
	g_autofree char *ca = NULL, *cb = NULL, *cc = NULL;

	for (int i = 0; i < 150; i++)
		g_string_append(a, "\xc3\xa9/");
	b = g_string_new(a->str);
	g_string_append_c(b, 'x');
	ca = mf_folder_component(a->str);
	cb = mf_folder_component(b->str);
	g_assert_cmpuint(strlen(ca), <=, MF_NAME_MAX);
	g_assert_cmpuint(strlen(cb), <=, MF_NAME_MAX);
	g_assert_true(mf_name_is_safe(ca));
	g_assert_true(mf_name_is_safe(cb));
	g_assert_cmpstr(ca, !=, cb);
	/* no escape or character is split before the "~hash" */
	g_assert_nonnull(strrchr(ca, '~'));
	g_assert_cmpuint(strlen(strrchr(ca, '~')), ==, 9);
	/* exactly 255 bytes stays untouched */
	g_string_truncate(a, 0);
	for (int i = 0; i < MF_NAME_MAX; i++)
		g_string_append_c(a, 'q');
	cc = mf_folder_component(a->str);
	g_assert_cmpstr(cc, ==, a->str);
}

static void test_is_safe(void)
{
	g_autoptr(GString) s = g_string_new(NULL);

	g_assert_true(mf_name_is_safe("2026-11-26 1042 A - B.1.eml"));
	g_assert_true(mf_name_is_safe("a\xe2\x88\x95" "b"));
	g_assert_false(mf_name_is_safe(NULL));
	g_assert_false(mf_name_is_safe(""));
	g_assert_false(mf_name_is_safe("."));
	g_assert_false(mf_name_is_safe(".."));
	g_assert_false(mf_name_is_safe(".x"));
	g_assert_false(mf_name_is_safe("-x"));
	g_assert_false(mf_name_is_safe("a/b"));
	g_assert_false(mf_name_is_safe("a\tb"));
	g_assert_false(mf_name_is_safe("a\x7f"));
	g_assert_false(mf_name_is_safe("a\xc2\x85"));
	g_assert_false(mf_name_is_safe("a\xe2\x80\xae"));
	g_assert_false(mf_name_is_safe("a\xe2\x81\xa6"));
	g_assert_false(mf_name_is_safe("a\xe2\x80\x8b"));
	g_assert_false(mf_name_is_safe("caf\xe9"));
	for (int i = 0; i < MF_NAME_MAX; i++)
		g_string_append_c(s, 'a');
	g_assert_true(mf_name_is_safe(s->str));
	g_string_append_c(s, 'a');
	g_assert_false(mf_name_is_safe(s->str));
}

/* Random envelopes from a seeded generator: every name is safe whatever the input. */
static void test_random(void)
{
	static const char *pieces[] = { "a", " ", "/", "\t", "\r\n", "\xc3\xa9", "e\xcc\x81",
					"\xcc\x81", "\xf0\x9f\x98\x80", "\xe2\x80\xae", "\xe2\x80\x8b",
					"\x01", "\x7f", "\xc2\x9b", "\xff", ".", "-", "%", "\xef\xbb\xbf",
					"\xf0\x9f\x87\xab", "\xe6\x97\xa5" };
	g_autoptr(GRand) r = g_rand_new_with_seed(4711);

	for (int it = 0; it < 3000; it++) {
		g_autoptr(GString) subj = g_string_new(NULL);
		g_autoptr(GString) from = g_string_new(NULL);
		g_autoptr(mf_msg_meta) m = NULL;
		g_autofree char *name = NULL;
		g_autofree char *comp = NULL;
		g_autofree char *id = g_strdup_printf("%u", g_rand_int(r));
		int n = g_rand_int_range(r, 0, 400);

		for (int i = 0; i < n; i++)
			g_string_append(subj, pieces[g_rand_int_range(r, 0, G_N_ELEMENTS(pieces))]);
		n = g_rand_int_range(r, 0, 40);
		for (int i = 0; i < n; i++)
			g_string_append(from, pieces[g_rand_int_range(r, 0, G_N_ELEMENTS(pieces))]);
		m = meta(from->str, subj->str, id);
		m->date = g_rand_int_range(r, 0, 2) ? MF_NO_DATE : g_rand_int(r);
		name = checked_name(m);
		comp = mf_folder_component(subj->str);
		g_assert_true(mf_name_is_safe(comp));
	}
}

/* Every character mf_utf8_nfc() trusts without normalising must really be safe by GLib's own
 * Unicode tables: combining class 0, its own NFC, not the second half of any canonical
 * composition (so it cannot merge with what precedes it), and decomposing to such a starter. */
static void test_nfc_stable_table(void)
{
	g_autofree guint8 *second = g_malloc0(0x110000);
	guint checked = 0;

	for (gunichar ch = 0; ch < 0x110000; ch++) {
		gunichar a, b, x;

		if (g_unichar_decompose(ch, &a, &b) && b && g_unichar_compose(a, b, &x) && x == ch)
			second[b] = 1;
	}
	for (gunichar c = 0; c < 0x110000; c++) {
		if (!mf_utf8_nfc_stable(c))
			continue;
		char buf[8];
		int n = g_unichar_to_utf8(c, buf);
		gunichar d[G_UNICHAR_MAX_DECOMPOSITION_LENGTH];
		gsize dn = g_unichar_fully_decompose(c, FALSE, d, G_N_ELEMENTS(d));

		buf[n] = '\0';
		g_autofree char *nfc = g_utf8_normalize(buf, n, G_NORMALIZE_NFC);
		g_assert_true(c != 0 && g_unichar_validate(c));
		g_assert_cmpint(g_unichar_type(c), !=, G_UNICODE_UNASSIGNED);
		g_assert_cmpint(g_unichar_combining_class(c), ==, 0);
		g_assert_cmpstr(nfc, ==, buf);
		g_assert_false(second[c]);
		g_assert_cmpuint(dn, >, 0);
		g_assert_false(second[d[0]]);
		g_assert_cmpint(g_unichar_combining_class(d[0]), ==, 0);
		checked++;
	}
	g_assert_cmpuint(checked, >, 40000);
}

/* The fast path and g_utf8_normalize agree, on stable text and on text that needs work. */
static void test_nfc_matches_glib(void)
{
	static const char *const samples[] = {
		"", "abc", "caf\xc3\xa9", "cafe\xcc\x81", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
		"\xe6\x97\xa5\xe6\x9c\xac", "\xea\xb0\x80\xe1\x86\xa8", "\xe1\x84\x80\xe1\x85\xa1",
		"\xf0\x9f\x98\x80\xe2\x80\x8d\xf0\x9f\x91\x8d", "\xe2\x84\xab", "\xcd\xb4x",
		"A\xcc\x8a\xcc\x81", "\xe3\x81\x8b\xe3\x82\x99",
	};
	GRand *r = g_rand_new_with_seed(3);

	for (gsize i = 0; i < G_N_ELEMENTS(samples); i++) {
		g_autofree char *a = mf_utf8_nfc(samples[i], -1);
		g_autofree char *b = g_utf8_normalize(samples[i], -1, G_NORMALIZE_NFC);
		g_assert_cmpstr(a, ==, b);
	}
	for (int i = 0; i < 20000; i++) {
		g_autoptr(GString) s = g_string_new(NULL);
		int n = g_rand_int_range(r, 0, 8);

		for (int j = 0; j < n; j++) {
			gunichar c = g_rand_boolean(r) ? (gunichar)g_rand_int_range(r, 1, 0x3000)
						       : (gunichar)g_rand_int_range(r, 0xAC00, 0xD7A4);
			if (g_unichar_validate(c))
				g_string_append_unichar(s, c);
		}
		g_autofree char *a = mf_utf8_nfc(s->str, (gssize)s->len);
		g_autofree char *b = g_utf8_normalize(s->str, (gssize)s->len, G_NORMALIZE_NFC);
		g_assert_cmpstr(a, ==, b);
	}
	g_rand_free(r);
}

/* Clean ASCII senders and subjects take a short cut; any other input the general path. A
 * leading control byte (which the general path turns into a space, then trims) forces the
 * general path, so both must give the same name for every string. */
static void test_ascii_fast_path(void)
{
	static const char alphabet[] = "ab /\t\x01 Z.-\x7f  x";
	g_autoptr(GRand) r = g_rand_new_with_seed(42);

	for (int it = 0; it < 20000; it++) {
		char plain[40], forced[41];
		int n = g_rand_int_range(r, 0, 30);

		for (int i = 0; i < n; i++)
			plain[i] = alphabet[g_rand_int_range(r, 0, sizeof alphabet - 1)];
		plain[n] = '\0';
		forced[0] = '\x01';
		strcpy(forced + 1, plain);
		g_autoptr(mf_msg_meta) m = mf_msg_meta_new();
		m->uid = 7;
		m->id = g_strdup("7");
		m->date = 0;
		m->from_name = g_strdup(plain);
		m->subject = g_strdup(plain);
		g_autofree char *fast = mf_make_message_name(m);
		g_free(m->from_name);
		g_free(m->subject);
		m->from_name = g_strdup(forced);
		m->subject = g_strdup(forced);
		g_autofree char *general = mf_make_message_name(m);
		g_assert_cmpstr(fast, ==, general);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	mf_mailhdr_init();
	g_test_add_func("/name/format", test_format);
	g_test_add_func("/name/dates", test_dates);
	g_test_add_func("/name/date-from-header-in-utc", test_date_from_header_in_utc);
	g_test_add_func("/name/sanitise", test_sanitise);
	g_test_add_func("/name/decoded-hostile-subjects", test_decoded_hostile_subjects);
	g_test_add_func("/name/long-subject", test_long_subject);
	g_test_add_func("/name/long-sender", test_long_sender);
	g_test_add_func("/name/cut-emoji", test_cut_emoji);
	g_test_add_func("/name/cut-combining", test_cut_combining);
	g_test_add_func("/name/cut-flags", test_cut_flags);
	g_test_add_func("/name/long-id", test_long_id);
	g_test_add_func("/name/hostile-id", test_hostile_id);
	g_test_add_func("/name/determinism-and-uniqueness", test_determinism_and_uniqueness);
	g_test_add_func("/name/folder-component", test_folder_component);
	g_test_add_func("/name/folder-component-distinct", test_folder_component_distinct);
	g_test_add_func("/name/folder-component-long", test_folder_component_long);
	g_test_add_func("/name/is-safe", test_is_safe);
	g_test_add_func("/name/random", test_random);
	g_test_add_func("/name/nfc-stable-table", test_nfc_stable_table);
	g_test_add_func("/name/nfc-matches-glib", test_nfc_matches_glib);
	g_test_add_func("/name/ascii-fast-path", test_ascii_fast_path);
	return g_test_run();
}
