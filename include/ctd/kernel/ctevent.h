/* ctevent: turns one ctnetlink message into a struct ctd_event.
 * Pure: no allocation, no clock, no I/O. The event is a plain value that
 * owns nothing; it borrows nothing from the message once parsed. */
#ifndef CTD_CTEVENT_H
#define CTD_CTEVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nlmsghdr;

enum ctd_evtype {
	CTD_EV_NEW,
	CTD_EV_UPDATE,
	CTD_EV_DESTROY,
	CTD_EV__COUNT
};

/* Which optional parts the kernel put in the message. */
enum {
	CTD_HAVE_ORIG      = 1u << 0,
	CTD_HAVE_REPLY     = 1u << 1,
	CTD_HAVE_ID        = 1u << 2,
	CTD_HAVE_STATUS    = 1u << 3,
	CTD_HAVE_MARK      = 1u << 4,
	CTD_HAVE_ZONE      = 1u << 5,
	CTD_HAVE_TCPSTATE  = 1u << 6,
	CTD_HAVE_COUNTERS  = 1u << 7,
	CTD_HAVE_TSTART    = 1u << 8,
	CTD_HAVE_TSTOP     = 1u << 9,
	CTD_HAVE_LABELS    = 1u << 10,
	CTD_HAVE_TIMEOUT   = 1u << 11,
	CTD_HAVE_TEVENT    = 1u << 12,
};

enum ctd_dir { CTD_DIR_ORIG, CTD_DIR_REPLY, CTD_DIR__COUNT };

/* Addresses in network byte order; IPv4 uses the first 4 bytes and the
 * rest stays zero so tuples compare and hash as plain bytes. */
struct ctd_tuple {
	uint8_t src[16];
	uint8_t dst[16];
	/* Host byte order. For ICMP/ICMPv6: sport is the echo id, dport is
	 * type << 8 | code, mirroring how the kernel keys those tuples. */
	uint16_t sport;
	uint16_t dport;
};

struct ctd_counters {
	uint64_t packets;
	uint64_t bytes;
};

struct ctd_event {
	uint32_t have;           /* CTD_HAVE_* */
	uint8_t type;            /* enum ctd_evtype */
	uint8_t family;          /* AF_INET or AF_INET6 */
	uint8_t proto;           /* IPPROTO_* */
	uint8_t tcp_state;       /* TCP_CONNTRACK_* */
	uint16_t zone;
	uint32_t id;
	uint32_t status;         /* IPS_* bits */
	uint32_t mark;
	uint32_t timeout;        /* seconds left; in a DESTROY only when > 0 */
	struct ctd_tuple tuple[CTD_DIR__COUNT];
	struct ctd_counters cnt[CTD_DIR__COUNT];
	uint64_t tstart_ns;      /* wall clock, kernel timestamp extension */
	uint64_t tstop_ns;
	/* Wall clock when the kernel raised the event (CTA_TIMESTAMP_EVENT,
	 * Linux 6.7+, with the timestamp extension on): how long the event
	 * waited, in the kernel's cache and our socket, before ctd saw it. */
	uint64_t tevent_ns;
	uint8_t labels[16];
	/* The namespace the event came from, as ctd's namespace numbers
	 * it (nsid); CTD_NSID_SELF for ctd's own. Parsing sets SELF; the
	 * socket that read the message knows better and overwrites it. */
	int32_t nsid;
};

#define CTD_NSID_SELF (-1)

/* Parses a ctnetlink conntrack message. Returns 0, -EPROTO for a message
 * that is not a conntrack event, or -EBADMSG for a malformed one. */
int ctd_ctevent_parse(const struct nlmsghdr *nlh, struct ctd_event *ret_ev);

/* Whether a whole netlink message starts at nlh within len bytes. Use
 * instead of mnl_nlmsg_ok(), which compares the length as a signed int
 * and so lets a length of 2^31 or more through. */
bool ctd_nlmsg_ok(const struct nlmsghdr *nlh, int len);

bool ctd_proto_has_ports(uint8_t proto);
bool ctd_proto_is_icmp(uint8_t proto);
const char *ctd_proto_name(uint8_t proto);          /* NULL if unknown */
const char *ctd_tcp_state_name(uint8_t state);      /* NULL if unknown */
const char *ctd_evtype_name(enum ctd_evtype type);

#endif
