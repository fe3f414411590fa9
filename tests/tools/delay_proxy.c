/* A TCP forwarder that adds latency without limiting bandwidth, standing in for a WAN (the
 * test kernel has no netem). Every chunk read from one side is stamped and written to the
 * other side D ms later, so a request/response round trip costs 2D while a bulk transfer still
 * runs at loopback speed once the pipe is full. FIN is delayed the same way; a reset or error on
 * either side drops the whole connection.
 *
 * Usage: delay_proxy [-d MS] [-l PORT] TARGET_HOST TARGET_PORT
 * Listens on 127.0.0.1:PORT (0, the default, picks a free port) and prints "port N" on stdout
 * once it accepts connections. Runs until SIGINT or SIGTERM. Single-threaded: one poll loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROXY_READ_SIZE (256 * 1024)
/* Far above bandwidth x delay on loopback (a few MB at 10 ms), so it never throttles; it only
 * bounds memory if the receiver stalls. */
#define PROXY_MAX_QUEUED (64 * 1024 * 1024)

typedef struct {
	gint64 due_ns;
	gsize len, off;
	guint8 data[];
} proxy_chunk;

typedef struct {
	int from, to;
	GQueue chunks; /* proxy_chunk*, oldest first */
	gsize queued;
	gint64 eof_due_ns; /* 0 until the reader saw EOF */
	gboolean eof_forwarded;
	gboolean blocked; /* the writer said EAGAIN: wait for POLLOUT */
} proxy_dir;

typedef struct {
	int fd[2];         /* client, server */
	proxy_dir dir[2];  /* client->server, server->client */
	gboolean dead;
} proxy_link;

static volatile sig_atomic_t proxy_stop;

static void proxy_on_signal(int sig)
{
	proxy_stop = 1;
}

static gint64 proxy_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (gint64)ts.tv_sec * G_GINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

static void proxy_set_socket_options(int fd)
{
	int one = 1;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	/* Chunks are already delayed on purpose; Nagle would add its own, uncontrolled delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int proxy_listen(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t len = sizeof(sa);
	int one = 1, fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	printf("port %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	return fd;
}

static int proxy_connect_target(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -1;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		/* Blocking on purpose: the target is local and answers at once. */
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static proxy_link *proxy_link_new(int client, int server)
{
	proxy_link *l = g_new0(proxy_link, 1);

	l->fd[0] = client;
	l->fd[1] = server;
	for (int i = 0; i < 2; i++) {
		l->dir[i].from = l->fd[i];
		l->dir[i].to = l->fd[1 - i];
		g_queue_init(&l->dir[i].chunks);
	}
	return l;
}

static void proxy_link_free(proxy_link *l)
{
	for (int i = 0; i < 2; i++)
		g_queue_clear_full(&l->dir[i].chunks, g_free);
	close(l->fd[0]);
	close(l->fd[1]);
	g_free(l);
}

static gboolean proxy_dir_done(const proxy_dir *d)
{
	return d->eof_forwarded;
}

/* Reads what is available now (one chunk) and stamps it. FALSE on error. */
static gboolean proxy_dir_read(proxy_dir *d, gint64 delay_ns)
{
	static guint8 buf[PROXY_READ_SIZE];
	ssize_t n = recv(d->from, buf, sizeof(buf), 0);
	proxy_chunk *c;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0) {
		d->eof_due_ns = proxy_now_ns() + delay_ns;
		return TRUE;
	}
	c = g_malloc(sizeof(*c) + (gsize)n);
	c->due_ns = proxy_now_ns() + delay_ns;
	c->len = (gsize)n;
	c->off = 0;
	memcpy(c->data, buf, (gsize)n);
	g_queue_push_tail(&d->chunks, c);
	d->queued += (gsize)n;
	return TRUE;
}

/* Writes every chunk that is due. FALSE on error. */
static gboolean proxy_dir_flush(proxy_dir *d, gint64 now)
{
	proxy_chunk *c;

	d->blocked = FALSE;
	while ((c = g_queue_peek_head(&d->chunks)) && c->due_ns <= now) {
		ssize_t n = send(d->to, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				d->blocked = TRUE;
				return TRUE;
			}
			return FALSE;
		}
		c->off += (gsize)n;
		d->queued -= (gsize)n;
		if (c->off < c->len)
			continue;
		g_free(g_queue_pop_head(&d->chunks));
	}
	if (d->eof_due_ns && !d->eof_forwarded && g_queue_is_empty(&d->chunks) &&
	    d->eof_due_ns <= now) {
		shutdown(d->to, SHUT_WR);
		d->eof_forwarded = TRUE;
	}
	return TRUE;
}

