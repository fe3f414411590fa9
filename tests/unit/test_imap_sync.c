/* Incremental folder listings (imap_sync.c) against a small scripted IMAP server on loopback:
 * which commands each kind of server gets asked, and that the result always equals what a
 * full listing would give. The server models one mailbox with UIDs, flags and modseqs, and
 * speaks just enough QRESYNC, CONDSTORE and ESEARCH (each can be switched off). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap_conn.h"
#include "imap_sync.h"
#include "imap_uidset.h"
#include "mailhdr.h"

typedef struct {
	guint32 uid;
	char flags[64];
	guint64 modseq;
} FMsg;

typedef struct {
	const char *caps;
	guint32 uidvalidity, uidnext;
	guint64 modseq;     /* highest */
	GArray *msgs;       /* FMsg, ascending uid */
	GArray *gone;       /* FMsg: expunged uid and the modseq of the expunge */
	gboolean qresync;   /* enabled by the client */
	gboolean fail_fetch; /* answer UID FETCH with NO */
	gboolean interleave; /* answer two pipelined UID FETCHes line by line, the second first */
	GPtrArray *log;     /* command lines received (tag stripped), since the last reset */
	int listen_fd;
	GThread *thread;
} Fake;

static gboolean fake_has_cap(Fake *f, const char *cap)
{
	return strstr(f->caps, cap) != NULL;
}

static void fake_add(Fake *f, const char *flags)
{
	FMsg m = { .uid = f->uidnext++, .modseq = ++f->modseq };

	g_strlcpy(m.flags, flags, sizeof m.flags);
	g_array_append_val(f->msgs, m);
}

static void fake_expunge(Fake *f, guint32 uid)
{
	for (guint i = 0; i < f->msgs->len; i++) {
		FMsg *m = &g_array_index(f->msgs, FMsg, i);

		if (m->uid == uid) {
			FMsg g = *m;

			g.modseq = ++f->modseq;
			g_array_append_val(f->gone, g);
			g_array_remove_index(f->msgs, i);
			return;
		}
	}
	g_assert_not_reached();
}

static void fake_flag(Fake *f, guint32 uid, const char *flags)
{
	for (guint i = 0; i < f->msgs->len; i++) {
		FMsg *m = &g_array_index(f->msgs, FMsg, i);

		if (m->uid == uid) {
			g_strlcpy(m->flags, flags, sizeof m->flags);
			m->modseq = ++f->modseq;
			return;
		}
	}
	g_assert_not_reached();
}

/* While set, what the server says is kept here instead of sent (see fake_interleaved). */
static __thread GString *say_capture;

