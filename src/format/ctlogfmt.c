/* ctlogfmt: conntrackd's LogFile line.
 *
 * conntrackd writes ctime() of the moment it logs, a tab, and
 * nfct_snprintf() of the conntrack from the DESTROY event in the plain
 * format with no flags. We fill a conntrack object with what that event
 * carried, in the kernel's manner (mark and zone only when set, since
 * ctnetlink leaves zeros out of a DESTROY): the event is rebuilt as a
 * ctnetlink message and parsed by the library, and the same library
 * function renders it. */
#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctd/flows/record.h"
#include "ctd/format/ctlogfmt.h"

struct ctd_ctlog {
	struct nf_conntrack *blank;
	struct nf_conntrack *ct;
};

struct ctd_ctlog *ctd_ctlog_new(void)
{
	struct ctd_ctlog *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->blank = nfct_new();
	c->ct = nfct_new();
	if (!c->blank || !c->ct) {
		ctd_ctlog_free(c);
		return NULL;
	}
	return c;
}

void ctd_ctlog_free(void *ctlog)
{
	struct ctd_ctlog *c = ctlog;

	if (!c)
		return;
	if (c->blank)
		nfct_destroy(c->blank);
	if (c->ct)
		nfct_destroy(c->ct);
	free(c);
}

/* Attributes are built as ctnetlink would send them and parsed by the
 * library, since it offers no setters for counters and timestamps. */
static void put_tuple(struct nlmsghdr *nlh, const struct ctd_record *rec,
		      enum ctd_dir dir)
{
	const struct ctd_tuple *t = &rec->tuple[dir];
	bool v6 = rec->family == AF_INET6, icmp6 = rec->proto == IPPROTO_ICMPV6;
	struct nlattr *tuple, *nest;

	tuple = mnl_attr_nest_start(nlh, dir == CTD_DIR_ORIG ? CTA_TUPLE_ORIG :
							       CTA_TUPLE_REPLY);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put(nlh, v6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, v6 ? 16 : 4, t->src);
	mnl_attr_put(nlh, v6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, v6 ? 16 : 4, t->dst);
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, rec->proto);
	if (ctd_proto_is_icmp(rec->proto)) {
		mnl_attr_put_u16(nlh, icmp6 ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID,
				 htons(t->sport));
		mnl_attr_put_u8(nlh, icmp6 ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE,
				(uint8_t)(t->dport >> 8));
		mnl_attr_put_u8(nlh, icmp6 ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE,
				(uint8_t)t->dport);
	} else if (ctd_proto_has_ports(rec->proto)) {
		mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t->sport));
		mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t->dport));
	}
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, tuple);
}

static void put_counters(struct nlmsghdr *nlh, const struct ctd_counters *c,
			 uint16_t type)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, type);

	mnl_attr_put_u64(nlh, CTA_COUNTERS_PACKETS, htobe64(c->packets));
	mnl_attr_put_u64(nlh, CTA_COUNTERS_BYTES, htobe64(c->bytes));
	mnl_attr_nest_end(nlh, nest);
}

static void put_rest(struct nlmsghdr *nlh, const struct ctd_record *rec)
{
	struct nlattr *nest, *tcp;

	mnl_attr_put_u32(nlh, CTA_STATUS, htonl(rec->status));
	if (rec->mark)
		mnl_attr_put_u32(nlh, CTA_MARK, htonl(rec->mark));
	if (rec->zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(rec->zone));
	if (rec->flags & CTD_REC_TCPSTATE && rec->proto == IPPROTO_TCP) {
		nest = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
		tcp = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, rec->tcp_state);
		mnl_attr_nest_end(nlh, tcp);
		mnl_attr_nest_end(nlh, nest);
	}
	if (rec->flags & CTD_REC_COUNTERS) {
		put_counters(nlh, &rec->cnt[CTD_DIR_ORIG], CTA_COUNTERS_ORIG);
		put_counters(nlh, &rec->cnt[CTD_DIR_REPLY], CTA_COUNTERS_REPLY);
	}
	if (rec->flags & CTD_REC_KERNEL_TIME) {
		nest = mnl_attr_nest_start(nlh, CTA_TIMESTAMP);
		mnl_attr_put_u64(nlh, CTA_TIMESTAMP_START, htobe64(rec->start_ns));
		mnl_attr_put_u64(nlh, CTA_TIMESTAMP_STOP, htobe64(rec->end_ns));
		mnl_attr_nest_end(nlh, nest);
	}
}

static int fill(struct ctd_ctlog *c, const struct ctd_record *rec)
{
	char buf[1024] __attribute__((aligned(8)));
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = rec->family;
	nfg->version = NFNETLINK_V0;
	put_tuple(nlh, rec, CTD_DIR_ORIG);
	put_tuple(nlh, rec, CTD_DIR_REPLY);
	put_rest(nlh, rec);
	nfct_copy(c->ct, c->blank, NFCT_CP_OVERRIDE);
	return nfct_nlmsg_parse(nlh, c->ct);
}

size_t ctd_ctlog_text(struct ctd_ctlog *c, const struct ctd_record *rec,
		      char *buf, size_t cap)
{
	int n;

	if (rec->events || rec->end_reason == CTD_END_ACTIVE)
		return 0;
	if (fill(c, rec) < 0)
		return 0;
	n = nfct_snprintf(buf, (unsigned)cap, c->ct, NFCT_T_UNKNOWN,
			  NFCT_O_DEFAULT, 0);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t ctd_ctlog_line(void *ctlog, const struct ctd_record *rec, char *buf,
		      size_t cap)
{
	time_t t = (time_t)(rec->end_ns / 1000000000u);
	struct tm tm;
	size_t n, text;

	if (rec->events || rec->end_reason == CTD_END_ACTIVE)
		return 0;
	/* ctime()'s layout: "Tue Nov 24 22:43:50 2026". */
	if (!localtime_r(&t, &tm) ||
	    !(n = strftime(buf, cap, "%a %b %e %H:%M:%S %Y\t", &tm)))
		return SIZE_MAX;
	text = ctd_ctlog_text(ctlog, rec, buf + n, cap - n - 1);
	if (!text)
		return SIZE_MAX;
	n += text;
	buf[n++] = '\n';
	return n;
}
