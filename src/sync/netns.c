/* netns: other network namespaces, watched from ctd's own.
 *
 * What the kernel gives (measured on 6.18): one ctnetlink socket with
 * NETLINK_LISTEN_ALL_NSID hears every namespace that has an nsid in
 * ours, reliably with BROADCAST_ERROR; a namespace without an nsid is
 * silent, so ctd assigns one (RTM_NEWNSID). Dumps and sysctls work only
 * from inside: ctd enters the namespace with setns() for the moment it
 * takes to open a socket or write a sysctl, then returns (the calls do
 * not block). Deleting a namespace sends no DESTROY, but a namespace
 * lives while anyone holds it: ctd holds each one it watches (its fd and
 * the dump socket inside), so once /run/netns loses the name it flushes
 * the table from inside (the kernel then sends every DESTROY with final
 * counters), waits for the namespace's dying list to empty (what a small
 * receive buffer could not take the kernel re-sends at its own pace),
 * GOING_IDLE_S without progress or GOING_MAX_S at most, and lets go. A namespace that processes still use is not
 * flushed: ctd lets go at once and its flows end when the kernel reports
 * the namespace gone (RTM_DELNSID), from the last dump's counters.
 *
 * Covered: namespaces named in /run/netns (ip netns, OpenStack, CNI).
 * Namespaces with an nsid but no name (a runtime that keeps none) are
 * heard with `netns all` and named "nsid:N", but not dumped nor set up:
 * ctd has no handle on them; their flows end on RTM_DELNSID. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <ev.h>
#include <libmnl/libmnl.h>
#include <linux/magic.h>
#include <linux/net_namespace.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/rtnetlink.h>

#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/flows/engine.h"
#include "ctd/flows/record.h"
#include "ctd/flows/sysctl.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/kernel/nlsrc.h"
#include "ctd/sync/netns.h"
#include "ctd/sync/netnstab.h"

#define PROC_NETFILTER "/proc/sys/net/netfilter"
#define GOING_IDLE_S 2         /* let go after this long without progress */
#define GOING_MAX_S 10         /* ... and after this long in any case */
#define GOING_POLL_S 0.05
#define RESCAN_S 0.05
#define RESCAN_TRIES 20
#define FINAL_DRAIN_MAX 1000000

struct ctd_netns_watch {
	struct ev_loop *loop;
	struct ctd_netns_cfg cfg;
	struct ctd_netnstab *tab;
	ev_io inotify_io;
	ev_io nsid_io;               /* RTM_DELNSID */
	ev_timer rescan;             /* after inotify: names settle */
	ev_timer going;              /* polls namespaces being seen out */
	int inotify_fd;
	int dir_fd;                  /* run_dir */
	int self_fd;                 /* ctd's own namespace, to return to */
	struct stat self_st;
	int32_t self_nsid;           /* ours in our own view, usually none */
	unsigned rescans_left;
	bool started;                /* the first scan is done */
	int64_t notified_us;         /* inotify last said run_dir changed */
	struct mnl_socket *rtnl;     /* nsid requests */
	struct mnl_socket *notify;   /* RTNLGRP_NSID */
	uint32_t seq;
	char buf[8192];
};

/* Into namespace fd and back. Failing to come back would leave ctd
 * in another namespace for good: abort rather. */
static int enter(int fd)
{
	return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
}

static void leave(struct ctd_netns_watch *w)
{
	if (setns(w->self_fd, CLONE_NEWNET) < 0) {
		log_err("cannot return to ctd's network namespace: %s",
			strerror(errno));
		abort();
	}
}

/* One rtnetlink request; the reply's NETNSA_NSID in *ret_nsid when
 * asked for. */
