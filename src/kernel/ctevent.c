/* ctevent: parses ctnetlink conntrack messages straight from their
 * attributes with libmnl. libnetfilter_conntrack's object API would cost
 * an allocation and a copy per event; this walks each attribute once and
 * fills a caller-owned struct. Every attribute length is checked before
 * it is read, because the message bytes are input we do not trust.
 *
 * Kernel facts this relies on (net/netfilter/nf_conntrack_netlink.c):
 * only DESTROY events carry counters and timestamps; NEW and UPDATE carry
 * the timeout instead; a DESTROY's protocol info is the TCP state alone,
 * and it carries no labels; mark and zone are left out when 0; every
 * event carries CTA_TIMESTAMP_EVENT on 6.7+ with nf_conntrack_timestamp; a NEW is a CT_NEW message with NLM_F_CREATE|EXCL,
 * an UPDATE one without; DESTROY is a CT_DELETE message. */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "ctd/kernel/ctevent.h"

/* Newer than the uapi headers Debian 12 ships (Linux 6.7, after
 * CTA_STATUS_MASK): the wall-clock time the kernel raised the event. */
#ifndef CTA_TIMESTAMP_EVENT
#define CTA_TIMESTAMP_EVENT (CTA_STATUS_MASK + 1)
#endif

/* libmnl's accessors are calls into a shared library, five or more per
 * attribute; a profile of the replay benchmark put them at a fifth of
 * the hot path. These are the same checks, inline. */
