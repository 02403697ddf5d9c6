/* Tests for src/ctevent.c: real kernel messages parse into the right
 * events, checked field by field against libnetfilter_conntrack's own
 * parser as an independent oracle, and against the ground truth noted in
 * tests/data/README.md; damaged messages are refused without reading out
 * of bounds (run under ASan to see that). */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "ctd/kernel/ctevent.h"
#include "recording.h"

static void check_addr(const struct nf_conntrack *ct, const struct ctd_event *ev,
		       const uint8_t *addr, int attr4, int attr6)
{
	if (ev->family == AF_INET) {
		uint32_t v = nfct_get_attr_u32(ct, attr4);

		assert_memory_equal(addr, &v, 4);
	} else {
		assert_memory_equal(addr, nfct_get_attr(ct, attr6), 16);
	}
}

static void check_tuples(const struct nf_conntrack *ct, const struct ctd_event *ev)
{
	const struct ctd_tuple *o = &ev->tuple[CTD_DIR_ORIG];
	const struct ctd_tuple *r = &ev->tuple[CTD_DIR_REPLY];

	assert_int_equal(ev->family, nfct_get_attr_u8(ct, ATTR_L3PROTO));
	assert_int_equal(ev->proto, nfct_get_attr_u8(ct, ATTR_L4PROTO));
	check_addr(ct, ev, o->src, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC);
	check_addr(ct, ev, o->dst, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST);
	check_addr(ct, ev, r->src, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC);
	check_addr(ct, ev, r->dst, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST);
	if (ctd_proto_has_ports(ev->proto)) {
		assert_int_equal(o->sport, ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC)));
		assert_int_equal(o->dport, ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST)));
		assert_int_equal(r->sport, ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC)));
		assert_int_equal(r->dport, ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_DST)));
	} else {
		assert_int_equal(o->dport >> 8, nfct_get_attr_u8(ct, ATTR_ICMP_TYPE));
		assert_int_equal(o->dport & 0xff, nfct_get_attr_u8(ct, ATTR_ICMP_CODE));
		assert_int_equal(o->sport, ntohs(nfct_get_attr_u16(ct, ATTR_ICMP_ID)));
	}
}

static void check_u64(const struct nf_conntrack *ct, int attr, bool have,
		      uint64_t v)
{
	assert_int_equal(have, nfct_attr_is_set(ct, attr) > 0);
	if (have)
		assert_int_equal(v, nfct_get_attr_u64(ct, attr));
}

static void check_scalars(const struct nf_conntrack *ct, const struct ctd_event *ev)
{
	bool cnt = ev->have & CTD_HAVE_COUNTERS;

	assert_int_equal(ev->id, nfct_get_attr_u32(ct, ATTR_ID));
	assert_int_equal(ev->status, nfct_get_attr_u32(ct, ATTR_STATUS));
	assert_int_equal(!!(ev->have & CTD_HAVE_MARK), nfct_attr_is_set(ct, ATTR_MARK) > 0);
	if (ev->have & CTD_HAVE_MARK)
		assert_int_equal(ev->mark, nfct_get_attr_u32(ct, ATTR_MARK));
	check_u64(ct, ATTR_ORIG_COUNTER_PACKETS, cnt, ev->cnt[CTD_DIR_ORIG].packets);
	check_u64(ct, ATTR_ORIG_COUNTER_BYTES, cnt, ev->cnt[CTD_DIR_ORIG].bytes);
	check_u64(ct, ATTR_REPL_COUNTER_PACKETS, cnt, ev->cnt[CTD_DIR_REPLY].packets);
	check_u64(ct, ATTR_REPL_COUNTER_BYTES, cnt, ev->cnt[CTD_DIR_REPLY].bytes);
	check_u64(ct, ATTR_TIMESTAMP_START, ev->have & CTD_HAVE_TSTART, ev->tstart_ns);
	check_u64(ct, ATTR_TIMESTAMP_STOP, ev->have & CTD_HAVE_TSTOP, ev->tstop_ns);
	assert_int_equal(!!(ev->have & CTD_HAVE_TCPSTATE),
			 nfct_attr_is_set(ct, ATTR_TCP_STATE) > 0);
	if (ev->have & CTD_HAVE_TCPSTATE)
		assert_int_equal(ev->tcp_state, nfct_get_attr_u8(ct, ATTR_TCP_STATE));
}