static void say(int fd, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void say(int fd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_autofree char *s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (say_capture) {
		g_string_append(say_capture, s);
		return;
	}
	g_assert_cmpint(write(fd, s, strlen(s)), ==, (gssize)strlen(s));
}

static void fake_fetch_one(Fake *f, int fd, guint seq, const FMsg *m, gboolean envelope)
{
	g_autofree char *ms = fake_has_cap(f, "CONDSTORE") ?
				      g_strdup_printf(" MODSEQ (%" G_GUINT64_FORMAT ")", m->modseq) : g_strdup("");

	if (!envelope) {
		say(fd, "* %u FETCH (UID %u FLAGS (%s)%s)\r\n", seq, m->uid, m->flags, ms);
		return;
	}
	say(fd, "* %u FETCH (UID %u FLAGS (%s) INTERNALDATE \"14-Nov-2023 10:00:00 +0000\" "
		"RFC822.SIZE %u ENVELOPE (\"Tue, 14 Nov 2023 10:00:00 +0000\" \"Message %u\" "
		"((\"Sender %u\" NIL \"s\" \"example.org\")) NIL NIL ((NIL NIL \"a\" \"example.org\")) "
		"NIL NIL NIL \"<%u@example.org>\")%s)\r\n",
	    seq, m->uid, m->flags, 100 + m->uid, m->uid, m->uid, m->uid, ms);
}

/* "n:*", "1:*" or an explicit set; '*' is the highest UID, so "n:*" always names the last
 * message (RFC 3501 §6.4.8) -- the trap the client must filter. */
static gboolean fake_in_set(Fake *f, const char *set, guint32 uid)
{
	guint32 last = f->msgs->len ? g_array_index(f->msgs, FMsg, f->msgs->len - 1).uid : 0;
	const char *star = strstr(set, ":*");

	if (star) {
		guint32 lo = (guint32)strtoul(set, NULL, 10), a = MIN(lo, last), b = MAX(lo, last);

		return uid >= a && uid <= b;
	}
	g_autoptr(GArray) r = mf_imap_uidset_ranges(set, NULL);

	return r && mf_imap_uidset_ranges_contain(r, uid);
}

static void fake_command(Fake *f, int fd, const char *tag, const char *cmd)
{
	g_ptr_array_add(f->log, g_strdup(cmd));
	if (g_str_has_prefix(cmd, "ENABLE QRESYNC")) {
		f->qresync = TRUE;
		say(fd, "* ENABLED QRESYNC\r\n%s OK enabled\r\n", tag);
	} else if (g_str_has_prefix(cmd, "EXAMINE ")) {
		say(fd, "* %u EXISTS\r\n* OK [UIDVALIDITY %u] x\r\n* OK [UIDNEXT %u] x\r\n", f->msgs->len,
		    f->uidvalidity, f->uidnext);
		if (fake_has_cap(f, "CONDSTORE"))
			say(fd, "* OK [HIGHESTMODSEQ %" G_GUINT64_FORMAT "] x\r\n", f->modseq);
		const char *q = strstr(cmd, "(QRESYNC (");
		guint32 uv;
		guint64 since;

		if (q && f->qresync && sscanf(q, "(QRESYNC (%u %" G_GUINT64_FORMAT, &uv, &since) == 2 &&
		    uv == f->uidvalidity) {
			g_autoptr(GString) v = g_string_new(NULL);

			for (guint i = 0; i < f->gone->len; i++) {
				const FMsg *g = &g_array_index(f->gone, FMsg, i);

				if (g->modseq > since)
					g_string_append_printf(v, "%s%u", v->len ? "," : "", g->uid);
			}
			if (v->len)
				say(fd, "* VANISHED (EARLIER) %s\r\n", v->str);
			for (guint i = 0; i < f->msgs->len; i++) {
				const FMsg *m = &g_array_index(f->msgs, FMsg, i);

				if (m->modseq > since)
					fake_fetch_one(f, fd, i + 1, m, FALSE);
			}
		}
		say(fd, "%s OK [READ-ONLY] done\r\n", tag);
	} else if (g_str_has_prefix(cmd, "UID FETCH ") && f->fail_fetch) {
		say(fd, "%s NO [SERVERBUG] not today\r\n", tag);
	} else if (g_str_has_prefix(cmd, "UID FETCH ")) {
		g_auto(GStrv) w = g_strsplit(cmd + 10, " ", 2);
		gboolean env = strstr(cmd, "ENVELOPE") != NULL;
		const char *cs = strstr(cmd, "(CHANGEDSINCE ");
		guint64 since = cs ? g_ascii_strtoull(cs + 14, NULL, 10) : 0;

		for (guint i = 0; i < f->msgs->len; i++) {
			const FMsg *m = &g_array_index(f->msgs, FMsg, i);

			if (fake_in_set(f, w[0], m->uid) && (!cs || m->modseq > since))
				fake_fetch_one(f, fd, i + 1, m, env);
		}
		say(fd, "%s OK done\r\n", tag);
	} else if (g_str_has_prefix(cmd, "UID SEARCH")) {
		g_autoptr(GString) s = g_string_new(NULL);
		gboolean es = strstr(cmd, "RETURN") != NULL;

		for (guint i = 0; i < f->msgs->len; i++)
			g_string_append_printf(s, "%s%u", s->len ? (es ? "," : " ") : "",
					       g_array_index(f->msgs, FMsg, i).uid);
		if (es)
			say(fd, "* ESEARCH (TAG \"%s\") UID%s%s\r\n", tag, s->len ? " ALL " : "", s->str);
		else
			say(fd, "* SEARCH%s%s\r\n", s->len ? " " : "", s->str);
		say(fd, "%s OK done\r\n", tag);
	} else if (g_str_has_prefix(cmd, "LOGOUT")) {
		say(fd, "* BYE bye\r\n%s OK done\r\n", tag);
	} else {
		say(fd, "%s OK done\r\n", tag);
	}
}

/* The whole answer to one command line, kept. */
static char *fake_answer(Fake *f, char *line)
{
	char *sp = strchr(line, ' ');

	g_assert_nonnull(sp);
	*sp = '\0';
	say_capture = g_string_new(NULL);
	fake_command(f, -1, line, sp + 1);
	return g_string_free(g_steal_pointer(&say_capture), FALSE);
}

/* Two pipelined commands answered as some servers do (Dovecot, for FETCHes): their untagged
 * lines alternating, and the second one completed first. */
static void fake_interleaved(int fd, const char *a, const char *b)
{
	g_auto(GStrv) la = g_strsplit(a, "\r\n", -1), lb = g_strsplit(b, "\r\n", -1);
	guint na = g_strv_length(la) - 1, nb = g_strv_length(lb) - 1; /* the last is "" */

	for (guint i = 0; i + 1 < MAX(na, nb); i++) {
		if (i + 1 < na)
			say(fd, "%s\r\n", la[i]);
		if (i + 1 < nb)
			say(fd, "%s\r\n", lb[i]);
	}
	say(fd, "%s\r\n%s\r\n", lb[nb - 1], la[na - 1]);
}

static gpointer fake_serve(gpointer p)
{
	Fake *f = p;
	int fd = accept(f->listen_fd, NULL, NULL);
	FILE *in = fdopen(dup(fd), "r");
	char line[8192], next[8192];

	g_assert_cmpint(fd, >=, 0);
	/* Answers are written in pieces: Nagle would hold each one for a delayed ACK. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* Unbuffered, so that poll() tells whether another command is waiting. */
	setvbuf(in, NULL, _IONBF, 0);
	say(fd, "* PREAUTH [CAPABILITY %s] fake\r\n", f->caps);
	while (fgets(line, sizeof line, in)) {
		g_strchomp(line);
		struct pollfd pf = { .fd = fileno(in), .events = POLLIN };

		if (f->interleave && strstr(line, " UID FETCH ") && strstr(line, "ENVELOPE") &&
		    poll(&pf, 1, 200) == 1 && fgets(next, sizeof next, in)) {
			g_strchomp(next);
			g_autofree char *a = fake_answer(f, line), *b = fake_answer(f, next);

			fake_interleaved(fd, a, b);
			continue;
		}
		char *sp = strchr(line, ' ');

		if (!sp)
			break;
		*sp = '\0';
		fake_command(f, fd, line, sp + 1);
		if (g_str_has_prefix(sp + 1, "LOGOUT"))
			break;
	}
	fclose(in);
	close(fd);
	return NULL;
}

static Fake *fake_new(const char *caps)
{
	Fake *f = g_new0(Fake, 1);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	f->caps = caps;
	f->uidvalidity = 1000;
	f->uidnext = 1;
	f->msgs = g_array_new(FALSE, FALSE, sizeof(FMsg));
	f->gone = g_array_new(FALSE, FALSE, sizeof(FMsg));
	f->log = g_ptr_array_new_with_free_func(g_free);
	f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	g_assert_cmpint(bind(f->listen_fd, (struct sockaddr *)&a, sizeof a), ==, 0);
	g_assert_cmpint(listen(f->listen_fd, 1), ==, 0);
	f->thread = g_thread_new("fake-imap", fake_serve, f);
	return f;
}

static mf_imap_conn *fake_connect(Fake *f, mf_stats *stats)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	g_autoptr(GError) err = NULL;

	g_assert_cmpint(getsockname(f->listen_fd, (struct sockaddr *)&a, &len), ==, 0);
	mf_imap_conn_opts o = {
		.host = "127.0.0.1", .port = ntohs(a.sin_port), .allow_plaintext = TRUE, .user = "u",
		.password = "p", .timeout_sec = 5, .stats = stats, .label = "test",
		.enable_qresync = TRUE,
	};
	mf_imap_conn *c = mf_imap_conn_open(&o, &err);

	g_assert_no_error(err);
	g_ptr_array_set_size(f->log, 0);
	return c;
}