/* The earliest time something in this direction becomes due, or G_MAXINT64. */
static gint64 proxy_dir_next_due(const proxy_dir *d)
{
	const proxy_chunk *c = g_queue_peek_head((GQueue *)&d->chunks);

	if (c)
		return d->blocked ? G_MAXINT64 : c->due_ns;
	if (d->eof_due_ns && !d->eof_forwarded)
		return d->eof_due_ns;
	return G_MAXINT64;
}

static void proxy_accept(int lfd, GPtrArray *links, const char *host, const char *port)
{
	for (;;) {
		int client = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), server;

		if (client < 0)
			return;
		server = proxy_connect_target(host, port);
		if (server < 0) {
			fprintf(stderr, "delay_proxy: cannot connect to %s:%s: %s\n", host, port,
				g_strerror(errno));
			close(client);
			continue;
		}
		proxy_set_socket_options(client);
		proxy_set_socket_options(server);
		g_ptr_array_add(links, proxy_link_new(client, server));
	}
}

static void proxy_run(int lfd, gint64 delay_ns, const char *host, const char *port)
{
	g_autoptr(GPtrArray) links = g_ptr_array_new_with_free_func((GDestroyNotify)proxy_link_free);
	g_autoptr(GArray) pfds = g_array_new(FALSE, TRUE, sizeof(struct pollfd));

	while (!proxy_stop) {
		gint64 now = proxy_now_ns(), next = G_MAXINT64;
		struct pollfd lp = { .fd = lfd, .events = POLLIN };
		struct timespec ts, *tsp = NULL;

		g_array_set_size(pfds, 0);
		g_array_append_val(pfds, lp);
		for (guint i = 0; i < links->len; i++) {
			proxy_link *l = links->pdata[i];

			for (int s = 0; s < 2; s++) {
				/* Side s is read by dir[s] and written by dir[1 - s]. */
				proxy_dir *rd = &l->dir[s], *wr = &l->dir[1 - s];
				struct pollfd p = { .fd = l->fd[s] };

				if (!rd->eof_due_ns && rd->queued < PROXY_MAX_QUEUED)
					p.events |= POLLIN;
				if (wr->blocked)
					p.events |= POLLOUT;
				g_array_append_val(pfds, p);
				next = MIN(next, proxy_dir_next_due(wr));
			}
		}
		if (next != G_MAXINT64) {
			gint64 wait = MAX(0, next - now);

			ts.tv_sec = wait / 1000000000;
			ts.tv_nsec = wait % 1000000000;
			tsp = &ts;
		}
		if (ppoll((struct pollfd *)pfds->data, pfds->len, tsp, NULL) < 0 && errno != EINTR)
			break;

		if (g_array_index(pfds, struct pollfd, 0).revents & POLLIN)
			proxy_accept(lfd, links, host, port);
		for (guint i = 0; i < links->len; i++) {
			proxy_link *l = links->pdata[i];
			/* Links accepted in this round have no pollfd yet. */
			guint base = 1 + 2 * i;

			if (base + 1 >= pfds->len)
				break;
			for (int s = 0; s < 2; s++) {
				short re = g_array_index(pfds, struct pollfd, base + s).revents;

				if ((re & (POLLIN | POLLHUP | POLLERR)) && !l->dir[s].eof_due_ns &&
				    !proxy_dir_read(&l->dir[s], delay_ns))
					l->dead = TRUE;
			}
		}
		now = proxy_now_ns();
		for (guint i = links->len; i-- > 0;) {
			proxy_link *l = links->pdata[i];

			for (int s = 0; s < 2 && !l->dead; s++)
				if (!proxy_dir_flush(&l->dir[s], now))
					l->dead = TRUE;
			if (l->dead || (proxy_dir_done(&l->dir[0]) && proxy_dir_done(&l->dir[1])))
				g_ptr_array_remove_index_fast(links, i);
		}
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = proxy_on_signal };
	double delay_ms = 10;
	int port = 0, opt, lfd;

	while ((opt = getopt(argc, argv, "d:l:h")) != -1) {
		switch (opt) {
		case 'd':
			delay_ms = g_ascii_strtod(optarg, NULL);
			break;
		case 'l':
			port = atoi(optarg);
			break;
		default:
			fprintf(stderr, "Usage: %s [-d MS] [-l PORT] TARGET_HOST TARGET_PORT\n"
					"Forwards 127.0.0.1:PORT to the target, adding MS ms (default 10) "
					"in each direction.\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (argc - optind != 2 || delay_ms < 0) {
		fprintf(stderr, "delay_proxy: expected TARGET_HOST TARGET_PORT (see -h)\n");
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	lfd = proxy_listen(port);
	if (lfd < 0) {
		fprintf(stderr, "delay_proxy: cannot listen on 127.0.0.1:%d: %s\n", port,
			g_strerror(errno));
		return 1;
	}
	proxy_run(lfd, (gint64)(delay_ms * 1e6), argv[optind], argv[optind + 1]);
	close(lfd);
	return 0;
}
