/* nlpeers: reads /proc/net/netlink (net/netlink/af_netlink.c's
 * netlink_seq_show: sk, protocol, portid, the first 32 groups as a hex
 * mask, rmem, wmem, dump, locks, drops, inode) for sockets of
 * NETLINK_NETFILTER that joined NFNLGRP_CONNTRACK_DESTROY and have both
 * bytes queued and drops: a reader that fell behind. Whether it asked
 * for NETLINK_BROADCAST_ERROR the file does not say, so this names a
 * suspect, the one with the most drops. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "ctd/kernel/nlpeers.h"

#define DESTROY_BIT (1u << (NFNLGRP_CONNTRACK_DESTROY - 1))

static bool parse_line(const char *line, int *ret_proto, uint32_t *ret_groups,
		       struct ctd_nlpeer *ret)
{
	char sk[32];

	return sscanf(line, "%31s %d %u %x %u %*u %*u %*u %u %lu", sk,
		      ret_proto, &ret->portid, ret_groups, &ret->rmem,
		      &ret->drops, &ret->inode) == 7;
}

static bool stuck(int proto, uint32_t groups, const struct ctd_nlpeer *p)
{
	return proto == NETLINK_NETFILTER && (groups & DESTROY_BIT) &&
	       p->rmem > 0 && p->drops > 0;
}

int ctd_nlpeers_stuck(FILE *f, uint32_t own_portid, struct ctd_nlpeer *ret)
{
	char line[256];
	struct ctd_nlpeer p;
	uint32_t groups;
	int proto, found = 0;

	if (!fgets(line, sizeof(line), f) || strncmp(line, "sk", 2) != 0)
		return -EBADMSG;
	while (fgets(line, sizeof(line), f)) {
		if (!parse_line(line, &proto, &groups, &p))
			return -EBADMSG;
		if (p.portid == own_portid || !stuck(proto, groups, &p) ||
		    (found && p.drops <= ret->drops))
			continue;
		*ret = p;
		found = 1;
	}
	return found;
}