/* Every message of a recording, parsed by us and by libnetfilter_conntrack. */
static void check_against_libnfct(const char *file, const unsigned want[CTD_EV__COUNT])
{
	struct recording rec;
	unsigned got[CTD_EV__COUNT] = { 0 };
	size_t i;

	recording_load(&rec, file);
	for (i = 0; i < rec.count; i++) {
		struct nf_conntrack *ct = nfct_new();
		struct ctd_event ev;

		assert_non_null(ct);
		assert_int_equal(ctd_ctevent_parse(rec.msgs[i], &ev), 0);
		assert_int_equal(nfct_nlmsg_parse(rec.msgs[i], ct), 0);
		assert_true(ev.have & CTD_HAVE_ORIG && ev.have & CTD_HAVE_REPLY);
		check_tuples(ct, &ev);
		check_scalars(ct, &ev);
		/* Only DESTROY carries counters and timestamps. */
		assert_int_equal(ev.type == CTD_EV_DESTROY,
				 !!(ev.have & CTD_HAVE_COUNTERS));
		got[ev.type]++;
		nfct_destroy(ct);
	}
	for (i = 0; i < CTD_EV__COUNT; i++)
		assert_int_equal(got[i], want[i]);
	recording_free(&rec);
}

static void test_basic_matches_libnfct(void **state)
{
	static const unsigned want[CTD_EV__COUNT] = { 4, 11, 4 };

	(void)state;
	check_against_libnfct("basic.nl", want);
}

static void test_icmp_nat_mark_matches_libnfct(void **state)
{
	static const unsigned want[CTD_EV__COUNT] = { 4, 7, 4 };

	(void)state;
	check_against_libnfct("icmp-nat-mark.nl", want);
}

static const struct ctd_event *find_destroy(struct recording *rec,
					    struct ctd_event *ev,
					    uint8_t proto, uint8_t family)
{
	size_t i;

	for (i = 0; i < rec->count; i++) {
		assert_int_equal(ctd_ctevent_parse(rec->msgs[i], ev), 0);
		if (ev->type == CTD_EV_DESTROY && ev->proto == proto &&
		    ev->family == family)
			return ev;
	}
	fail_msg("no DESTROY for proto %u family %u", proto, family);
	return NULL;
}

/* Ground truth from conntrack -L, see tests/data/README.md. */
static void test_destroy_carries_kernel_counters(void **state)
{
	struct recording rec;
	struct ctd_event ev;
	const uint8_t lo4[16] = { 127, 0, 0, 1 };

	(void)state;
	recording_load(&rec, "basic.nl");
	find_destroy(&rec, &ev, IPPROTO_TCP, AF_INET);
	assert_memory_equal(ev.tuple[CTD_DIR_ORIG].src, lo4, 16);
	assert_int_equal(ev.tuple[CTD_DIR_ORIG].sport, 43208);
	assert_int_equal(ev.tuple[CTD_DIR_ORIG].dport, 8080);
	assert_int_equal(ev.cnt[CTD_DIR_ORIG].packets, 6);
	assert_int_equal(ev.cnt[CTD_DIR_ORIG].bytes, 370);
	assert_int_equal(ev.cnt[CTD_DIR_REPLY].packets, 4);
	assert_int_equal(ev.cnt[CTD_DIR_REPLY].bytes, 221);
	assert_string_equal(ctd_tcp_state_name(ev.tcp_state), "TIME_WAIT");
	assert_true(ev.have & CTD_HAVE_TSTART && ev.have & CTD_HAVE_TSTOP);
	assert_true(ev.tstart_ns <= ev.tstop_ns);
	find_destroy(&rec, &ev, IPPROTO_UDP, AF_INET6);
	assert_int_equal(ev.tuple[CTD_DIR_ORIG].dport, 5556);
	assert_int_equal(ev.cnt[CTD_DIR_ORIG].bytes, 55);
	assert_int_equal(ev.cnt[CTD_DIR_REPLY].packets, 0);
	recording_free(&rec);
}

