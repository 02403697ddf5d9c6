/* Tests for src/ipfix.c: byte-exact messages for every template set and
 * record shape. The expected bytes were written from RFC 7011's layout
 * with Python's struct module (an encoder that shares no code with
 * ctd's); ipfixDump and tshark decode the same encoder's output in the
 * kernel tests. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include "ctd/flows/record.h"
#include "ctd/format/ipfix.h"

#define TIME 1700000002u
#define SEQ 5u
#define DOMAIN 9u


static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s) / 2;

	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void expect_bytes(const uint8_t *got, size_t len, const char *hex)
{
	uint8_t want[2048];
	size_t n = unhex(hex, want, sizeof(want));

	if (len != n || memcmp(got, want, n) != 0) {
		for (size_t i = 0; i < len && i < n; i++)
			if (got[i] != want[i]) {
				fprintf(stderr, "first difference at byte %zu: %02x, "
					"want %02x\n", i, got[i], want[i]);
				break;
			}
	}
	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);
}

static void set_tuple(struct ctd_tuple *t, int family, const char *src,
		      const char *dst, uint16_t sport, uint16_t dport)
{
	assert_int_equal(inet_pton(family, src, t->src), 1);
	assert_int_equal(inet_pton(family, dst, t->dst), 1);
	t->sport = sport;
	t->dport = dport;
}

/* 10.0.0.1:1234 -> 192.0.2.1:53 UDP, 2/120 out, 1/80 back, flushed. */
static void udp_record(struct ctd_record *r)
{
	memset(r, 0, sizeof(*r));
	r->flags = CTD_REC_COUNTERS | CTD_REC_KERNEL_TIME | CTD_REC_FORCED;
	r->end_reason = CTD_END_DESTROY;
	r->family = AF_INET;
	r->proto = IPPROTO_UDP;
	r->id = 0x11223344;
	r->mark = 7;
	r->status = IPS_CONFIRMED;
	set_tuple(&r->tuple[CTD_DIR_ORIG], AF_INET, "10.0.0.1", "192.0.2.1", 1234, 53);
	set_tuple(&r->tuple[CTD_DIR_REPLY], AF_INET, "192.0.2.1", "10.0.0.1", 53, 1234);
	r->cnt[CTD_DIR_ORIG] = (struct ctd_counters){ 2, 120 };
	r->cnt[CTD_DIR_REPLY] = (struct ctd_counters){ 1, 80 };
	r->start_ns = 1700000000123456789ull;
	r->end_ns = 1700000001987654321ull;
}

static size_t one(const struct ctd_ipfix_cfg *cfg, const struct ctd_record *r,
		  uint8_t *buf, size_t cap, unsigned want_records)
{
	struct ctd_ipfix_msg m;

	ctd_ipfix_msg_begin(&m, buf, cap);
	assert_int_equal(ctd_ipfix_msg_add_record(&m, cfg, r), want_records);
	return ctd_ipfix_msg_finish(&m, TIME, SEQ, DOMAIN);
}

static void templates(enum ctd_ipfix_shape shape, uint32_t pen, const char *hex)
{
	struct ctd_ipfix_cfg cfg = { .domain = DOMAIN, .pen = pen, .shape = (uint8_t)shape };
	struct ctd_ipfix_msg m;
	uint8_t buf[2048];
	uint32_t flows;

	ctd_ipfix_msg_begin(&m, buf, sizeof(buf));
	assert_true(ctd_ipfix_msg_add_templates(&m, &cfg));
	expect_bytes(buf, ctd_ipfix_msg_finish(&m, TIME, SEQ, DOMAIN), hex);
	assert_int_equal(ctd_ipfix_msg_count(&cfg, buf, m.len, &flows), 0);
}

