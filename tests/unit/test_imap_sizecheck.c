/* The size-honesty check of a listing (imap_sizecheck.c) against a small scripted IMAP server
 * on loopback: which commands it sends (EXAMINE, one FETCH by sequence number, the pipelined
 * probes of the last octet, never anything that could change the mailbox), and which verdict
 * it reaches for honest servers, lying ones, refusing ones and dying ones. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap_conn.h"
#include "imap_sizecheck.h"
#include "mferror.h"

typedef struct {
	guint32 uid;
	guint64 size; /* the RFC822.SIZE the server reports */
	guint64 real; /* the octets of the BODY[] it serves */
} SMsg;

typedef struct {
	GArray *msgs;           /* SMsg, in sequence-number order */
	guint32 refuse_uid;     /* answer NO to the probe of this UID */
	gboolean refuse_sizes;  /* answer NO to the FETCH by sequence number */
	gboolean refuse_examine;
	gboolean drop_on_probe; /* hang up when the first probe arrives */
	gboolean noise;         /* unsolicited FETCH and EXISTS-neutral data along the answers */
	GMutex lock;
	GPtrArray *log;         /* command lines received (tag stripped) */
	int listen_fd;
	GThread *thread;
} Srv;

static void srv_add(Srv *s, guint32 uid, guint64 size, guint64 real)
{
	SMsg m = { uid, size, real };

	g_array_append_val(s->msgs, m);
}

static void say(int fd, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void say(int fd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_autofree char *s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	/* The client may have hung up already (a test of a dying connection): no SIGPIPE. */
	(void)!send(fd, s, strlen(s), MSG_NOSIGNAL);
}

static const SMsg *srv_by_uid(Srv *s, guint32 uid, guint *seq)
{
	for (guint i = 0; i < s->msgs->len; i++) {
		const SMsg *m = &g_array_index(s->msgs, SMsg, i);

		if (m->uid == uid) {
			*seq = i + 1;
			return m;
		}
	}
	return NULL;
}

/* "1,3,5" or "1:2": the sequence numbers named, in order. */
static GArray *srv_seqs(const char *set)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(guint));
	g_auto(GStrv) parts = g_strsplit(set, ",", -1);

	for (char **p = parts; *p; p++) {
		char *end;
		guint a = (guint)strtoul(*p, &end, 10), b = a;

		if (*end == ':')
			b = (guint)strtoul(end + 1, NULL, 10);
		for (guint n = MIN(a, b); n <= MAX(a, b); n++)
			g_array_append_val(out, n);
	}
	return out;
}