static inline uint16_t attr_type(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

static inline size_t attr_len(const struct nlattr *a)
{
	return (size_t)a->nla_len - NLA_HDRLEN;
}

static inline const void *attr_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

static inline bool attr_ok(const struct nlattr *a, ptrdiff_t room)
{
	return room >= (ptrdiff_t)sizeof(*a) && a->nla_len >= sizeof(*a) &&
	       (ptrdiff_t)a->nla_len <= room;
}

static inline const struct nlattr *attr_next(const struct nlattr *a)
{
	return (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
}

#define for_each_nested(a, nest)                                          \
	for ((a) = attr_data(nest);                                       \
	     attr_ok((a), (const char *)attr_data(nest) + attr_len(nest) -  \
			  (const char *)(a));                             \
	     (a) = attr_next(a))

static inline uint8_t attr_u8(const struct nlattr *a)
{
	return *(const uint8_t *)attr_data(a);
}

static inline uint16_t attr_be16(const struct nlattr *a)
{
	uint16_t v;

	memcpy(&v, attr_data(a), sizeof(v));
	return ntohs(v);
}

static inline uint32_t attr_be32(const struct nlattr *a)
{
	uint32_t v;

	memcpy(&v, attr_data(a), sizeof(v));
	return ntohl(v);
}

static inline uint64_t attr_be64(const struct nlattr *a)
{
	uint64_t v;

	memcpy(&v, attr_data(a), sizeof(v));
	return be64toh(v);
}

static bool attr_len_is(const struct nlattr *a, size_t len)
{
	return attr_len(a) == len;
}

static int parse_ip(const struct nlattr *nest, uint8_t family,
		    struct ctd_tuple *t)
{
	const struct nlattr *a;
	unsigned seen = 0;

	for_each_nested(a, nest) {
		uint16_t type = attr_type(a);
		size_t want = family == AF_INET ? 4 : 16;
		bool v4 = type == CTA_IP_V4_SRC || type == CTA_IP_V4_DST;
		bool v6 = type == CTA_IP_V6_SRC || type == CTA_IP_V6_DST;

		if (!v4 && !v6)
			continue;
		if ((v4 && family != AF_INET) || (v6 && family != AF_INET6) ||
		    !attr_len_is(a, want))
			return -EBADMSG;
		if (type == CTA_IP_V4_SRC || type == CTA_IP_V6_SRC) {
			memcpy(t->src, attr_data(a), want);
			seen |= 1;
		} else {
			memcpy(t->dst, attr_data(a), want);
			seen |= 2;
		}
	}
	return seen == 3 ? 0 : -EBADMSG;
}

static int parse_proto(const struct nlattr *nest, struct ctd_tuple *t,
		       uint8_t *ret_proto)
{
	const struct nlattr *a;
	bool have_num = false;

	for_each_nested(a, nest) {
		switch (attr_type(a)) {
		case CTA_PROTO_NUM:
			if (!attr_len_is(a, 1))
				return -EBADMSG;
			*ret_proto = attr_u8(a);
			have_num = true;
			break;
		case CTA_PROTO_SRC_PORT:
		case CTA_PROTO_ICMP_ID:
		case CTA_PROTO_ICMPV6_ID:
			if (!attr_len_is(a, 2))
				return -EBADMSG;
			t->sport = attr_be16(a);
			break;
		case CTA_PROTO_DST_PORT:
			if (!attr_len_is(a, 2))
				return -EBADMSG;
			t->dport = attr_be16(a);
			break;
		case CTA_PROTO_ICMP_TYPE:
		case CTA_PROTO_ICMPV6_TYPE:
			if (!attr_len_is(a, 1))
				return -EBADMSG;
			t->dport = (uint16_t)((t->dport & 0xff) |
					      attr_u8(a) << 8);
			break;
		case CTA_PROTO_ICMP_CODE:
		case CTA_PROTO_ICMPV6_CODE:
			if (!attr_len_is(a, 1))
				return -EBADMSG;
			t->dport = (uint16_t)((t->dport & 0xff00) |
					      attr_u8(a));
			break;
		}
	}
	return have_num ? 0 : -EBADMSG;
}

static int parse_tuple(const struct nlattr *nest, struct ctd_event *ev,
		       enum ctd_dir dir)
{
	const struct nlattr *a;
	uint8_t proto = 0;
	unsigned seen = 0;
	int r;

	for_each_nested(a, nest) {
		switch (attr_type(a)) {
		case CTA_TUPLE_IP:
			r = parse_ip(a, ev->family, &ev->tuple[dir]);
			if (r < 0)
				return r;
			seen |= 1;
			break;
		case CTA_TUPLE_PROTO:
			r = parse_proto(a, &ev->tuple[dir], &proto);
			if (r < 0)
				return r;
			seen |= 2;
			break;
		}
	}
	if (seen != 3)
		return -EBADMSG;
	if (dir == CTD_DIR_ORIG)
		ev->proto = proto;
	return 0;
}

static int parse_counters(const struct nlattr *nest, struct ctd_counters *c)
{
	const struct nlattr *a;

	for_each_nested(a, nest) {
		uint16_t type = attr_type(a);
		uint64_t v;

		if (type == CTA_COUNTERS_PACKETS || type == CTA_COUNTERS_BYTES) {
			if (!attr_len_is(a, 8))
				return -EBADMSG;
			v = attr_be64(a);
		} else if (type == CTA_COUNTERS32_PACKETS ||
			   type == CTA_COUNTERS32_BYTES) {
			if (!attr_len_is(a, 4))
				return -EBADMSG;
			v = attr_be32(a);
		} else {
			continue;
		}
		if (type == CTA_COUNTERS_PACKETS || type == CTA_COUNTERS32_PACKETS)
			c->packets = v;
		else
			c->bytes = v;
	}
	return 0;
}

static int parse_timestamp(const struct nlattr *nest, struct ctd_event *ev)
{
	const struct nlattr *a;

	for_each_nested(a, nest) {
		uint16_t type = attr_type(a);

		if (type != CTA_TIMESTAMP_START && type != CTA_TIMESTAMP_STOP)
			continue;
		if (!attr_len_is(a, 8))
			return -EBADMSG;
		if (type == CTA_TIMESTAMP_START) {
			ev->tstart_ns = attr_be64(a);
			ev->have |= CTD_HAVE_TSTART;
		} else {
			ev->tstop_ns = attr_be64(a);
			ev->have |= CTD_HAVE_TSTOP;
		}
	}
	return 0;
}

static int parse_protoinfo(const struct nlattr *nest, struct ctd_event *ev)
{
	const struct nlattr *a, *b;

	for_each_nested(a, nest) {
		if (attr_type(a) != CTA_PROTOINFO_TCP)
			continue;
		for_each_nested(b, a) {
			if (attr_type(b) != CTA_PROTOINFO_TCP_STATE)
				continue;
			if (!attr_len_is(b, 1))
				return -EBADMSG;
			ev->tcp_state = attr_u8(b);
			ev->have |= CTD_HAVE_TCPSTATE;
		}
	}
	return 0;
}

static int parse_u32(const struct nlattr *a, uint32_t *ret, uint32_t *have,
		     uint32_t bit)
{
	if (!attr_len_is(a, 4))
		return -EBADMSG;
	*ret = attr_be32(a);
	*have |= bit;
	return 0;
}

static int parse_attr(const struct nlattr *a, struct ctd_event *ev)
{
	switch (attr_type(a)) {
	case CTA_TUPLE_ORIG:
		ev->have |= CTD_HAVE_ORIG;
		return parse_tuple(a, ev, CTD_DIR_ORIG);
	case CTA_TUPLE_REPLY:
		ev->have |= CTD_HAVE_REPLY;
		return parse_tuple(a, ev, CTD_DIR_REPLY);
	case CTA_STATUS:
		return parse_u32(a, &ev->status, &ev->have, CTD_HAVE_STATUS);
	case CTA_MARK:
		return parse_u32(a, &ev->mark, &ev->have, CTD_HAVE_MARK);
	case CTA_ID:
		return parse_u32(a, &ev->id, &ev->have, CTD_HAVE_ID);
	case CTA_TIMEOUT:
		return parse_u32(a, &ev->timeout, &ev->have, CTD_HAVE_TIMEOUT);
	case CTA_ZONE:
		if (!attr_len_is(a, 2))
			return -EBADMSG;
		ev->zone = attr_be16(a);
		ev->have |= CTD_HAVE_ZONE;
		return 0;
	case CTA_COUNTERS_ORIG:
	case CTA_COUNTERS_REPLY:
		ev->have |= CTD_HAVE_COUNTERS;
		return parse_counters(a, &ev->cnt[attr_type(a) ==
						  CTA_COUNTERS_ORIG ?
						  CTD_DIR_ORIG : CTD_DIR_REPLY]);
	case CTA_TIMESTAMP:
		return parse_timestamp(a, ev);
	case CTA_PROTOINFO:
		return parse_protoinfo(a, ev);
	case CTA_TIMESTAMP_EVENT:
		if (!attr_len_is(a, 8))
			return -EBADMSG;
		ev->tevent_ns = attr_be64(a);
		ev->have |= CTD_HAVE_TEVENT;
		return 0;
	case CTA_LABELS:
		if (!attr_len_is(a, sizeof(ev->labels)))
			return -EBADMSG;
		memcpy(ev->labels, attr_data(a), sizeof(ev->labels));
		ev->have |= CTD_HAVE_LABELS;
		return 0;
	}
	return 0;
}

static int event_type(const struct nlmsghdr *nlh)
{
	if (nlh->nlmsg_type >> 8 != NFNL_SUBSYS_CTNETLINK)
		return -EPROTO;
	switch (nlh->nlmsg_type & 0xff) {
	case IPCTNL_MSG_CT_NEW:
		if ((nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) ==
		    (NLM_F_CREATE | NLM_F_EXCL))
			return CTD_EV_NEW;
		return CTD_EV_UPDATE;
	case IPCTNL_MSG_CT_DELETE:
		return CTD_EV_DESTROY;
	}
	return -EPROTO;
}

int ctd_ctevent_parse(const struct nlmsghdr *nlh, struct ctd_event *ret_ev)
{
	const struct nfgenmsg *nfg;
	const struct nlattr *a;
	const char *end;
	int type, r;

	type = event_type(nlh);
	if (type < 0)
		return type;
	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(*nfg))
		return -EBADMSG;
	memset(ret_ev, 0, sizeof(*ret_ev));
	ret_ev->nsid = CTD_NSID_SELF;
	ret_ev->type = (uint8_t)type;
	nfg = mnl_nlmsg_get_payload(nlh);
	if (nfg->nfgen_family != AF_INET && nfg->nfgen_family != AF_INET6)
		return -EBADMSG;
	ret_ev->family = nfg->nfgen_family;
	/* Not mnl_attr_for_each: it walks to the message's aligned end,
	 * up to 3 bytes past a message whose length is not aligned. */
	end = (const char *)nlh + nlh->nlmsg_len;
	for (a = (const void *)((const char *)nfg + MNL_ALIGN(sizeof(*nfg)));
	     attr_ok(a, end - (const char *)a); a = attr_next(a)) {
		r = parse_attr(a, ret_ev);
		if (r < 0)
			return r;
	}
	if (!(ret_ev->have & CTD_HAVE_ORIG))
		return -EBADMSG;
	return 0;
}

bool ctd_nlmsg_ok(const struct nlmsghdr *nlh, int len)
{
	return len >= (int)sizeof(*nlh) && nlh->nlmsg_len >= sizeof(*nlh) &&
	       nlh->nlmsg_len <= (unsigned)len;
}

bool ctd_proto_has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
	       proto == IPPROTO_UDPLITE || proto == IPPROTO_SCTP ||
	       proto == IPPROTO_DCCP;
}