static void test_icmp_nat_mark(void **state)
{
	struct recording rec;
	struct ctd_event ev;

	(void)state;
	recording_load(&rec, "icmp-nat-mark.nl");
	find_destroy(&rec, &ev, IPPROTO_ICMP, AF_INET);
	assert_int_equal(ev.tuple[CTD_DIR_ORIG].sport, 4660);      /* echo id */
	assert_int_equal(ev.tuple[CTD_DIR_ORIG].dport, 8 << 8);    /* echo request */
	assert_int_equal(ev.tuple[CTD_DIR_REPLY].dport, 0 << 8);   /* echo reply */
	assert_int_equal(ev.cnt[CTD_DIR_REPLY].bytes, 32);
	find_destroy(&rec, &ev, IPPROTO_ICMPV6, AF_INET6);
	assert_int_equal(ev.tuple[CTD_DIR_ORIG].dport, 128 << 8);
	assert_int_equal(ev.tuple[CTD_DIR_REPLY].dport, 129 << 8);
	find_destroy(&rec, &ev, IPPROTO_UDP, AF_INET);
	assert_int_equal(ev.mark, 42);
	find_destroy(&rec, &ev, IPPROTO_TCP, AF_INET);
	assert_int_equal(ev.tuple[CTD_DIR_ORIG].dport, 9999);
	assert_int_equal(ev.tuple[CTD_DIR_REPLY].sport, 8080);     /* DNAT */
	assert_true(ev.status & IPS_DST_NAT);
	recording_free(&rec);
}

/* Every prefix of every real message, in a buffer of exactly that size:
 * the parser must refuse or accept, never read past nlmsg_len. */
static void test_truncated_messages(void **state)
{
	struct recording rec;
	struct ctd_event ev;
	size_t i, len;

	(void)state;
	recording_load(&rec, "basic.nl");
	for (i = 0; i < rec.count; i++) {
		for (len = 0; len < rec.msgs[i]->nlmsg_len; len++) {
			struct nlmsghdr *copy = malloc(len < sizeof(*copy) ?
						       sizeof(*copy) : len);

			assert_non_null(copy);
			memcpy(copy, rec.msgs[i], len < sizeof(*copy) ? sizeof(*copy) : len);
			copy->nlmsg_len = (uint32_t)len;
			int r = ctd_ctevent_parse(copy, &ev);

			assert_true(r == 0 || r == -EBADMSG);
			free(copy);
		}
	}
	recording_free(&rec);
}

/* A message of our own making: nfgenmsg + CTA_TUPLE_ORIG + one extra. */
static struct nlmsghdr *build_msg(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;
	struct nlattr *tuple, *ip, *proto;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, htonl(0x0a000001));
	mnl_attr_put_u32(nlh, CTA_IP_V4_DST, htonl(0x0a000002));
	mnl_attr_nest_end(nlh, ip);
	proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(1000));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(53));
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, tuple);
	return nlh;
}

#define CT_TYPE(msg) ((NFNL_SUBSYS_CTNETLINK << 8) | (msg))