static int nsid_request(struct ctd_netns_watch *w, uint16_t type, int fd,
			int32_t *ret_nsid)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(w->buf);
	struct rtgenmsg *g;
	ssize_t n;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | (ret_nsid ? 0 : NLM_F_ACK);
	nlh->nlmsg_seq = ++w->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, NETNSA_FD, (uint32_t)fd);
	if (!ret_nsid)
		mnl_attr_put_u32(nlh, NETNSA_NSID, (uint32_t)-1);
	if (mnl_socket_sendto(w->rtnl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(w->rtnl, w->buf, sizeof(w->buf));
	if (n < (ssize_t)sizeof(*nlh))
		return n < 0 ? -errno : -EPROTO;
	nlh = (struct nlmsghdr *)w->buf;
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		return e->error;
	}
	if (ret_nsid) {
		struct nlattr *a;

		*ret_nsid = CTD_NSID_SELF;
		mnl_attr_for_each(a, nlh, sizeof(*g))
			if (mnl_attr_get_type(a) == NETNSA_NSID)
				*ret_nsid = (int32_t)mnl_attr_get_u32(a);
	}
	return 0;
}

/* The namespace's nsid here, assigning one when it has none. */
static int get_nsid(struct ctd_netns_watch *w, int fd, int32_t *ret)
{
	int r = nsid_request(w, RTM_GETNSID, fd, ret);

	if (r < 0 || *ret >= 0)
		return r;
	r = nsid_request(w, RTM_NEWNSID, fd, NULL);
	if (r < 0 && r != -EEXIST)
		return r;
	r = nsid_request(w, RTM_GETNSID, fd, ret);
	return r < 0 ? r : *ret >= 0 ? 0 : -ENOENT;
}

static bool is_netns_file(int fd, struct stat *st)
{
	struct statfs fs;

	return fstatfs(fd, &fs) == 0 && fs.f_type == NSFS_MAGIC &&
	       fstat(fd, st) == 0;
}

static bool same_file(const struct stat *a, uint64_t dev, uint64_t ino)
{
	return (uint64_t)a->st_dev == dev && (uint64_t)a->st_ino == ino;
}

/* Inside e's namespace: its sysctls and a dump socket. */
static int set_up_inside(struct ctd_netns_watch *w, struct ctd_netns *e)
{
	int r = enter(e->fd), sock;

	if (r < 0)
		return r;
	ctd_sysctl_prepare(PROC_NETFILTER, w->cfg.sysctl);
	sock = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		      NETLINK_NETFILTER);
	r = sock < 0 ? -errno : 0;
	leave(w);
	if (r < 0)
		return r;
	r = ctd_ctdump_add_netns(w->cfg.dump, e->nsid, sock);
	if (r < 0)
		close(sock);
	return r;
}

static struct ctd_netns *find_file(const struct ctd_netns_watch *w,
				   const struct stat *st)
{
	size_t pos = 0;
	struct ctd_netns *e;

	while ((e = ctd_netnstab_next(w->tab, &pos)))
		if (e->fd >= 0 && same_file(st, e->dev, e->ino))
			return e;
	return NULL;
}

/* Returns 0 watched (or nothing to do), -EAGAIN not mounted yet. */
static int watch_fd(struct ctd_netns_watch *w, const char *name, int fd,
		    const struct stat *st)
{
	struct ctd_netns *e;
	int32_t nsid;
	int r;

	if (same_file(st, (uint64_t)w->self_st.st_dev,
		      (uint64_t)w->self_st.st_ino) || find_file(w, st))
		return 0;
	r = get_nsid(w, fd, &nsid);
	if (r == 0)
		r = ctd_netnstab_add(w->tab, nsid, name, &e);
	if (r < 0) {
		w->cfg.stats->netns_errors++;
		log_warn("network namespace %s: no nsid: %s; not watched", name,
			 strerror(-r));
		return r;
	}
	e->fd = fd;
	e->dev = (uint64_t)st->st_dev;
	e->ino = (uint64_t)st->st_ino;
	/* Flows of a namespace found at start come with the start-up dump;
	 * a later one's with the dump its addition asks for. */
	e->learned = !w->started;
	if (w->started)
		e->setup_us = ctd_clock_read(&w->cfg.clock).mono_us -
			      w->notified_us;
	log_info("watching network namespace %s (nsid %d)", name, (int)nsid);
	r = set_up_inside(w, e);
	if (r < 0) {
		w->cfg.stats->netns_errors++;
		log_warn("network namespace %s: cannot open a dump socket in "
			 "it: %s; events only", name, strerror(-r));
	}
	w->cfg.stats->netns_added++;
	w->cfg.stats->netns_watched = ctd_netnstab_count(w->tab);
	return 0;
}

