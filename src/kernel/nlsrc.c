/* nlsrc: the ctnetlink event socket.
 *
 * Subscribes to the conntrack DESTROY group, and to NEW and UPDATE only
 * when something uses them: the kernel builds every event for a
 * listener in the packet path, so each group ctd joins without need
 * slows the firewall's connection rate. A reload changes the groups on
 * the same socket with NETLINK_ADD/DROP_MEMBERSHIP. In reliable
 * mode NETLINK_BROADCAST_ERROR makes a failed delivery to us keep the
 * event in the kernel (missed-event cache; undelivered DESTROYs wait on
 * its dying list and are re-sent), so an overrun costs latency, not
 * records; NETLINK_NO_ENOBUFS keeps the kernel from marking the socket
 * congested and dropping every broadcast until the queue empties. The
 * overruns then show only as socket drops (SO_MEMINFO), which we count
 * and answer by doubling the buffer up to its configured maximum.
 * Reads use recvmmsg into a fixed ring of slots: one syscall per batch of
 * events, no allocation per event. A wakeup handles at most `budget`
 * messages so a storm cannot starve the loop's other watchers; libev's
 * level-triggered io watcher calls us again on the next iteration.
 * With all_netns the socket also hears every namespace that has an nsid
 * here (NETLINK_LISTEN_ALL_NSID); the kernel names each datagram's source
 * in a control message, kept per message beside the batch. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <ev.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/kernel/nlsrc.h"
#include "ctd/kernel/shardfilter.h"

#define SLOTS 64
#define SLOT_SIZE 8192
/* After a wakeup that found less than a batch, the socket is left alone
 * this long: each event is a datagram of its own, and waking per event
 * cost more CPU than handling it (a profile of a flow storm put half of
 * ctd's time in the wakeup and syscall path). Only with a buffer that
 * holds that long a pause at full speed, and never right after an
 * overrun: a small fixed buffer (the kernel then re-sends held DESTROYs
 * as room appears) must be read as fast as it fills. */
#define COALESCE_S 0.002
#define COALESCE_MIN_RCVBUF (1u << 20)

struct ctd_nlsrc {
	ev_io io;                      /* first: the callback casts back */
	ev_timer pause;                /* re-arms io after a light wakeup */
	struct mnl_socket *nl;
	struct ctd_stats *stats;
	ctd_nlsrc_cb *cb;
	void *arg;
	struct ctd_clock clock;        /* stamps each batch */
	unsigned budget;
	size_t rcvbuf;                 /* last size asked for */
	size_t rcvbuf_max;
	uint32_t drops;                /* SK_MEMINFO_DROPS last read */
	bool warned_max;
	FILE *record;
	unsigned groups;               /* CTD_NLSRC_* joined */
	struct mmsghdr msgs[SLOTS];
	struct iovec iov[SLOTS];
	struct sockaddr_nl from[SLOTS];
	/* The source namespace's nsid, with all_netns (af_netlink.c puts
	 * it in a SOL_NETLINK/NETLINK_LISTEN_ALL_NSID control message; none
	 * for ctd's own namespace). */
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl[SLOTS];
	bool all_netns;
	char (*bufs)[SLOT_SIZE];
	/* Messages of the datagrams just read, handed on together so the
	 * engine can fetch their flows ahead of use. */
	const struct nlmsghdr *batch[CTD_NLSRC_BATCH];
	int32_t nsids[CTD_NLSRC_BATCH];
	size_t nbatch;
};

static int set_rcvbuf(struct ctd_nlsrc *src, size_t size)
{
	int fd = mnl_socket_get_fd(src->nl), v = (int)size, got = 0;
	socklen_t len = sizeof(got);

	/* RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0)
		src->stats->rcvbuf = (uint64_t)got;
	src->rcvbuf = size;
	return 0;
}

static void grow_rcvbuf(struct ctd_nlsrc *src)
{
	size_t want = src->rcvbuf * 2;

	if (want > src->rcvbuf_max)
		want = src->rcvbuf_max;
	if (want <= src->rcvbuf) {
		if (!src->warned_max)
			log_warn("netlink receive buffer at its maximum (%zu bytes) "
				 "and still overrunning: ctd reads slower than "
				 "events come (its CPU); a bigger --rcvbuf-max "
				 "only delays that", src->rcvbuf_max);
		src->warned_max = true;
		return;
	}
	if (set_rcvbuf(src, want) == 0) {
		src->stats->nl_grows++;
		log_info("netlink receive buffer grown to %zu bytes", want);
	}
}

/* One getsockopt per wakeup, not per event: drops are what overruns
 * look like in reliable mode. */
/* True when the socket overran since the last look. */
static bool check_drops(struct ctd_nlsrc *src)
{
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mem);
	uint32_t delta;

	if (getsockopt(mnl_socket_get_fd(src->nl), SOL_SOCKET, SO_MEMINFO,
		       mem, &len) < 0 || len <= SK_MEMINFO_DROPS * sizeof(mem[0]))
		return false;
	delta = mem[SK_MEMINFO_DROPS] - src->drops;
	src->drops = mem[SK_MEMINFO_DROPS];
	if (!delta)
		return false;
	src->stats->nl_drops += delta;
	grow_rcvbuf(src);
	return true;
}

