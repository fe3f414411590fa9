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

/* Sanitised, whitespace-collapsed, trimmed NFC text; "" if nothing visible is left. */
static char *name_sanitise(const char *in)
{
	g_autofree char *valid = NULL;
	g_autoptr(GString) out = NULL;
	gboolean space = FALSE;

	if (!in)
		return g_strdup("");
	valid = g_utf8_make_valid(in, -1);
	out = g_string_sized_new(strlen(valid));
	for (const char *p = valid; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (name_is_invisible(c))
			continue;
		if (name_is_control(c) || g_unichar_isspace(c)) {
			space = TRUE;
			continue;
		}
		if (space && out->len)
			g_string_append_c(out, ' ');
		space = FALSE;
		if (c == '/')
			g_string_append(out, "\xe2\x88\x95"); /* U+2215 DIVISION SLASH */
		else
			g_string_append_unichar(out, c);
	}
	/* Pure ASCII is already NFC; skipping the normaliser matters when naming 10,000 files. */
	for (const char *p = out->str; *p; p++)
		if ((guchar)*p >= 0x80)
			return g_utf8_normalize(out->str, -1, G_NORMALIZE_NFC);
	return g_string_free(g_steal_pointer(&out), FALSE);
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

/* Cut s in place to fit max bytes, then drop the whitespace the cut may leave at the end. */
static void name_cut(char *s, gsize max)
{
	s[name_fit(s, max)] = '\0';
	g_strchomp(s);
}

static void name_append_hash(GString *out, const char *what)
{
	g_autofree char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, what, -1);

	g_string_append_printf(out, "~%.*s", NAME_HASH_HEX, sum);
}

/* The id as it appears in the name. Backends hand in safe ids; this only guards against one
 * that is not (a '/' or control byte would corrupt the path, a huge one the length). */
static char *name_safe_id(const mf_msg_meta *m)
{
	g_autoptr(GString) out = g_string_new(NULL);
	const char *id = m->id && *m->id ? m->id : NULL;
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
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static void name_append_date(GString *out, const mf_msg_meta *m)
{
	gint64 t = m->date != MF_NO_DATE ? m->date : m->internaldate;
	g_autoptr(GDateTime) dt = NULL;

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

char *mf_make_message_name(const mf_msg_meta *m)
{
	g_autoptr(GString) out = g_string_sized_new(MF_NAME_MAX + 1);
	g_autofree char *sender = name_sanitise(m->from_name);
	g_autofree char *subject = name_sanitise(m->subject);
	g_autofree char *id = name_safe_id(m);
	gsize fixed, room;

	name_append_date(out, m);
	/* date, " ", " - ", ".", id, ".eml" */
	fixed = out->len + 1 + 3 + 1 + strlen(id) + 4;
	room = MF_NAME_MAX - fixed;

	name_cut(sender, MIN(NAME_SENDER_MAX, room / 2));
	if (!*sender) {
		g_free(sender);
		sender = g_strdup("(no sender)");
	}
	if (!*subject) {
		g_free(subject);
		subject = g_strdup("(no subject)");
	}
	name_cut(subject, room - strlen(sender));
	g_string_append_printf(out, " %s - %s.%s.eml", sender, subject, id);
	/* The date comes first, so this cannot happen; a hidden or option-like name must not
	 * slip out if that ever changes. */
	if (out->str[0] == '.' || out->str[0] == '-')
		out->str[0] = '_';
	return g_string_free(g_steal_pointer(&out), FALSE);
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
