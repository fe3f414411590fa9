/* File and directory names.
 *
 * A message file is named
 *
 *	YYYY-MM-DD HHMM <sender> - <subject>.<id>.eml
 *	2026-11-26 1042 Alice Smith - Lunch on Friday.4711.eml
 *
 * - The date is the Date: header if it was plausible, else INTERNALDATE, else
 *   "0000-00-00 0000"; always UTC, so that `ls` order is time order in every time zone.
 * - <sender> is the display name of the first From address (else its address), at most 40
 *   bytes, or "(no sender)". <subject> is the decoded subject with Re:/Fwd: kept so that the
 *   directory reads like the inbox, or "(no subject)".
 * - Both are sanitised: controls and line breaks become spaces, bidi and zero-width
 *   characters (which can make `ls` lie about a name) are removed, '/' becomes U+2215
 *   DIVISION SLASH, whitespace runs collapse, the ends are trimmed, and the text is NFC so
 *   that equal-looking subjects give equal bytes.
 * - <id> is the backend's unique id (IMAP UID, escaped POP3 UIDL), which makes names unique;
 *   ".<id>.eml" is never cut. The subject is cut to keep the whole name within NAME_MAX (255
 *   bytes), on a character boundary and before a base character rather than between it and
 *   its combining marks.
 * - The name depends only on the envelope and the id, never on flags or on the clock, so it
 *   is stable across mounts (rsync and tar see no renames).
 *
 * Folder components escape instead of replacing, because two server folders must never map
 * to one directory: '%', '/', controls, bidi and zero-width characters become %XX (per UTF-8
 * byte), as does a leading '.' or '-'; a component too long for NAME_MAX is cut and gets "~"
 * and 8 hex digits of a SHA-256 of the whole name. */
#include "name.h"

#include <string.h>

#include "memo.h"

#define NAME_SENDER_MAX 40
/* Longest id kept verbatim; a longer one is cut and hashed so sender and subject keep room. */
#define NAME_ID_MAX 200
#define NAME_HASH_HEX 8

static gboolean name_is_invisible(gunichar c)
{
	return c == 0x200e || c == 0x200f || c == 0x061c || (c >= 0x202a && c <= 0x202e) ||
	       (c >= 0x2066 && c <= 0x2069) || (c >= 0x200b && c <= 0x200d) || c == 0x2060 ||
	       c == 0xfeff;
}

static gboolean name_is_control(gunichar c)
{
	return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f);
}

static gboolean name_is_regional_indicator(gunichar c)
{
	return c >= 0x1f1e6 && c <= 0x1f1ff;
}

/* ---- NFC ------------------------------------------------------------------------------- */

/* Characters that NFC leaves alone and that never combine with a neighbour: canonical
 * combining class 0, their own NFC, not the second half of any canonical composition, and
 * decomposing (if at all) to a starter that is not one either. A string made only of these is
 * in NFC already (test_name.c checks every one against GLib's tables). It covers Latin,
 * Greek, Cyrillic, Armenian, Hebrew, Arabic letters, Thai, CJK, kana, Hangul syllables,
 * punctuation, symbols and emoji, so g_utf8_normalize() is needed only for the rest. */
static const struct {
	gunichar lo, hi;
} name_nfc_stable[] = {
	{ 0x0001, 0x02FF }, { 0x03A3, 0x0482 }, { 0x0488, 0x052F }, { 0x0531, 0x0556 },
	{ 0x0559, 0x058A }, { 0x05D0, 0x05EA }, { 0x061B, 0x064A }, { 0x0671, 0x06D5 },
	{ 0x0E01, 0x0E37 }, { 0x1E00, 0x1F15 }, { 0x2002, 0x2064 }, { 0x20A0, 0x20C0 },
	{ 0x2100, 0x2125 }, { 0x212C, 0x218B }, { 0x2190, 0x2328 }, { 0x232B, 0x2426 },
	{ 0x2460, 0x2ADB }, { 0x2ADD, 0x2B73 }, { 0x3000, 0x3029 }, { 0x3041, 0x3096 },
	{ 0x309B, 0x30FF }, { 0x3131, 0x318E }, { 0x3220, 0xA48C }, { 0xAC00, 0xD7A3 },
	{ 0xFDF0, 0xFE19 }, { 0xFE30, 0xFE52 }, { 0xFF01, 0xFFBE }, { 0x1F100, 0x1F1AD },
	{ 0x1F1E6, 0x1F202 }, { 0x1F300, 0x1F6D7 }, { 0x1F900, 0x1FA53 },
};

