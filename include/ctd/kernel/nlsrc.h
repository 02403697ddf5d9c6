/* nlsrc: the ctnetlink event socket. Owns the libmnl socket, its libev
 * watcher and the receive buffers; reads in batches with recvmmsg under a
 * per-wakeup budget and hands each netlink message to a callback. Counts
 * overruns and grows the socket buffer when they happen.
 * Optionally records every datagram raw to a file (--record). */
#ifndef CTD_NLSRC_H
#define CTD_NLSRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/base/timeutil.h"

struct ev_loop;
struct nlmsghdr;
struct ctd_nlsrc;
struct ctd_stats;
struct ctd_now;

/* ctnetlink event groups, as a mask. */
enum {
	CTD_NLSRC_NEW     = 1u << 0,
	CTD_NLSRC_UPDATE  = 1u << 1,
	CTD_NLSRC_DESTROY = 1u << 2,
	CTD_NLSRC_ALL     = CTD_NLSRC_NEW | CTD_NLSRC_UPDATE | CTD_NLSRC_DESTROY,
};

/* What decides whether ctd needs NEW and UPDATE events. */
struct ctd_nlsrc_need {
	bool event_records;  /* an output takes NEW/UPDATE event records */
	bool text;           /* -f prints NEW/UPDATE lines */
	bool lossy;          /* no BROADCAST_ERROR: a resync can only flag
	                      * the flows it knew of */
	bool all;            /* `subscribe all` */
	bool labels;         /* record-labels: labels come with NEW and
	                      * UPDATE only */
};

/* The groups to join: DESTROY always, NEW and UPDATE only when needed.
 * A DESTROY carries all a record needs (both tuples and counters,
 * kernel start and stop, status, mark, zone, TCP state) except labels:
 * records that show them need the other two. */
unsigned ctd_nlsrc_groups(const struct ctd_nlsrc_need *need);

struct ctd_nlsrc_cfg {
	size_t rcvbuf;            /* initial receive buffer, bytes */
	size_t rcvbuf_max;        /* doubled on overruns up to this */
	/* NETLINK_BROADCAST_ERROR + NETLINK_NO_ENOBUFS: the kernel keeps
	 * what it could not deliver and re-sends it. */
	bool reliable;
	unsigned budget;          /* messages per wakeup */
	const char *record_path;  /* raw capture file, or NULL */
	/* A ctnetlink socket handed over by the previous ctd (LISTEN_FDS),
	 * with the events queued in it; -1 opens a new one. */
	int fd;
	struct ctd_clock clock;   /* stamps each batch; zeroed: the system's */
	unsigned groups;          /* CTD_NLSRC_*; 0: all */
	/* NETLINK_LISTEN_ALL_NSID: events of every namespace that has an
	 * nsid in ours, each with that nsid (ctd_nlsrc_batch_nsids). */
	bool all_netns;
	/* shards > 1: only shard's part of the events (shardfilter.h),
	 * filtered before the socket joins a group. */
	unsigned shard, shards;
};

/* Called with the messages of a batch of datagrams (at most
 * CTD_NLSRC_BATCH, in order) and the time the batch was read; the
 * messages are valid during the call only. */
#define CTD_NLSRC_BATCH 256
typedef void ctd_nlsrc_cb(void *arg, const struct nlmsghdr *const *msgs,
			  size_t n, const struct ctd_now *now);

/* During the callback: the namespace of each message of the batch
 * (CTD_NSID_SELF for ctd's own), or NULL without all_netns. */
const int32_t *ctd_nlsrc_batch_nsids(const struct ctd_nlsrc *src);

int ctd_nlsrc_new(const struct ctd_nlsrc_cfg *cfg, struct ctd_stats *stats,
		  ctd_nlsrc_cb *cb, void *arg, struct ctd_nlsrc **ret);
void ctd_nlsrc_free(struct ctd_nlsrc *src);
void ctd_nlsrc_start(struct ctd_nlsrc *src, struct ev_loop *loop);
void ctd_nlsrc_stop(struct ctd_nlsrc *src, struct ev_loop *loop);
/* Joins and leaves groups on the open socket (never reopened, so the
 * events queued in it and the DESTROYs the kernel holds for it stay).
 * Returns 0 or -errno; on error the groups joined so far stay. */
int ctd_nlsrc_subscribe(struct ctd_nlsrc *src, unsigned groups);
unsigned ctd_nlsrc_subscribed(const struct ctd_nlsrc *src);
/* A duplicate descriptor of the socket, for handing it (and the events
 * queued in it) to the next ctd; it stays open after free. */
int ctd_nlsrc_dup_fd(struct ctd_nlsrc *src);
/* The socket's netlink port (its line in /proc/net/netlink). */
uint32_t ctd_nlsrc_portid(const struct ctd_nlsrc *src);
/* Bytes of events waiting in the socket, or -errno. */
int ctd_nlsrc_queued(const struct ctd_nlsrc *src);
/* Reads until the socket is empty or budget messages were handled.
 * Returns the number of messages handled. */
unsigned ctd_nlsrc_drain(struct ctd_nlsrc *src, unsigned budget);

#endif
