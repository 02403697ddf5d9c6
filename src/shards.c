/* shards: the parent of N shard processes, and a shard's link to it.
 *
 * Processes, not threads: each shard is today's whole ctd (one loop that
 * owns everything, its socket, table, guard, outputs and spool), so
 * nothing in the pipeline learns about locks, a crash or an out-of-memory
 * kill costs one shard (restarted, with its write-ahead log) and not the
 * box, and a cgroup can cap each. The parent reads no events: it holds
 * the run lock of spool-dir, the control socket and the metrics endpoint,
 * and answers `ctd -s` and scrapes with the sum of the shards' counters,
 * asked for over each shard's link as one binary snapshot when a request
 * comes (the request waits in ctl.c meanwhile, at most ASK_WAIT_US).
 * Listings (ctd -l, ctd -s top) come from a kernel dump, as a single ctd's
 * do without netns: they cover the whole box. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <ev.h>

#include "ctd/base/log.h"
#include "ctd/base/safefile.h"
#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/config/cli.h"
#include "ctd/config/config.h"
#include "ctd/control/ctl.h"
#include "ctd/control/report.h"
#include "ctd/control/shardsum.h"
#include "ctd/endpoints.h"
#include "ctd/kernel/shardfilter.h"
#include "ctd/service/daemon.h"
#include "ctd/service/notify.h"
#include "ctd/service/prefork.h"
#include "ctd/service/runlock.h"
#include "ctd/shards.h"

#define ASK_WAIT_US 500000
#define MSG_READY 'R'
#define MSG_SNAPSHOT 'S'
#define MSG_SOCKET 'F'

_Static_assert(sizeof(struct ctd_shardsnap) <= CTD_PREFORK_MSG_MAX,
	       "a snapshot fits one message on the link");

unsigned ctd_shards_count(const struct ctd_config *cfg)
{
	long cpus;

	if (cfg->shards != CTD_CONFIG_AUTO)
		return cfg->shards > CTD_SHARDS_MAX ? CTD_SHARDS_MAX :
		       (unsigned)cfg->shards;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 1)
		return 1;
	return cpus > CTD_SHARDS_MAX ? CTD_SHARDS_MAX : (unsigned)cpus;
}

/* ---- a shard ---- */

int ctd_shards_child(struct ctd_config *cfg, int *ret_fd)
{
	const char *env = getenv(CTD_PREFORK_ENV);
	char dir[CTD_CONFIG_PATH_MAX];
	unsigned k, n;
	int r;

	if (!env)
		return 0;
	r = ctd_prefork_parse(env, CTD_SHARDS_MAX, &k, &n, ret_fd);
	if (r < 0)
		return r;
	if (*cfg->spool_dir) {
		r = ctd_prefork_dir(cfg->spool_dir, k, dir, sizeof(dir));
		if (r < 0)
			return r;
		strcpy(cfg->spool_dir, dir);
	}
	cfg->shard = k;
	cfg->shards = n;
	/* The parent's: */
	cfg->control[0] = '\0';
	cfg->metrics[0] = '\0';
	return 1;
}

struct ctd_shardlink {
	struct ev_loop *loop;
	int fd;
	ev_io io;
	const struct ctd_stats *stats;
	ctd_shardlink_refresh *refresh;
	void *arg;
	struct ctd_shardsnap snap;
};

