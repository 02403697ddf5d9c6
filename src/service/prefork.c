/* prefork: shard processes started, watched and started again.
 *
 * Each shard is a fresh exec, not a fork that carries on: the parent's
 * loop, control socket and clients stay out of it (every descriptor of
 * the parent is close-on-exec), and a shard starts exactly as a single
 * ctd does, with its part in CTD_SHARD. The variables a service manager
 * set for the parent (NOTIFY_SOCKET, LISTEN_FDS, WATCHDOG_USEC) are the
 * parent's alone. A shard gets SIGTERM when the parent dies, so a
 * killed parent leaves no shard reading behind it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include <ev.h>

#include "ctd/base/log.h"
#include "ctd/service/prefork.h"

#define LINK_MAX CTD_PREFORK_MSG_MAX
#define QUICK_DEATH_S 1.0    /* died sooner: wait this long to restart */

struct shard {
	struct ctd_prefork *p;
	unsigned k;
	pid_t pid;               /* 0: not running */
	int fd;                  /* the parent's end of the link; -1 */
	int sock;                /* its ctnetlink socket, kept for the next
	                          * shard k; -1 until it sent it */
	ev_io io;
	ev_child child;
	ev_timer again;
	ev_tstamp started;
};

struct ctd_prefork {
	struct ev_loop *loop;
	struct ctd_prefork_cfg cfg;
	bool stopping;
	unsigned running;
	uint64_t restarts;
	char *buf;
	struct shard shard[];
};

static const char *const manager_vars[] = {
	"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
	"WATCHDOG_USEC", "WATCHDOG_PID",
};

/* The dead shard's socket as fd 3, as the service manager's fd store
 * hands one over (daemon.c, restart.c): the events queued in it and the
 * DESTROYs the kernel holds for it go to the next shard, not away. */
static void hand_socket(int sock)
{
	char pid[32];

	if (sock < 0 || dup2(sock, 3) < 0 || fcntl(3, F_SETFD, 0) < 0)
		return;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDNAMES", "ctnetlink", 1);
}

/* In the child, between fork and exec: nothing here returns. */
static void exec_shard(const struct ctd_prefork *p, unsigned k, int fd,
		       int sock)
{
	char env[64];
	sigset_t none;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(1);
	/* Above 3, where the socket goes; not closed by the exec. */
	fd = fcntl(fd, F_DUPFD, 10);
	if (fd < 0)
		_exit(1);
	snprintf(env, sizeof(env), "%u %u %d", k, p->cfg.n, fd);
	setenv(CTD_PREFORK_ENV, env, 1);
	for (size_t i = 0; i < sizeof(manager_vars) / sizeof(*manager_vars); i++)
		unsetenv(manager_vars[i]);
	hand_socket(sock);
	/* libev blocks the signals it watches: the shard starts clear. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv("/proc/self/exe", p->cfg.argv);
	_exit(127);
}

static void on_link(struct ev_loop *loop, ev_io *w, int revents);
static void on_exit_(struct ev_loop *loop, ev_child *w, int revents);

static int spawn(struct shard *s)
{
	struct ctd_prefork *p = s->p;
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid == 0)
		exec_shard(p, s->k, sv[1], s->sock);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -errno;
	}
	s->pid = pid;
	s->fd = sv[0];
	s->started = ev_now(p->loop);
	ev_io_init(&s->io, on_link, s->fd, EV_READ);
	s->io.data = s;
	ev_io_start(p->loop, &s->io);
	ev_child_init(&s->child, on_exit_, pid, 0);
	s->child.data = s;
	ev_child_start(p->loop, &s->child);
	p->running++;
	return 0;
}

/* A descriptor that came with a message is the shard's socket. */
static void keep_socket(struct shard *s, struct msghdr *mh)
{
	struct cmsghdr *c = CMSG_FIRSTHDR(mh);
	int fd;

	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	if (s->sock >= 0)
		close(s->sock);
	s->sock = fd;
	s->p->cfg.sock(s->p->cfg.arg, s->k, fd);
}

static ssize_t receive(struct shard *s)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { s->p->buf, LINK_MAX };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n > 0 && mh.msg_controllen)
		keep_socket(s, &mh);
	return n;
}

static void on_link(struct ev_loop *loop, ev_io *w, int revents)
{
	struct shard *s = w->data;
	struct ctd_prefork *p = s->p;
	ssize_t n;

	(void)revents;
	while ((n = receive(s)) > 0)
		p->cfg.msg(p->cfg.arg, s->k, p->buf, (size_t)n);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		ev_io_stop(loop, w);    /* the shard is going: its exit tells */
}