static void fake_free(Fake *f, mf_imap_conn *c)
{
	mf_imap_conn_logout(c);
	g_thread_join(f->thread);
	close(f->listen_fd);
	g_array_free(f->msgs, TRUE);
	g_array_free(f->gone, TRUE);
	g_ptr_array_unref(f->log);
	g_free(f);
}

/* The commands since the last call, verbs and arguments joined by " | ". */
static char *fake_commands(Fake *f)
{
	g_ptr_array_add(f->log, NULL);
	char *s = g_strjoinv(" | ", (char **)f->log->pdata);

	g_ptr_array_set_size(f->log, 0);
	return s;
}

/* "uid:flags" for the index, ascending, and the same for the fake mailbox: always equal
 * after a sync. */
static char *render_index(const mf_imap_index *x)
{
	g_autoptr(GPtrArray) l = mf_imap_index_listing(x);
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < l->len; i++) {
		const mf_msg_meta *m = l->pdata[i];

		g_assert_cmpstr(m->subject, !=, NULL);
		g_string_append_printf(s, "%u:%s ", m->uid, m->flags);
	}
	return g_string_free(s, FALSE);
}

static char *render_fake(Fake *f)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < f->msgs->len; i++) {
		const FMsg *m = &g_array_index(f->msgs, FMsg, i);

		g_string_append_printf(s, "%u:%s ", m->uid, m->flags);
	}
	return g_string_free(s, FALSE);
}

