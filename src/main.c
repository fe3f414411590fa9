/* mailfs: mount a mail account as a read-only filesystem.
 *
 * Start-up order matters to the user: everything that can fail because of the account (URL,
 * mount point, password, connection, certificate, login, folder list) happens before the
 * process daemonizes, so such a failure is a one-line error on the terminal and a non-zero
 * exit status, with nothing left mounted. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fuse_lowlevel.h>
#include <openssl/opensslv.h>
#include "backend.h"
#include "bodycache.h"
#include "fs.h"
#include "log.h"
#include "mailhdr.h"
#include "mferror.h"
#include "model.h"
#include "password.h"
#include "reader.h"
#include "version.h"

#define UNSET UINT_MAX

struct mf_options {
	char *cafile;
	char *password_command;
	int allow_plaintext;
	unsigned connections;
	unsigned timeout;
	unsigned refresh;
	char *cache_dir;
	unsigned cache_size_mb;
	unsigned memory_cache_mb;
	int apop;
	int foreground;
	int debug;
	int show_version;
	int show_help;
	char *url;
	char *mountpoint;
	int nonopts;
};

enum { KEY_FOREGROUND, KEY_DEBUG, KEY_VERSION, KEY_HELP };

#define MF_OPT(t, p, v) { t, offsetof(struct mf_options, p), v }
static const struct fuse_opt mf_opts[] = {
	MF_OPT("cafile=%s", cafile, 0),
	MF_OPT("password_command=%s", password_command, 0),
	MF_OPT("allow_plaintext", allow_plaintext, 1),
	MF_OPT("connections=%u", connections, 0),
	MF_OPT("timeout=%u", timeout, 0),
	MF_OPT("refresh=%u", refresh, 0),
	MF_OPT("cache_dir=%s", cache_dir, 0),
	MF_OPT("cache_size=%u", cache_size_mb, 0),
	MF_OPT("memory_cache=%u", memory_cache_mb, 0),
	MF_OPT("apop", apop, 1),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_END
};

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [options] URL MOUNTPOINT\n"
		"\n"
		"Mount a mail account read-only: folders are directories, messages are files.\n"
		"\n"
		"URL:\n"
		"    imaps://[user@]host[:port][/]   IMAP over implicit TLS (port 993)\n"
		"    imap://[user@]host[:port][/]    IMAP with STARTTLS (port 143)\n"
		"    pop3s://[user@]host[:port]      POP3 over implicit TLS (port 995), one INBOX\n"
		"    pop3://[user@]host[:port]       POP3 with STLS (port 110)\n"
		"    user defaults to the local login name; write '@' in it as %%40.\n"
		"\n"
		"Options:\n"
		"    -f                        stay in the foreground\n"
		"    -d                        debug log of the protocol (implies -f)\n"
		"    -o cafile=FILE            also trust the CA certificate(s) in FILE\n"
		"    -o password_command=CMD   run CMD (via /bin/sh), use the first line of its output\n"
		"    -o allow_plaintext        permit an unencrypted imap:// or pop3:// session\n"
		"    -o connections=N          size of the connection pool (default 4)\n"
		"    -o timeout=SECONDS        network timeout for any single exchange (default 30)\n"
		"    -o refresh=SECONDS        re-list a folder when older than this (default 30,\n"
		"                              POP3 60)\n"
		"    -o cache_dir=DIR          cache of bodies and envelopes (default ~/.cache/mailfs/...)\n"
		"    -o cache_size=MB          on-disk body cache limit, 0 = none (default 1024)\n"
		"    -o memory_cache=MB        in-memory body cache limit (default 128)\n"
		"    -o apop                   POP3: log in with APOP\n"
		"    -o <libfuse options>      passed through (allow_other, ...)\n"
		"    -V, --version             print the version\n"
		"    -h, --help                print this help\n"
		"\n"
		"The password comes from password_command, else $MAILFS_PASSWORD, else a prompt.\n"
		"Unmount with: fusermount3 -u MOUNTPOINT\n",
		prog);
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct mf_options *o = data;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (o->nonopts == 0)
			o->url = g_strdup(arg);
		else if (o->nonopts == 1)
			o->mountpoint = g_strdup(arg);
		else {
			fprintf(stderr, "mailfs: unexpected argument '%s'\n", arg);
			return -1;
		}
		o->nonopts++;
		return 0;
	case KEY_FOREGROUND:
		o->foreground = 1;
		return 0;
	case KEY_DEBUG:
		o->debug = 1;
		o->foreground = 1;
		return 0;
	case KEY_VERSION:
		o->show_version = 1;
		return 0;
	case KEY_HELP:
		o->show_help = 1;
		return 0;
	default:
		return 1; /* a libfuse option: keep it */
	}
}

