/* ctdump: ctnetlink dumps driven by the loop.
 *
 * A dump is flow-controlled by the kernel (it fills the next datagram
 * only when we read), so it cannot overrun; reading a few datagrams per
 * wakeup interleaves it with event handling. A dump the kernel marks
 * NLM_F_DUMP_INTR saw the table change under it and is reported as
 * -EINTR, so callers never conclude "gone" from an inconsistent walk. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <ev.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "ctd/ctdump.h"
#include "ctd/ctevent.h"
#include "ctd/stats.h"
#include "ctd/timeutil.h"

#define DUMP_BUF_SIZE (64u << 10)
#define READS_PER_WAKEUP 16

struct ctd_ctdump {
	ev_io io;                      /* first: the callback casts back */
	struct ev_loop *loop;
	struct mnl_socket *nl;
	struct ctd_stats *stats;
	struct ctd_ctdump_ops ops;
	struct ctd_clock clock;
	enum ctd_dump_kind kind;
	bool running;
	int err;                       /* first error of the running dump */
	uint32_t seq;
	size_t entries;
	char *buf;
};

static void on_readable(struct ev_loop *loop, ev_io *w, int revents);

int ctd_ctdump_new(struct ev_loop *loop, const struct ctd_clock *clock,
		   struct ctd_stats *stats, const struct ctd_ctdump_ops *ops,
		   struct ctd_ctdump **ret)
{
	struct ctd_ctdump *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->buf = malloc(DUMP_BUF_SIZE);
	d->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!d->buf || !d->nl ||
	    mnl_socket_bind(d->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = d->buf ? -errno : -ENOMEM;

		ctd_ctdump_free(d);
		return r;
	}
	d->loop = loop;
	d->stats = stats;
	d->ops = *ops;
	if (clock)
		d->clock = *clock;
	d->seq = (uint32_t)(ctd_clock_read(&d->clock).wall_ns / 1000000000u);
	ev_io_init(&d->io, on_readable, mnl_socket_get_fd(d->nl), EV_READ);
	*ret = d;
	return 0;
}

void ctd_ctdump_free(struct ctd_ctdump *d)
{
	if (!d)
		return;
	if (d->loop)
		ev_io_stop(d->loop, &d->io);
	if (d->nl)
		mnl_socket_close(d->nl);
	free(d->buf);
	free(d);
}

bool ctd_ctdump_running(const struct ctd_ctdump *d)
{
	return d->running;
}

int ctd_ctdump_start(struct ctd_ctdump *d, enum ctd_dump_kind kind)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct nfgenmsg *nfg;

	if (d->running)
		return -EBUSY;
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) |
			  (kind == CTD_DUMP_DYING ? IPCTNL_MSG_CT_GET_DYING :
						    IPCTNL_MSG_CT_GET);
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++d->seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	if (mnl_socket_sendto(d->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	d->kind = kind;
	d->running = true;
	d->err = 0;
	d->entries = 0;
	ev_io_start(d->loop, &d->io);
	return 0;
}

static void finish(struct ctd_ctdump *d, const struct ctd_now *now)
{
	ev_io_stop(d->loop, &d->io);
	d->running = false;
	d->ops.done(d->ops.arg, d->kind, d->err, d->entries, now);
}

/* Returns true when the dump ended with this message. */
static bool handle_msg(struct ctd_ctdump *d, const struct nlmsghdr *nlh,
		       const struct ctd_now *now)
{
	struct ctd_event ev;

	if (nlh->nlmsg_seq != d->seq)
		return false;              /* a stale reply of an older dump */
	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR && !d->err)
		d->err = -EINTR;
	if (nlh->nlmsg_type == NLMSG_DONE)
		return true;
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		if (!d->err)
			d->err = e->error ? e->error : -EPROTO;
		return true;
	}
	d->entries++;
	if (ctd_ctevent_parse(nlh, &ev) < 0) {
		d->stats->parse_errors++;
		return false;
	}
	d->ops.entry(d->ops.arg, d->kind, &ev, now);
	return false;
}

enum { READ_MORE, READ_EMPTY, READ_ENDED };

static int read_one(struct ctd_ctdump *d)
{
	ssize_t n = recv(mnl_socket_get_fd(d->nl), d->buf, DUMP_BUF_SIZE,
			 MSG_DONTWAIT);
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)d->buf;
	struct ctd_now now;
	int len = (int)n;

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return READ_EMPTY;
		d->err = -errno;
		return READ_ENDED;
	}
	now = ctd_clock_read(&d->clock);
	for (; ctd_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
		if (handle_msg(d, nlh, &now))
			return READ_ENDED;
	return READ_MORE;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctd_ctdump *d = (struct ctd_ctdump *)w;
	int i;

	(void)loop;
	(void)revents;
	for (i = 0; i < READS_PER_WAKEUP; i++) {
		int r = read_one(d);

		if (r == READ_EMPTY)
			return;
		if (r == READ_ENDED) {
			struct ctd_now now = ctd_clock_read(&d->clock);

			finish(d, &now);
			return;
		}
	}
}