/* Returns FALSE to hang up. */
static gboolean srv_command(Srv *s, int fd, const char *tag, const char *cmd)
{
	g_mutex_lock(&s->lock);
	g_ptr_array_add(s->log, g_strdup(cmd));
	g_mutex_unlock(&s->lock);
	if (g_str_has_prefix(cmd, "EXAMINE ")) {
		if (s->refuse_examine) {
			say(fd, "%s NO [NONEXISTENT] no such mailbox\r\n", tag);
			return TRUE;
		}
		say(fd, "* %u EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 77] x\r\n* OK [UIDNEXT 1000] x\r\n",
		    s->msgs->len);
		say(fd, "%s OK [READ-ONLY] done\r\n", tag);
	} else if (g_str_has_prefix(cmd, "FETCH ")) {
		if (s->refuse_sizes) {
			say(fd, "%s NO not now\r\n", tag);
			return TRUE;
		}
		g_auto(GStrv) w = g_strsplit(cmd + 6, " ", 2);
		g_autoptr(GArray) seqs = srv_seqs(w[0]);

		g_assert_cmpstr(w[1], ==, "(UID RFC822.SIZE)");
		if (s->noise && s->msgs->len)
			say(fd, "* 1 FETCH (FLAGS (\\Seen))\r\n");
		for (guint i = 0; i < seqs->len; i++) {
			guint seq = g_array_index(seqs, guint, i);

			g_assert_cmpuint(seq, >=, 1);
			g_assert_cmpuint(seq, <=, s->msgs->len);
			const SMsg *m = &g_array_index(s->msgs, SMsg, seq - 1);
			say(fd, "* %u FETCH (UID %u RFC822.SIZE %" G_GUINT64_FORMAT ")\r\n", seq, m->uid, m->size);
		}
		say(fd, "%s OK done\r\n", tag);
	} else if (g_str_has_prefix(cmd, "UID FETCH ")) {
		guint32 uid;
		guint64 off, len;
		guint seq = 0;

		if (s->drop_on_probe)
			return FALSE;
		g_assert_cmpint(sscanf(cmd, "UID FETCH %u (UID BODY.PEEK[]<%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT ">)",
				       &uid, &off, &len), ==, 3);
		const SMsg *m = srv_by_uid(s, uid, &seq);

		g_assert_nonnull(m);
		if (uid == s->refuse_uid) {
			say(fd, "%s NO [SERVERBUG] cannot read that\r\n", tag);
			return TRUE;
		}
		if (s->noise)
			say(fd, "* %u FETCH (FLAGS ())\r\n", seq);
		/* RFC 3501 6.4.5: an origin past the end gives the empty string. */
		if (off >= m->real) {
			say(fd, "* %u FETCH (UID %u BODY[]<%" G_GUINT64_FORMAT "> \"\")\r\n", seq, uid, off);
		} else {
			guint64 n = MIN(len, m->real - off);
			g_autofree char *octets = g_strnfill(n, 'x');

			say(fd, "* %u FETCH (UID %u BODY[]<%" G_GUINT64_FORMAT "> {%" G_GUINT64_FORMAT "}\r\n%s)\r\n",
			    seq, uid, off, n, octets);
		}
		say(fd, "%s OK done\r\n", tag);
	} else if (g_str_has_prefix(cmd, "LOGOUT")) {
		say(fd, "* BYE bye\r\n%s OK done\r\n", tag);
		return FALSE;
	} else {
		say(fd, "%s OK done\r\n", tag);
	}
	return TRUE;
}

static gpointer srv_main(gpointer p)
{
	Srv *s = p;
	int fd = accept(s->listen_fd, NULL, NULL);

	g_assert_cmpint(fd, >=, 0);
	FILE *in = fdopen(dup(fd), "r");
	char line[8192];

	say(fd, "* PREAUTH [CAPABILITY IMAP4rev1] fake\r\n");
	while (fgets(line, sizeof line, in)) {
		g_strchomp(line);
		char *sp = strchr(line, ' ');

		if (!sp)
			break;
		*sp = '\0';
		if (!srv_command(s, fd, line, sp + 1))
			break;
	}
	fclose(in);
	close(fd);
	return NULL;
}

static Srv *srv_new(void)
{
	Srv *s = g_new0(Srv, 1);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	s->msgs = g_array_new(FALSE, FALSE, sizeof(SMsg));
	s->log = g_ptr_array_new_with_free_func(g_free);
	g_mutex_init(&s->lock);
	s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	g_assert_cmpint(bind(s->listen_fd, (struct sockaddr *)&a, sizeof a), ==, 0);
	g_assert_cmpint(listen(s->listen_fd, 1), ==, 0);
	s->thread = g_thread_new("fake-imap", srv_main, s);
	return s;
}

static mf_imap_conn *srv_connect(Srv *s, mf_stats *stats)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	g_autoptr(GError) err = NULL;

	g_assert_cmpint(getsockname(s->listen_fd, (struct sockaddr *)&a, &len), ==, 0);
	mf_imap_conn_opts o = {
		.host = "127.0.0.1", .port = ntohs(a.sin_port), .allow_plaintext = TRUE, .user = "u",
		.password = "p", .timeout_sec = 5, .stats = stats, .label = "test",
	};
	mf_imap_conn *c = mf_imap_conn_open(&o, &err);

	g_assert_no_error(err);
	g_assert_nonnull(c);
	g_mutex_lock(&s->lock);
	g_ptr_array_set_size(s->log, 0);
	g_mutex_unlock(&s->lock);
	return c;
}

