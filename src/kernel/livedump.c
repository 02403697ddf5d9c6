/* livedump: one table dump on a socket of its own, read in slices.
 *
 * The kernel fills a dump's next datagram while we read the previous
 * one, so a read costs the kernel's own walk of one datagram's worth of
 * conntracks and never waits (MSG_DONTWAIT: an empty socket only means
 * "later"); reading `max` datagrams per call bounds the time a listing
 * takes from the loop. The socket is not the
 * engine's dump socket (reconcile_ev's): a listing must not delay an
 * expiry check, nor its entries count as the check's evidence. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include "ctd/kernel/ctevent.h"
#include "ctd/kernel/livedump.h"

#define BUF_SIZE (64u << 10)

struct ctd_livedump {
	struct mnl_socket *nl;
	char buf[BUF_SIZE];
};

static int request(struct ctd_livedump *d)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = 1;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	return mnl_socket_sendto(d->nl, nlh, nlh->nlmsg_len) < 0 ? -errno : 0;
}

int ctd_livedump_open(struct ctd_livedump **ret)
{
	struct ctd_livedump *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!d->nl || mnl_socket_bind(d->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		r = -errno;
	else
		r = request(d);
	if (r < 0) {
		ctd_livedump_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

void ctd_livedump_free(struct ctd_livedump *d)
{
	if (!d)
		return;
	if (d->nl)
		mnl_socket_close(d->nl);
	free(d);
}

/* 1: go on, 0: the dump ended, -errno: it failed. */
static int handle(const struct nlmsghdr *nlh, ctd_livedump_fn *fn, void *arg)
{
	struct ctd_event ev;

	if (nlh->nlmsg_type == NLMSG_DONE)
		return 0;
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		return e->error ? e->error : -EPROTO;
	}
	if (ctd_ctevent_parse(nlh, &ev) == 0 && !(ev.status & IPS_DYING))
		fn(arg, &ev);
	return 1;
}

int ctd_livedump_read(struct ctd_livedump *d, unsigned max,
		      ctd_livedump_fn *fn, void *arg)
{
	for (unsigned i = 0; i < max; i++) {
		ssize_t n = recv(mnl_socket_get_fd(d->nl), d->buf, sizeof(d->buf),
				 MSG_DONTWAIT);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)d->buf;
		int len = (int)n, r = 1;

		/* The kernel fills the next datagram in our previous recv, so
		 * an empty socket is rare; never wait for it in the loop. */
		if (n < 0)
			return errno == EINTR || errno == EAGAIN ? 1 : -errno;
		for (; r == 1 && ctd_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
			r = handle(nlh, fn, arg);
		if (r <= 0)
			return r;
	}
	return 1;
}