static guint listings_checked;

/* Sync, check the result against the server's mailbox and the commands against `want`. */
static void sync_expect(Fake *f, mf_imap_conn *c, mf_imap_index **idx, const char *want,
			gboolean want_changed)
{
	g_autoptr(GError) err = NULL;
	gboolean changed = !want_changed;

	g_autoptr(GPtrArray) listing = NULL;
	g_assert_true(mf_imap_sync_folder(c, "INBOX", NULL, idx, &changed, &listing, NULL, NULL, NULL, &err));
	g_assert_no_error(err);
	if (listing) {
		/* Built during a full listing: the same as the index gives. */
		listings_checked++;
		g_autoptr(GPtrArray) want_l = mf_imap_index_listing(*idx);
		g_assert_cmpuint(listing->len, ==, want_l->len);
		for (guint i = 0; i < listing->len; i++) {
			const mf_msg_meta *x = listing->pdata[i], *y = want_l->pdata[i];
			g_assert_cmpuint(x->uid, ==, y->uid);
			g_assert_cmpstr(x->flags, ==, y->flags);
			g_assert_cmpstr(x->subject, ==, y->subject);
			g_assert_cmpstr(x->from, ==, y->from);
			g_assert_cmpuint(x->size, ==, y->size);
		}
	}
	g_autofree char *got = fake_commands(f);
	g_autofree char *a = render_index(*idx), *b = render_fake(f);

	g_assert_cmpstr(got, ==, want);
	g_assert_cmpstr(a, ==, b);
	g_assert_cmpint(changed, ==, want_changed);
	g_assert_cmpuint((*idx)->uidnext, ==, f->uidnext);
}

#define LIST_ALL "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"

static void test_qresync(void)
{
	Fake *f = fake_new("IMAP4rev1 ENABLE CONDSTORE QRESYNC ESEARCH");
	mf_imap_conn *c = fake_connect(f, NULL);
	g_autoptr(mf_imap_index) idx = NULL;

	g_assert_true(mf_imap_conn_qresync(c));
	for (int i = 0; i < 5; i++)
		fake_add(f, i % 2 ? "\\Seen" : "");
	sync_expect(f, c, &idx, "EXAMINE \"INBOX\" (CONDSTORE) | " LIST_ALL, TRUE);
	g_assert_cmpuint(listings_checked, >, 0);
	g_assert_cmpuint(idx->highestmodseq, ==, 5);

	/* Nothing changed: the EXAMINE alone. */
	sync_expect(f, c, &idx, "EXAMINE \"INBOX\" (QRESYNC (1000 5))", FALSE);

	/* Expunges and flag changes come with the EXAMINE; new mail costs one UID FETCH. */
	fake_expunge(f, 2);
	fake_flag(f, 3, "\\Flagged");
	fake_add(f, "");
	fake_add(f, "\\Seen");
	sync_expect(f, c, &idx,
		    "EXAMINE \"INBOX\" (QRESYNC (1000 5)) | "
		    "UID FETCH 6:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
		    TRUE);

	/* A message that came and went: UIDNEXT moved, and "8:*" answers with UID 7, which
	 * must not be taken for new mail (nor break anything). */
	fake_add(f, "");
	fake_expunge(f, 8);
	sync_expect(f, c, &idx,
		    "EXAMINE \"INBOX\" (QRESYNC (1000 9)) | "
		    "UID FETCH 8:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
		    TRUE);

	/* The mailbox was recreated: everything is listed anew. */
	f->uidvalidity = 2000;
	g_array_set_size(f->gone, 0);
	sync_expect(f, c, &idx, "EXAMINE \"INBOX\" (QRESYNC (1000 11)) | " LIST_ALL, TRUE);
	g_assert_cmpuint(idx->uidvalidity, ==, 2000);

	/* From the saved form, as after a remount. */
	g_autoptr(GBytes) b = mf_imap_index_serialise(idx, "t");
	gsize n;
	const guint8 *d = g_bytes_get_data(b, &n);
	g_autoptr(mf_imap_index) loaded = mf_imap_index_parse(d, n, "INBOX", "t", NULL);

	g_assert_nonnull(loaded);
	fake_expunge(f, 1);
	sync_expect(f, c, &loaded, "EXAMINE \"INBOX\" (QRESYNC (2000 11))", TRUE);

	/* Everything expunged. */
	while (f->msgs->len)
		fake_expunge(f, g_array_index(f->msgs, FMsg, 0).uid);
	sync_expect(f, c, &loaded, "EXAMINE \"INBOX\" (QRESYNC (2000 12))", TRUE);
	g_assert_cmpuint(g_hash_table_size(loaded->msgs), ==, 0);
	fake_free(f, c);
}