/* Nothing that could change a mailbox or its \Seen flags was ever sent. */
static void srv_check_safe(Srv *s)
{
	g_mutex_lock(&s->lock);
	for (guint i = 0; i < s->log->len; i++) {
		g_autofree char *u = g_ascii_strup(s->log->pdata[i], -1);

		g_assert_null(strstr(u, "BODY["));
		g_assert_null(strstr(u, "STORE"));
		g_assert_null(strstr(u, "EXPUNGE"));
		g_assert_null(strstr(u, "SELECT"));
		g_assert_null(strstr(u, "RFC822.TEXT"));
		g_assert_null(strstr(u, "RFC822.HEADER"));
		g_assert_false(g_str_has_suffix(u, " RFC822)") || strstr(u, " RFC822 "));
	}
	g_mutex_unlock(&s->lock);
}

/* The commands since the last call, joined by " | ". */
static char *srv_commands(Srv *s)
{
	srv_check_safe(s);
	g_mutex_lock(&s->lock);
	g_ptr_array_add(s->log, NULL);
	char *out = g_strjoinv(" | ", (char **)s->log->pdata);

	g_ptr_array_set_size(s->log, 0);
	g_mutex_unlock(&s->lock);
	return out;
}

static void srv_free(Srv *s, mf_imap_conn *c)
{
	srv_check_safe(s);
	mf_imap_conn_logout(c);
	g_thread_join(s->thread);
	close(s->listen_fd);
	g_array_free(s->msgs, TRUE);
	g_ptr_array_unref(s->log);
	g_mutex_clear(&s->lock);
	g_free(s);
}

static guint64 stat_of(mf_stats *st, const char *key)
{
	g_autofree char *all = mf_stats_format(st, "imap");
	g_autofree char *k = g_strconcat("\n", key, ": ", NULL);
	const char *p = strstr(all, k);

	g_assert_nonnull(p);
	return g_ascii_strtoull(p + strlen(k), NULL, 10);
}

/* Runs the check of INBOX; the verdict's UID (0: none) and the commands sent. */
static guint32 check(Srv *s, mf_imap_conn *c, mf_stats *st, char **commands)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(mf_msg_meta) wrong = (mf_msg_meta *)0x1;

	g_assert_true(mf_imap_check_sizes(c, "INBOX", st, &wrong, &err));
	g_assert_no_error(err);
	g_assert_false(mf_imap_conn_is_dead(c));
	*commands = srv_commands(s);
	srv_check_safe(s);
	if (!wrong)
		return 0;
	/* A copy that names the message as the server listed it. */
	guint seq;
	const SMsg *m = srv_by_uid(s, wrong->uid, &seq);

	g_assert_nonnull(m);
	g_assert_cmpuint(wrong->size, ==, m->size);
	g_autofree char *id = g_strdup_printf("%u", m->uid);
	g_assert_cmpstr(wrong->id, ==, id);
	return wrong->uid;
}

#define PROBE(uid, off) "UID FETCH " #uid " (UID BODY.PEEK[]<" #off ".2>)"

static void test_honest(void)
{
	Srv *s = srv_new();
	mf_stats *st = mf_stats_new();
	mf_imap_conn *c = srv_connect(s, st);
	g_autofree char *cmds = NULL, *again = NULL;

	for (guint32 i = 1; i <= 5; i++)
		srv_add(s, 10 * i, 100 * i, 100 * i);
	s->noise = TRUE;
	guint64 rt = stat_of(st, "round_trips"), partial = stat_of(st, "bodies_partial");
	g_assert_cmpuint(check(s, c, st, &cmds), ==, 0);
	g_assert_cmpstr(cmds, ==,
			"EXAMINE \"INBOX\" | FETCH 1,3,5 (UID RFC822.SIZE) | "
			PROBE(10, 99) " | " PROBE(30, 299) " | " PROBE(50, 499));
	/* Three round trips: the probes are pipelined. */
	g_assert_cmpuint(stat_of(st, "round_trips") - rt, ==, 3);
	g_assert_cmpuint(stat_of(st, "bodies_partial") - partial, ==, 3);

	/* The mailbox is selected already: no second EXAMINE. */
	g_assert_cmpuint(check(s, c, st, &again), ==, 0);
	g_assert_cmpstr(again, ==,
			"FETCH 1,3,5 (UID RFC822.SIZE) | " PROBE(10, 99) " | " PROBE(30, 299) " | " PROBE(50, 499));
	srv_free(s, c);
	mf_stats_free(st);
}

