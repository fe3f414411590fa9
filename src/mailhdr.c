/* Header decoding on top of GMime. GMime does the hard parts (RFC 2047 with charset aliases
 * such as ks_c_5601-1987, address lists, date syntax); this file adds what file names need:
 * lenient options, a UTF-8 + NFC guarantee, RFC 5322's rules for obsolete dates that GMime
 * reads differently, and a plausibility window for dates. */
#include "mailhdr.h"
#include "memo.h"
#include "name.h"

#include <stdlib.h>
#include <string.h>
#include <gmime/gmime.h>

/* Earliest plausible Date: (1970-01-02); earlier stamps are zeroed or broken clocks. */
#define MAILHDR_MIN_DATE 86400
#define MAILHDR_FUTURE_SLACK 86400

static GMimeParserOptions *mailhdr_options;

/* glibc loads a charset's converter (a shared object) on iconv_open and unloads it soon after
 * the last iconv_close, so decoding 10,000 KOI8-R subjects one by one would dlopen() the same
 * module thousands of times: a third of the CPU time of listing a big folder. Holding one
 * descriptor per charset open keeps each module loaded for the life of the process. */
#define MAILHDR_MAX_PINNED 64
static GMutex mailhdr_pin_lock;
static GHashTable *mailhdr_pinned; /* lower-case charset -> GIConv (or (GIConv)-1: unknown) */

static void mailhdr_pin_charset(const char *charset, gsize len)
{
	g_autofree char *name = g_ascii_strdown(charset, len);
	g_mutex_lock(&mailhdr_pin_lock);
	if (!g_hash_table_contains(mailhdr_pinned, name) &&
	    g_hash_table_size(mailhdr_pinned) < MAILHDR_MAX_PINNED) {
		GIConv cd = g_mime_iconv_open("UTF-8", name);
		g_hash_table_insert(mailhdr_pinned, g_steal_pointer(&name), cd);
	}
	g_mutex_unlock(&mailhdr_pin_lock);
}

/* Pin the charset of every encoded word ("=?charset?" or "=?charset*lang?") in raw. */
static void mailhdr_pin_charsets_of(const char *raw)
{
	for (const char *p = strstr(raw, "=?"); p; p = strstr(p, "=?")) {
		p += 2;
		gsize n = strcspn(p, "?* \t\r\n");
		if (n > 0 && n < 64 && p[n] != '\0')
			mailhdr_pin_charset(p, n);
	}
}

/* Each encoded word costs GMime an iconv_open; senders and thread subjects recur. */
#define MAILHDR_MEMO_MAX 4096
static mf_memo *mailhdr_memo_text, *mailhdr_memo_phrase;

