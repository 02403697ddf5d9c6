/* ctl: control socket server and client.
 *
 * A request is one line ("stats", "flows", "top", each optionally
 * followed by " json"); the answer follows and the server closes the
 * connection, so EOF ends it (text answers also end with "# end").
 * Only root (and control-group) may connect: listen.c makes the socket
 * and checks each peer's credentials. Requests are bounded in size and
 * time, clients in number, and a full house makes room by dropping the
 * oldest client still silent, so idle connections cannot lock out a
 * scrape or `ctd -s`; anything refused or dropped is counted. Answers are produced in chunks
 * when the client has read the previous one, so the loop never blocks
 * and memory stays bounded. The metrics endpoint is the same server on a
 * loopback TCP port: the request is an HTTP GET, the answer gets an
 * HTTP header, and anyone on the host may read counters. Off loopback
 * it is HTTPS only, and a scraper must show a certificate of the
 * client CA (the TLS handshake runs inside SSL_read, non-blocking;
 * every read and write goes through c_recv/c_send). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <ev.h>
#include <openssl/ssl.h>

#include "ctd/base/listen.h"
#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/control/ctl.h"

struct ctd_ctl;

struct client {
	int fd;
	ev_io io;
	ev_timer deadline;     /* whole request, then each answer chunk */
	uint64_t seq;          /* accept order: the oldest idle one goes */
	struct ctd_ctl *ctl;
	char req[CTD_CTL_MAX_HTTP_REQUEST];
	size_t req_len;
	bool answering;
	bool more;             /* the callback has more after this chunk */
	size_t cursor;
	char *out;             /* current chunk */
	size_t out_len, out_off;
	SSL *ssl;              /* HTTPS; NULL otherwise */
};

struct ctd_ctl {
	struct ev_loop *loop;
	int lfd;
	ev_io accept_io;
	char *path;                /* Unix socket to remove; NULL for TCP */
	bool http;
	ctd_ctl_answer *answer;
	void *arg;
	struct ctd_stats *stats;
	gid_t group;               /* may connect besides root; -1 none */
	struct client *clients[CTD_CTL_MAX_CLIENTS];
	size_t n;
	uint64_t accepted;
	SSL_CTX *tls;              /* HTTPS: scrapers' certificates checked */
};

static void drop(struct ctd_ctl *ctl, struct client *c)
{
	size_t i = 0;

	while (i < ctl->n && ctl->clients[i] != c)
		i++;
	if (i < ctl->n)
		ctl->clients[i] = ctl->clients[--ctl->n];
	if (c->answering && c->more)
		ctl->answer(ctl->arg, c->req, NULL, &c->cursor);
	ev_io_stop(ctl->loop, &c->io);
	ev_timer_stop(ctl->loop, &c->deadline);
	if (c->ssl && c->answering)
		SSL_shutdown(c->ssl);    /* close_notify: the answer is whole */
	SSL_free(c->ssl);
	close(c->fd);
	free(c->out);
	free(c);
}

/* OpenSSL's result as recv/send's: -1 with EAGAIN to wait, 0 for the
 * peer's close, -1 otherwise (a refused handshake: counted). */
static ssize_t tls_result(struct client *c, int r)
{
	int e = SSL_get_error(c->ssl, r);

	if (r > 0)
		return r;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SSL && !SSL_is_init_finished(c->ssl))
		c->ctl->stats->ctl_refused++;
	errno = EPROTO;
	return -1;
}

static ssize_t c_recv(struct client *c, void *buf, size_t n)
{
	if (!c->ssl)
		return recv(c->fd, buf, n, MSG_DONTWAIT);
	return tls_result(c, SSL_read(c->ssl, buf, (int)n));
}

static ssize_t c_send(struct client *c, const void *buf, size_t n)
{
	if (!c->ssl)
		return send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return tls_result(c, SSL_write(c->ssl, buf, (int)n));
}