/* Small folders: every message is probed once; an even count picks the upper middle. */
static void test_small_folders(void)
{
	static const struct {
		guint n;
		const char *want;
	} cases[] = {
		{ 1, "EXAMINE \"INBOX\" | FETCH 1:1 (UID RFC822.SIZE) | " PROBE(7, 6) },
		{ 2, "EXAMINE \"INBOX\" | FETCH 1:2 (UID RFC822.SIZE) | " PROBE(7, 6) " | " PROBE(14, 13) },
		{ 3, "EXAMINE \"INBOX\" | FETCH 1,2,3 (UID RFC822.SIZE) | " PROBE(7, 6) " | " PROBE(14, 13)
		     " | " PROBE(21, 20) },
		{ 4, "EXAMINE \"INBOX\" | FETCH 1,3,4 (UID RFC822.SIZE) | " PROBE(7, 6) " | " PROBE(21, 20)
		     " | " PROBE(28, 27) },
	};

	for (guint k = 0; k < G_N_ELEMENTS(cases); k++) {
		Srv *s = srv_new();
		mf_imap_conn *c = srv_connect(s, NULL);
		g_autofree char *cmds = NULL;

		for (guint32 i = 1; i <= cases[k].n; i++)
			srv_add(s, 7 * i, 7 * i, 7 * i);
		g_assert_cmpuint(check(s, c, NULL, &cmds), ==, 0);
		g_assert_cmpstr(cmds, ==, cases[k].want);
		srv_free(s, c);
	}
}

static void test_empty_folder(void)
{
	Srv *s = srv_new();
	mf_imap_conn *c = srv_connect(s, NULL);
	g_autofree char *cmds = NULL;

	g_assert_cmpuint(check(s, c, NULL, &cmds), ==, 0);
	g_assert_cmpstr(cmds, ==, "EXAMINE \"INBOX\"");
	srv_free(s, c);
}

/* A size that is too big (the probe's origin is past the end: "") or too small (two octets
 * come back), on the first, middle or last message. */
static void test_lying(void)
{
	for (guint which = 0; which < 3; which++)
		for (int delta = -40; delta <= 40; delta += 80) {
			Srv *s = srv_new();
			mf_imap_conn *c = srv_connect(s, NULL);
			g_autofree char *cmds = NULL;
			static const guint32 liar[3] = { 100, 300, 500 };

			for (guint32 i = 1; i <= 5; i++) {
				guint64 real = 1000 * i;
				srv_add(s, 100 * i, real + (100 * i == liar[which] ? (gint64)delta : 0), real);
			}
			s->noise = which == 1;
			g_assert_cmpuint(check(s, c, NULL, &cmds), ==, liar[which]);
			srv_free(s, c);
		}

	/* Off by one either way is caught too, and two liars give the first. */
	Srv *s = srv_new();
	mf_imap_conn *c = srv_connect(s, NULL);
	g_autofree char *cmds = NULL;

	srv_add(s, 1, 101, 100);
	srv_add(s, 2, 200, 200);
	srv_add(s, 3, 299, 300);
	g_assert_cmpuint(check(s, c, NULL, &cmds), ==, 1);
	srv_free(s, c);
}

/* A refused probe proves nothing: no verdict of lying from it, but the others still count. */
static void test_refused_probe(void)
{
	Srv *s = srv_new();
	mf_imap_conn *c = srv_connect(s, NULL);
	g_autofree char *cmds = NULL, *cmds2 = NULL, *cmds3 = NULL;

	for (guint32 i = 1; i <= 5; i++)
		srv_add(s, i, 100 * i, 100 * i);
	s->refuse_uid = 3;
	g_assert_cmpuint(check(s, c, NULL, &cmds), ==, 0);
	g_assert_cmpstr(cmds, ==,
			"EXAMINE \"INBOX\" | FETCH 1,3,5 (UID RFC822.SIZE) | " PROBE(1, 99) " | " PROBE(3, 299)
			" | " PROBE(5, 499));

	/* The refused one would have lied: still no verdict. */
	g_array_index(s->msgs, SMsg, 2).size += 7;
	g_assert_cmpuint(check(s, c, NULL, &cmds2), ==, 0);

	/* Another one lies: that one is named. */
	g_array_index(s->msgs, SMsg, 2).size -= 7;
	g_array_index(s->msgs, SMsg, 4).size += 7;
	s->refuse_uid = 1;
	g_assert_cmpuint(check(s, c, NULL, &cmds3), ==, 5);
	srv_free(s, c);
}