bool ctd_proto_is_icmp(uint8_t proto)
{
	return proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
}

const char *ctd_proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:     return "tcp";
	case IPPROTO_UDP:     return "udp";
	case IPPROTO_ICMP:    return "icmp";
	case IPPROTO_ICMPV6:  return "icmpv6";
	case IPPROTO_SCTP:    return "sctp";
	case IPPROTO_DCCP:    return "dccp";
	case IPPROTO_UDPLITE: return "udplite";
	case IPPROTO_GRE:     return "gre";
	}
	return NULL;
}

const char *ctd_tcp_state_name(uint8_t state)
{
	static const char *const names[TCP_CONNTRACK_MAX] = {
		[TCP_CONNTRACK_NONE] = "NONE",
		[TCP_CONNTRACK_SYN_SENT] = "SYN_SENT",
		[TCP_CONNTRACK_SYN_RECV] = "SYN_RECV",
		[TCP_CONNTRACK_ESTABLISHED] = "ESTABLISHED",
		[TCP_CONNTRACK_FIN_WAIT] = "FIN_WAIT",
		[TCP_CONNTRACK_CLOSE_WAIT] = "CLOSE_WAIT",
		[TCP_CONNTRACK_LAST_ACK] = "LAST_ACK",
		[TCP_CONNTRACK_TIME_WAIT] = "TIME_WAIT",
		[TCP_CONNTRACK_CLOSE] = "CLOSE",
		[TCP_CONNTRACK_SYN_SENT2] = "SYN_SENT2",
	};

	return state < TCP_CONNTRACK_MAX ? names[state] : NULL;
}

const char *ctd_evtype_name(enum ctd_evtype type)
{
	static const char *const names[CTD_EV__COUNT] = {
		[CTD_EV_NEW] = "NEW",
		[CTD_EV_UPDATE] = "UPDATE",
		[CTD_EV_DESTROY] = "DESTROY",
	};

	return (unsigned)type < CTD_EV__COUNT ? names[type] : "?";
}