static gboolean name_nfc_is_stable(gunichar c)
{
	gsize lo = 0, hi = G_N_ELEMENTS(name_nfc_stable);

	while (lo < hi) {
		gsize mid = (lo + hi) / 2;

		if (c < name_nfc_stable[mid].lo)
			hi = mid;
		else if (c > name_nfc_stable[mid].hi)
			lo = mid + 1;
		else
			return TRUE;
	}
	return FALSE;
}

gboolean mf_utf8_nfc_stable(gunichar c)
{
	return name_nfc_is_stable(c);
}

char *mf_utf8_nfc(const char *s, gssize len)
{
	gsize n = len < 0 ? strlen(s) : (gsize)len;

	for (const char *p = s; p < s + n; p = g_utf8_next_char(p))
		if ((guchar)*p >= 0x80 && !name_nfc_is_stable(g_utf8_get_char(p)))
			return g_utf8_normalize(s, (gssize)n, G_NORMALIZE_NFC);
	return g_strndup(s, n);
}

/* ---- message names ---------------------------------------------------------------------- */

/* name_append_sanitised for pure ASCII, which needs no UTF-8 decoding or normalising: the
 * common case, and a hot path when naming 10,000 files. */
static void name_append_ascii(GString *out, const char *in, gsize len)
{
	/* Most senders and subjects are already clean: single inner spaces, no controls, no '/'. */
	gboolean clean = len > 0 && in[0] != ' ' && in[len - 1] != ' ';
	for (gsize i = 0; clean && i < len; i++) {
		char c = in[i];
		clean = c == ' ' ? in[i + 1] != ' ' : !name_is_control((guchar)c) && !g_ascii_isspace(c) &&
							c != '/';
	}
	if (clean) {
		g_string_append_len(out, in, (gssize)len);
		return;
	}
	gsize start = out->len;
	gboolean space = FALSE;

	for (const char *p = in; *p; p++) {
		char c = *p;

		if (name_is_control((guchar)c) || g_ascii_isspace(c)) {
			space = TRUE;
			continue;
		}
		if (space && out->len > start)
			g_string_append_c(out, ' ');
		space = FALSE;
		if (c == '/')
			g_string_append(out, "\xe2\x88\x95"); /* U+2215 DIVISION SLASH, NFC as it is */
		else
			g_string_append_c(out, c);
	}
}

/* Sanitised, whitespace-collapsed, trimmed NFC text; "" if nothing visible is left. */
static char *name_sanitise(const char *in)
{
	g_autofree char *repaired = NULL;
	g_autoptr(GString) out = NULL;
	gboolean space = FALSE;
	const char *valid = in;
	gsize len = strlen(in);

	if (!g_utf8_validate(in, (gssize)len, NULL))
		valid = repaired = g_utf8_make_valid(in, (gssize)len);
	out = g_string_sized_new(strlen(valid));
	for (const char *p = valid; *p;) {
		gunichar c = g_utf8_get_char(p);
		const char *next = g_utf8_next_char(p);

		if (name_is_invisible(c)) {
			p = next;
			continue;
		}
		if (name_is_control(c) || (c < 0x80 ? g_ascii_isspace((char)c) : g_unichar_isspace(c))) {
			space = TRUE;
			p = next;
			continue;
		}
		if (space && out->len)
			g_string_append_c(out, ' ');
		space = FALSE;
		if (c == '/')
			g_string_append(out, "\xe2\x88\x95"); /* U+2215 DIVISION SLASH */
		else /* valid UTF-8: the character's own bytes are its encoding */
			g_string_append_len(out, p, next - p);
		p = next;
	}
	/* Pure ASCII is already NFC; skipping the normaliser matters when naming 10,000 files. */
	for (const char *p = out->str; *p; p++)
		if ((guchar)*p >= 0x80)
			return mf_utf8_nfc(out->str, (gssize)out->len);
	return g_string_free(g_steal_pointer(&out), FALSE);
}

#define NAME_MEMO_MAX 4096

/* The sanitised form of `in` (see name_sanitise), appended to out. */
static void name_append_sanitised(GString *out, const char *in)
{
	gsize len = 0;

	if (!in)
		return;
	while (in[len] && (guchar)in[len] < 0x80)
		len++;
	if (!in[len]) {
		name_append_ascii(out, in, len);
		return;
	}
	/* Senders and thread subjects recur: each distinct one is sanitised (and normalised,
	 * the costly part) once. */
	static mf_memo *memo;

	if (g_once_init_enter(&memo))
		g_once_init_leave(&memo, mf_memo_new(NAME_MEMO_MAX));
	g_autofree char *s = mf_memo_get(memo, in);

	if (!s)
		s = mf_memo_put(memo, in, name_sanitise(in));
	g_string_append(out, s);
}