static gpointer mailhdr_init_once(gpointer unused)
{
	/* Raw 8-bit text is tried as UTF-8 first; windows-1252 is the usual truth behind a
	 * "latin-1" byte, and iso-8859-1 accepts every byte so decoding never fails. */
	static const char *fallback[] = { "UTF-8", "windows-1252", "iso-8859-1", NULL };

	g_mime_init();
	mailhdr_options = g_mime_parser_options_new();
	g_mime_parser_options_set_rfc2047_compliance_mode(mailhdr_options, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_address_compliance_mode(mailhdr_options, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(mailhdr_options, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_fallback_charsets(mailhdr_options, fallback);
	mailhdr_pinned = g_hash_table_new(g_str_hash, g_str_equal);
	mailhdr_memo_text = mf_memo_new(MAILHDR_MEMO_MAX);
	mailhdr_memo_phrase = mf_memo_new(MAILHDR_MEMO_MAX);
	for (const char **c = fallback; *c; c++)
		mailhdr_pin_charset(*c, strlen(*c));
	return NULL;
}

void mf_mailhdr_init(void)
{
	static GOnce once = G_ONCE_INIT;

	g_once(&once, mailhdr_init_once, NULL);
}

/* Take ownership of s (any bytes, or NULL) and return valid, NFC-normalised, trimmed UTF-8. */
static char *mailhdr_clean_utf8(char *s)
{
	g_autofree char *owned = s;
	gboolean ascii = TRUE;
	for (const char *p = owned ? owned : ""; *p && ascii; p++)
		ascii = (guchar)*p < 0x80;
	if (ascii) /* already valid UTF-8 and NFC: the common case, and a hot path */
		return g_strstrip(owned ? g_steal_pointer(&owned) : g_strdup(""));
	g_autofree char *valid = g_utf8_make_valid(owned, -1);
	char *nfc = mf_utf8_nfc(valid, -1);

	return g_strstrip(nfc ? nfc : g_steal_pointer(&valid));
}

/* Raw header bytes that are not UTF-8 are converted with the fallback charsets before
 * anything else looks at them, so 8-bit Latin-1 stays readable. */
static char *mailhdr_to_utf8(const char *raw)
{
	if (g_utf8_validate(raw, -1, NULL))
		return g_strdup(raw);
	return g_mime_utils_decode_8bit(mailhdr_options, raw, strlen(raw));
}

/* Printable ASCII with no encoded word in it: GMime would hand it back unchanged, so the
 * common subject or name skips unfolding, decoding and UTF-8 checks altogether. */
static gboolean mailhdr_is_plain(const char *s)
{
	for (const char *p = s; *p; p++) {
		if ((guchar)*p < 0x20 || (guchar)*p > 0x7e)
			return FALSE;
		if (p[0] == '=' && p[1] == '?')
			return FALSE;
	}
	return TRUE;
}

char *mf_decode_text(const char *raw)
{
	g_autofree char *unfolded = NULL;

	if (!raw)
		return NULL;
	if (mailhdr_is_plain(raw))
		return g_strstrip(g_strdup(raw));
	mf_mailhdr_init();
	char *known = mf_memo_get(mailhdr_memo_text, raw);
	if (known)
		return known;
	mailhdr_pin_charsets_of(raw);
	unfolded = g_mime_utils_header_unfold(raw);
	return mf_memo_put(mailhdr_memo_text, raw,
				mailhdr_clean_utf8(g_mime_utils_header_decode_text(mailhdr_options, unfolded)));
}

/* A display name that is entirely one quoted-string loses its quotes and backslashes. Quotes
 * inside a name (Bob "The" Builder, as IMAP servers pass them) are part of the name. */
static char *mailhdr_unquote_whole(const char *s)
{
	gsize len = strlen(s);
	GString *out;

	if (len < 2 || s[0] != '"' || s[len - 1] != '"')
		return g_strdup(s);
	out = g_string_sized_new(len);
	for (gsize i = 1; i < len - 1; i++) {
		if (s[i] == '\\' && i + 1 < len - 1) {
			i++;
		} else if (s[i] == '"') {
			/* "a" b "c": several words, not one quoted-string; keep as is. */
			g_string_free(out, TRUE);
			return g_strdup(s);
		}
		g_string_append_c(out, s[i]);
	}
	return g_string_free(out, FALSE);
}

char *mf_decode_phrase(const char *raw)
{
	g_autofree char *utf8 = NULL;
	g_autofree char *unfolded = NULL;
	g_autofree char *unquoted = NULL;

	if (!raw)
		return NULL;
	/* Quotes would need unquoting; anything else plain comes back as it went in. */
	if (!strchr(raw, '"') && mailhdr_is_plain(raw))
		return g_strstrip(g_strdup(raw));
	mf_mailhdr_init();
	char *known = mf_memo_get(mailhdr_memo_phrase, raw);
	if (known)
		return known;
	mailhdr_pin_charsets_of(raw);
	utf8 = mailhdr_to_utf8(raw);
	unfolded = g_mime_utils_header_unfold(utf8);
	g_strstrip(unfolded);
	unquoted = mailhdr_unquote_whole(unfolded);
	return mf_memo_put(mailhdr_memo_phrase, raw,
				mailhdr_clean_utf8(g_mime_utils_header_decode_text(mailhdr_options, unquoted)));
}

/* Rewrite the parts of an RFC 5322 date that GMime reads differently from RFC 5322 section 4.3:
 * comments are dropped, a 2-digit year is 00-49 -> 20xx and 50-99 -> 19xx, a 3-digit year is
 * + 1900, and a one-letter military zone is unreliable and means -0000. */
static char *mailhdr_normalise_date(const char *raw)
{
	static const char *months[] = { "jan", "feb", "mar", "apr", "may", "jun",
					"jul", "aug", "sep", "oct", "nov", "dec" };
	g_autoptr(GString) plain = g_string_new(NULL);
	g_autoptr(GString) out = g_string_new(NULL);
	g_auto(GStrv) tokens = NULL;
	int depth = 0;
	gboolean year_next = FALSE;
	gboolean day_before = FALSE;

	for (const char *p = raw; *p; p++) {
		if (*p == '\\' && depth > 0 && p[1]) {
			p++;
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')' && depth > 0) {
			depth--;
			g_string_append_c(plain, ' ');
		} else if (depth == 0) {
			g_string_append_c(plain, (*p == '\t' || *p == '\r' || *p == '\n') ? ' ' : *p);
		}
	}
	tokens = g_strsplit(g_strstrip(plain->str), " ", -1);
	for (int i = 0; tokens[i]; i++) {
		const char *t = tokens[i];
		gsize len = strlen(t);
		gboolean last = TRUE;

		if (!len)
			continue;
		for (int j = i + 1; tokens[j]; j++)
			if (*tokens[j])
				last = FALSE;
		if (out->len)
			g_string_append_c(out, ' ');
		if (year_next && (len == 2 || len == 3) && g_ascii_isdigit(t[0]) &&
		    g_ascii_isdigit(t[1]) && (len == 2 || g_ascii_isdigit(t[2]))) {
			int y = atoi(t);

			y += len == 3 ? 1900 : (y < 50 ? 2000 : 1900);
			g_string_append_printf(out, "%d", y);
		} else if (len == 1 && g_ascii_isalpha(t[0]) && out->len > 0 && last) {
			g_string_append(out, "-0000");
		} else {
			g_string_append(out, t);
		}
		/* Only "day month year" order: in asctime's "Nov 26 10:42:00 2026" the number
		 * after the month is the day. */
		year_next = FALSE;
		for (gsize m = 0; m < G_N_ELEMENTS(months); m++)
			if (day_before && g_ascii_strncasecmp(t, months[m], 3) == 0)
				year_next = TRUE;
		day_before = len <= 2 && g_ascii_isdigit(t[0]) && g_ascii_isdigit(t[len - 1]);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static gboolean mailhdr_digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!g_ascii_isdigit((*s)[i]))
			return FALSE;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	*out = v;
	return TRUE;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic). */
static gint64 mailhdr_days_from_civil(gint64 y, int m, int d)
{
	y -= m <= 2;
	gint64 era = (y >= 0 ? y : y - 399) / 400;
	gint64 yoe = y - era * 400;
	gint64 doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	gint64 doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/* The form nearly every Date: has, "Sun, 28 Dec 2025 22:01:57 +0200" (weekday and a trailing
 * simple comment optional), read directly; FALSE sends anything else, or any field out of
 * range, the long way through GMime, which gives the same answer for this form. */
static gboolean mailhdr_fast_date(const char *s, gint64 *out)
{
	static const char days[7][4] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int day, mon = -1, year, hh, mm, ss, zh, zm;

	if (g_ascii_isalpha(s[0])) {
		gboolean known = FALSE;

		for (int i = 0; i < 7 && !known; i++)
			known = strncmp(s, days[i], 3) == 0;
		if (!known || s[3] != ',' || s[4] != ' ')
			return FALSE;
		s += 5;
	}
	if (!g_ascii_isdigit(s[0]) || !mailhdr_digits(&s, g_ascii_isdigit(s[1]) ? 2 : 1, &day) ||
	    *s++ != ' ')
		return FALSE;
	for (int i = 0; i < 12 && mon < 0; i++)
		if (strncmp(s, months[i], 3) == 0)
			mon = i;
	if (mon < 0 || s[3] != ' ')
		return FALSE;
	s += 4;
	if (!mailhdr_digits(&s, 4, &year) || *s++ != ' ' || !mailhdr_digits(&s, 2, &hh) ||
	    *s++ != ':' || !mailhdr_digits(&s, 2, &mm) || *s++ != ':' ||
	    !mailhdr_digits(&s, 2, &ss) || *s++ != ' ')
		return FALSE;
	char sign = *s++;
	if ((sign != '+' && sign != '-') || !mailhdr_digits(&s, 2, &zh) ||
	    !mailhdr_digits(&s, 2, &zm))
		return FALSE;
	if (s[0] == ' ' && s[1] == '(') {
		gsize n = strcspn(s + 2, "()\\");
		if (s[2 + n] != ')')
			return FALSE;
		s += 3 + n;
	}
	if (*s)
		return FALSE;
	gboolean leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (year < 1970 || day < 1 || day > mdays[mon] || (mon == 1 && day == 29 && !leap) ||
	    hh > 23 || mm > 59 || ss > 59 || zh > 23 || zm > 59)
		return FALSE;
	gint64 t = mailhdr_days_from_civil(year, mon + 1, day) * 86400 + hh * 3600 + mm * 60 + ss;
	gint64 zone = zh * 3600 + zm * 60;
	*out = sign == '+' ? t - zone : t + zone;
	return TRUE;
}

gboolean mf_parse_date(const char *raw, gint64 now, gint64 *out)
{
	g_autofree char *unfolded = NULL;
	g_autofree char *norm = NULL;
	g_autoptr(GDateTime) dt = NULL;
	gint64 t;

	if (!raw)
		return FALSE;
	if (mailhdr_fast_date(raw, &t))
		goto check;
	mf_mailhdr_init();
	mailhdr_pin_charsets_of(raw);
	unfolded = g_mime_utils_header_unfold(raw);
	norm = mailhdr_normalise_date(unfolded);
	if (!*norm)
		return FALSE;
	dt = g_mime_utils_header_decode_date(norm);
	if (!dt)
		return FALSE;
	t = g_date_time_to_unix(dt);
check:
	if (t < MAILHDR_MIN_DATE)
		return FALSE;
	if (now != 0 && t > now + MAILHDR_FUTURE_SLACK)
		return FALSE;
	if (out)
		*out = t;
	return TRUE;
}

/* ---- header blocks ---------------------------------------------------------------------- */

/* Does `line` (not NUL-terminated) start field `name:`, allowing obsolete space before ':'? */
static const char *mailhdr_field_value(const char *line, gsize len, const char *name)
{
	gsize n = strlen(name);
	gsize i;

	if (len <= n || g_ascii_strncasecmp(line, name, n) != 0)
		return NULL;
	for (i = n; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	return i < len && line[i] == ':' ? line + i + 1 : NULL;
}

/* The first occurrence of a field in a raw header block, unfolded (continuation lines are
 * joined keeping their leading whitespace), trimmed. NUL bytes become spaces. */
static char *mailhdr_find_field(const char *hdr, gsize len, const char *name)
{
	const char *end = hdr + len;
	GString *value = NULL;

	for (const char *line = hdr; line < end;) {
		const char *nl = memchr(line, '\n', (gsize)(end - line));
		const char *next = nl ? nl + 1 : end;
		gsize llen = (gsize)((nl ? nl : end) - line);
		const char *v;

		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			break; /* the blank line ending the header */
		if (value) {
			if (line[0] != ' ' && line[0] != '\t')
				break;
			g_string_append_len(value, line, (gssize)llen);
		} else if ((v = mailhdr_field_value(line, llen, name))) {
			value = g_string_new_len(v, (gssize)(line + llen - v));
		}
		line = next;
	}
	if (!value)
		return NULL;
	for (gsize i = 0; i < value->len; i++)
		if (value->str[i] == '\0')
			value->str[i] = ' ';
	return g_strstrip(g_string_free(value, FALSE));
}

/* RFC 5322 specials in a display name force quoting so the list stays unambiguous. */
static void mailhdr_append_name(GString *out, const char *name)
{
	if (!strpbrk(name, ",;:<>@\"()[]\\")) {
		g_string_append(out, name);
		return;
	}
	g_string_append_c(out, '"');
	for (const char *p = name; *p; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *p);
	}
	g_string_append_c(out, '"');
}

void mf_append_address(GString *out, const char *decoded_name, const char *addr)
{
	if (decoded_name && *decoded_name) {
		mailhdr_append_name(out, decoded_name);
		if (addr && *addr) {
			g_string_append(out, " <");
			g_string_append(out, addr);
			g_string_append_c(out, '>');
		}
	} else if (addr) {
		g_string_append(out, addr);
	}
}

static void mailhdr_format_list(GString *out, InternetAddressList *list);

static void mailhdr_format_address(GString *out, InternetAddress *ia)
{
	const char *name = internet_address_get_name(ia);
	gboolean has_name = name && *name;

	if (INTERNET_ADDRESS_IS_GROUP(ia)) {
		if (has_name)
			mailhdr_append_name(out, name);
		g_string_append(out, ":");
		InternetAddressList *members = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
		if (members && internet_address_list_length(members) > 0) {
			g_string_append_c(out, ' ');
			mailhdr_format_list(out, members);
		}
		g_string_append_c(out, ';');
		return;
	}
	mf_append_address(out, name, internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
}

static void mailhdr_format_list(GString *out, InternetAddressList *list)
{
	int n = internet_address_list_length(list);

	for (int i = 0; i < n; i++) {
		if (i > 0)
			g_string_append(out, ", ");
		mailhdr_format_address(out, internet_address_list_get_address(list, i));
	}
}

/* The display name of the first mailbox (looking inside groups), else its address. */
static const char *mailhdr_first_sender(InternetAddressList *list)
{
	int n = internet_address_list_length(list);

	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);
		const char *s;

		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			InternetAddressList *members = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
			if (members && (s = mailhdr_first_sender(members)))
				return s;
			continue;
		}
		s = internet_address_get_name(ia);
		if (s && *s)
			return s;
		s = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
		if (s && *s)
			return s;
	}
	return NULL;
}

/* Decode an address list header into the "Name <addr>, ..." form; *first gets the sender
 * name when asked. An unparsable list is kept as decoded text rather than dropped. */
static char *mailhdr_decode_addresses(const char *raw, char **first)
{
	mailhdr_pin_charsets_of(raw);
	g_autofree char *utf8 = mailhdr_to_utf8(raw);
	InternetAddressList *list = internet_address_list_parse(mailhdr_options, utf8);
	GString *out;

	if (!list || internet_address_list_length(list) == 0) {
		if (list)
			g_object_unref(list);
		char *text = mf_decode_text(raw);
		if (first)
			*first = *text ? g_strdup(text) : NULL;
		if (!*text) {
			g_free(text);
			return NULL;
		}
		return text;
	}
	out = g_string_new(NULL);
	mailhdr_format_list(out, list);
	if (first) {
		const char *s = mailhdr_first_sender(list);
		if (!s) {
			/* Only empty groups: the group's own name is all there is. */
			s = internet_address_get_name(internet_address_list_get_address(list, 0));
		}
		*first = s && *s ? mailhdr_clean_utf8(g_strdup(s)) : NULL;
		if (*first && !**first)
			g_clear_pointer(first, g_free);
	}
	g_object_unref(list);
	return mailhdr_clean_utf8(g_string_free(out, FALSE));
}

static void mailhdr_set(char **field, char *value)
{
	g_free(*field);
	*field = value;
}

void mf_msg_meta_from_headers(mf_msg_meta *m, const char *hdr, gsize len)
{
	g_autofree char *date = NULL;
	g_autofree char *from = NULL;
	g_autofree char *to = NULL;
	g_autofree char *subject = NULL;
	g_autofree char *msgid = NULL;
	char *from_name = NULL;
	gint64 t;

	mf_mailhdr_init();
	if (!hdr)
		len = 0;
	date = mailhdr_find_field(hdr, len, "Date");
	from = mailhdr_find_field(hdr, len, "From");
	to = mailhdr_find_field(hdr, len, "To");
	subject = mailhdr_find_field(hdr, len, "Subject");
	msgid = mailhdr_find_field(hdr, len, "Message-ID");

	/* No "now" check here: a file name must not change when the clock passes a date. */
	m->date = date && mf_parse_date(date, 0, &t) ? t : MF_NO_DATE;
	mailhdr_set(&m->date_raw, date ? g_utf8_make_valid(date, -1) : NULL);
	mailhdr_set(&m->from, from ? mailhdr_decode_addresses(from, &from_name) : NULL);
	mailhdr_set(&m->from_name, from_name);
	mailhdr_set(&m->to, to ? mailhdr_decode_addresses(to, NULL) : NULL);
	mailhdr_set(&m->subject, subject ? mf_decode_text(subject) : NULL);
	mailhdr_set(&m->message_id, msgid && *msgid ? g_utf8_make_valid(msgid, -1) : NULL);
}