static void test_templates(void **state)
{
	(void)state;
	templates(CTD_IPFIX_BIFLOW, 32473,
"000a01aa6553f10200000005000000090002017c0100001000080004000c000400070002000b0002000400010098000800990008002000020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed90101001500080004000c000400070002000b0002000400010098000800990008002000020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed900e1000400e2000400e3000200e4000200e6000101020010001b0010001c001000070002000b0002000400010098000800990008008b00020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed901030015001b0010001c001000070002000b0002000400010098000800990008008b00020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed901190010011a001000e3000200e4000200e600010003001e0104000500010090000400290008002a00080028000800a60008");
	templates(CTD_IPFIX_UNIFLOW, 0,
"000a012a6553f1020000000500000009000200fc0100000c00080004000c000400070002000b00020004000100980008009900080020000200010008000200080088000100ea00040101001100080004000c000400070002000b00020004000100980008009900080020000200010008000200080088000100ea000400e1000400e2000400e3000200e4000200e600010102000c001b0010001c001000070002000b0002000400010098000800990008008b000200010008000200080088000100ea000401030011001b0010001c001000070002000b0002000400010098000800990008008b000200010008000200080088000100ea000401190010011a001000e3000200e4000200e600010003001e0104000500010090000400290008002a00080028000800a60008");
	templates(CTD_IPFIX_INITIATOR, 0,
"000a014a6553f10200000005000000090002011c0100000e00080004000c000400070002000b00020004000100980008009900080020000200e70008012a000800e80008012b00080088000100ea00040101001300080004000c000400070002000b00020004000100980008009900080020000200e70008012a000800e80008012b00080088000100ea000400e1000400e2000400e3000200e4000200e600010102000e001b0010001c001000070002000b0002000400010098000800990008008b000200e70008012a000800e80008012b00080088000100ea000401030013001b0010001c001000070002000b0002000400010098000800990008008b000200e70008012a000800e80008012b00080088000100ea000401190010011a001000e3000200e4000200e600010003001e0104000500010090000400290008002a00080028000800a60008");
}

static void test_biflow_record(void **state)
{
	struct ctd_ipfix_cfg cfg = { .domain = DOMAIN, .shape = CTD_IPFIX_BIFLOW };
	struct ctd_record r;
	uint8_t buf[512];
	uint32_t flows;
	size_t n;

	(void)state;
	udp_record(&r);
	n = one(&cfg, &r, buf, sizeof(buf), 1);
	expect_bytes(buf, n,
"000a00586553f102000000050000000901000048" "0a000001c000020104d20035110000018bcfe5687b0000018bcfe56fc3000000000000000000780000000000000002000000000000005000000000000000010400000000");
	assert_int_equal(ctd_ipfix_record_size(&cfg, CTD_IPFIX_TID_V4), 68);
	assert_int_equal(ctd_ipfix_msg_count(&cfg, buf, n, &flows), 1);
	assert_int_equal(flows, 1);
	assert_int_equal(ctd_ipfix_msg_len(buf, n), n);
}

static void test_uniflow_record(void **state)
{
	struct ctd_ipfix_cfg cfg = { .domain = DOMAIN, .shape = CTD_IPFIX_UNIFLOW };
	struct ctd_record r;
	uint8_t buf[512];

	(void)state;
	udp_record(&r);
	expect_bytes(buf, one(&cfg, &r, buf, sizeof(buf), 2),
"000a007c6553f10200000005000000090100006c0a000001c000020104d20035110000018bcfe5687b0000018bcfe56fc30000000000000000007800000000000000020400000000c00002010a000001003504d2110000018bcfe5687b0000018bcfe56fc30000000000000000005000000000000000010400000000");
}

/* SNAT to 198.51.100.7:40000, initiator counts, mark and id under a PEN. */
static void test_nat_initiator_record(void **state)
{
	struct ctd_ipfix_cfg cfg = { .domain = DOMAIN, .pen = 32473,
				     .shape = CTD_IPFIX_INITIATOR };
	struct ctd_record r;
	uint8_t buf[512];

	(void)state;
	udp_record(&r);
	r.status |= IPS_SRC_NAT;
	set_tuple(&r.tuple[CTD_DIR_REPLY], AF_INET, "192.0.2.1", "198.51.100.7", 53, 40000);
	expect_bytes(buf, one(&cfg, &r, buf, sizeof(buf), 1),
"000a006d6553f10200000005000000090101005d0a000001c000020104d20035110000018bcfe5687b0000018bcfe56fc30000000000000000007800000000000000020000000000000050000000000000000104000000000000000711223344c6336407c00002019c40003505");
	cfg.nat_event = CTD_IPFIX_NATEV_LEGACY;
	/* natEvent is the record's last byte: delete is 2 in the old codes. */
	assert_int_equal(buf[one(&cfg, &r, buf, sizeof(buf), 1) - 1], 2);
}

/* ipfix-nat-event none: the NAT templates (257, 259) lose natEvent (one
 * field fewer, 4 bytes less each) and the NAT record its last byte, so
 * pmacct reads it as a flow with counters instead of a NAT event. */
