/* Modified UTF-7 (RFC 3501 section 5.1.3), written by hand rather than through iconv's
 * UTF-7-IMAP: that converter is lenient (it accepts unterminated shifts and encoded ASCII), so
 * two distinct server names could decode to one display name, and it is missing outside glibc.
 * Here every accepted input is the one canonical encoding of its output. */
#include "mutf7.h"

#include <string.h>

static const char mutf7_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int mutf7_sextet(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(mutf7_alphabet, c);
	return p ? (int)(p - mutf7_alphabet) : -1;
}

/* Characters that must stand for themselves (RFC 3501: 0x20-0x25, 0x27-0x7e); '&' is "&-". */
static gboolean mutf7_is_direct(gunichar c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Decode the base64 run in [p, end) and append its UTF-8 to out. */
static gboolean mutf7_decode_shift(const char *p, const char *end, GString *out)
{
	guint32 bits = 0;
	int nbits = 0;
	gunichar high = 0;
	gsize units = 0;

	for (; p < end; p++) {
		int v = mutf7_sextet(*p);

		if (v < 0)
			return FALSE;
		bits = (bits << 6) | (guint32)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		gunichar u = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		units++;
		if (high) {
			if (u < 0xdc00 || u > 0xdfff)
				return FALSE;
			g_string_append_unichar(out, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
			high = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			high = u;
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			return FALSE;
		} else if (u == 0 || mutf7_is_direct(u)) {
			/* NUL cannot live in a C string; printable ASCII must not be encoded. */
			return FALSE;
		} else {
			g_string_append_unichar(out, u);
		}
	}
	/* Leftover bits: fewer than one sextet's worth and all zero, or the encoding is not the
	 * shortest one (or an odd number of bytes was encoded). */
	return units > 0 && high == 0 && nbits < 6 && bits == 0;
}

char *mf_mutf7_decode(const char *in)
{
	g_autoptr(GString) out = g_string_new(NULL);
	gboolean after_shift = FALSE;
	const char *p = in;

	if (!in)
		return NULL;
	while (*p) {
		if (*p != '&') {
			if (!mutf7_is_direct((guchar)*p))
				return NULL;
			g_string_append_c(out, *p++);
			after_shift = FALSE;
			continue;
		}
		if (p[1] == '-') {
			g_string_append_c(out, '&');
			p += 2;
			after_shift = FALSE;
			continue;
		}
		/* Two adjacent shifts encode what one shift would: a null shift. */
		if (after_shift)
			return NULL;
		const char *end = strchr(p + 1, '-');
		if (!end || !mutf7_decode_shift(p + 1, end, out))
			return NULL;
		p = end + 1;
		after_shift = TRUE;
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static void mutf7_encode_run(const gunichar *run, gsize n, GString *out)
{
	guint32 bits = 0;
	int nbits = 0;

	g_string_append_c(out, '&');
	for (gsize i = 0; i < n; i++) {
		guint16 units[2];
		int nu = 0;

		if (run[i] >= 0x10000) {
			units[nu++] = 0xd800 + ((run[i] - 0x10000) >> 10);
			units[nu++] = 0xdc00 + ((run[i] - 0x10000) & 0x3ff);
		} else {
			units[nu++] = run[i];
		}
		for (int k = 0; k < nu; k++) {
			bits = (bits << 16) | units[k];
			nbits += 16;
			while (nbits >= 6) {
				nbits -= 6;
				g_string_append_c(out, mutf7_alphabet[(bits >> nbits) & 0x3f]);
			}
			bits &= (1u << nbits) - 1;
		}
	}
	if (nbits > 0)
		g_string_append_c(out, mutf7_alphabet[(bits << (6 - nbits)) & 0x3f]);
	g_string_append_c(out, '-');
}

char *mf_mutf7_encode(const char *in)
{
	g_autoptr(GString) out = NULL;
	g_autofree gunichar *chars = NULL;
	glong n = 0;

	if (!in || !g_utf8_validate(in, -1, NULL))
		return NULL;
	chars = g_utf8_to_ucs4_fast(in, -1, &n);
	out = g_string_sized_new((gsize)n + 8);
	for (glong i = 0; i < n;) {
		if (chars[i] == '&') {
			g_string_append(out, "&-");
			i++;
		} else if (mutf7_is_direct(chars[i])) {
			g_string_append_c(out, (char)chars[i]);
			i++;
		} else {
			glong j = i;

			while (j < n && !mutf7_is_direct(chars[j]))
				j++;
			mutf7_encode_run(chars + i, (gsize)(j - i), out);
			i = j;
		}
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}