static void test_condstore(void)
{
	Fake *f = fake_new("IMAP4rev1 CONDSTORE ESEARCH");
	mf_imap_conn *c = fake_connect(f, NULL);
	g_autoptr(mf_imap_index) idx = NULL;

	g_assert_false(mf_imap_conn_qresync(c));
	for (int i = 0; i < 5; i++)
		fake_add(f, "");
	sync_expect(f, c, &idx, "EXAMINE \"INBOX\" (CONDSTORE) | " LIST_ALL, TRUE);
	sync_expect(f, c, &idx, "EXAMINE \"INBOX\" (CONDSTORE)", FALSE);

	/* A flag change: only what changed since the last modseq. */
	fake_flag(f, 4, "\\Answered");
	sync_expect(f, c, &idx,
		    "EXAMINE \"INBOX\" (CONDSTORE) | UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE 5)", TRUE);

	/* An expunge shows only in the count: then the UID set is compared. */
	fake_expunge(f, 2);
	fake_add(f, "");
	sync_expect(f, c, &idx,
		    "EXAMINE \"INBOX\" (CONDSTORE) | "
		    "UID FETCH 6:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE) | "
		    "UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE 6) | UID SEARCH RETURN (ALL) ALL",
		    TRUE);

	/* HIGHESTMODSEQ went backwards (a restored server): modseqs say nothing any more. */
	f->modseq = 2;
	fake_flag(f, 1, "\\Deleted");
	sync_expect(f, c, &idx, "EXAMINE \"INBOX\" (CONDSTORE) | UID FETCH 1:* (UID FLAGS)", TRUE);
	fake_free(f, c);
}

static void test_plain(void)
{
	Fake *f = fake_new("IMAP4rev1");
	mf_imap_conn *c = fake_connect(f, NULL);
	g_autoptr(mf_imap_index) idx = NULL;

	for (int i = 0; i < 4; i++)
		fake_add(f, "");
	sync_expect(f, c, &idx, "EXAMINE \"INBOX\" | " LIST_ALL, TRUE);
	/* Without modseqs only the flags can tell; they also give the UID set. */
	sync_expect(f, c, &idx, "EXAMINE \"INBOX\" | UID FETCH 1:* (UID FLAGS)", FALSE);
	fake_expunge(f, 1);
	fake_expunge(f, 3);
	fake_flag(f, 2, "\\Seen");
	fake_add(f, "");
	sync_expect(f, c, &idx,
		    "EXAMINE \"INBOX\" | UID FETCH 5:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE) | "
		    "UID FETCH 1:* (UID FLAGS)",
		    TRUE);
	fake_free(f, c);
}

/* ---- a full listing split over two connections ---------------------------------------- */

/* A second server holding the same mailbox: the helper's connection goes there, so that each
 * server's log shows one connection's commands. */
static Fake *fake_twin(Fake *f)
{
	Fake *g = fake_new(f->caps);

	g->uidvalidity = f->uidvalidity;
	g->uidnext = f->uidnext;
	g->modseq = f->modseq;
	g_array_append_vals(g->msgs, f->msgs->data, f->msgs->len);
	return g;
}