static void test_nat_event_none(void **state)
{
	struct ctd_ipfix_cfg cfg = { .domain = DOMAIN, .pen = 32473,
				     .shape = CTD_IPFIX_BIFLOW,
				     .nat_event = CTD_IPFIX_NATEV_NONE };
	struct ctd_ipfix_msg m;
	struct ctd_record r;
	uint8_t buf[2048];
	uint32_t flows;
	size_t n;

	(void)state;
	ctd_ipfix_msg_begin(&m, buf, sizeof(buf));
	assert_true(ctd_ipfix_msg_add_templates(&m, &cfg));
	expect_bytes(buf, ctd_ipfix_msg_finish(&m, TIME, SEQ, DOMAIN),
"000a01a26553f1020000000500000009000201740100001000080004000c000400070002000b0002000400010098000800990008002000020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed90101001400080004000c000400070002000b0002000400010098000800990008002000020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed900e1000400e2000400e3000200e4000201020010001b0010001c001000070002000b0002000400010098000800990008008b00020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed901030014001b0010001c001000070002000b0002000400010098000800990008008b00020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed901190010011a001000e3000200e400020003001e0104000500010090000400290008002a00080028000800a60008");
	udp_record(&r);
	r.status |= IPS_SRC_NAT;
	set_tuple(&r.tuple[CTD_DIR_REPLY], AF_INET, "192.0.2.1", "198.51.100.7", 53, 40000);
	cfg.shape = CTD_IPFIX_INITIATOR;
	n = one(&cfg, &r, buf, sizeof(buf), 1);
	expect_bytes(buf, n,
"000a006c6553f10200000005000000090101005c0a000001c000020104d20035110000018bcfe5687b0000018bcfe56fc30000000000000000007800000000000000020000000000000050000000000000000104000000000000000711223344c6336407c00002019c400035");
	assert_int_equal(ctd_ipfix_record_size(&cfg, CTD_IPFIX_TID_V4_NAT), 88);
	assert_int_equal(ctd_ipfix_msg_count(&cfg, buf, n, &flows), 1);
	assert_int_equal(flows, 1);
}

/* record-labels: ctLabels (enterprise element 3, 16 octets) follows
 * ctMark and ctId in every data template, and carries labels 1, 5, 100
 * and 127 as the big-endian number 2^1 + 2^5 + 2^100 + 2^127; no
 * enterprise number, no element. */
static void test_labels(void **state)
{
	struct ctd_ipfix_cfg cfg = { .domain = DOMAIN, .pen = 32473,
				     .shape = CTD_IPFIX_BIFLOW, .labels = true };
	static const unsigned bits[] = { 1, 5, 100, 127 };
	struct ctd_ipfix_msg m;
	struct ctd_record r;
	uint8_t buf[2048];
	uint32_t flows;
	size_t n;

	(void)state;
	ctd_ipfix_msg_begin(&m, buf, sizeof(buf));
	assert_true(ctd_ipfix_msg_add_templates(&m, &cfg));
	expect_bytes(buf, ctd_ipfix_msg_finish(&m, TIME, SEQ, DOMAIN),
"000a01ca6553f10200000005000000090002019c0100001100080004000c000400070002000b0002000400010098000800990008002000020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed98003001000007ed90101001600080004000c000400070002000b0002000400010098000800990008002000020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed98003001000007ed900e1000400e2000400e3000200e4000200e6000101020011001b0010001c001000070002000b0002000400010098000800990008008b00020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed98003001000007ed901030016001b0010001c001000070002000b0002000400010098000800990008008b00020001000800020008800100080000727980020008000072790088000100ea00048001000400007ed98002000400007ed98003001000007ed901190010011a001000e3000200e4000200e600010003001e0104000500010090000400290008002a00080028000800a60008");
	udp_record(&r);
	r.flags |= CTD_REC_LABELS;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		uint32_t w;

		/* ctnetlink's layout: host-order 32-bit words. */
		memcpy(&w, r.labels + bits[i] / 32 * 4, sizeof(w));
		w |= 1u << (bits[i] % 32);
		memcpy(r.labels + bits[i] / 32 * 4, &w, sizeof(w));
	}
	n = one(&cfg, &r, buf, sizeof(buf), 1);
	expect_bytes(buf, n,
"000a00706553f1020000000500000009010000600a000001c000020104d20035110000018bcfe5687b0000018bcfe56fc3000000000000000000780000000000000002000000000000005000000000000000010400000000000000071122334480000010000000000000000000000022");
	assert_int_equal(ctd_ipfix_record_size(&cfg, CTD_IPFIX_TID_V4), 92);
	assert_int_equal(ctd_ipfix_msg_count(&cfg, buf, n, &flows), 1);
	/* A record without labels: sixteen zero octets. */
	r.flags &= ~(uint32_t)CTD_REC_LABELS;
	n = one(&cfg, &r, buf, sizeof(buf), 1);
	for (size_t i = n - 16; i < n; i++)
		assert_int_equal(buf[i], 0);
	cfg.pen = 0;
	assert_int_equal(ctd_ipfix_record_size(&cfg, CTD_IPFIX_TID_V4), 68);
}