static int watch_name(struct ctd_netns_watch *w, const char *name)
{
	struct stat st;
	int fd, r;

	if (!ctd_netnstab_wants(w->tab, name))
		return 0;
	fd = openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (!is_netns_file(fd, &st)) {
		close(fd);
		return -EAGAIN;      /* ip netns add mounts it just after */
	}
	r = watch_fd(w, name, fd, &st);
	if (r < 0 || ctd_netnstab_find(w->tab, name) == NULL ||
	    ctd_netnstab_find(w->tab, name)->fd != fd)
		close(fd);
	return r == -EAGAIN ? r : 0;
}

/* Whether a process other than ctd is in the namespace. O(processes),
 * once per deleted namespace. */
static bool in_use(const struct ctd_netns *e)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	char path[300];
	struct stat st;
	bool used = false;
	long self = (long)getpid();

	if (!d)
		return true;
	while (!used && (de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
		    strtol(de->d_name, NULL, 10) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", de->d_name);
		used = stat(path, &st) == 0 && same_file(&st, e->dev, e->ino);
	}
	closedir(d);
	return used;
}

static void let_go(struct ctd_netns_watch *w, struct ctd_netns *e)
{
	ctd_ctdump_remove_netns(w->cfg.dump, e->nsid);
	if (e->flush_fd >= 0)
		close(e->flush_fd);
	if (e->fd >= 0)
		close(e->fd);
	e->fd = e->flush_fd = -1;
}

/* The namespace's end: what the kernel did not report ends here. */
static void forget(struct ctd_netns_watch *w, struct ctd_netns *e,
		   const struct ctd_now *now)
{
	size_t n;

	ctd_nlsrc_drain(w->cfg.nlsrc, FINAL_DRAIN_MAX);
	n = ctd_engine_netns_gone(w->cfg.engine, e->nsid, now);
	w->cfg.stats->netns_dump_counters += n;
	w->cfg.stats->netns_gone++;
	log_info("network namespace %s (nsid %d) gone: %llu records, %zu of "
		 "them from the last dump's counters", *e->name ? e->name : "?",
		 (int)e->nsid, (unsigned long long)e->records, n);
	let_go(w, e);
	ctd_netnstab_remove(w->tab, e->nsid);
	w->cfg.stats->netns_watched = ctd_netnstab_count(w->tab);
}

static int ct_request(int sock, uint8_t msg, uint16_t flags)
{
	char req[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | msg;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	return send(sock, nlh, nlh->nlmsg_len, 0) < 0 ? -errno : 0;
}

/* `conntrack -F` from inside: the kernel deletes every conntrack and
 * sends its DESTROY (sendmsg to the kernel runs the request at once).
 * The socket stays, to probe the dying list. */
static int flush_inside(struct ctd_netns_watch *w, struct ctd_netns *e)
{
	int r = enter(e->fd), sock = -1;

	if (r == 0) {
		sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
			      NETLINK_NETFILTER);
		r = sock < 0 ? -errno : 0;
		leave(w);
	}
	if (r == 0)
		r = ct_request(sock, IPCTNL_MSG_CT_DELETE, 0);
	if (r < 0 && sock >= 0)
		close(sock);
	else
		e->flush_fd = sock;
	return r;
}