/* The sizes themselves refused: no probe, no verdict, but the check was made. */
static void test_refused_sizes(void)
{
	Srv *s = srv_new();
	mf_imap_conn *c = srv_connect(s, NULL);
	g_autofree char *cmds = NULL;

	srv_add(s, 1, 100, 50);
	s->refuse_sizes = TRUE;
	g_assert_cmpuint(check(s, c, NULL, &cmds), ==, 0);
	g_assert_cmpstr(cmds, ==, "EXAMINE \"INBOX\" | FETCH 1:1 (UID RFC822.SIZE)");
	srv_free(s, c);
}

/* Size 0 is not probed (it is verified before it is shown anyway). */
static void test_size_zero(void)
{
	Srv *s = srv_new();
	mf_imap_conn *c = srv_connect(s, NULL);
	g_autofree char *cmds = NULL;

	srv_add(s, 1, 0, 10);
	srv_add(s, 2, 0, 10);
	srv_add(s, 3, 30, 30);
	g_assert_cmpuint(check(s, c, NULL, &cmds), ==, 0);
	g_assert_cmpstr(cmds, ==, "EXAMINE \"INBOX\" | FETCH 1,2,3 (UID RFC822.SIZE) | " PROBE(3, 29));
	srv_free(s, c);
}

/* The check could not be made: FALSE and an error, no verdict. */
static void test_cannot_check(void)
{
	/* The connection dies during the probes. */
	Srv *s = srv_new();
	mf_imap_conn *c = srv_connect(s, NULL);
	g_autoptr(GError) err = NULL;
	mf_msg_meta *wrong = (mf_msg_meta *)0x1;

	for (guint32 i = 1; i <= 5; i++)
		srv_add(s, i, 10 * i + 1, 10 * i);
	s->drop_on_probe = TRUE;
	g_assert_false(mf_imap_check_sizes(c, "INBOX", NULL, &wrong, &err));
	g_assert_nonnull(err);
	g_assert_true(err->domain == MF_ERROR);
	g_assert_null(wrong);
	g_assert_true(mf_imap_conn_is_dead(c));
	g_autofree char *cmds = srv_commands(s);
	g_assert_cmpstr(cmds, ==, "EXAMINE \"INBOX\" | FETCH 1,3,5 (UID RFC822.SIZE) | " PROBE(1, 10));
	srv_free(s, c);

	/* The mailbox cannot be opened. */
	s = srv_new();
	c = srv_connect(s, NULL);
	g_clear_error(&err);
	wrong = (mf_msg_meta *)0x1;
	srv_add(s, 1, 10, 10);
	s->refuse_examine = TRUE;
	g_assert_false(mf_imap_check_sizes(c, "INBOX", NULL, &wrong, &err));
	g_assert_nonnull(err);
	g_assert_null(wrong);
	g_autofree char *cmds2 = srv_commands(s);
	g_assert_cmpstr(cmds2, ==, "EXAMINE \"INBOX\"");
	srv_free(s, c);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap_sizecheck/honest", test_honest);
	g_test_add_func("/imap_sizecheck/small-folders", test_small_folders);
	g_test_add_func("/imap_sizecheck/empty-folder", test_empty_folder);
	g_test_add_func("/imap_sizecheck/lying", test_lying);
	g_test_add_func("/imap_sizecheck/refused-probe", test_refused_probe);
	g_test_add_func("/imap_sizecheck/refused-sizes", test_refused_sizes);
	g_test_add_func("/imap_sizecheck/size-zero", test_size_zero);
	g_test_add_func("/imap_sizecheck/cannot-check", test_cannot_check);
	return g_test_run();
}