static gboolean check_mountpoint(const char *mp, GError **err)
{
	struct stat st;
	if (stat(mp, &st) != 0) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "mount point %s: %s", mp, g_strerror(errno));
		return FALSE;
	}
	if (!S_ISDIR(st.st_mode)) {
		g_set_error(err, MF_ERROR, MF_ERR_CONFIG, "mount point %s is not a directory", mp);
		return FALSE;
	}
	return TRUE;
}

static char *default_cache_dir(const mf_account *a)
{
	g_autofree char *ident = g_strdup_printf("%s://%s@%s:%u", a->scheme, a->user, a->host, a->port);
	g_autofree char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, ident, -1);
	hash[16] = '\0';
	return g_build_filename(g_get_user_cache_dir(), "mailfs", hash, NULL);
}

/* fsname shows in mount(8) and df; keep it free of the option separator. */
static char *fsname_for(const mf_account *a)
{
	g_autofree char *raw = g_strdup_printf("%s://%s@%s:%u", a->scheme, a->user, a->host, a->port);
	g_strdelimit(raw, ",\\", '_');
	return g_strdup_printf("-ofsname=%s,subtype=mailfs,ro,default_permissions", raw);
}

static int fail(const char *msg)
{
	fprintf(stderr, "mailfs: %s\n", msg);
	return 1;
}

static void options_clear(struct mf_options *o)
{
	g_free(o->cafile);
	g_free(o->password_command);
	g_free(o->cache_dir);
	g_free(o->url);
	g_free(o->mountpoint);
}

/* Everything main() may have made, released in one place on every path out. */
typedef struct {
	struct fuse_args args;
	struct mf_options o;
	mf_account acct;
	mf_stats *stats;
	mf_backend *backend;
	mf_model *model;
	mf_bodycache *cache;
	mf_fs *fs;
	mf_reader *reader;
	struct fuse_session *se;
	gboolean handlers, mounted;
} mf_daemon;

static void daemon_clear(mf_daemon *d)
{
	if (d->handlers)
		fuse_remove_signal_handlers(d->se);
	if (d->mounted)
		fuse_session_unmount(d->se);
	if (d->fs)
		mf_fs_stop(d->fs);
	if (d->se)
		fuse_session_destroy(d->se);
	mf_reader_free(d->reader);
	mf_fs_free(d->fs);
	mf_model_free(d->model);
	if (d->backend) {
		d->backend->ops->close(d->backend);
		d->backend->ops->free(d->backend);
	}
	if (d->cache)
		mf_bodycache_free(d->cache);
	mf_stats_free(d->stats);
	mf_account_clear(&d->acct);
	fuse_opt_free_args(&d->args);
	options_clear(&d->o);
}