/* An interim record of an ICMPv6 echo in zone 3: active timeout (2). */
static void test_v6_icmp_interim(void **state)
{
	struct ctd_ipfix_cfg cfg = { .domain = DOMAIN, .shape = CTD_IPFIX_BIFLOW };
	struct ctd_record r;
	uint8_t buf[512];

	(void)state;
	udp_record(&r);
	r.family = AF_INET6;
	r.proto = IPPROTO_ICMPV6;
	r.end_reason = CTD_END_ACTIVE;
	r.zone = 3;
	set_tuple(&r.tuple[CTD_DIR_ORIG], AF_INET6, "2001:db8::1", "2001:db8::2", 77, 128 << 8);
	set_tuple(&r.tuple[CTD_DIR_REPLY], AF_INET6, "2001:db8::2", "2001:db8::1", 77, 129 << 8);
	expect_bytes(buf, one(&cfg, &r, buf, sizeof(buf), 1),
"000a00706553f10200000005000000090102006020010db800000000000000000000000120010db8000000000000000000000002000000003a0000018bcfe5687b0000018bcfe56fc3800000000000000000780000000000000002000000000000005000000000000000010200000003");
}

/* flowEndReason by how the flow ended. */
static void test_end_reasons(void **state)
{
	static const struct { uint8_t reason; uint32_t flags; uint8_t proto, tcp; uint8_t want; } c[] = {
		{ CTD_END_DESTROY, 0, IPPROTO_UDP, 0, 1 },
		{ CTD_END_DESTROY, CTD_REC_FORCED, IPPROTO_UDP, 0, 4 },
		{ CTD_END_DESTROY, CTD_REC_FORCED | CTD_REC_TCPSTATE, IPPROTO_TCP, 7, 3 },
		{ CTD_END_DESTROY, CTD_REC_FORCED | CTD_REC_TCPSTATE, IPPROTO_TCP, 3, 4 },
		{ CTD_END_EXPIRED, 0, IPPROTO_UDP, 0, 1 },
		{ CTD_END_EVICTED, 0, IPPROTO_UDP, 0, 5 },
		{ CTD_END_ACTIVE, 0, IPPROTO_UDP, 0, 2 },
	};
	struct ctd_ipfix_cfg cfg = { .shape = CTD_IPFIX_BIFLOW };
	struct ctd_record r;
	uint8_t buf[512];

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		udp_record(&r);
		r.end_reason = c[i].reason;
		r.flags = CTD_REC_COUNTERS | c[i].flags;
		r.proto = c[i].proto;
		r.tcp_state = c[i].tcp;
		one(&cfg, &r, buf, sizeof(buf), 1);
		/* flowEndReason sits 5 bytes before the end (then ingressVRFID). */
		assert_int_equal(buf[16 + 4 + 68 - 5], c[i].want);
	}
}

/* Records with other templates open new sets; a full message refuses a
 * record and stays valid; counting and restamping read what was built. */
static void test_sets_and_limits(void **state)
{
	struct ctd_ipfix_cfg cfg = { .domain = DOMAIN, .shape = CTD_IPFIX_BIFLOW };
	struct ctd_ipfix_stats st = { 42, 1, 2, 3, 4 };
	struct ctd_record r4, r6;
	struct ctd_ipfix_msg m;
	uint8_t buf[300];
	uint32_t flows;
	size_t n;

	(void)state;
	udp_record(&r4);
	r6 = r4;
	r6.family = AF_INET6;
	set_tuple(&r6.tuple[CTD_DIR_ORIG], AF_INET6, "::1", "::2", 1, 2);
	ctd_ipfix_msg_begin(&m, buf, 291);
	assert_int_equal(ctd_ipfix_msg_add_record(&m, &cfg, &r4), 1);
	assert_int_equal(ctd_ipfix_msg_add_record(&m, &cfg, &r4), 1);
	assert_int_equal(ctd_ipfix_msg_add_record(&m, &cfg, &r6), 1);
	/* 16 + 4 + 2 * 68 + 4 + 92 = 252: no room for another set + 68, nor
	 * for the statistics set (4 + 36). */
	assert_int_equal(ctd_ipfix_msg_add_record(&m, &cfg, &r4), 0);
	assert_false(ctd_ipfix_msg_add_stats(&m, &st));
	n = ctd_ipfix_msg_finish(&m, TIME, SEQ, DOMAIN);
	assert_int_equal(n, 252);
	assert_int_equal(ctd_ipfix_msg_count(&cfg, buf, n, &flows), 3);
	assert_int_equal(flows, 3);
	ctd_ipfix_msg_restamp(buf, 1, 0x01020304);
	assert_int_equal(buf[8], 1);
	assert_int_equal(buf[11], 4);
	assert_int_equal(ctd_ipfix_msg_len(buf, 15), 0);
	buf[0] = 9;
	assert_int_equal(ctd_ipfix_msg_len(buf, n), 0);

	ctd_ipfix_msg_begin(&m, buf, sizeof(buf));
	assert_true(ctd_ipfix_msg_add_stats(&m, &st));
	n = ctd_ipfix_msg_finish(&m, TIME, SEQ, DOMAIN);
	expect_bytes(buf, n, "000a00386553f10200000005000000090104002800"
		     "00002a0000000000000001000000000000000200000000000000030000000000000004");
	assert_int_equal(ctd_ipfix_msg_count(&cfg, buf, n, &flows), 1);
	assert_int_equal(flows, 0);
}