/* A namespace whose name left /run/netns. */
static void unmounted(struct ctd_netns_watch *w, struct ctd_netns *e,
		      const struct ctd_now *now)
{
	int r;

	if (in_use(e)) {
		log_info("network namespace %s unmounted but still in use: "
			 "its flows end when it does", e->name);
		let_go(w, e);
		return;
	}
	r = ctd_engine_netns_going(w->cfg.engine, e->nsid);
	if (r == 0)
		r = flush_inside(w, e);
	if (r < 0) {
		w->cfg.stats->netns_errors++;
		log_warn("network namespace %s deleted: cannot flush it (%s); "
			 "its flows end with the last dump's counters", e->name,
			 strerror(-r));
		forget(w, e, now);
		return;
	}
	w->cfg.stats->netns_flushed++;
	e->state = CTD_NETNS_GOING;
	e->deadline_us = now->mono_us + GOING_IDLE_S * 1000000LL;
	e->cap_us = now->mono_us + GOING_MAX_S * 1000000LL;
	e->pending = SIZE_MAX;
	ev_timer_again(w->loop, &w->going);
}

/* How many DESTROYs the namespace's dying list still holds for us (0:
 * every one of the flush delivered, or the list cannot be read). The
 * kernel fills each datagram of a dump as the previous one is read. */
static size_t dying_count(int sock, char *buf, size_t len)
{
	size_t count = 0;
	bool done = false;
	ssize_t n;

	if (ct_request(sock, IPCTNL_MSG_CT_GET_DYING, NLM_F_DUMP) < 0)
		return 0;
	while (!done && (n = recv(sock, buf, len, MSG_DONTWAIT)) > 0) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int left = (int)n;

		for (; ctd_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			done = done || nlh->nlmsg_type == NLMSG_DONE ||
			       nlh->nlmsg_type == NLMSG_ERROR;
			count += !done;
		}
	}
	return count;
}

static void on_going(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ctd_netns_watch *w = t->data;
	struct ctd_now now = ctd_clock_read(&w->cfg.clock);
	struct ctd_netns *e;
	size_t pos = 0;
	bool left = false;

	(void)revents;
	while ((e = ctd_netnstab_next(w->tab, &pos))) {
		if (e->state != CTD_NETNS_GOING)
			continue;
		size_t held = dying_count(e->flush_fd, w->buf, sizeof(w->buf));

		/* Progress (the kernel re-sends as ctd reads) buys time. */
		if (held < e->pending && e->deadline_us < e->cap_us)
			e->deadline_us = now.mono_us + GOING_IDLE_S * 1000000LL;
		e->pending = held;
		if (!held || now.mono_us >= e->deadline_us ||
		    now.mono_us >= e->cap_us)
			forget(w, e, &now);
		else
			left = true;
	}
	if (!left)
		ev_timer_stop(loop, t);
}

/* Names gone from run_dir, and names new in it. */
static void rescan(struct ctd_netns_watch *w)
{
	struct ctd_now now = ctd_clock_read(&w->cfg.clock);
	struct ctd_netns *e;
	struct dirent *de;
	struct stat st;
	size_t pos = 0;
	DIR *d;
	bool again = false;

	while ((e = ctd_netnstab_next(w->tab, &pos)))
		if (e->state == CTD_NETNS_WATCHED && e->fd >= 0 &&
		    (fstatat(w->dir_fd, e->name, &st, 0) < 0 ||
		     !same_file(&st, e->dev, e->ino)))
			unmounted(w, e, &now);
	d = fdopendir(dup(w->dir_fd));
	if (!d)
		return;
	rewinddir(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' &&
		    !ctd_netnstab_find(w->tab, de->d_name))
			again |= watch_name(w, de->d_name) == -EAGAIN;
	closedir(d);
	if (again && w->rescans_left) {
		w->rescans_left--;
		ev_timer_again(w->loop, &w->rescan);
	}
}

static void on_rescan(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	ev_timer_stop(loop, t);
	rescan(t->data);
}