unsigned ctd_nlsrc_groups(const struct ctd_nlsrc_need *need)
{
	if (need->all || need->event_records || need->text || need->lossy ||
	    need->labels)
		return CTD_NLSRC_ALL;
	return CTD_NLSRC_DESTROY;
}

static int set_membership(struct ctd_nlsrc *src, unsigned bit, bool join)
{
	int group = bit == CTD_NLSRC_NEW ? NFNLGRP_CONNTRACK_NEW :
		    bit == CTD_NLSRC_UPDATE ? NFNLGRP_CONNTRACK_UPDATE :
		    NFNLGRP_CONNTRACK_DESTROY;

	if (mnl_socket_setsockopt(src->nl, join ? NETLINK_ADD_MEMBERSHIP :
				  NETLINK_DROP_MEMBERSHIP, &group,
				  sizeof(group)) < 0)
		return -errno;
	if (join)
		src->groups |= bit;
	else
		src->groups &= ~bit;
	return 0;
}

int ctd_nlsrc_subscribe(struct ctd_nlsrc *src, unsigned groups)
{
	/* DESTROY first, left last: never a moment without it. */
	static const unsigned order[] = {
		CTD_NLSRC_DESTROY, CTD_NLSRC_NEW, CTD_NLSRC_UPDATE,
	};
	int r = 0;

	for (size_t i = 0; i < 3 && r == 0; i++)
		if ((groups ^ src->groups) & order[i])
			r = set_membership(src, order[i], groups & order[i]);
	return r;
}

unsigned ctd_nlsrc_subscribed(const struct ctd_nlsrc *src)
{
	return src->groups;
}

