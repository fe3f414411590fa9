/* One error domain for the whole daemon; fs.c maps codes to errno in one place. */
#pragma once
#include <glib.h>

#define MF_ERROR (mf_error_quark())
GQuark mf_error_quark(void);

typedef enum {
	MF_ERR_FAILED,        /* anything else; maps to EIO */
	MF_ERR_NET,           /* connect/read/write failure, connection lost */
	MF_ERR_TIMEOUT,       /* no progress within the configured timeout */
	MF_ERR_TLS,           /* handshake or certificate/host-name verification failed */
	MF_ERR_AUTH,          /* server rejected the credentials */
	MF_ERR_PLAINTEXT,     /* refusing to send credentials without TLS */
	MF_ERR_PROTOCOL,      /* malformed or unexpected server response */
	MF_ERR_SERVER,        /* server answered NO/BAD/-ERR to a command */
	MF_ERR_NOT_FOUND,     /* folder or message does not exist (any more) */
	MF_ERR_SIZE_MISMATCH, /* message bytes differ from the size we advertised */
	MF_ERR_STALE,         /* UIDVALIDITY changed under an open handle */
	MF_ERR_THROTTLED,     /* server asked us to slow down */
	MF_ERR_CONFIG,        /* bad URL, option or password source */
} MfErrorCode;