static void on_inotify(struct ev_loop *loop, ev_io *io, int revents)
{
	struct ctd_netns_watch *w = io->data;
	char buf[4096];

	(void)loop;
	(void)revents;
	while (read(w->inotify_fd, buf, sizeof(buf)) > 0)
		;
	/* At once: every millisecond before the nsid and the sysctls are
	 * flows ctd cannot hear. A name not mounted yet is tried again. */
	w->notified_us = ctd_clock_read(&w->cfg.clock).mono_us;
	w->rescans_left = RESCAN_TRIES;
	rescan(w);
}

/* RTM_DELNSID: a namespace with an nsid here ended. One ctd still holds
 * keeps its nsid, so that is another namespace's end. */
static void nsid_deleted(struct ctd_netns_watch *w, int32_t nsid)
{
	struct ctd_netns *e = ctd_netnstab_get(w->tab, nsid);
	struct ctd_now now = ctd_clock_read(&w->cfg.clock);
	int32_t cur;

	if (e && e->fd >= 0 && get_nsid(w, e->fd, &cur) == 0 && cur == nsid)
		return;
	if (e) {
		forget(w, e, &now);
		return;
	}
	ctd_nlsrc_drain(w->cfg.nlsrc, FINAL_DRAIN_MAX);
	w->cfg.stats->netns_dump_counters +=
		ctd_engine_netns_gone(w->cfg.engine, nsid, &now);
}

static int on_nsid_msg(const struct nlmsghdr *nlh, void *arg)
{
	struct nlattr *a;

	if (nlh->nlmsg_type != RTM_DELNSID)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(struct rtgenmsg))
		if (mnl_attr_get_type(a) == NETNSA_NSID)
			nsid_deleted(arg, (int32_t)mnl_attr_get_u32(a));
	return MNL_CB_OK;
}

static void on_nsid(struct ev_loop *loop, ev_io *io, int revents)
{
	struct ctd_netns_watch *w = io->data;
	char buf[8192];
	ssize_t n;

	(void)loop;
	(void)revents;
	while ((n = recv(mnl_socket_get_fd(w->notify), buf, sizeof(buf),
			 MSG_DONTWAIT)) > 0)
		mnl_cb_run(buf, (size_t)n, 0, 0, on_nsid_msg, w);
}

static int open_notify(struct ctd_netns_watch *w)
{
	int grp = RTNLGRP_NSID;

	w->rtnl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	w->notify = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!w->rtnl || !w->notify ||
	    mnl_socket_bind(w->rtnl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_bind(w->notify, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_setsockopt(w->notify, NETLINK_ADD_MEMBERSHIP, &grp,
				  sizeof(grp)) < 0)
		return -errno;
	return 0;
}

static int open_self(struct ctd_netns_watch *w)
{
	w->self_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (w->self_fd < 0 || fstat(w->self_fd, &w->self_st) < 0)
		return -errno;
	if (nsid_request(w, RTM_GETNSID, w->self_fd, &w->self_nsid) < 0)
		w->self_nsid = CTD_NSID_SELF;
	return 0;
}

/* run_dir may not exist before the first `ip netns add`. */
static int open_dir(struct ctd_netns_watch *w)
{
	const char *dir = w->cfg.run_dir;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->dir_fd < 0 || w->inotify_fd < 0 ||
	    inotify_add_watch(w->inotify_fd, dir, IN_CREATE | IN_DELETE |
			      IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB) < 0)
		return -errno;
	return 0;
}