static void test_synthetic_messages(void **state)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ctd_event ev;

	(void)state;
	nlh = build_msg(buf, CT_TYPE(IPCTNL_MSG_CT_NEW), NLM_F_CREATE | NLM_F_EXCL);
	mnl_attr_put_u16(nlh, CTA_ZONE, htons(7));
	assert_int_equal(ctd_ctevent_parse(nlh, &ev), 0);
	assert_int_equal(ev.type, CTD_EV_NEW);
	assert_int_equal(ev.zone, 7);
	assert_int_equal(ev.tuple[CTD_DIR_ORIG].dport, 53);
	assert_false(ev.have & CTD_HAVE_REPLY);

	nlh = build_msg(buf, CT_TYPE(IPCTNL_MSG_CT_NEW), 0);
	assert_int_equal(ctd_ctevent_parse(nlh, &ev), 0);
	assert_int_equal(ev.type, CTD_EV_UPDATE);

	/* The kernel's event stamp (CTA_TIMESTAMP_EVENT, 27 on 6.7+). */
	nlh = build_msg(buf, CT_TYPE(IPCTNL_MSG_CT_DELETE), 0);
	mnl_attr_put_u64(nlh, CTA_STATUS_MASK + 1, htobe64(1796284267329697475ULL));
	assert_int_equal(ctd_ctevent_parse(nlh, &ev), 0);
	assert_true(ev.have & CTD_HAVE_TEVENT);
	assert_int_equal(ev.tevent_ns, 1796284267329697475ULL);
	nlh = build_msg(buf, CT_TYPE(IPCTNL_MSG_CT_DELETE), 0);
	mnl_attr_put_u32(nlh, CTA_STATUS_MASK + 1, 1);
	assert_int_equal(ctd_ctevent_parse(nlh, &ev), -EBADMSG);

	/* CTA_ID must be 4 bytes. */
	nlh = build_msg(buf, CT_TYPE(IPCTNL_MSG_CT_DELETE), 0);
	mnl_attr_put_u16(nlh, CTA_ID, 1);
	assert_int_equal(ctd_ctevent_parse(nlh, &ev), -EBADMSG);

	/* Not conntrack: expectations, other subsystems, netlink control. */
	nlh = build_msg(buf, (NFNL_SUBSYS_CTNETLINK_EXP << 8) | 0, 0);
	assert_int_equal(ctd_ctevent_parse(nlh, &ev), -EPROTO);
	nlh = build_msg(buf, NLMSG_ERROR, 0);
	assert_int_equal(ctd_ctevent_parse(nlh, &ev), -EPROTO);
}

static void test_missing_or_mismatched_tuple(void **state)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;
	struct ctd_event ev;

	(void)state;
	nlh->nlmsg_type = CT_TYPE(IPCTNL_MSG_CT_DELETE);
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	mnl_attr_put_u32(nlh, CTA_ID, htonl(5));
	assert_int_equal(ctd_ctevent_parse(nlh, &ev), -EBADMSG);

	/* An IPv4 tuple in an IPv6 message is a lie we do not pass on. */
	nlh = build_msg(buf, CT_TYPE(IPCTNL_MSG_CT_DELETE), 0);
	nfg = mnl_nlmsg_get_payload(nlh);
	nfg->nfgen_family = AF_INET6;
	assert_int_equal(ctd_ctevent_parse(nlh, &ev), -EBADMSG);
	nfg->nfgen_family = 99;
	assert_int_equal(ctd_ctevent_parse(nlh, &ev), -EBADMSG);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(ctd_proto_name(IPPROTO_TCP), "tcp");
	assert_string_equal(ctd_proto_name(IPPROTO_ICMPV6), "icmpv6");
	assert_null(ctd_proto_name(253));
	assert_string_equal(ctd_tcp_state_name(7), "TIME_WAIT");
	assert_null(ctd_tcp_state_name(200));
	assert_string_equal(ctd_evtype_name(CTD_EV_DESTROY), "DESTROY");
	assert_true(ctd_proto_has_ports(IPPROTO_SCTP));
	assert_false(ctd_proto_has_ports(IPPROTO_ICMP));
}

/* A length past 2^31 is not a message (libmnl's own check lets it by). */
static void test_nlmsg_ok_rejects_huge_length(void **state)
{
	struct nlmsghdr h = { .nlmsg_len = sizeof(h) };

	(void)state;
	assert_true(ctd_nlmsg_ok(&h, sizeof(h)));
	assert_false(ctd_nlmsg_ok(&h, sizeof(h) - 1));
	h.nlmsg_len = 0x80000010u;
	assert_false(ctd_nlmsg_ok(&h, 4096));
	h.nlmsg_len = 8;
	assert_false(ctd_nlmsg_ok(&h, 4096));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nlmsg_ok_rejects_huge_length),
		cmocka_unit_test(test_basic_matches_libnfct),
		cmocka_unit_test(test_icmp_nat_mark_matches_libnfct),
		cmocka_unit_test(test_destroy_carries_kernel_counters),
		cmocka_unit_test(test_icmp_nat_mark),
		cmocka_unit_test(test_truncated_messages),
		cmocka_unit_test(test_synthetic_messages),
		cmocka_unit_test(test_missing_or_mismatched_tuple),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
