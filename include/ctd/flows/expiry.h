/* expiry: when ctd should stop believing a flow is alive. One FIFO list
 * per timeout class (Open vSwitch's conntrack design): every flow in a
 * class has the same timeout, so appending on each event keeps each list
 * sorted by deadline and a sweep stops at the first unexpired entry.
 * Owns the list heads; the nodes live inside the flows. Pure: `now` is
 * always a parameter. */
#ifndef CTD_EXPIRY_H
#define CTD_EXPIRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/base/fifo.h"

enum ctd_tmo {
	CTD_TMO_TCP_SYN_SENT,
	CTD_TMO_TCP_SYN_RECV,
	CTD_TMO_TCP_ESTABLISHED,
	CTD_TMO_TCP_FIN_WAIT,
	CTD_TMO_TCP_CLOSE_WAIT,
	CTD_TMO_TCP_LAST_ACK,
	CTD_TMO_TCP_TIME_WAIT,
	CTD_TMO_TCP_CLOSE,
	CTD_TMO_UDP_UNREPLIED,
	CTD_TMO_UDP_STREAM,
	CTD_TMO_ICMP,
	CTD_TMO_ICMPV6,
	CTD_TMO_SCTP,
	CTD_TMO_GRE,
	CTD_TMO_GENERIC,
	CTD_TMO__COUNT
};

struct ctd_expiry_node {
	struct ctd_fifo_node link;     /* its class's list, or another fifo */
	int64_t deadline_us;           /* monotonic */
	uint8_t cls;                   /* enum ctd_tmo */
};

/* The expiry node a fifo link belongs to; NULL for NULL. */
static inline struct ctd_expiry_node *ctd_expiry_node_of(struct ctd_fifo_node *l)
{
	return l ? (struct ctd_expiry_node *)(void *)((char *)l -
		   offsetof(struct ctd_expiry_node, link)) : NULL;
}

struct ctd_expiry;

/* timeout_s: per class, as the kernel's sysctls give them; slack_s is
 * added to every class (the kernel's garbage collector may report a dead
 * flow late). */
struct ctd_expiry *ctd_expiry_new(const uint32_t timeout_s[CTD_TMO__COUNT],
				  uint32_t slack_s);
void ctd_expiry_free(struct ctd_expiry *exp);

/* (Re)queues the node at the tail of its class with a fresh deadline. */
void ctd_expiry_touch(struct ctd_expiry *exp, struct ctd_expiry_node *node,
		      enum ctd_tmo cls, int64_t now_us);
void ctd_expiry_remove(struct ctd_expiry *exp, struct ctd_expiry_node *node);
/* Whether the node is on its class's list (not on some other fifo). */
bool ctd_expiry_linked(const struct ctd_expiry *exp,
		       const struct ctd_expiry_node *node);

/* Unlinks up to budget expired nodes and hands each to cb, which may
 * touch it again or leave it unlinked. Returns the number handed over;
 * *ret_next is the earliest remaining deadline (now_us when the budget
 * ran out, INT64_MAX when nothing is queued). */
typedef void ctd_expiry_cb(void *arg, struct ctd_expiry_node *node);
size_t ctd_expiry_sweep(struct ctd_expiry *exp, int64_t now_us, size_t budget,
			ctd_expiry_cb *cb, void *arg, int64_t *ret_next);

size_t ctd_expiry_count(const struct ctd_expiry *exp, enum ctd_tmo cls);
/* The first node of a class (walk on with ctd_expiry_node_of(
 * node->link.next)), or NULL. */
struct ctd_expiry_node *ctd_expiry_head(const struct ctd_expiry *exp,
					enum ctd_tmo cls);
/* Earliest deadline queued, INT64_MAX when none: O(classes). */
int64_t ctd_expiry_next(const struct ctd_expiry *exp);
/* The node closest to expiry, still linked, or NULL: O(classes). */
struct ctd_expiry_node *ctd_expiry_oldest(const struct ctd_expiry *exp);

/* The class of a flow, as the kernel would time it out. */
enum ctd_tmo ctd_expiry_class(uint8_t proto, uint8_t tcp_state, uint32_t status);
/* Sysctl name suffix of the class ("tcp_timeout_established"). */
const char *ctd_expiry_class_sysctl(enum ctd_tmo cls);

#endif