static void on_request(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctd_shardlink *l = w->data;
	char req[64];
	ssize_t n;

	(void)revents;
	while ((n = recv(l->fd, req, sizeof(req), MSG_DONTWAIT)) > 0) {
		if (req[0] != MSG_SNAPSHOT)
			continue;
		l->refresh(l->arg);
		ctd_shardsum_take(&l->snap, l->stats);
		/* Not taken at once (the parent stopped reading): the
		 * parent answers with the last one it has. */
		send(l->fd, &l->snap, sizeof(l->snap), MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	if (n == 0)
		ev_io_stop(loop, w);     /* the parent is gone: SIGTERM comes */
}

struct ctd_shardlink *ctd_shardlink_new(struct ev_loop *loop, int fd,
					const struct ctd_stats *stats,
					ctd_shardlink_refresh *refresh,
					void *arg)
{
	struct ctd_shardlink *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->loop = loop;
	l->fd = fd;
	l->stats = stats;
	l->refresh = refresh;
	l->arg = arg;
	ev_io_init(&l->io, on_request, fd, EV_READ);
	l->io.data = l;
	ev_io_start(loop, &l->io);
	return l;
}

void ctd_shardlink_keep(struct ctd_shardlink *l, int sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	char m = MSG_SOCKET;
	struct iovec iov = { &m, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &sock, sizeof(sock));
	if (sendmsg(l->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_warn("cannot hand the ctnetlink socket to the parent: %s; "
			 "if this shard dies, what the kernel holds for it is "
			 "lost", strerror(errno));
}

void ctd_shardlink_ready(struct ctd_shardlink *l)
{
	char m = MSG_READY;

	if (l)
		send(l->fd, &m, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void ctd_shardlink_free(struct ctd_shardlink *l, bool keep_fd)
{
	if (!l)
		return;
	ev_io_stop(l->loop, &l->io);
	if (!keep_fd)
		close(l->fd);
	free(l);
}

/* ---- the parent ---- */

struct parent {
	struct ev_loop *loop;
	struct ctd_config *cfg;
	const struct ctd_cli *cli;
	unsigned n;
	struct ctd_owner owner;
	struct ctd_clock clock;        /* zeroed: the system clock */
	struct ctd_stats stats;        /* the parent's own: ctl, notify */
	struct ctd_runlock *lock;
	struct ctd_notify *notify;
	struct ctd_ctl *ctl, *metrics;
	struct ctd_prefork *pf;
	bool said_ready;
	int64_t started_us, asked_us;
	ev_signal sigterm, sigint, sighup, sigusr1, sigusr2;
	bool ready[CTD_SHARDS_MAX];
	int socks[CTD_SHARDS_MAX];     /* from the fd store, for prefork */
	int64_t got_us[CTD_SHARDS_MAX];
	struct ctd_shardsnap snap[CTD_SHARDS_MAX];
	struct ctd_shardsnap sum;
};

static int64_t mono_us(const struct parent *p)
{
	return ctd_clock_read(&p->clock).mono_us;
}

static void ask(struct parent *p)
{
	char m = MSG_SNAPSHOT;

	p->asked_us = mono_us(p);
	for (unsigned k = 0; k < p->n; k++)
		ctd_prefork_send(p->pf, k, &m, 1);
}

/* Every running shard answered since `since`, or it is time to answer
 * with what is there. */
static bool gathered(const struct parent *p, int64_t since)
{
	if (mono_us(p) - since >= ASK_WAIT_US)
		return true;
	for (unsigned k = 0; k < p->n; k++)
		if (ctd_prefork_alive(p->pf, k) && p->got_us[k] < since)
			return false;
	return true;
}

/* The parent's own counters plus every shard's last snapshot (a shard
 * started again counts from zero, like any restarted process). */
static const struct ctd_stats *summed(struct parent *p)
{
	struct ctd_shardsnap own;

	p->stats.shards = ctd_prefork_running(p->pf);
	p->stats.shard_restarts = ctd_prefork_restarts(p->pf);
	memset(&p->sum, 0, sizeof(p->sum));
	ctd_shardsum_take(&own, &p->stats);
	ctd_shardsum_add(&p->sum, &own);
	for (unsigned k = 0; k < p->n; k++)
		ctd_shardsum_add(&p->sum, &p->snap[k]);
	return ctd_shardsum_view(&p->sum);
}

static void say_ready(struct parent *p)
{
	for (unsigned k = 0; k < p->n; k++)
		if (!p->ready[k])
			return;
	if (p->said_ready)
		return;
	p->said_ready = true;
	log_info("all %u shards are ready", p->n);
	ctd_notify_ready(p->notify);
}

static void on_msg(void *arg, unsigned k, const void *buf, size_t len)
{
	struct parent *p = arg;

	if (len == 1 && *(const char *)buf == MSG_READY) {
		p->ready[k] = true;
		say_ready(p);
	} else if (len == sizeof(p->snap[k])) {
		memcpy(&p->snap[k], buf, len);
		p->got_us[k] = mono_us(p);
	}
}

/* Each shard's socket goes to the service manager's fd store as
 * ctnetlink-K (a socket stored already is not stored twice), so a
 * restart of the service hands every shard its socket back. */
static void on_socket(void *arg, unsigned k, int fd)
{
	struct parent *p = arg;
	char state[64];

	snprintf(state, sizeof(state), "FDSTORE=1\nFDNAME=ctnetlink-%u", k);
	ctd_notify_send(p->notify, state, fd);
}

/* The shards' sockets the service manager kept for us (ctnetlink-K). */
static void take_sockets(struct parent *p)
{
	int n = ctd_daemon_listen_fds("ctnetlink", p->socks, p->n);

	if (n > 0)
		log_info("took over %d shard sockets from the service manager's "
			 "fd store", n);
}

static void on_done(void *arg)
{
	struct parent *p = arg;

	ev_break(p->loop, EVBREAK_ALL);
}

static bool is_counters(const char *request)
{
	static const char *const words[] = { "stats", "all", "metrics" };

	for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++) {
		size_t len = strlen(words[i]);

		if (strncmp(request, words[i], len) == 0 &&
		    (request[len] == '\0' || request[len] == ' '))
			return true;
	}
	return false;
}

static struct ctd_report_src report_src(struct parent *p,
					const struct ctd_stats *st)
{
	struct ctd_now now = ctd_clock_read(&p->clock);

	return (struct ctd_report_src){
		.stats = st,
		.cfg = p->cfg,
		.proc_sys = "/proc/sys",
		.now_ns = now.wall_ns,
		.uptime_s = (uint64_t)(now.mono_us - p->started_us) / 1000000,
		.reliable = p->cfg->broadcast_error,
		.live = true,             /* listings: the kernel's table */
	};
}

/* Counters: asked for first (an empty part: ctl.c calls again), then
 * the sum; listings go straight to a kernel dump. */
static bool on_ctl(void *arg, const char *request, FILE *out, size_t *cursor)
{
	struct parent *p = arg;
	struct ctd_report_src src;
	size_t none = 0;

	if (!out || !is_counters(request)) {
		src = report_src(p, &p->stats);
		return ctd_report_answer(&src, request, out, cursor);
	}
	if (*cursor == 0) {
		ask(p);
		*cursor = (size_t)p->asked_us;
		return true;
	}
	if (!gathered(p, (int64_t)*cursor))
		return true;
	src = report_src(p, summed(p));
	ctd_report_answer(&src, request, out, &none);
	return false;
}

/* systemctl status: the last sums; a fresh snapshot for the next. */
static void status_line(void *arg, char *buf, size_t cap)
{
	struct parent *p = arg;
	const struct ctd_stats *st = summed(p);
	uint64_t delivered = 0, failed = 0;

	for (size_t i = 0; i < CTD_OUT_MAX && st->out_name[i]; i++) {
		delivered += st->out[i]->delivered;
		failed += st->out[i]->failed;
	}
	snprintf(buf, cap, "%llu of %u shards: %llu flows tracked, %llu records "
		 "delivered, %llu lost, %llu events",
		 (unsigned long long)st->shards, p->n,
		 (unsigned long long)st->flows_tracked,
		 (unsigned long long)delivered, (unsigned long long)failed,
		 (unsigned long long)st->nl_messages);
	ask(p);
}

/* The control socket and metrics endpoint answer for all shards. */
static struct ctd_endpoints endpoints(struct parent *p)
{
	return (struct ctd_endpoints){ p->loop, p->cfg, &p->owner, on_ctl, p,
				       &p->stats };
}

/* The metrics endpoint is the parent's: its certificates are read
 * again here. Each shard counts its own reload; a failure here is one
 * more (the sum counts every part that refused). */
static void reload_tls(struct parent *p)
{
	struct ctd_endpoints e = endpoints(p);

	if (ctd_endpoints_reload_tls(&e, p->metrics) < 0)
		p->stats.reload_failures++;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct parent *p = w->data;

	(void)loop;
	(void)revents;
	if (w->signum == SIGTERM || w->signum == SIGINT ||
	    (w->signum == SIGHUP && p->cli->foreground &&
	     (isatty(STDIN_FILENO) || isatty(STDOUT_FILENO)))) {
		log_info("signal %d: stopping the shards", w->signum);
		ctd_notify_stopping(p->notify, 0);
		ctd_prefork_stop(p->pf);
		return;
	}
	/* HUP: each shard reads the file again, and the metrics endpoint
	 * here its certificates; USR1 reopens; USR2: each shard
	 * re-executes in place, keeping its socket. */
	log_info("signal %d: passed on to the %u shards", w->signum, p->n);
	ctd_prefork_signal(p->pf, w->signum);
	if (w->signum == SIGHUP)
		reload_tls(p);
}

static void watch_signals(struct parent *p)
{
	ev_signal *w[] = { &p->sigterm, &p->sigint, &p->sighup, &p->sigusr1,
			   &p->sigusr2 };
	int sig[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 };

	for (size_t i = 0; i < sizeof(sig) / sizeof(*sig); i++) {
		ev_signal_init(w[i], on_signal, sig[i]);
		w[i]->data = p;
		ev_signal_start(p->loop, w[i]);
	}
	ctd_daemon_release_signals();
}

/* One ctd per spool directory, as for a single ctd; each shard locks
 * its own subdirectory, which is made here, as root, for `user`. */
static int lock_spool(struct parent *p)
{
	const char *dir = p->cfg->spool_dir;
	enum ctd_runlock_last last;
	char sub[CTD_CONFIG_PATH_MAX];
	long pid;
	int r;

	if (!*dir)
		return 0;
	r = ctd_runlock_take(dir, &p->owner, &p->lock, &last, &pid);
	if (r == -EBUSY) {
		log_err("another ctd (pid %ld) runs with spool-dir %s", pid, dir);
		return r;
	}
	if (r < 0)
		log_warn("%s: cannot take the run lock: %s", dir, strerror(-r));
	for (unsigned k = 0; k < p->n; k++) {
		if (ctd_prefork_dir(dir, k, sub, sizeof(sub)) < 0 ||
		    (r = ctd_safefile_dir(sub, true, 0750, &p->owner)) < 0)
			log_warn("%s/shard-%u: cannot make it; that shard runs "
				 "without a spool", dir, k);
		else
			close(r);
	}
	return 0;
}

static int start(struct parent *p, char *const argv[])
{
	struct ctd_endpoints e = endpoints(p);
	struct ctd_prefork_cfg pc = { p->n, argv, on_msg, on_done, on_socket, p,
				      p->socks };
	int r;

	take_sockets(p);
	r = ctd_daemon_find_user(p->cfg->user, &p->owner);
	if (r == 0)
		r = lock_spool(p);
	if (r == 0)
		r = ctd_endpoints_control(&e, &p->ctl);
	if (r < 0)
		return r;
	p->notify = ctd_notify_new(p->loop, &p->stats, status_line, p);
	if (!p->notify)
		return -ENOMEM;
	watch_signals(p);
	r = ctd_prefork_start(p->loop, &pc, &p->pf);
	if (r < 0)
		return r;
	ctd_endpoints_metrics(&e, &p->metrics);
	p->started_us = mono_us(p);
	log_info("%u shards, each its part of the conntracks; this process "
		 "answers ctd -s for them all", p->n);
	return 0;
}

static void stop(struct parent *p, bool clean)
{
	ctd_ctl_free(p->ctl);
	ctd_ctl_free(p->metrics);
	ctd_prefork_free(p->pf);
	ctd_notify_free(p->notify);
	if (p->lock && clean)
		ctd_runlock_mark(p->lock, CTD_LAST_STOPPED);
	ctd_runlock_free(p->lock);
}

int ctd_shards_run(char *const argv[], struct ctd_config *cfg,
		   const struct ctd_cli *cli)
{
	struct parent *p = calloc(1, sizeof(*p));
	int r;

	if (!p) {
		log_err("out of memory");
		return 1;
	}
	p->loop = ev_default_loop(EVFLAG_AUTO);
	p->cfg = cfg;
	p->cli = cli;
	p->n = ctd_shards_count(cfg);
	r = p->loop ? start(p, argv) : -ENOMEM;
	if (r == 0)
		ev_run(p->loop, 0);
	stop(p, r == 0);
	free(p);
	return r == 0 ? 0 : 1;
}