typedef struct {
	Fake *twin;        /* NULL: no second connection to lend */
	gboolean long_link; /* every round trip counts as long: no waiting for a connection */
	mf_imap_conn *lent;
	guint borrowed;
} Lender;

static mf_imap_conn *lender_borrow(const char *mailbox, gboolean wait, gpointer ud)
{
	Lender *l = ud;

	g_assert_true(wait != l->long_link);
	l->borrowed++;
	return l->twin ? fake_connect(l->twin, NULL) : NULL;
}

static void lender_give_back(mf_imap_conn *c, gpointer ud)
{
	((Lender *)ud)->lent = c;
}

static void collect_uids(guint32 uidvalidity, GPtrArray *metas, gpointer ud)
{
	GArray *uids = ud;

	for (guint i = 0; i < metas->len; i++) {
		mf_msg_meta *m = metas->pdata[i];

		g_array_append_val(uids, m->uid);
		mf_msg_meta_unref(m);
	}
}

#define ITEMS " (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"

/* One full listing with a lender; the index must equal the mailbox `truth` holds (f's unless
 * given), whatever the lender did. Streamed (to a sink) or not. Returns the commands of the
 * first connection. */
static char *split_listing(Fake *f, Lender *l, gboolean streamed, mf_imap_index **idx,
			   Fake *truth)
{
	mf_imap_conn *c = fake_connect(f, NULL);
	mf_imap_helper h = { lender_borrow, lender_give_back, l, 10,
			     l->long_link ? 0 : G_MAXINT64 };
	g_autoptr(GArray) uids = g_array_new(FALSE, FALSE, sizeof(guint32));
	mf_listing_sink sink = { .add = collect_uids, .user_data = uids };
	g_autoptr(GPtrArray) listing = NULL;
	g_autoptr(GError) err = NULL;
	gboolean changed = FALSE, all_in_sink = FALSE;

	g_assert_true(mf_imap_sync_folder(c, "INBOX", NULL, idx, &changed, &listing,
					  streamed ? &sink : NULL, &all_in_sink, &h, &err));
	g_assert_no_error(err);
	g_assert_true(changed);
	g_autofree char *a = render_index(*idx), *b = render_fake(truth ? truth : f);
	g_assert_cmpstr(a, ==, b);
	g_autoptr(GPtrArray) want = mf_imap_index_listing(*idx);
	if (streamed) {
		/* Every message once, in UID order, as from one connection. */
		g_assert_true(all_in_sink);
		g_assert_cmpuint(uids->len, ==, want->len);
		for (guint i = 0; i < want->len; i++)
			g_assert_cmpuint(g_array_index(uids, guint32, i), ==,
					 ((mf_msg_meta *)want->pdata[i])->uid);
	} else {
		g_assert_nonnull(listing);
		g_assert_cmpuint(listing->len, ==, want->len);
		for (guint i = 0; i < want->len; i++)
			g_assert_true(listing->pdata[i] == want->pdata[i]);
	}
	char *cmds = fake_commands(f);
	fake_free(f, c);
	return cmds;
}

/* The UID ranges of the listing's FETCH commands in a log ("EXAMINE ... | UID FETCH a:b ..."),
 * appended to `ranges` as pairs. */
static void fetch_ranges(const char *log, GArray *ranges)
{
	g_auto(GStrv) cmds = g_strsplit(log, " | ", -1);

	for (guint i = 0; cmds[i]; i++) {
		guint32 r[2];

		if (g_str_has_prefix(cmds[i], "EXAMINE "))
			continue;
		g_assert_true(g_str_has_suffix(cmds[i], ITEMS));
		g_assert_cmpint(sscanf(cmds[i], "UID FETCH %u:%u", &r[0], &r[1]), ==, 2);
		g_array_append_vals(ranges, r, 2);
	}
}

typedef struct {
	guint32 lo, hi;
} Range;

