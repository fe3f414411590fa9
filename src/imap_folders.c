/* From the server's LIST answer to the folder tree the filesystem shows. */
#include <string.h>

#include "imap_folders.h"
#include "log.h"
#include "mutf7.h"
#include "name.h"

/* Every byte mf_folder_component() would escape, plus '&' and every 8-bit byte. */
static gboolean raw_needs_escape(guchar b, gboolean first)
{
	return b == '&' || b == '%' || b == '/' || b < 0x20 || b >= 0x7f ||
	       (first && (b == '.' || b == '-'));
}

/* A raw component that is not canonical mUTF-7, shown byte for byte with '&' and 8-bit bytes
 * as %XX. A canonical name never displays "%26" ('&' is never escaped there, and a literal
 * '%' always is), so every fallback name contains "%26": from an '&' of its own, or appended
 * when it has none or ends in one (so "x" and "x&" cannot meet). Shown raw rather than
 * "repaired", because two server names must never land in one directory. */
static char *folder_raw_component(const char *raw)
{
	g_autoptr(GString) out = g_string_new(NULL);
	const char *amp = strchr(raw, '&');
	gsize n = strlen(raw);
	gboolean mark = !amp || (n > 0 && raw[n - 1] == '&');

	for (const char *p = raw; *p; p++) {
		if (raw_needs_escape((guchar)*p, p == raw))
			g_string_append_printf(out, "%%%02X", (guchar)*p);
		else
			g_string_append_c(out, *p);
	}
	if (mark)
		g_string_append(out, "%26");
	if (out->len > MF_NAME_MAX) {
		/* Cut on an escape boundary, keep the marker, and let a hash of the whole raw name
		 * tell long names apart: "<prefix>%26~<8 hex>". */
		g_autofree char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, raw, -1);
		gsize cut = MF_NAME_MAX - 3 - 1 - 8;

		while (cut > 0 && (out->str[cut - 1] == '%' || (cut > 1 && out->str[cut - 2] == '%')))
			cut--;
		g_string_truncate(out, cut);
		g_string_append_printf(out, "%%26~%.8s", hash);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* The display component for one raw name component: strict mUTF-7, else the raw fallback,
 * so two different server names never collapse into one. */
static char *folder_display_component(const char *raw, gboolean top)
{
	if (top && !g_ascii_strcasecmp(raw, "INBOX"))
		return g_strdup("INBOX");
	g_autofree char *decoded = mf_mutf7_decode(raw);

	return decoded ? mf_folder_component(decoded) : folder_raw_component(raw);
}

static int folder_cmp(gconstpointer a, gconstpointer b)
{
	const mf_folder *x = *(mf_folder *const *)a, *y = *(mf_folder *const *)b;

	return strcmp(x->path, y->path);
}

static void folder_add(GPtrArray *out, GHashTable *by_path, char *path, char *raw,
		       gboolean selectable, gboolean implied)
{
	mf_folder *f = g_hash_table_lookup(by_path, path);

	if (f) {
		if (!implied)
			mf_log_warn("folders %s and %s both display as %s; showing only the first",
				    f->raw, raw, path);
		g_free(path);
		g_free(raw);
		return;
	}
	f = g_new0(mf_folder, 1);
	f->path = path;
	f->raw = raw;
	f->selectable = selectable;
	g_ptr_array_add(out, f);
	g_hash_table_insert(by_path, f->path, f);
}

GPtrArray *mf_imap_folders_build(const GPtrArray *entries)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)mf_folder_free);
	g_autoptr(GHashTable) by_path = g_hash_table_new(g_str_hash, g_str_equal);

	/* Real folders first, so an implied parent never shadows a listed one. */
	for (int pass = 0; pass < 2; pass++) {
		for (guint i = 0; i < entries->len; i++) {
			const imap_list_entry *le = entries->pdata[i];
			char delim[2] = { le->delimiter, '\0' };
			g_auto(GStrv) parts = NULL;

			if (le->delimiter)
				parts = g_strsplit(le->name, delim, -1);
			else
				parts = g_strdupv((char *[]){ le->name, NULL });
			guint n = g_strv_length(parts);
			g_autoptr(GString) path = g_string_new(NULL);
			g_autoptr(GString) raw = g_string_new(NULL);

			if (n == 0)
				continue;
			for (guint k = 0; k < n; k++) {
				g_autofree char *comp = folder_display_component(parts[k], k == 0);

				if (k > 0) {
					g_string_append_c(path, '/');
					g_string_append_c(raw, le->delimiter);
				}
				g_string_append(path, comp);
				g_string_append(raw, parts[k]);
				if (k + 1 < n && pass == 1)
					folder_add(out, by_path, g_strdup(path->str), g_strdup(raw->str),
						   FALSE, TRUE);
			}
			if (pass == 0)
				folder_add(out, by_path, g_strdup(path->str), g_strdup(le->name),
					   !le->noselect, FALSE);
		}
	}
	g_ptr_array_sort(out, folder_cmp);
	return out;
}