/* The next chunk of the answer; false when it could not be made. */
/* HTTP: GET /metrics, or a 404. The header goes before the first chunk. */
static bool http_head(struct client *c, FILE *f)
{
	bool ok = strncmp(c->req, "GET /metrics ", 13) == 0 ||
		  strcmp(c->req, "GET /metrics") == 0;

	if (ok) {
		fputs("HTTP/1.0 200 OK\r\nContent-Type: text/plain; "
		      "version=0.0.4\r\nConnection: close\r\n\r\n", f);
		strcpy(c->req, "metrics");
	} else {
		fputs("HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
		      "Connection: close\r\n\r\nctd serves /metrics only\n", f);
	}
	return ok;
}

static bool next_chunk(struct client *c)
{
	bool first = c->cursor == 0 && !c->out;
	FILE *f;

	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	f = open_memstream(&c->out, &c->out_len);
	if (!f)
		return false;
	if (c->ctl->http && first && !http_head(c, f))
		c->more = false;
	else
		c->more = c->ctl->answer(c->ctl->arg, c->req, f, &c->cursor);
	return fclose(f) == 0;
}

static void write_some(struct ctd_ctl *ctl, struct client *c)
{
	for (;;) {
		ssize_t n;

		if (c->out_off == c->out_len) {
			if (!c->more || !next_chunk(c)) {
				drop(ctl, c);
				return;
			}
			/* Nothing yet: the socket stays writable, so the
			 * loop calls again after its other watchers. */
			if (c->out_len == 0 && c->more)
				return;
			continue;
		}
		n = c_send(c, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			drop(ctl, c);
			return;
		}
		c->out_off += (size_t)n;
		ev_timer_again(ctl->loop, &c->deadline);
	}
}

static void start_answer(struct ctd_ctl *ctl, struct client *c)
{
	c->answering = true;
	c->more = true;
	if (ctl->http)
		ctl->stats->metrics_requests++;
	else
		ctl->stats->ctl_requests++;
	ev_io_stop(ctl->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_io_start(ctl->loop, &c->io);
	ev_timer_again(ctl->loop, &c->deadline);
	write_some(ctl, c);
}

/* Where the request ends: the first newline, or for HTTP the newline
 * of the empty line after the headers. len when not there yet. */
static size_t request_end(const char *buf, size_t len, bool http)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (!http || (i >= 1 && buf[i - 1] == '\n') ||
		    (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n'))
			return i;
	}
	return len;
}

int ctd_ctl_request_parse(const char *buf, size_t len, bool http,
			  char *line, size_t cap)
{
	size_t max = http ? CTD_CTL_MAX_HTTP_REQUEST : CTD_CTL_MAX_REQUEST;
	size_t end = request_end(buf, len, http), n = 0;

	for (size_t i = 0; i < end; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch != '\r' && ch != '\n' && (ch < 0x20 || ch > 0x7e))
			return -EBADMSG;
	}
	if (end == len)
		return len < max - 1 ? 0 : -EMSGSIZE;
	while (buf[n] != '\n' && buf[n] != '\r')
		n++;
	if (n >= max - 1 || n >= cap)
		return -EMSGSIZE;
	memmove(line, buf, n);
	line[n] = '\0';
	return 1;
}

/* Reads the request; refuses one that does not fit or is not text. */
static void read_request(struct ctd_ctl *ctl, struct client *c)
{
	ssize_t n = c_recv(c, c->req + c->req_len,
			   sizeof(c->req) - 1 - c->req_len);
	int r;

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		drop(ctl, c);
		return;
	}
	c->req_len += (size_t)n;
	r = ctd_ctl_request_parse(c->req, c->req_len, ctl->http, c->req,
				  sizeof(c->req));
	if (r == 0)
		return;
	if (r < 0) {
		ctl->stats->ctl_refused++;
		drop(ctl, c);
		return;
	}
	start_answer(ctl, c);
}

static void on_client(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = w->data;

	(void)loop;
	(void)revents;
	if (c->answering)
		write_some(c->ctl, c);
	else
		read_request(c->ctl, c);
}

/* A client that has not sent its whole request, or has not read a
 * chunk of its answer, in time gives its slot back (counted). */
static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *c = w->data;

	(void)loop;
	(void)revents;
	c->ctl->stats->ctl_timeouts++;
	drop(c->ctl, c);
}

