/* expiry: per-class FIFO lists of flows ordered by deadline.
 *
 * Because all flows of a class share one timeout, "append at the tail
 * with now + timeout" keeps every list sorted, so touch and remove are
 * O(1) and a sweep looks at each list only until its first unexpired
 * flow (../shared/seeds/002). A sweep does at most `budget` expirations
 * so a mass expiry cannot stall the loop; the caller re-arms its timer
 * at once when the budget ran out. */
#include <netinet/in.h>
#include <stdlib.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "ctd/flows/expiry.h"

struct ctd_expiry {
	struct ctd_fifo lists[CTD_TMO__COUNT];
	int64_t timeout_us[CTD_TMO__COUNT];
};

struct ctd_expiry *ctd_expiry_new(const uint32_t timeout_s[CTD_TMO__COUNT],
				  uint32_t slack_s)
{
	struct ctd_expiry *exp = calloc(1, sizeof(*exp));
	size_t i;

	if (!exp)
		return NULL;
	for (i = 0; i < CTD_TMO__COUNT; i++)
		exp->timeout_us[i] = ((int64_t)timeout_s[i] + slack_s) * 1000000;
	return exp;
}

void ctd_expiry_free(struct ctd_expiry *exp)
{
	free(exp);
}

static struct ctd_expiry_node *head_of(const struct ctd_fifo *l)
{
	return ctd_expiry_node_of(l->head);
}

bool ctd_expiry_linked(const struct ctd_expiry *exp,
		       const struct ctd_expiry_node *node)
{
	return ctd_fifo_linked(&exp->lists[node->cls], &node->link);
}

void ctd_expiry_remove(struct ctd_expiry *exp, struct ctd_expiry_node *node)
{
	if (ctd_expiry_linked(exp, node))
		ctd_fifo_unlink(&exp->lists[node->cls], &node->link);
}

void ctd_expiry_touch(struct ctd_expiry *exp, struct ctd_expiry_node *node,
		      enum ctd_tmo cls, int64_t now_us)
{
	ctd_expiry_remove(exp, node);
	node->cls = (uint8_t)cls;
	node->deadline_us = now_us + exp->timeout_us[cls];
	ctd_fifo_append(&exp->lists[cls], &node->link);
}

size_t ctd_expiry_sweep(struct ctd_expiry *exp, int64_t now_us, size_t budget,
			ctd_expiry_cb *cb, void *arg, int64_t *ret_next)
{
	int64_t next = INT64_MAX;
	size_t done = 0, i;

	for (i = 0; i < CTD_TMO__COUNT; i++) {
		struct ctd_fifo *l = &exp->lists[i];
		struct ctd_expiry_node *n;

		while ((n = head_of(l)) && n->deadline_us <= now_us &&
		       done < budget) {
			ctd_fifo_unlink(l, &n->link);
			done++;
			cb(arg, n);
		}
		if (done >= budget && n && n->deadline_us <= now_us) {
			next = now_us;
			break;
		}
		if (n && n->deadline_us < next)
			next = n->deadline_us;
	}
	*ret_next = next;
	return done;
}

struct ctd_expiry_node *ctd_expiry_head(const struct ctd_expiry *exp,
					enum ctd_tmo cls)
{
	return head_of(&exp->lists[cls]);
}

int64_t ctd_expiry_next(const struct ctd_expiry *exp)
{
	int64_t next = INT64_MAX;
	size_t i;

	for (i = 0; i < CTD_TMO__COUNT; i++) {
		const struct ctd_expiry_node *h = head_of(&exp->lists[i]);

		if (h && h->deadline_us < next)
			next = h->deadline_us;
	}
	return next;
}

struct ctd_expiry_node *ctd_expiry_oldest(const struct ctd_expiry *exp)
{
	struct ctd_expiry_node *best = NULL;
	size_t i;

	for (i = 0; i < CTD_TMO__COUNT; i++) {
		struct ctd_expiry_node *h = head_of(&exp->lists[i]);

		if (h && (!best || h->deadline_us < best->deadline_us))
			best = h;
	}
	return best;
}

size_t ctd_expiry_count(const struct ctd_expiry *exp, enum ctd_tmo cls)
{
	return exp->lists[cls].count;
}

static enum ctd_tmo tcp_class(uint8_t state)
{
	switch (state) {
	case TCP_CONNTRACK_SYN_SENT:
	case TCP_CONNTRACK_SYN_SENT2:    return CTD_TMO_TCP_SYN_SENT;
	case TCP_CONNTRACK_SYN_RECV:     return CTD_TMO_TCP_SYN_RECV;
	case TCP_CONNTRACK_FIN_WAIT:     return CTD_TMO_TCP_FIN_WAIT;
	case TCP_CONNTRACK_CLOSE_WAIT:   return CTD_TMO_TCP_CLOSE_WAIT;
	case TCP_CONNTRACK_LAST_ACK:     return CTD_TMO_TCP_LAST_ACK;
	case TCP_CONNTRACK_TIME_WAIT:    return CTD_TMO_TCP_TIME_WAIT;
	case TCP_CONNTRACK_CLOSE:        return CTD_TMO_TCP_CLOSE;
	}
	/* ESTABLISHED, and states we do not know: the longest TCP timeout,
	 * so an unknown state can only make us late, never early. */
	return CTD_TMO_TCP_ESTABLISHED;
}

enum ctd_tmo ctd_expiry_class(uint8_t proto, uint8_t tcp_state, uint32_t status)
{
	switch (proto) {
	case IPPROTO_TCP:
		return tcp_class(tcp_state);
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		/* The kernel moves a replied UDP flow to the stream timeout. */
		return status & IPS_SEEN_REPLY ? CTD_TMO_UDP_STREAM :
					      CTD_TMO_UDP_UNREPLIED;
	case IPPROTO_ICMP:
		return CTD_TMO_ICMP;
	case IPPROTO_ICMPV6:
		return CTD_TMO_ICMPV6;
	case IPPROTO_SCTP:
		return CTD_TMO_SCTP;
	case IPPROTO_GRE:
		return CTD_TMO_GRE;
	}
	return CTD_TMO_GENERIC;
}

const char *ctd_expiry_class_sysctl(enum ctd_tmo cls)
{
	static const char *const names[CTD_TMO__COUNT] = {
		[CTD_TMO_TCP_SYN_SENT] = "tcp_timeout_syn_sent",
		[CTD_TMO_TCP_SYN_RECV] = "tcp_timeout_syn_recv",
		[CTD_TMO_TCP_ESTABLISHED] = "tcp_timeout_established",
		[CTD_TMO_TCP_FIN_WAIT] = "tcp_timeout_fin_wait",
		[CTD_TMO_TCP_CLOSE_WAIT] = "tcp_timeout_close_wait",
		[CTD_TMO_TCP_LAST_ACK] = "tcp_timeout_last_ack",
		[CTD_TMO_TCP_TIME_WAIT] = "tcp_timeout_time_wait",
		[CTD_TMO_TCP_CLOSE] = "tcp_timeout_close",
		[CTD_TMO_UDP_UNREPLIED] = "udp_timeout",
		[CTD_TMO_UDP_STREAM] = "udp_timeout_stream",
		[CTD_TMO_ICMP] = "icmp_timeout",
		[CTD_TMO_ICMPV6] = "icmpv6_timeout",
		[CTD_TMO_SCTP] = "sctp_timeout_established",
		[CTD_TMO_GRE] = "gre_timeout_stream",
		[CTD_TMO_GENERIC] = "generic_timeout",
	};

	return (unsigned)cls < CTD_TMO__COUNT ? names[cls] : NULL;
}