/* Bytes of the longest prefix of s that fits in max bytes without splitting a character, a
 * base character from its combining marks, or a regional-indicator (flag) pair. */
static gsize name_fit(const char *s, gsize max)
{
	gsize len = strlen(s);
	const char *p, *q, *r;
	gsize pairs = 0;

	if (len <= max)
		return len;
	p = s + max;
	while (p > s && ((guchar)*p & 0xc0) == 0x80)
		p--;
	q = p;
	while (q > s && g_unichar_ismark(g_utf8_get_char(q)))
		q = g_utf8_find_prev_char(s, q);
	if (q > s && name_is_regional_indicator(g_utf8_get_char(q))) {
		for (r = q; r > s;) {
			const char *prev = g_utf8_find_prev_char(s, r);

			if (!name_is_regional_indicator(g_utf8_get_char(prev)))
				break;
			pairs++;
			r = prev;
		}
		if (pairs % 2)
			q = g_utf8_find_prev_char(s, q);
	}
	return (gsize)((q > s ? q : p) - s);
}

/* Cut out's text from `start` on to fit max bytes, then drop the whitespace the cut may leave
 * at the end. */
static void name_cut(GString *out, gsize start, gsize max)
{
	g_string_truncate(out, start + name_fit(out->str + start, max));
	while (out->len > start && g_ascii_isspace(out->str[out->len - 1]))
		g_string_truncate(out, out->len - 1);
}

static void name_append_hash(GString *out, const char *what)
{
	g_autofree char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, what, -1);

	g_string_append_printf(out, "~%.*s", NAME_HASH_HEX, sum);
}

/* The id as it appears in the name: m->id itself, or an escaped copy in *escaped. Backends
 * hand in safe ids; this only guards against one that is not (a '/' or control byte would
 * corrupt the path, a huge one the length). */
static const char *name_safe_id(const mf_msg_meta *m, char **escaped)
{
	const char *id = m->id && *m->id ? m->id : NULL;
	gsize n = 0;

	/* An IMAP UID needs no escaping: the common case. */
	while (id && id[n] > 0x20 && id[n] < 0x7f && id[n] != '/')
		n++;
	if (id && !id[n] && n <= NAME_ID_MAX)
		return id;
	g_autoptr(GString) out = g_string_new(NULL);
	g_autofree char *uid = id ? NULL : g_strdup_printf("%u", m->uid);

	for (const guchar *p = (const guchar *)(id ? id : uid); *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '/')
			g_string_append_printf(out, "%%%02X", *p);
		else
			g_string_append_c(out, (char)*p);
	}
	if (out->len > NAME_ID_MAX) {
		gsize keep = NAME_ID_MAX - 1 - NAME_HASH_HEX;

		if (out->str[keep - 1] == '%')
			keep -= 1;
		else if (out->str[keep - 2] == '%')
			keep -= 2;
		g_string_truncate(out, keep);
		name_append_hash(out, id ? id : uid);
	}
	return *escaped = g_string_free(g_steal_pointer(&out), FALSE);
}

static void name_append_digits(GString *out, gint64 v, int width)
{
	char buf[8];

	for (int i = width - 1; i >= 0; i--, v /= 10)
		buf[i] = (char)('0' + v % 10);
	g_string_append_len(out, buf, width);
}

