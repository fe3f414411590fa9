/* The account a mount talks to: URL parsing, copying and clearing. */
#include <pwd.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "mferror.h"

static char *local_login_name(void)
{
	struct passwd *pw = getpwuid(geteuid());
	if (pw && pw->pw_name)
		return g_strdup(pw->pw_name);
	return g_strdup(g_get_user_name());
}

gboolean mf_account_parse_url(mf_account *a, const char *url, GError **err)
{
	static const struct {
		const char *scheme;
		guint16 port;
		gboolean tls;
	} schemes[] = {
		{ "imaps", 993, TRUE }, { "imap", 143, FALSE },
		{ "pop3s", 995, TRUE }, { "pop3", 110, FALSE },
	};
	const char *sep = strstr(url, "://");
	if (!sep) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG,
			    "'%s' is not a mail URL (expected imaps://[user@]host[:port])", url);
		return FALSE;
	}
	g_autofree char *scheme = g_ascii_strdown(url, sep - url);
	int which = -1;
	for (guint i = 0; i < G_N_ELEMENTS(schemes); i++)
		if (strcmp(scheme, schemes[i].scheme) == 0)
			which = i;
	if (which < 0) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG,
			    "unsupported URL scheme '%s' (use imaps, imap, pop3s or pop3)", scheme);
		return FALSE;
	}
	const char *rest = sep + 3;
	const char *end = rest + strcspn(rest, "/?#");
	if (*end == '?' || *end == '#' || (*end == '/' && end[1] != '\0')) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG,
			    "unexpected path or query in '%s' (folders are directories of the mount)", url);
		return FALSE;
	}
	g_autofree char *authority = g_strndup(rest, end - rest);
	char *at = strrchr(authority, '@');
	g_autofree char *user = NULL;
	const char *hostport = authority;
	if (at) {
		*at = '\0';
		if (strchr(authority, ':')) {
			g_set_error(err, MF_ERROR, MF_ERR_CONFIG,
				    "a password in the URL is not accepted (it would show in ps); "
				    "use -o password_command or MAILFS_PASSWORD");
			return FALSE;
		}
		user = g_uri_unescape_string(authority, NULL);
		if (!user || !*user) {
			g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "bad user name in '%s'", url);
			return FALSE;
		}
		hostport = at + 1;
	}
	g_autofree char *host = NULL;
	const char *portstr = NULL;
	if (hostport[0] == '[') {
		const char *close = strchr(hostport, ']');
		if (!close) {
			g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "unterminated [IPv6] host in '%s'", url);
			return FALSE;
		}
		host = g_strndup(hostport + 1, close - hostport - 1);
		if (close[1] == ':')
			portstr = close + 2;
		else if (close[1]) {
			g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "bad host in '%s'", url);
			return FALSE;
		}
	} else {
		const char *colon = strchr(hostport, ':');
		host = colon ? g_strndup(hostport, colon - hostport) : g_strdup(hostport);
		portstr = colon ? colon + 1 : NULL;
	}
	if (!*host) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "no host name in '%s'", url);
		return FALSE;
	}
	guint64 port = schemes[which].port;
	if (portstr && !g_ascii_string_to_unsigned(portstr, 10, 1, 65535, &port, NULL)) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "bad port '%s' in '%s'", portstr, url);
		return FALSE;
	}
	g_free(a->scheme);
	g_free(a->user);
	g_free(a->host);
	a->scheme = g_steal_pointer(&scheme);
	a->user = user ? g_steal_pointer(&user) : local_login_name();
	a->host = g_steal_pointer(&host);
	a->port = port;
	a->implicit_tls = schemes[which].tls;
	return TRUE;
}

void mf_account_clear(mf_account *a)
{
	g_free(a->scheme);
	g_free(a->user);
	g_free(a->host);
	if (a->password) {
		explicit_bzero(a->password, strlen(a->password));
		g_free(a->password);
	}
	g_free(a->cafile);
	g_free(a->state_dir);
	memset(a, 0, sizeof(*a));
}

void mf_account_copy(mf_account *dst, const mf_account *src)
{
	*dst = *src;
	dst->scheme = g_strdup(src->scheme);
	dst->user = g_strdup(src->user);
	dst->host = g_strdup(src->host);
	dst->password = g_strdup(src->password);
	dst->cafile = g_strdup(src->cafile);
	dst->state_dir = g_strdup(src->state_dir);
}