static void on_again(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct shard *s = w->data;
	int r;

	(void)loop;
	(void)revents;
	if (s->p->stopping || s->pid)
		return;
	r = spawn(s);
	if (r < 0) {
		log_err("cannot start shard %u: %s; trying again in 1 s", s->k,
			strerror(-r));
		ev_timer_set(w, QUICK_DEATH_S, 0);
		ev_timer_start(s->p->loop, w);
	}
}

static void describe(int status, char *buf, size_t cap)
{
	if (WIFSIGNALED(status))
		snprintf(buf, cap, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
}

static void on_exit_(struct ev_loop *loop, ev_child *w, int revents)
{
	struct shard *s = w->data;
	struct ctd_prefork *p = s->p;
	double lived = ev_now(loop) - s->started;
	char how[64];

	(void)revents;
	ev_child_stop(loop, w);
	ev_io_stop(loop, &s->io);
	close(s->fd);
	s->fd = -1;
	s->pid = 0;
	p->running--;
	if (p->stopping) {
		if (!p->running)
			p->cfg.done(p->cfg.arg);
		return;
	}
	p->restarts++;
	describe(w->rstatus, how, sizeof(how));
	log_err("shard %u (pid %d) %s; starting it again%s", s->k, w->rpid,
		how, lived < QUICK_DEATH_S ? " in 1 s" : "");
	ev_timer_set(&s->again, lived < QUICK_DEATH_S ? QUICK_DEATH_S : 0, 0);
	ev_timer_start(loop, &s->again);
}

int ctd_prefork_start(struct ev_loop *loop, const struct ctd_prefork_cfg *cfg,
		      struct ctd_prefork **ret)
{
	struct ctd_prefork *p = calloc(1, sizeof(*p) + cfg->n * sizeof(p->shard[0]));
	int r = 0;

	if (!p || !(p->buf = malloc(LINK_MAX))) {
		free(p);
		return -ENOMEM;
	}
	p->loop = loop;
	p->cfg = *cfg;
	for (unsigned k = 0; k < cfg->n; k++) {
		struct shard *s = &p->shard[k];

		*s = (struct shard){ .p = p, .k = k, .fd = -1,
				     .sock = cfg->socks ? cfg->socks[k] : -1 };
		ev_timer_init(&s->again, on_again, 0, 0);
		s->again.data = s;
		r = spawn(s);
		if (r < 0)
			break;
	}
	p->cfg.socks = NULL;     /* the caller's, taken over by now */
	if (r < 0) {
		log_err("cannot start the shards: %s", strerror(-r));
		ctd_prefork_stop(p);
	}
	*ret = p;
	return r;
}

int ctd_prefork_send(struct ctd_prefork *p, unsigned k, const void *buf,
		     size_t len)
{
	if (k >= p->cfg.n || !p->shard[k].pid || p->shard[k].fd < 0)
		return -ESRCH;
	if (send(p->shard[k].fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

void ctd_prefork_signal(struct ctd_prefork *p, int sig)
{
	for (unsigned k = 0; k < p->cfg.n; k++)
		if (p->shard[k].pid)
			kill(p->shard[k].pid, sig);
}

void ctd_prefork_stop(struct ctd_prefork *p)
{
	p->stopping = true;
	for (unsigned k = 0; k < p->cfg.n; k++)
		ev_timer_stop(p->loop, &p->shard[k].again);
	ctd_prefork_signal(p, SIGTERM);
	if (!p->running)
		p->cfg.done(p->cfg.arg);
}

unsigned ctd_prefork_running(const struct ctd_prefork *p)
{
	return p->running;
}

uint64_t ctd_prefork_restarts(const struct ctd_prefork *p)
{
	return p->restarts;
}

bool ctd_prefork_alive(const struct ctd_prefork *p, unsigned k)
{
	return k < p->cfg.n && p->shard[k].pid != 0;
}

void ctd_prefork_free(struct ctd_prefork *p)
{
	if (!p)
		return;
	for (unsigned k = 0; k < p->cfg.n; k++) {
		struct shard *s = &p->shard[k];

		ev_timer_stop(p->loop, &s->again);
		if (s->pid)
			ev_child_stop(p->loop, &s->child);
		if (s->fd >= 0) {
			ev_io_stop(p->loop, &s->io);
			close(s->fd);
		}
		if (s->sock >= 0)
			close(s->sock);
	}
	free(p->buf);
	free(p);
}

int ctd_prefork_parse(const char *env, unsigned max, unsigned *k,
		      unsigned *n, int *fd)
{
	char tail;

	if (!env || sscanf(env, "%u %u %d%c", k, n, fd, &tail) != 3 ||
	    *n == 0 || *n > max || *k >= *n || *fd < 0)
		return -EINVAL;
	return 0;
}

int ctd_prefork_dir(const char *base, unsigned k, char *buf, size_t cap)
{
	int len = snprintf(buf, cap, "%s/shard-%u", base, k);

	return len < 0 || (size_t)len >= cap ? -ENAMETOOLONG : 0;
}