/* The civil date of a day count since 1970-01-01 (era arithmetic, proleptic Gregorian). */
static void name_civil_from_days(gint64 z, gint64 *y, int *m, int *d)
{
	z += 719468;
	gint64 era = (z >= 0 ? z : z - 146096) / 146097;
	gint64 doe = z - era * 146097;
	gint64 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	gint64 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	gint64 mp = (5 * doy + 2) / 153;

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* 1970-01-01 up to the last second of 9999, where GDateTime would agree. */
#define NAME_FAST_DATE_MAX G_GINT64_CONSTANT(253402300799)

static void name_append_date(GString *out, const mf_msg_meta *m)
{
	gint64 t = m->date != MF_NO_DATE ? m->date : m->internaldate;
	g_autoptr(GDateTime) dt = NULL;

	if (t >= 0 && t <= NAME_FAST_DATE_MAX) {
		gint64 y, secs = t % 86400;
		int mon, day;

		name_civil_from_days(t / 86400, &y, &mon, &day);
		name_append_digits(out, y, 4);
		g_string_append_c(out, '-');
		name_append_digits(out, mon, 2);
		g_string_append_c(out, '-');
		name_append_digits(out, day, 2);
		g_string_append_c(out, ' ');
		name_append_digits(out, secs / 3600, 2);
		name_append_digits(out, secs / 60 % 60, 2);
		return;
	}
	if (t != MF_NO_DATE)
		dt = g_date_time_new_from_unix_utc(t);
	if (!dt) {
		g_string_append(out, "0000-00-00 0000");
		return;
	}
	g_string_append_printf(out, "%04d-%02d-%02d %02d%02d", g_date_time_get_year(dt),
			       g_date_time_get_month(dt), g_date_time_get_day_of_month(dt),
			       g_date_time_get_hour(dt), g_date_time_get_minute(dt));
}

static void name_scratch_free(gpointer s)
{
	g_string_free(s, TRUE);
}

/* Names are made ten thousand at a time: each thread builds them in one buffer of its own. */
static GPrivate name_scratch = G_PRIVATE_INIT(name_scratch_free);

char *mf_make_message_name(const mf_msg_meta *m)
{
	GString *out = g_private_get(&name_scratch);
	g_autofree char *escaped_id = NULL;
	const char *id = name_safe_id(m, &escaped_id);
	gsize fixed, room, at;

	if (!out) {
		out = g_string_sized_new(2 * MF_NAME_MAX);
		g_private_set(&name_scratch, out);
	}
	g_string_truncate(out, 0);
	name_append_date(out, m);
	/* date, " ", " - ", ".", id, ".eml" */
	fixed = out->len + 1 + 3 + 1 + strlen(id) + 4;
	room = MF_NAME_MAX - fixed;

	g_string_append_c(out, ' ');
	at = out->len;
	name_append_sanitised(out, m->from_name);
	name_cut(out, at, MIN(NAME_SENDER_MAX, room / 2));
	if (out->len == at)
		g_string_append(out, "(no sender)");
	gsize sender = out->len - at;

	g_string_append(out, " - ");
	at = out->len;
	name_append_sanitised(out, m->subject);
	if (out->len == at)
		g_string_append(out, "(no subject)");
	name_cut(out, at, room - sender);
	g_string_append_c(out, '.');
	g_string_append(out, id);
	g_string_append(out, ".eml");
	/* The date comes first, so this cannot happen; a hidden or option-like name must not
	 * slip out if that ever changes. */
	if (out->str[0] == '.' || out->str[0] == '-')
		out->str[0] = '_';
	/* Kept for the life of the mount, ten thousand at a time: no spare capacity. */
	char *name = g_strndup(out->str, out->len);

	/* A megabyte subject is cut to a name; the buffer it needed is not kept. */
	if (out->allocated_len > 16 * MF_NAME_MAX)
		g_private_replace(&name_scratch, g_string_sized_new(2 * MF_NAME_MAX));
	return name;
}

static gboolean name_needs_escape(gunichar c)
{
	return c == '%' || c == '/' || name_is_control(c) || name_is_invisible(c);
}

char *mf_folder_component(const char *decoded)
{
	g_autoptr(GString) out = g_string_new(NULL);
	gsize cut = 0;

	/* No folder has an empty name; "%00" cannot be the escape of anything else. */
	if (!decoded || !*decoded)
		return g_strdup("%00");
	for (const char *p = decoded; *p;) {
		gunichar c = g_utf8_get_char_validated(p, -1);
		gsize n = c == (gunichar)-1 || c == (gunichar)-2 ? 1 : (gsize)g_utf8_skip[(guchar)*p];
		gboolean escape = n == 1 && (guchar)*p >= 0x80;

		escape = escape || name_needs_escape(c) || (p == decoded && (c == '.' || c == '-'));
		for (gsize i = 0; i < n; i++) {
			if (escape)
				g_string_append_printf(out, "%%%02X", (guchar)p[i]);
			else
				g_string_append_c(out, p[i]);
		}
		p += n;
		if (out->len <= MF_NAME_MAX - 1 - NAME_HASH_HEX)
			cut = out->len;
	}
	if (out->len > MF_NAME_MAX) {
		g_string_truncate(out, cut);
		name_append_hash(out, decoded);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

gboolean mf_name_is_safe(const char *name)
{
	gsize len;

	if (!name)
		return FALSE;
	len = strlen(name);
	if (len == 0 || len > MF_NAME_MAX || !g_utf8_validate(name, (gssize)len, NULL))
		return FALSE;
	if (name[0] == '.' || name[0] == '-')
		return FALSE;
	for (const char *p = name; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c == '/' || name_is_control(c) || name_is_invisible(c))
			return FALSE;
	}
	return TRUE;
}