static void test_shape_names(void **state)
{
	bool ok;

	(void)state;
	assert_int_equal(ctd_ipfix_shape_parse("uniflow", &ok), CTD_IPFIX_UNIFLOW);
	assert_true(ok);
	ctd_ipfix_shape_parse("both", &ok);
	assert_false(ok);
	assert_string_equal(ctd_ipfix_shape_name(CTD_IPFIX_INITIATOR), "initiator");
}

/* A record of another namespace goes out in that namespace's own
 * observation domain: ipfix-domain + nsid + 1 in the header (nsid 3:
 * 9 + 4 = 13), the record itself as in ctd's own namespace. */
static void test_netns_domain(void **state)
{
	struct ctd_ipfix_cfg cfg = { .domain = DOMAIN, .shape = CTD_IPFIX_BIFLOW };
	struct ctd_ipfix_cfg top = { .domain = UINT32_MAX };
	struct ctd_ipfix_msg m;
	struct ctd_record r;
	uint8_t buf[512];
	size_t n;

	(void)state;
	udp_record(&r);
	r.nsid = 3;
	strcpy(r.netns, "red");
	ctd_ipfix_msg_begin(&m, buf, sizeof(buf));
	assert_int_equal(ctd_ipfix_msg_add_record(&m, &cfg, &r), 1);
	n = ctd_ipfix_msg_finish(&m, TIME, SEQ, ctd_ipfix_domain(&cfg, r.nsid));
	expect_bytes(buf, n,
"000a00586553f10200000005" "0000000d" "01000048" "0a000001c000020104d20035110000018bcfe5687b0000018bcfe56fc3000000000000000000780000000000000002000000000000005000000000000000010400000000");
	assert_int_equal(ctd_ipfix_msg_domain(buf), 13);
	assert_int_equal(ctd_ipfix_domain(&cfg, CTD_NSID_SELF), DOMAIN);
	assert_int_equal(ctd_ipfix_domain(&cfg, 0), DOMAIN + 1);
	assert_int_equal(ctd_ipfix_domain(&top, CTD_NSID_SELF), UINT32_MAX);
	assert_int_equal(ctd_ipfix_domain(&top, 0), 0);    /* modulo 2^32 */
}

/* tls:HOST:PORT is TCP with TLS; its missing port names 4740. */
static void test_tls_target(void **state)
{
	char t[] = "tls:[2001:db8::1]:4740";
	char *host, *port;
	bool tcp = false;

	(void)state;
	assert_null(ctd_ipfix_split_target(t, &tcp, &host, &port));
	assert_true(tcp);
	assert_string_equal(host, "2001:db8::1");
	assert_string_equal(port, "4740");
	assert_true(ctd_ipfix_target_tls("tls:collector:4740"));
	assert_false(ctd_ipfix_target_tls("tcp:collector:4739"));
	assert_non_null(strstr(ctd_ipfix_check_target("tls:collector"), "4740"));
	assert_non_null(strstr(ctd_ipfix_check_target("sctp:c:4739"), "tls:"));
	assert_null(ctd_ipfix_check_target("tls:collector.example:4740"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_templates),
		cmocka_unit_test(test_biflow_record),
		cmocka_unit_test(test_uniflow_record),
		cmocka_unit_test(test_nat_initiator_record),
		cmocka_unit_test(test_nat_event_none),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_v6_icmp_interim),
		cmocka_unit_test(test_end_reasons),
		cmocka_unit_test(test_sets_and_limits),
		cmocka_unit_test(test_shape_names),
		cmocka_unit_test(test_netns_domain),
		cmocka_unit_test(test_tls_target),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