static int subscribe(struct ctd_nlsrc *src, const struct ctd_nlsrc_cfg *cfg,
		     bool bind)
{
	int on = 1, r;

	/* A handed-over socket has the filter already; set again all the
	 * same, the kernel replaces it at once. */
	if (cfg->shards > 1) {
		r = ctd_shardfilter_attach(mnl_socket_get_fd(src->nl),
					   cfg->shard, cfg->shards);
		if (r < 0)
			return r;
	}
	if (bind && mnl_socket_bind(src->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	r = ctd_nlsrc_subscribe(src, cfg->groups ? cfg->groups : CTD_NLSRC_ALL);
	if (r < 0)
		return r;
	if (src->all_netns &&
	    mnl_socket_setsockopt(src->nl, NETLINK_LISTEN_ALL_NSID, &on,
				  sizeof(on)) < 0)
		return -errno;
	if (!cfg->reliable)
		return 0;
	if (mnl_socket_setsockopt(src->nl, NETLINK_BROADCAST_ERROR, &on,
				  sizeof(on)) < 0 ||
	    mnl_socket_setsockopt(src->nl, NETLINK_NO_ENOBUFS, &on,
				  sizeof(on)) < 0)
		return -errno;
	return 0;
}

static void setup_slots(struct ctd_nlsrc *src)
{
	size_t i;

	for (i = 0; i < SLOTS; i++) {
		src->iov[i].iov_base = src->bufs[i];
		src->iov[i].iov_len = SLOT_SIZE;
		src->msgs[i].msg_hdr = (struct msghdr){
			.msg_name = &src->from[i],
			.msg_namelen = sizeof(src->from[i]),
			.msg_iov = &src->iov[i],
			.msg_iovlen = 1,
		};
		if (src->all_netns) {
			src->msgs[i].msg_hdr.msg_control = src->ctl[i].buf;
			src->msgs[i].msg_hdr.msg_controllen = sizeof(src->ctl[i].buf);
		}
	}
}

/* The nsid the kernel put on datagram i; CTD_NSID_SELF without one. */
static int32_t datagram_nsid(struct ctd_nlsrc *src, size_t i)
{
	struct msghdr *mh = &src->msgs[i].msg_hdr;
	struct cmsghdr *c;
	int32_t nsid = CTD_NSID_SELF;

	if (!src->all_netns)
		return nsid;
	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
		if (c->cmsg_level == SOL_NETLINK &&
		    c->cmsg_type == NETLINK_LISTEN_ALL_NSID &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&nsid, CMSG_DATA(c), sizeof(nsid));
	return nsid;
}

const int32_t *ctd_nlsrc_batch_nsids(const struct ctd_nlsrc *src)
{
	return src->all_netns ? src->nsids : NULL;
}

static int open_record(struct ctd_nlsrc *src, const char *path)
{
	src->record = fopen(path, "we");
	if (!src->record)
		return -errno;
	setvbuf(src->record, NULL, _IOFBF, 1 << 20);
	return 0;
}

/* A handed-over socket must be what we think it is; it is already
 * bound and subscribed, and its buffer may have grown: never shrink it. */
static int adopt(struct ctd_nlsrc *src, const struct ctd_nlsrc_cfg *cfg,
		 size_t *ret_rcvbuf)
{
	int dom = 0, proto = 0, cur = 0;
	socklen_t len = sizeof(int);

	if (getsockopt(cfg->fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) < 0 ||
	    getsockopt(cfg->fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
		return -errno;
	if (dom != AF_NETLINK || proto != NETLINK_NETFILTER)
		return -ENOTSOCK;
	if (fcntl(cfg->fd, F_SETFL, fcntl(cfg->fd, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	src->nl = mnl_socket_fdopen(cfg->fd);
	if (!src->nl)
		return -errno;
	/* SO_RCVBUF reports twice what was set (the kernel's overhead). */
	if (getsockopt(cfg->fd, SOL_SOCKET, SO_RCVBUF, &cur, &len) == 0 &&
	    (size_t)cur / 2 > *ret_rcvbuf)
		*ret_rcvbuf = (size_t)cur / 2;
	return 0;
}

static int nlsrc_open(struct ctd_nlsrc *src, const struct ctd_nlsrc_cfg *cfg)
{
	size_t rcvbuf = cfg->rcvbuf;
	int r;

	if (cfg->fd >= 0) {
		r = adopt(src, cfg, &rcvbuf);
		/* The previous ctd may have joined any of them. */
		src->groups = CTD_NLSRC_ALL;
		if (r == 0)
			r = subscribe(src, cfg, false);
	} else {
		src->nl = mnl_socket_open2(NETLINK_NETFILTER,
					   SOCK_NONBLOCK | SOCK_CLOEXEC);
		r = src->nl ? subscribe(src, cfg, true) : -errno;
	}
	if (r < 0)
		return r;
	src->rcvbuf_max = cfg->rcvbuf_max > rcvbuf ? cfg->rcvbuf_max : rcvbuf;
	r = set_rcvbuf(src, rcvbuf);
	if (r < 0)
		return r;
	if (cfg->record_path)
		return open_record(src, cfg->record_path);
	return 0;
}

int ctd_nlsrc_new(const struct ctd_nlsrc_cfg *cfg, struct ctd_stats *stats,
		  ctd_nlsrc_cb *cb, void *arg, struct ctd_nlsrc **ret)
{
	struct ctd_nlsrc *src = calloc(1, sizeof(*src));
	int r;

	if (!src)
		return -ENOMEM;
	src->bufs = malloc(sizeof(*src->bufs) * SLOTS);
	if (!src->bufs) {
		free(src);
		return -ENOMEM;
	}
	src->stats = stats;
	src->cb = cb;
	src->arg = arg;
	src->clock = cfg->clock;
	src->budget = cfg->budget ? cfg->budget : 1;
	src->all_netns = cfg->all_netns;
	setup_slots(src);
	r = nlsrc_open(src, cfg);
	if (r < 0) {
		ctd_nlsrc_free(src);
		return r;
	}
	*ret = src;
	return 0;
}

void ctd_nlsrc_free(struct ctd_nlsrc *src)
{
	if (!src)
		return;
	if (src->record)
		fclose(src->record);
	if (src->nl)
		mnl_socket_close(src->nl);
	free(src->bufs);
	free(src);
}

/* Collects datagram i's messages into the batch, handing the batch on
 * whenever it fills. Returns how many it collected. */
static unsigned collect_datagram(struct ctd_nlsrc *src, size_t i,
				 const struct ctd_now *now)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)src->bufs[i];
	int len = (int)src->msgs[i].msg_len;
	int32_t nsid = datagram_nsid(src, i);
	unsigned n = 0;

	if (src->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
		src->stats->nl_truncated++;
		return 0;
	}
	/* Only the kernel may speak for conntrack. */
	if (src->from[i].nl_pid != 0)
		return 0;
	if (src->record)
		fwrite(nlh, 1, (size_t)len, src->record);
	for (; ctd_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		if (src->nbatch == CTD_NLSRC_BATCH) {
			src->cb(src->arg, src->batch, src->nbatch, now);
			src->nbatch = 0;
		}
		src->nsids[src->nbatch] = nsid;
		src->batch[src->nbatch++] = nlh;
		n++;
	}
	return n;
}

static void reset_slots(struct ctd_nlsrc *src, unsigned count)
{
	unsigned i;

	for (i = 0; i < count; i++) {
		src->msgs[i].msg_hdr.msg_namelen = sizeof(src->from[i]);
		src->msgs[i].msg_hdr.msg_flags = 0;
		if (src->all_netns)
			src->msgs[i].msg_hdr.msg_controllen = sizeof(src->ctl[i].buf);
	}
}

/* Returns datagrams read (>= 0), or -1 when the socket is empty. */
static int read_batch(struct ctd_nlsrc *src, unsigned want)
{
	int fd = mnl_socket_get_fd(src->nl);
	int n = recvmmsg(fd, src->msgs, want, MSG_DONTWAIT, NULL);

	src->stats->nl_syscalls++;
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -1;
	if (errno == ENOBUFS) {
		/* Lossy mode: events are gone for good. The queue behind
		 * the error is still there to read. */
		if (src->stats->nl_enobufs++ == 0)
			log_warn("netlink receive buffer overrun (ENOBUFS): "
				 "events lost");
		grow_rcvbuf(src);
		return 0;
	}
	if (errno != EINTR && src->stats->nl_errors++ == 0)
		log_err("netlink receive: %s", strerror(errno));
	return errno == EINTR ? 0 : -1;
}

unsigned ctd_nlsrc_drain(struct ctd_nlsrc *src, unsigned budget)
{
	unsigned handled = 0, idle = 0, i;
	struct ctd_now now;
	int n;

	/* idle bounds the loop when reads keep returning nothing (a burst of
	 * EINTR or ENOBUFS) without the socket being empty. */
	while (handled < budget && idle < 4) {
		unsigned want = budget - handled < SLOTS ? budget - handled : SLOTS;

		n = read_batch(src, want);
		if (n < 0)
			break;
		idle = n ? 0 : idle + 1;
		src->stats->nl_reads += (uint64_t)n;
		now = ctd_clock_read(&src->clock);
		for (i = 0; i < (unsigned)n; i++)
			handled += collect_datagram(src, i, &now);
		if (src->nbatch)
			src->cb(src->arg, src->batch, src->nbatch, &now);
		src->nbatch = 0;
		reset_slots(src, (unsigned)n);
	}
	src->stats->nl_messages += handled;
	return handled;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctd_nlsrc *src = (struct ctd_nlsrc *)w;
	unsigned handled;

	(void)revents;
	src->stats->nl_wakeups++;
	handled = ctd_nlsrc_drain(src, src->budget);
	if (handled >= src->budget)
		src->stats->nl_budget_hits++;
	if (!check_drops(src) && handled < SLOTS &&
	    src->rcvbuf >= COALESCE_MIN_RCVBUF) {
		ev_io_stop(loop, &src->io);
		ev_timer_set(&src->pause, COALESCE_S, 0);
		ev_timer_start(loop, &src->pause);
	}
}

static void on_pause(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctd_nlsrc *src = w->data;

	(void)revents;
	ev_io_start(loop, &src->io);
}

void ctd_nlsrc_start(struct ctd_nlsrc *src, struct ev_loop *loop)
{
	ev_io_init(&src->io, on_readable, mnl_socket_get_fd(src->nl), EV_READ);
	ev_init(&src->pause, on_pause);
	src->pause.data = src;
	ev_io_start(loop, &src->io);
}

void ctd_nlsrc_stop(struct ctd_nlsrc *src, struct ev_loop *loop)
{
	ev_timer_stop(loop, &src->pause);
	ev_io_stop(loop, &src->io);
	if (src->record)
		fflush(src->record);
}

int ctd_nlsrc_dup_fd(struct ctd_nlsrc *src)
{
	int fd = fcntl(mnl_socket_get_fd(src->nl), F_DUPFD_CLOEXEC, 3);

	/* libmnl owns the original and closes it with the socket object;
	 * the duplicate shares the same socket and its queue. */
	return fd < 0 ? -errno : fd;
}

uint32_t ctd_nlsrc_portid(const struct ctd_nlsrc *src)
{
	return mnl_socket_get_portid(src->nl);
}

int ctd_nlsrc_queued(const struct ctd_nlsrc *src)
{
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mem);

	if (getsockopt(mnl_socket_get_fd(src->nl), SOL_SOCKET, SO_MEMINFO,
		       mem, &len) < 0)
		return -errno;
	return (int)mem[SK_MEMINFO_RMEM_ALLOC];
}