int ctd_netns_new(struct ev_loop *loop, const struct ctd_netns_cfg *cfg,
		  struct ctd_netns_watch **ret)
{
	struct ctd_netns_watch *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->loop = loop;
	w->cfg = *cfg;
	w->self_fd = w->dir_fd = w->inotify_fd = -1;
	w->tab = ctd_netnstab_new(cfg->spec);
	r = w->tab ? open_notify(w) : -EINVAL;
	if (r == 0)
		r = open_self(w);
	if (r == 0)
		r = open_dir(w);
	if (r < 0) {
		ctd_netns_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void ctd_netns_free(struct ctd_netns_watch *w)
{
	struct ctd_netns *e;
	size_t pos = 0;

	if (!w)
		return;
	while (w->tab && (e = ctd_netnstab_next(w->tab, &pos)))
		let_go(w, e);
	ctd_netnstab_free(w->tab);
	if (w->rtnl)
		mnl_socket_close(w->rtnl);
	if (w->notify)
		mnl_socket_close(w->notify);
	if (w->inotify_fd >= 0)
		close(w->inotify_fd);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	if (w->self_fd >= 0)
		close(w->self_fd);
	free(w);
}

void ctd_netns_start(struct ctd_netns_watch *w)
{
	ev_io_init(&w->inotify_io, on_inotify, w->inotify_fd, EV_READ);
	ev_io_init(&w->nsid_io, on_nsid, mnl_socket_get_fd(w->notify), EV_READ);
	ev_init(&w->rescan, on_rescan);
	w->rescan.repeat = RESCAN_S;
	ev_init(&w->going, on_going);
	w->going.repeat = GOING_POLL_S;
	w->inotify_io.data = w->nsid_io.data = w->rescan.data = w->going.data = w;
	ev_io_start(w->loop, &w->inotify_io);
	ev_io_start(w->loop, &w->nsid_io);
	w->rescans_left = RESCAN_TRIES;
	rescan(w);
	w->started = true;
}

void ctd_netns_stop(struct ctd_netns_watch *w)
{
	ev_io_stop(w->loop, &w->inotify_io);
	ev_io_stop(w->loop, &w->nsid_io);
	ev_timer_stop(w->loop, &w->rescan);
	ev_timer_stop(w->loop, &w->going);
}

size_t ctd_netns_admit(struct ctd_netns_watch *w,
		       const struct nlmsghdr *const *msgs, const int32_t *nsids,
		       size_t n, const struct nlmsghdr **out, int32_t *out_nsids)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int32_t nsid = nsids[i] == w->self_nsid ? CTD_NSID_SELF : nsids[i];

		if (!ctd_netnstab_admits(w->tab, nsid)) {
			w->cfg.stats->netns_foreign++;
			continue;
		}
		out[k] = msgs[i];
		out_nsids[k++] = nsid;
	}
	return k;
}

void ctd_netns_name(struct ctd_netns_watch *w, struct ctd_record *rec)
{
	struct ctd_netns *e = ctd_netnstab_get(w->tab, rec->nsid);

	ctd_netnstab_label(w->tab, rec->nsid, rec->netns, sizeof(rec->netns));
	if (e)
		e->records++;
}

/* The first table dump since a namespace was added mid-run listed the
 * flows that began before ctd set it up. Those that also ended before
 * were never heard; those made before its nf_conntrack_events was set
 * carry no event cache, so their end is found by the table check. */
static void learned(struct ctd_netns_watch *w, struct ctd_netns *e,
		    size_t entries)
{
	e->learned = true;
	w->cfg.stats->netns_early_flows += entries;
	if (entries)
		log_info("network namespace %s: %zu flows alive when ctd set "
			 "it up (%lld ms after /run/netns showed it), learned "
			 "from its table; flows that began and ended sooner "
			 "were not seen", e->name, entries,
			 (long long)(e->setup_us / 1000));
}

void ctd_netns_dump_part(void *arg, enum ctd_dump_kind kind, int32_t nsid,
			 int err, size_t entries)
{
	struct ctd_netns_watch *w = arg;
	struct ctd_netns *e = ctd_netnstab_get(w->tab, nsid);

	if (!e)
		return;
	if (err && !e->dump_err)
		log_warn("network namespace %s: %s dump failed: %s", e->name,
			 kind == CTD_DUMP_TABLE ? "table" : "dying-list",
			 strerror(-err));
	e->dump_err = err;
	if (kind == CTD_DUMP_DYING && !err)
		e->pending = entries;
	if (kind == CTD_DUMP_TABLE && !err && !e->learned)
		learned(w, e, entries);
}

const struct ctd_netnstab *ctd_netns_table(const struct ctd_netns_watch *w)
{
	return w->tab;
}
