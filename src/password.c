/* Obtaining the password without ever putting it on a command line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdlib.h>
#include "password.h"
#include "mferror.h"

static char *first_line(const char *s, gsize len)
{
	gsize n = 0;
	while (n < len && s[n] != '\n' && s[n] != '\r')
		n++;
	return g_strndup(s, n);
}

static char *from_command(const char *cmd, GError **err)
{
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	g_autofree char *out = NULL;
	g_autofree char *errout = NULL;
	int status = 0;
	GError *e = NULL;
	/* stderr is passed through so the command can ask for a GPG passphrase etc. */
	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_CHILD_INHERITS_STDIN,
			  NULL, NULL, &out, NULL, &status, &e)) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "password_command failed to start: %s", e->message);
		g_error_free(e);
		return NULL;
	}
	if (!g_spawn_check_wait_status(status, &e)) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "password_command failed: %s", e->message);
		g_error_free(e);
		if (out)
			explicit_bzero(out, strlen(out));
		return NULL;
	}
	char *pw = first_line(out, out ? strlen(out) : 0);
	if (out)
		explicit_bzero(out, strlen(out));
	if (!*pw) {
		g_free(pw);
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "password_command printed an empty first line");
		return NULL;
	}
	return pw;
}

static char *from_terminal(const char *user, const char *host, GError **err)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG,
			    "no password: set -o password_command=CMD or MAILFS_PASSWORD, or run on a terminal");
		return NULL;
	}
	g_autofree char *prompt = g_strdup_printf("Password for %s@%s: ", user, host);
	if (write(fd, prompt, strlen(prompt)) < 0) { /* best effort */ }
	struct termios old, quiet;
	gboolean restore = tcgetattr(fd, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	char buf[1024];
	gsize n = 0;
	while (n < sizeof(buf) - 1) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == '\n' || c == '\r')
			break;
		buf[n++] = c;
	}
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0) { /* best effort */ }
	close(fd);
	char *pw = g_strndup(buf, n);
	explicit_bzero(buf, sizeof(buf));
	if (!*pw) {
		g_free(pw);
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "empty password");
		return NULL;
	}
	return pw;
}

char *mf_password_obtain(const char *password_command, const char *user, const char *host,
			 GError **err)
{
	if (password_command && *password_command)
		return from_command(password_command, err);
	char *env = getenv("MAILFS_PASSWORD");
	if (env && *env) {
		char *pw = g_strdup(env);
		/* Scrub the original bytes too: /proc/PID/environ shows the initial block, which
		 * unsetenv() alone leaves intact for the life of the daemon. */
		explicit_bzero(env, strlen(env));
		g_unsetenv("MAILFS_PASSWORD");
		return pw;
	}
	return from_terminal(user, host, err);
}

void mf_password_free(char *pw)
{
	if (!pw)
		return;
	explicit_bzero(pw, strlen(pw));
	g_free(pw);
}
