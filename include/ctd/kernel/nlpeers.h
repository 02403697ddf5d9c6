/* nlpeers: the other listeners of conntrack's DESTROY group, from
 * /proc/net/netlink, to name the one that holds the kernel's table when
 * it is not ctd. A reliable listener that stops reading shows there as a
 * socket of NETLINK_NETFILTER in the DESTROY group with bytes queued and
 * drops counted. Read on demand (health), never on a timer. Pure: the
 * caller opens the file. */
#ifndef CTD_NLPEERS_H
#define CTD_NLPEERS_H

#include <stdint.h>
#include <stdio.h>

struct ctd_nlpeer {
	uint32_t portid;     /* the socket's netlink port: for a process's
	                      * first netlink socket, its pid */
	uint32_t rmem;       /* bytes queued */
	uint32_t drops;
	unsigned long inode;
};

/* The DESTROY listener other than own_portid with the most drops and
 * bytes queued. Returns 1 and fills ret, 0 when there is none, or
 * -EBADMSG when the file is not /proc/net/netlink's format. */
int ctd_nlpeers_stuck(FILE *f, uint32_t own_portid, struct ctd_nlpeer *ret);

#endif