static int range_cmp(gconstpointer a, gconstpointer b)
{
	const Range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Both connections' ranges, each taken from the bottom as it was ready: together exactly
 * 1..2^32-1, each UID asked for once. Returns how many the second one had. */
static guint check_ranges(const char *first, const char *second)
{
	g_autoptr(GArray) flat = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GArray) two = g_array_new(FALSE, FALSE, sizeof(guint32));

	fetch_ranges(first, flat);
	fetch_ranges(second, two);
	for (guint i = 2; i < two->len; i += 2)
		g_assert_cmpuint(g_array_index(two, guint32, i), >, g_array_index(two, guint32, i - 2));
	g_array_append_vals(flat, two->data, two->len);
	g_autoptr(GArray) r = g_array_new(FALSE, FALSE, sizeof(Range));
	g_array_append_vals(r, flat->data, flat->len / 2);
	g_array_sort(r, range_cmp);
	g_assert_cmpuint(r->len, >=, 1);
	g_assert_cmpuint(g_array_index(r, Range, 0).lo, ==, 1);
	for (guint i = 1; i < r->len; i++)
		g_assert_cmpuint(g_array_index(r, Range, i).lo, ==, g_array_index(r, Range, i - 1).hi + 1);
	g_assert_cmpuint(g_array_index(r, Range, r->len - 1).hi, ==, G_MAXUINT32);
	return two->len / 2;
}

static void test_split(void)
{
	guint top_total = 0;

	for (int round = 0; round < 6; round++) {
		gboolean streamed = round % 2;
		Fake *f = fake_new("IMAP4rev1 CONDSTORE");
		for (int i = 0; i < 50; i++)
			fake_add(f, i % 3 ? "\\Seen" : "");
		Lender l = { .twin = fake_twin(f) };
		g_autoptr(mf_imap_index) idx = NULL;
		g_autofree char *cmds = split_listing(f, &l, streamed, &idx, NULL);
		g_autofree char *lent = fake_commands(l.twin);

		/* Sixteen chunks of about 50/16 UIDs, shared out as each connection is ready. */
		g_assert_true(g_str_has_prefix(cmds, "EXAMINE \"INBOX\" (CONDSTORE) | UID FETCH 1:3" ITEMS));
		g_assert_true(g_str_has_prefix(lent, "EXAMINE \"INBOX\""));
		top_total += check_ranges(cmds, lent);
		g_assert_cmpuint(idx->highestmodseq, ==, 50);
		fake_free(l.twin, l.lent);
	}
	g_test_message("the second connection fetched %u of 96 chunks", top_total);
}

/* A server that interleaves its answers to the two FETCHes in flight, and completes the later
 * one first: the sink still gets every envelope once, in UID order (split_listing checks). */
static void test_split_interleaved(void)
{
	for (int twin = 0; twin < 2; twin++) {
		Fake *f = fake_new("IMAP4rev1");
		for (int i = 0; i < 80; i++)
			fake_add(f, "");
		f->interleave = TRUE;
		Lender l = { .twin = twin ? fake_twin(f) : NULL };
		if (l.twin)
			l.twin->interleave = TRUE;
		g_autoptr(mf_imap_index) idx = NULL;
		g_autofree char *cmds = split_listing(f, &l, TRUE, &idx, NULL);
		g_autofree char *lent = l.twin ? fake_commands(l.twin) : g_strdup("");

		check_ranges(cmds, lent);
		if (l.twin)
			fake_free(l.twin, l.lent);
	}
}

/* Whatever happens to the second connection, the first lists the rest itself. */
static void test_split_fallbacks(void)
{
	static const char all[] = "EXAMINE \"INBOX\" | UID FETCH 1:1" ITEMS " | UID FETCH 2:3" ITEMS
				  " | UID FETCH 4:5" ITEMS " | UID FETCH 6:7" ITEMS " | UID FETCH 8:9" ITEMS
				  " | UID FETCH 10:11" ITEMS " | UID FETCH 12:13" ITEMS
				  " | UID FETCH 14:15" ITEMS " | UID FETCH 16:16" ITEMS
				  " | UID FETCH 17:18" ITEMS " | UID FETCH 19:20" ITEMS
				  " | UID FETCH 21:22" ITEMS " | UID FETCH 23:24" ITEMS
				  " | UID FETCH 25:26" ITEMS " | UID FETCH 27:28" ITEMS
				  " | UID FETCH 29:4294967295" ITEMS;

	for (int how = 0; how < 3; how++) {
		Fake *f = fake_new("IMAP4rev1");
		for (int i = 0; i < 30; i++)
			fake_add(f, "");
		Lender l = { 0 };
		if (how > 0)
			l.twin = fake_twin(f);
		if (how == 1)
			l.twin->uidvalidity = 7; /* it sees another epoch of the folder */
		if (how == 2)
			l.twin->fail_fetch = TRUE;
		g_autoptr(mf_imap_index) idx = NULL;
		g_autofree char *cmds = split_listing(f, &l, how != 1, &idx, NULL);

		g_assert_cmpuint(l.borrowed, ==, 1);
		if (how < 2) {
			g_assert_cmpstr(cmds, ==, all);
		} else {
			/* The chunks it failed are asked for again, in one command at the end. */
			g_autofree char *lent = fake_commands(l.twin);
			g_autoptr(GArray) r = g_array_new(FALSE, FALSE, sizeof(guint32));
			fetch_ranges(lent, r);
			g_autoptr(GString) again = g_string_new(" | UID FETCH ");
			for (guint i = 0; i < r->len; i += 2)
				g_string_append_printf(again, "%s%u:%u", i ? "," : "",
						       g_array_index(r, guint32, i),
						       g_array_index(r, guint32, i + 1));
			g_string_append(again, ITEMS);
			if (r->len)
				g_assert_true(g_str_has_suffix(cmds, again->str));
		}
		g_assert_cmpuint(idx->uidnext, ==, 31);
		if (l.twin)
			fake_free(l.twin, l.lent);
	}
}

