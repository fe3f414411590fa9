/* Where the password comes from: -o password_command, then $MAILFS_PASSWORD, then a prompt on
 * the terminal. Never argv, never a mount option value. */
#pragma once
#include <glib.h>

/* Returns a newly allocated password (free with mf_password_free) or NULL with err set. */
char *mf_password_obtain(const char *password_command, const char *user, const char *host,
			 GError **err);
void mf_password_free(char *pw);
