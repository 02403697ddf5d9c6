/* shardfilter: the classic BPF program that gives one shard its part of
 * the conntrack events. A socket filter's reject is not a delivery
 * failure (the kernel frees the message, no overrun, nothing held), so N
 * reliable sockets share the events only if their parts are disjoint (an
 * overlap is a duplicate on every re-send) and complete (an event no
 * socket takes counts as delivered and is gone). The key is the
 * conntrack's CTA_ID (a hash of the object, the same in every event of
 * one conntrack), found with the kernel's SKF_AD_NLATTR: shard k takes
 * CTA_ID % n == k; a message without CTA_ID goes to shard 0. Pure: the
 * program is built into memory the caller owns. */
#ifndef CTD_SHARDFILTER_H
#define CTD_SHARDFILTER_H

#include <stddef.h>
#include <stdint.h>
#include <linux/filter.h>

#define CTD_SHARDFILTER_LEN 11      /* instructions in every program */
#define CTD_SHARDS_MAX 64

/* Fills prog (CTD_SHARDFILTER_LEN instructions) for shard k of n.
 * -EINVAL unless 0 <= k < n <= CTD_SHARDS_MAX. */
int ctd_shardfilter_build(unsigned k, unsigned n,
			  struct sock_filter prog[CTD_SHARDFILTER_LEN]);
/* The shard a conntrack's events go to: what the programs decide. */
unsigned ctd_shardfilter_shard(uint32_t cta_id, unsigned n);
/* Attaches the program for shard k of n to socket fd; -errno. */
int ctd_shardfilter_attach(int fd, unsigned k, unsigned n);

#endif