static int run(mf_daemon *d, const char *prog)
{
	struct mf_options *o = &d->o;
	g_autoptr(GError) err = NULL;

	o->connections = 4;
	o->timeout = 30;
	o->cache_size_mb = UNSET;
	o->memory_cache_mb = 128;
	if (fuse_opt_parse(&d->args, o, mf_opts, opt_proc) == -1)
		return 1;
	if (o->show_help) {
		usage(stdout, prog);
		return 0;
	}
	if (o->show_version) {
		printf("mailfs %s (libfuse %s, %s)\n", MAILFS_VERSION, fuse_pkgversion(), OPENSSL_VERSION_TEXT);
		return 0;
	}
	if (!o->url || !o->mountpoint) {
		usage(stderr, prog);
		return 1;
	}
	if (o->connections < 1 || o->connections > 16)
		return fail("connections must be between 1 and 16 (servers limit connections per account)");
	if (o->timeout < 1 || o->timeout > 3600)
		return fail("timeout must be between 1 and 3600 seconds");

	mf_log_init(o->foreground, o->debug);
	mf_account *acct = &d->acct;
	if (!mf_account_parse_url(acct, o->url, &err) || !check_mountpoint(o->mountpoint, &err))
		return fail(err->message);
	gboolean pop3 = g_str_has_prefix(acct->scheme, "pop3");

	/* Creating the session checks the libfuse options, so a typo fails before a password is
	 * asked for or a connection made. */
	d->stats = mf_stats_new();
	g_autofree char *fsopts = fsname_for(acct);
	fuse_opt_add_arg(&d->args, fsopts);
	d->fs = mf_fs_new(d->stats, pop3 ? "pop3" : "imap");
	d->se = fuse_session_new(&d->args, mf_fs_ops(), sizeof(struct fuse_lowlevel_ops), d->fs);
	if (!d->se)
		return fail("invalid option (see the message above; mailfs -h lists the options)");
	if (!acct->implicit_tls && o->allow_plaintext)
		mf_log_warn("allow_plaintext: if the server offers no STARTTLS, the password crosses the network in clear");

	acct->password = mf_password_obtain(o->password_command, acct->user, acct->host, &err);
	if (!acct->password)
		return fail(err->message);
	mf_log_add_secret(acct->password);
	acct->cafile = g_strdup(o->cafile);
	acct->allow_plaintext = o->allow_plaintext;
	acct->apop = o->apop;
	acct->connections = o->connections;
	acct->timeout_sec = o->timeout;
	acct->stats = d->stats;
	/* One private directory per account: bodies/ (body cache) and index/ (the backend's
	 * envelopes and folder state, so a remount does not download every envelope again). */
	g_autofree char *state_base = o->cache_dir ? g_strdup(o->cache_dir) : default_cache_dir(acct);
	guint64 disk_mb = o->cache_size_mb == UNSET ? 1024 : o->cache_size_mb;
	g_autofree char *body_dir = disk_mb ? g_build_filename(state_base, "bodies", NULL) : NULL;
	acct->state_dir = g_build_filename(state_base, "index", NULL);
	if (g_mkdir_with_parents(acct->state_dir, 0700) != 0) {
		mf_log_warn("cannot create %s (%s): envelopes will not be kept between mounts",
			    acct->state_dir, g_strerror(errno));
		g_clear_pointer(&acct->state_dir, g_free);
	}

	mf_mailhdr_init();
	d->backend = pop3 ? mf_pop3_backend_new(acct) : mf_imap_backend_new(acct);
	if (!d->backend->ops->open(d->backend, &err))
		return fail(err->message);
	d->model = mf_model_new(d->backend, o->refresh ? o->refresh : pop3 ? 60 : 30);
	if (!mf_model_load_folders(d->model, &err))
		return fail(err->message);
	mf_model_check_inbox_sizes(d->model);
	if (d->backend->ops->settle)
		d->backend->ops->settle(d->backend);
	d->cache = mf_bodycache_new(body_dir, (guint64)o->memory_cache_mb << 20, disk_mb << 20);
	if (body_dir && !mf_bodycache_has_disk(d->cache))
		mf_log_warn("cannot use %s: bodies are cached in memory only", body_dir);

	if (fuse_set_signal_handlers(d->se) != 0)
		return fail("could not install signal handlers");
	d->handlers = TRUE;
	if (fuse_session_mount(d->se, o->mountpoint) != 0)
		return fail("mount failed (is /dev/fuse available and fusermount3 installed?)");
	d->mounted = TRUE;
	if (!o->foreground) {
		if (fuse_daemonize(0) != 0)
			return fail("could not go to the background");
		mf_log_use_syslog();
	}
	mf_log_info("mounted %s://%s@%s:%u on %s", acct->scheme, acct->user, acct->host, acct->port,
		    o->mountpoint);

	/* Threads only now: fuse_daemonize() forks, and threads do not survive a fork. */
	d->reader = mf_reader_new(d->model, d->cache, d->stats);
	mf_fs_start(d->fs, d->se, d->model, d->reader);
	if (d->backend->ops->start)
		d->backend->ops->start(d->backend);
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, 32);
	fuse_loop_cfg_set_idle_threads(lc, 8);
	int rc = fuse_session_loop_mt(d->se, lc);
	fuse_loop_cfg_destroy(lc);
	if (o->debug) {
		g_autofree char *summary = mf_stats_format(d->stats, d->backend->ops->name);
		fprintf(stderr, "mailfs: unmounted; what went over the wire:\n%s", summary);
	}
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	/* One malloc arena for all threads. Each short-lived thread (a folder's first listing,
	 * read-ahead) would otherwise get an arena of its own that grows a page per mprotect call:
	 * thousands of system calls for one big listing. mailfs waits on the network, not on
	 * malloc's lock. */
	mallopt(M_ARENA_MAX, 1);
	mf_daemon d = { .args = FUSE_ARGS_INIT(argc, argv) };
	int rc = run(&d, argv[0]);
	daemon_clear(&d);
	return rc;
}
