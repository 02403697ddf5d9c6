/* shardfilter: one shard's part of the ctnetlink events, as a classic
 * BPF socket filter.
 *
 * The program reads the message as the kernel hands it to the filter:
 * the nlmsghdr, the nfgenmsg, then the top-level attributes. The kernel's
 * SKF_AD_NLATTR extension finds attribute X from offset A and returns
 * its offset (0: none), which is how libnetfilter_conntrack's own
 * filters read attributes. The conntrack id is big-endian on the wire;
 * a word load is big-endian too, so A is the id as a number. A kept
 * message returns 0xffffffff (at least its length: the whole of it). */
#include <errno.h>
#include <sys/socket.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>

#include "ctd/kernel/shardfilter.h"

#define ATTRS_AT (NLMSG_HDRLEN + sizeof(struct nfgenmsg))
#define KEEP 0xffffffffu
#define DROP 0u

int ctd_shardfilter_build(unsigned k, unsigned n,
			  struct sock_filter prog[CTD_SHARDFILTER_LEN])
{
	/* A jump's offsets count the instructions it skips. */
	const struct sock_filter p[CTD_SHARDFILTER_LEN] = {
		BPF_STMT(BPF_LD | BPF_IMM, ATTRS_AT),
		BPF_STMT(BPF_LDX | BPF_IMM, CTA_ID),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS,
			 (uint32_t)(SKF_AD_OFF + SKF_AD_NLATTR)),
		/* No CTA_ID: shard 0's, so every message has a shard. */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, k == 0 ? KEEP : DROP),
		/* The id is past the attribute's 4-byte header. */
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_IND, NLA_HDRLEN),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, KEEP),
		BPF_STMT(BPF_RET | BPF_K, DROP),
	};


	if (n == 0 || n > CTD_SHARDS_MAX || k >= n)
		return -EINVAL;
	for (size_t i = 0; i < CTD_SHARDFILTER_LEN; i++)
		prog[i] = p[i];
	return 0;
}

unsigned ctd_shardfilter_shard(uint32_t cta_id, unsigned n)
{
	return n ? cta_id % n : 0;
}

int ctd_shardfilter_attach(int fd, unsigned k, unsigned n)
{
	struct sock_filter prog[CTD_SHARDFILTER_LEN];
	struct sock_fprog fp = { .len = CTD_SHARDFILTER_LEN, .filter = prog };
	int r = ctd_shardfilter_build(k, n, prog);

	if (r < 0)
		return r;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) < 0)
		return -errno;
	return 0;
}
