/* ctdump: ctnetlink dumps driven by the loop.
 *
 * A dump is flow-controlled by the kernel (it fills the next datagram
 * only when we read), so it cannot overrun; reading a few datagrams per
 * wakeup interleaves it with event handling. A dump the kernel marks
 * NLM_F_DUMP_INTR saw the table change under it and is reported as
 * -EINTR, so callers never conclude "gone" from an inconsistent walk.
 * Sockets of other namespaces (src[1..]) are dumped one after another
 * with the same request; the round's error is the first part's error. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/socket.h>
#include <ev.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/kernel/ctdump.h"
#include "ctd/kernel/ctevent.h"

#define DUMP_BUF_SIZE (64u << 10)
#define READS_PER_WAKEUP 16

struct source {
	struct mnl_socket *nl;
	int32_t nsid;
};

struct ctd_ctdump {
	ev_io io;                      /* first: the callback casts back */
	struct ev_loop *loop;
	struct mnl_socket *nl;         /* src[0].nl: ctd's own namespace */
	struct source *src;
	size_t nsrc, cap;
	size_t cur;                    /* the source the round reads */
	size_t part_entries;
	int part_err;                  /* first error of the part under way */
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
	d->src = calloc(1, sizeof(*d->src));
	d->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (d->src && d->nl)
		d->src[0] = (struct source){ d->nl, CTD_NSID_SELF };
	d->nsrc = d->cap = 1;
	if (!d->buf || !d->src || !d->nl ||
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
	for (size_t i = 0; d->src && i < d->nsrc; i++)
		if (d->src[i].nl)
			mnl_socket_close(d->src[i].nl);
	free(d->src);
	free(d->buf);
	free(d);
}

bool ctd_ctdump_running(const struct ctd_ctdump *d)
{
	return d->running;
}

/* Sends the dump request on source i and watches its socket. */
static int request(struct ctd_ctdump *d, size_t i)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) |
			  (d->kind == CTD_DUMP_DYING ? IPCTNL_MSG_CT_GET_DYING :
						       IPCTNL_MSG_CT_GET);
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = d->seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	if (mnl_socket_sendto(d->src[i].nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	d->cur = i;
	d->part_entries = 0;
	ev_io_stop(d->loop, &d->io);
	ev_io_set(&d->io, mnl_socket_get_fd(d->src[i].nl), EV_READ);
	ev_io_start(d->loop, &d->io);
	return 0;
}

int ctd_ctdump_start(struct ctd_ctdump *d, enum ctd_dump_kind kind)
{
	int r;

	if (d->running)
		return -EBUSY;
	d->kind = kind;
	d->seq++;
	r = request(d, 0);
	if (r < 0)
		return r;
	d->running = true;
	d->err = d->part_err = 0;
	d->entries = 0;
	return 0;
}

static void finish(struct ctd_ctdump *d, const struct ctd_now *now)
{
	ev_io_stop(d->loop, &d->io);
	d->running = false;
	d->ops.done(d->ops.arg, d->kind, d->err, d->entries, now);
}

/* The part on source cur ended with err (its own): the next namespace's
 * part, or the end of the round. A namespace whose request fails is an
 * error of the round. */
static void next_part(struct ctd_ctdump *d, int err, const struct ctd_now *now)
{
	size_t i;

	if (d->ops.part && d->cur < d->nsrc)
		d->ops.part(d->ops.arg, d->kind, d->src[d->cur].nsid, err,
			    d->part_entries);
	for (i = d->cur + 1; i < d->nsrc; i++) {
		int r = request(d, i);

		if (r == 0)
			return;
		if (!d->err)
			d->err = r;
		if (d->ops.part)
			d->ops.part(d->ops.arg, d->kind, d->src[i].nsid, r, 0);
	}
	finish(d, now);
}

static int grow(struct ctd_ctdump *d)
{
	struct source *s;
	size_t cap = d->cap * 2;

	if (d->nsrc < d->cap)
		return 0;
	s = realloc(d->src, cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	d->src = s;
	d->cap = cap;
	return 0;
}

int ctd_ctdump_add_netns(struct ctd_ctdump *d, int32_t nsid, int fd)
{
	struct mnl_socket *nl;

	if (grow(d) < 0)
		return -ENOMEM;
	nl = mnl_socket_fdopen(fd);
	if (!nl)
		return -errno;
	d->src[d->nsrc++] = (struct source){ nl, nsid };
	return 0;
}

void ctd_ctdump_remove_netns(struct ctd_ctdump *d, int32_t nsid)
{
	struct ctd_now now;
	size_t i;

	for (i = 1; i < d->nsrc && d->src[i].nsid != nsid; i++)
		;
	if (i == d->nsrc)
		return;
	if (d->running && i == d->cur)
		ev_io_stop(d->loop, &d->io);
	mnl_socket_close(d->src[i].nl);
	memmove(&d->src[i], &d->src[i + 1], (d->nsrc - i - 1) * sizeof(*d->src));
	d->nsrc--;
	if (!d->running || i > d->cur)
		return;
	if (i < d->cur) {
		d->cur--;
		return;
	}
	/* The part under way is gone: the round goes on after it. */
	d->cur = i - 1;
	now = ctd_clock_read(&d->clock);
	next_part(d, 0, &now);
}

/* Returns true when the dump ended with this message. */
static bool handle_msg(struct ctd_ctdump *d, const struct nlmsghdr *nlh,
		       const struct ctd_now *now)
{
	struct ctd_event ev;

	if (nlh->nlmsg_seq != d->seq)
		return false;              /* a stale reply of an older dump */
	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR && !d->part_err)
		d->part_err = -EINTR;
	if (nlh->nlmsg_type == NLMSG_DONE)
		return true;
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		if (!d->part_err)
			d->part_err = e->error ? e->error : -EPROTO;
		return true;
	}
	d->entries++;
	d->part_entries++;
	if (ctd_ctevent_parse(nlh, &ev) < 0) {
		d->stats->parse_errors++;
		return false;
	}
	ev.nsid = d->src[d->cur].nsid;
	d->ops.entry(d->ops.arg, d->kind, &ev, now);
	return false;
}

enum { READ_MORE, READ_EMPTY, READ_ENDED };

static int read_one(struct ctd_ctdump *d)
{
	ssize_t n = recv(mnl_socket_get_fd(d->src[d->cur].nl), d->buf,
			 DUMP_BUF_SIZE, MSG_DONTWAIT);
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)d->buf;
	struct ctd_now now;
	int len = (int)n;

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return READ_EMPTY;
		d->part_err = -errno;
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
			int err = d->part_err;

			if (err && !d->err)
				d->err = err;
			d->part_err = 0;
			next_part(d, err, &now);
			return;
		}
	}
}