/* Over a long link the listing is shared only with a connection that is ready at once; without
 * one it is the single "UID FETCH 1:*" (ranges would cost round trips between them). */
static void test_split_long_link(void)
{
	for (int twin = 0; twin < 2; twin++) {
		Fake *f = fake_new("IMAP4rev1");
		for (int i = 0; i < 30; i++)
			fake_add(f, "");
		Lender l = { .twin = twin ? fake_twin(f) : NULL, .long_link = TRUE };
		g_autoptr(mf_imap_index) idx = NULL;
		g_autofree char *cmds = split_listing(f, &l, TRUE, &idx, NULL);

		g_assert_cmpuint(l.borrowed, ==, 1);
		if (!twin) {
			g_assert_cmpstr(cmds, ==, "EXAMINE \"INBOX\" | " LIST_ALL);
		} else {
			g_autofree char *lent = fake_commands(l.twin);
			check_ranges(cmds, lent);
			fake_free(l.twin, l.lent);
		}
	}
}

/* UIDs far below UIDNEXT (the newest mail was deleted): the chunks still cover every UID, and
 * the empty ones cost nothing but a command. A small folder is one "UID FETCH 1:*". */
static void test_split_edges(void)
{
	Fake *f = fake_new("IMAP4rev1");
	for (int i = 0; i < 40; i++)
		fake_add(f, "");
	for (guint32 u = 41; u < 100; u++) {
		fake_add(f, "");
		fake_expunge(f, u);
	}
	Lender l = { .twin = fake_twin(f) };
	g_autoptr(mf_imap_index) idx = NULL;
	g_autofree char *cmds = split_listing(f, &l, TRUE, &idx, NULL);
	g_autofree char *lent = fake_commands(l.twin);

	/* UIDNEXT 100, 40 messages: the chunks start at 60, so the first holds most. */
	g_assert_true(g_str_has_prefix(cmds, "EXAMINE \"INBOX\" | UID FETCH 1:61" ITEMS));
	check_ranges(cmds, lent);
	g_assert_cmpuint(g_hash_table_size(idx->msgs), ==, 40);
	fake_free(l.twin, l.lent);

	Fake *small = fake_new("IMAP4rev1");
	for (int i = 0; i < 9; i++)
		fake_add(small, "");
	Lender none = { .twin = NULL };
	g_autoptr(mf_imap_index) idx2 = NULL;
	g_autofree char *one = split_listing(small, &none, FALSE, &idx2, NULL);
	g_assert_cmpstr(one, ==, "EXAMINE \"INBOX\" | " LIST_ALL);
	g_assert_cmpuint(none.borrowed, ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	mf_mailhdr_init();
	g_test_add_func("/imap_sync/qresync", test_qresync);
	g_test_add_func("/imap_sync/condstore", test_condstore);
	g_test_add_func("/imap_sync/plain", test_plain);
	g_test_add_func("/imap_sync/split", test_split);
	g_test_add_func("/imap_sync/split-fallbacks", test_split_fallbacks);
	g_test_add_func("/imap_sync/split-interleaved", test_split_interleaved);
	g_test_add_func("/imap_sync/split-long-link", test_split_long_link);
	g_test_add_func("/imap_sync/split-edges", test_split_edges);
	return g_test_run();
}
