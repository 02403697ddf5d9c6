/* shardprobe N COUNT SECS: N reliable DESTROY listeners (BROADCAST_ERROR,
 * NO_ENOBUFS), socket k with shard k's filter of N, and one listener
 * without a filter, in the caller's namespace. Prints "ready", then one
 * line per DESTROY read, "k id" (k = "all" for the unfiltered one), until
 * the unfiltered one has COUNT and all were quiet for 300 ms, or SECS
 * passed. For test_shards.py: the kernel's own delivery decides. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "ctd/kernel/shardfilter.h"

#define MAXS (CTD_SHARDS_MAX + 1)

static struct mnl_socket *open_listener(void)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	int on = 1, group = NFNLGRP_CONNTRACK_DESTROY, size = 16 << 20;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_setsockopt(nl, NETLINK_ADD_MEMBERSHIP, &group,
				  sizeof(group)) < 0 ||
	    mnl_socket_setsockopt(nl, NETLINK_BROADCAST_ERROR, &on, sizeof(on)) < 0 ||
	    mnl_socket_setsockopt(nl, NETLINK_NO_ENOBUFS, &on, sizeof(on)) < 0) {
		perror("shardprobe: listener");
		exit(2);
	}
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &size,
		   sizeof(size));
	return nl;
}

static int id_of(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == CTA_ID)
		*(uint32_t *)data = ntohl(mnl_attr_get_u32(a));
	return MNL_CB_OK;
}

/* Prints each message of the datagram; returns how many. */
static int print_batch(const char *buf, int len, const char *tag)
{
	const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
	int n = 0;

	for (; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len), n++) {
		uint32_t id = 0;

		mnl_attr_parse(h, sizeof(struct nfgenmsg), id_of, &id);
		printf("%s %u\n", tag, id);
	}
	return n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static char buf[1 << 16];
	struct pollfd p[MAXS];
	struct mnl_socket *nl[MAXS];
	char tag[MAXS][8];
	unsigned n = argc > 3 ? (unsigned)atoi(argv[1]) : 0;
	long want = argc > 3 ? atol(argv[2]) : 0, all = 0;
	double end = now_s() + (argc > 3 ? atof(argv[3]) : 0), quiet = 0;

	if (n == 0 || n >= MAXS) {
		fprintf(stderr, "usage: shardprobe N COUNT SECS\n");
		return 2;
	}
	for (unsigned i = 0; i <= n; i++) {
		nl[i] = open_listener();
		p[i] = (struct pollfd){ mnl_socket_get_fd(nl[i]), POLLIN, 0 };
		snprintf(tag[i], sizeof(tag[i]), i < n ? "%u" : "all", i);
		if (i < n && ctd_shardfilter_attach(p[i].fd, i, n) < 0) {
			perror("shardprobe: SO_ATTACH_FILTER");
			return 2;
		}
	}
	printf("ready\n");
	fflush(stdout);
	while (now_s() < end && !(all >= want && quiet && now_s() - quiet > 0.3)) {
		if (poll(p, n + 1, 100) <= 0) {
			if (!quiet)
				quiet = now_s();
			continue;
		}
		quiet = 0;
		for (unsigned i = 0; i <= n; i++) {
			int len = p[i].revents ? (int)mnl_socket_recvfrom(nl[i], buf, sizeof(buf)) : 0;

			if (len > 0 && i == n)
				all += print_batch(buf, len, tag[i]);
			else if (len > 0)
				print_batch(buf, len, tag[i]);
		}
	}
	fflush(stdout);
	for (unsigned i = 0; i <= n; i++)
		mnl_socket_close(nl[i]);
	if (all < want)
		fprintf(stderr, "shardprobe: %ld of %ld DESTROYs in time\n", all,
			want);
	return all >= want ? 0 : 1;
}
