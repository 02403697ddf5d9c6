/* notify: the service manager hears from ctd, never holds it up.
 *
 * sd_notify(3) is a datagram to $NOTIFY_SOCKET. A blocking send to a
 * manager that stopped reading (its queue full) would freeze the loop,
 * with it the watchdog and SIGTERM; so the socket is non-blocking and a
 * message that does not fit is dropped and counted. STATUS goes out with
 * READY (not 10 s later) and then with each watchdog ping. READY alone
 * is never given up: a manager that does not hear it would kill ctd at
 * its start timeout, so it rides along every RETRY_S until a send
 * succeeds, and then with every ping (saying it again changes nothing
 * for the manager; a datagram it never got is said again: the chaos
 * test saw a READY=1 that sendmsg took vanish, twice in 40 runs). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <ev.h>

#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/service/daemon.h"
#include "ctd/service/notify.h"

#define STATUS_MAX_S 10.0
#define RETRY_S 0.1

struct ctd_notify {
	struct ev_loop *loop;
	struct ctd_stats *st;
	int fd;                      /* -1: no manager */
	struct sockaddr_un sa;
	socklen_t salen;
	ev_timer status;
	double every;                /* the status timer's interval */
	bool ready;                  /* ready, not stopping: pings say so */
	bool ready_unsent;           /* READY=1 not taken yet */
	bool stopping;               /* said STOPPING=1 or RELOADING=1 */
	ctd_notify_status_fn *status_fn;
	void *arg;
};

/* $NOTIFY_SOCKET: a path or an abstract name ("@..."); 0 when unset. */
static int notify_addr(struct sockaddr_un *sa, socklen_t *ret_len)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa->sun_path))
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len);
	if (path[0] == '@')
		sa->sun_path[0] = '\0';
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	return 1;
}

struct ctd_notify *ctd_notify_new(struct ev_loop *loop, struct ctd_stats *st,
				  ctd_notify_status_fn *status, void *arg)
{
	struct ctd_notify *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->loop = loop;
	n->st = st;
	n->status_fn = status;
	n->arg = arg;
	n->fd = -1;
	ev_init(&n->status, NULL);
	if (notify_addr(&n->sa, &n->salen) == 1)
		n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			       0);
	return n;
}

void ctd_notify_free(struct ctd_notify *n)
{
	if (!n)
		return;
	ev_timer_stop(n->loop, &n->status);
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}

int ctd_notify_active(const struct ctd_notify *n)
{
	return n->fd >= 0;
}

static void set_fd(struct msghdr *msg, char *buf, size_t cap, int fd)
{
	struct cmsghdr *h = (struct cmsghdr *)(void *)buf;

	memset(buf, 0, cap);
	msg->msg_control = buf;
	msg->msg_controllen = CMSG_SPACE(sizeof(int));
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
}

int ctd_notify_send(struct ctd_notify *n, const char *state, int fd)
{
	struct iovec iov = { (void *)state, strlen(state) };
	struct msghdr msg = { .msg_name = &n->sa, .msg_namelen = n->salen,
			      .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;

	if (n->fd < 0)
		return 0;
	if (fd >= 0)
		set_fd(&msg, ctl.buf, sizeof(ctl.buf), fd);
	if (sendmsg(n->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		return 1;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		n->st->notify_dropped++;
		return -EAGAIN;
	}
	return -errno;
}

static int send_status(struct ctd_notify *n, const char *prefix)
{
	char msg[512];
	int len = snprintf(msg, sizeof(msg), "%s%sSTATUS=",
			   n->ready ? "READY=1\n" : "", prefix);

	if (len > 0 && (size_t)len < sizeof(msg))
		n->status_fn(n->arg, msg + len, sizeof(msg) - (size_t)len);
	return ctd_notify_send(n, msg, -1);
}

/* Sends the status (with READY while ready), the timer running every
 * RETRY_S until READY was taken, then at the status interval. */
static void status_now(struct ctd_notify *n, const char *prefix)
{
	bool was_unsent = n->ready_unsent;
	int r = send_status(n, prefix);

	if (r == 1)
		n->ready_unsent = false;
	else if (was_unsent && n->status.repeat != RETRY_S)
		log_warn("the service manager did not take READY=1 (%s); "
			 "sending it again every %.1f s", strerror(-r), RETRY_S);
	n->status.repeat = n->ready_unsent ? RETRY_S : n->every;
	ev_timer_again(n->loop, &n->status);
}

/* The watchdog's ping: the loop runs, or the manager restarts ctd (and
 * the socket in its fd store survives). */
static void on_status(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	status_now(w->data, "WATCHDOG=1\n");
}

void ctd_notify_ready(struct ctd_notify *n)
{
	unsigned long long wd = ctd_daemon_watchdog_usec();

	if (n->fd < 0 || n->stopping)
		return;
	n->every = wd ? (double)wd / 2e6 : STATUS_MAX_S;
	if (n->every > STATUS_MAX_S)
		n->every = STATUS_MAX_S;
	n->ready = n->ready_unsent = true;
	ev_timer_init(&n->status, on_status, 0, n->every);
	n->status.data = n;
	status_now(n, "");
}

void ctd_notify_stopping(struct ctd_notify *n, int reexec)
{
	n->stopping = true;
	n->ready = n->ready_unsent = false;
	ctd_notify_send(n, reexec ? "RELOADING=1" : "STOPPING=1", -1);
}