/* All slots taken: the oldest client still sending its request goes,
 * so idle connections cannot lock out a scrape or `ctd -s`. */
static bool make_room(struct ctd_ctl *ctl)
{
	struct client *oldest = NULL;

	for (size_t i = 0; i < ctl->n; i++)
		if (!ctl->clients[i]->answering &&
		    (!oldest || ctl->clients[i]->seq < oldest->seq))
			oldest = ctl->clients[i];
	if (!oldest)
		return false;
	ctl->stats->ctl_evicted++;
	drop(ctl, oldest);
	return true;
}

static bool admit(struct ctd_ctl *ctl, int fd)
{
	if (!ctl->http && !ctd_listen_peer_allowed(fd, ctl->group))
		return false;
	return ctl->n < CTD_CTL_MAX_CLIENTS || make_room(ctl);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctd_ctl *ctl = w->data;
	struct client *c;
	int fd;

	(void)revents;
	fd = accept4(ctl->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (!admit(ctl, fd) || !(c = calloc(1, sizeof(*c)))) {
		ctl->stats->ctl_refused++;
		close(fd);
		return;
	}
	if (ctl->tls && !(c->ssl = SSL_new(ctl->tls))) {
		ctl->stats->ctl_refused++;
		free(c);
		close(fd);
		return;
	}
	if (c->ssl) {
		SSL_set_fd(c->ssl, fd);
		SSL_set_accept_state(c->ssl);
	}
	c->fd = fd;
	c->ctl = ctl;
	c->seq = ctl->accepted++;
	ev_io_init(&c->io, on_client, fd, EV_READ);
	c->io.data = c;
	ev_io_start(loop, &c->io);
	ev_timer_init(&c->deadline, on_deadline, CTD_CTL_DEADLINE,
		      CTD_CTL_DEADLINE);
	c->deadline.data = c;
	ev_timer_start(loop, &c->deadline);
	ctl->clients[ctl->n++] = c;
}

static int serve(struct ev_loop *loop, int lfd, char *path,
		 ctd_ctl_answer *answer, void *arg, struct ctd_stats *stats,
		 struct ctd_ctl **ret)
{
	struct ctd_ctl *ctl = calloc(1, sizeof(*ctl));

	if (!ctl) {
		close(lfd);
		free(path);
		return -ENOMEM;
	}
	ctl->lfd = lfd;
	ctl->path = path;
	ctl->http = !path;
	ctl->loop = loop;
	ctl->answer = answer;
	ctl->arg = arg;
	ctl->stats = stats;
	ctl->group = (gid_t)-1;
	ev_io_init(&ctl->accept_io, on_accept, ctl->lfd, EV_READ);
	ctl->accept_io.data = ctl;
	ev_io_start(loop, &ctl->accept_io);
	*ret = ctl;
	return 0;
}

int ctd_ctl_new(struct ev_loop *loop, const char *path, gid_t group,
		ctd_ctl_answer *answer, void *arg, struct ctd_stats *stats,
		struct ctd_ctl **ret)
{
	char *copy = strdup(path);
	int fd, r;

	if (!copy)
		return -ENOMEM;
	fd = ctd_listen_unix(path, group);
	if (fd < 0) {
		free(copy);
		return fd;
	}
	r = serve(loop, fd, copy, answer, arg, stats, ret);
	if (r == 0)
		(*ret)->group = group;
	return r;
}

int ctd_ctl_new_http(struct ev_loop *loop, const char *addrport,
		     ctd_ctl_answer *answer, void *arg, struct ctd_stats *stats,
		     struct ctd_ctl **ret)
{
	int fd = ctd_listen_tcp_loopback(addrport);

	if (fd < 0)
		return fd;
	return serve(loop, fd, NULL, answer, arg, stats, ret);
}

int ctd_ctl_new_https(struct ev_loop *loop, const char *addrport,
		      SSL_CTX *ctx, ctd_ctl_answer *answer, void *arg,
		      struct ctd_stats *stats, struct ctd_ctl **ret)
{
	int fd, r;

	if (!SSL_CTX_up_ref(ctx))
		return -ENOMEM;
	fd = ctd_listen_tcp_any(addrport);
	r = fd < 0 ? fd : serve(loop, fd, NULL, answer, arg, stats, ret);
	if (r < 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	(*ret)->tls = ctx;
	return 0;
}

/* Clients already connected keep the context their SSL holds a
 * reference on; the next ones get ctx. */
int ctd_ctl_set_tls(struct ctd_ctl *ctl, SSL_CTX *ctx)
{
	if (!ctl->tls)
		return -EINVAL;
	if (!SSL_CTX_up_ref(ctx))
		return -ENOMEM;
	SSL_CTX_free(ctl->tls);
	ctl->tls = ctx;
	return 0;
}

void ctd_ctl_free(struct ctd_ctl *ctl)
{
	if (!ctl)
		return;
	while (ctl->n)
		drop(ctl, ctl->clients[ctl->n - 1]);
	ev_io_stop(ctl->loop, &ctl->accept_io);
	close(ctl->lfd);
	if (ctl->path)
		unlink(ctl->path);
	SSL_CTX_free(ctl->tls);
	free(ctl->path);
	free(ctl);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* Copies the answer to stdout; *ret_n counts its bytes. */
static int copy_answer(int fd, size_t *ret_n)
{
	char buf[65536];
	ssize_t n;

	*ret_n = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -EIO;
		*ret_n += (size_t)n;
	}
	return n < 0 ? -errno : 0;
}

static void say_refused(const char *path, int err)
{
	if (err == -EPIPE || err == -ECONNRESET || err == 0)
		fprintf(stderr, "ctd: the ctd at %s refused this request: only "
			"root and members of its control-group may ask\n", path);
	else
		fprintf(stderr, "ctd: reading the answer from %s: %s\n", path,
			strerror(-err));
}

/* Connects and sends "query[ json]"; the socket, or -errno after saying
 * why. */
static int ask(const char *path, const char *query, bool json)
{
	char req[64];
	int fd;

	if (!*path) {
		fprintf(stderr, "ctd: the control socket is off (control none)\n");
		return -ENOENT;
	}
	fd = connect_to(path);
	if (fd < 0) {
		fprintf(stderr, "ctd: cannot reach ctd at %s: %s (is it running? "
			"its control setting?)\n", path, strerror(-fd));
		return fd;
	}
	snprintf(req, sizeof(req), "%s%s\n", query, json ? " json" : "");
	/* A refusing daemon closes at once: EPIPE, not a SIGPIPE death. */
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		int r = -errno;

		close(fd);
		say_refused(path, r);
		return r;
	}
	return fd;
}

/* An answer that could not be read, or an empty one (refused). */
static int answered(const char *path, int r, size_t got)
{
	if (r < 0 || !got) {
		say_refused(path, r);
		return r < 0 ? r : -ECONNREFUSED;
	}
	return 0;
}

int ctd_ctl_query(const char *path, const char *query, bool json)
{
	size_t got = 0;
	int fd = ask(path, query, json), r;

	if (fd < 0)
		return fd;
	r = copy_answer(fd, &got);
	close(fd);
	return answered(path, r, got);
}

/* The whole answer in memory: sorting needs every line. */
static int read_answer(int fd, char **ret, size_t *ret_len)
{
	FILE *mem = open_memstream(ret, ret_len);
	char buf[65536];
	ssize_t n;

	if (!mem)
		return -ENOMEM;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, mem);
	if (fclose(mem) != 0)
		return -ENOMEM;
	return n < 0 ? -errno : 0;
}

int ctd_ctl_query_sorted(const char *path, const char *query,
			 enum ctd_listsort_key key)
{
	char *text = NULL;
	size_t len = 0;
	int fd = ask(path, query, false), r;

	if (fd < 0)
		return fd;
	r = read_answer(fd, &text, &len);
	close(fd);
	r = answered(path, r, len);
	if (r == 0)
		r = ctd_listsort_print(text, len, key, stdout);
	free(text);
	return r;
}
