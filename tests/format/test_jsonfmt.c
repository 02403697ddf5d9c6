/* Tests for src/jsonfmt.c against the format contract of
 * docs/json-records.md: the exact line for each record shape, escaping,
 * that no cap makes it write past the buffer, and that every line parses
 * as JSON in python3's json module (an independent parser, which also
 * re-derives the ISO times and durations from the _ms fields). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "ctd/flows/record.h"
#include "ctd/format/jsonfmt.h"
#include "ctd/kernel/connlabel.h"

/* Checked with `date -u -d @1795536000.123` and friends. */
#define START_NS  1795536000123000000ULL   /* 2026-11-24T16:00:00.123Z */
#define END_NS    1795536030456999999ULL   /* 2026-11-24T16:00:30.456Z */
#define LATER_NS  1795539661007000000ULL   /* 2026-11-24T17:01:01.007Z */

#define GUARD 64
#define CANARY 0xa5

static void set_tuple(struct ctd_tuple *t, int family, const char *src,
		      const char *dst, uint16_t sport, uint16_t dport)
{
	assert_int_equal(inet_pton(family, src, t->src), 1);
	assert_int_equal(inet_pton(family, dst, t->dst), 1);
	t->sport = sport;
	t->dport = dport;
}

/* ---- the record shapes, each with its exact line ---- */

/* UDP over IPv4, SNAT'd, kernel counters and times, the 64-bit maximum
 * as a counter, new_seen and start_seen true, mark and zone set. */
static void udp4(struct ctd_record *r)
{
	memset(r, 0, sizeof(*r));
	r->nsid = CTD_NSID_SELF;
	r->flags = CTD_REC_COUNTERS | CTD_REC_KERNEL_TIME | CTD_REC_NEW_SEEN |
		   CTD_REC_START_SEEN;
	r->family = AF_INET;
	r->proto = IPPROTO_UDP;
	r->id = 285046499;
	r->status = IPS_SEEN_REPLY | IPS_CONFIRMED;
	r->mark = 42;
	r->zone = 3;
	set_tuple(&r->tuple[CTD_DIR_ORIG], AF_INET, "192.0.2.1",
		  "198.51.100.7", 55091, 53);
	set_tuple(&r->tuple[CTD_DIR_REPLY], AF_INET, "198.51.100.7",
		  "203.0.113.9", 53, 61000);
	r->cnt[CTD_DIR_ORIG] = (struct ctd_counters){ 1, 38 };
	r->cnt[CTD_DIR_REPLY] = (struct ctd_counters){ 2, UINT64_MAX };
	r->start_ns = START_NS;
	r->end_ns = END_NS;
}

static const char udp4_line[] =
	"{\"v\":1,\"type\":\"flow\",\"end_reason\":\"destroy\",\"id\":285046499,"
	"\"family\":\"ipv4\",\"proto\":\"udp\",\"proto_num\":17,"
	"\"orig\":{\"src\":\"192.0.2.1\",\"dst\":\"198.51.100.7\",\"sport\":55091,"
	"\"dport\":53,\"packets\":1,\"bytes\":38},"
	"\"reply\":{\"src\":\"198.51.100.7\",\"dst\":\"203.0.113.9\",\"sport\":53,"
	"\"dport\":61000,\"packets\":2,\"bytes\":18446744073709551615},"
	"\"start\":\"2026-11-24T16:00:00.123Z\",\"start_ms\":1795536000123,"
	"\"end\":\"2026-11-24T16:00:30.456Z\",\"end_ms\":1795536030456,"
	"\"duration_ms\":30333,\"time_source\":\"kernel\","
	"\"status\":[\"SEEN_REPLY\",\"CONFIRMED\"],\"mark\":42,\"zone\":3,"
	"\"new_seen\":true,\"start_seen\":true}\n";

/* TCP over IPv6 with a state and three status bits, no counters, times
 * from ctd. The addresses exercise RFC 5952: no "::" for one zero group,
 * and the first of two equal zero runs is the one compressed. */
static void tcp6(struct ctd_record *r)
{
	memset(r, 0, sizeof(*r));
	r->nsid = CTD_NSID_SELF;
	r->flags = CTD_REC_TCPSTATE;
	r->end_reason = CTD_END_EXPIRED;
	r->family = AF_INET6;
	r->proto = IPPROTO_TCP;
	r->tcp_state = TCP_CONNTRACK_ESTABLISHED;
	r->status = IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED;
	r->id = 7;
	r->mark = 65536;
	set_tuple(&r->tuple[CTD_DIR_ORIG], AF_INET6, "2001:db8::1",
		  "2001:db8:0:1:1:1:1:1", 51000, 443);
	set_tuple(&r->tuple[CTD_DIR_REPLY], AF_INET6, "2001:db8:0:1:1:1:1:1",
		  "2001:db8:0:0:1:0:0:1", 443, 51000);
	r->start_ns = START_NS;
	r->end_ns = END_NS;
}

static const char tcp6_line[] =
	"{\"v\":1,\"type\":\"flow\",\"end_reason\":\"expired\",\"id\":7,"
	"\"family\":\"ipv6\",\"proto\":\"tcp\",\"proto_num\":6,"
	"\"orig\":{\"src\":\"2001:db8::1\",\"dst\":\"2001:db8:0:1:1:1:1:1\","
	"\"sport\":51000,\"dport\":443},"
	"\"reply\":{\"src\":\"2001:db8:0:1:1:1:1:1\",\"dst\":\"2001:db8::1:0:0:1\","
	"\"sport\":443,\"dport\":51000},"
	"\"start\":\"2026-11-24T16:00:00.123Z\",\"start_ms\":1795536000123,"
	"\"end\":\"2026-11-24T16:00:30.456Z\",\"end_ms\":1795536030456,"
	"\"duration_ms\":30333,\"time_source\":\"ctd\",\"tcp_state\":\"ESTABLISHED\","
	"\"status\":[\"SEEN_REPLY\",\"ASSURED\",\"CONFIRMED\"],"
	"\"mark\":65536,\"zone\":0,\"new_seen\":false,\"start_seen\":false}\n";

/* An ICMP echo: the tuple's dport is type << 8 | code, sport the echo
 * id. The times straddle a millisecond by one nanosecond, so
 * duration_ms is end_ms - start_ms (1), as the contract says. */
static void icmp4(struct ctd_record *r)
{
	memset(r, 0, sizeof(*r));
	r->nsid = CTD_NSID_SELF;
	r->flags = CTD_REC_COUNTERS | CTD_REC_KERNEL_TIME | CTD_REC_NEW_SEEN;
	r->family = AF_INET;
	r->proto = IPPROTO_ICMP;
	r->id = 1;
	r->status = IPS_SEEN_REPLY | IPS_CONFIRMED | IPS_DYING;
	set_tuple(&r->tuple[CTD_DIR_ORIG], AF_INET, "10.0.0.1", "10.0.0.2",
		  4660, 8 << 8);
	set_tuple(&r->tuple[CTD_DIR_REPLY], AF_INET, "10.0.0.2", "10.0.0.1",
		  4660, 0 << 8);
	r->cnt[CTD_DIR_ORIG] = (struct ctd_counters){ 1, 84 };
	r->cnt[CTD_DIR_REPLY] = (struct ctd_counters){ 1, 84 };
	r->start_ns = START_NS + 999999;
	r->end_ns = START_NS + 1000000;
}

static const char icmp4_line[] =
	"{\"v\":1,\"type\":\"flow\",\"end_reason\":\"destroy\",\"id\":1,"
	"\"family\":\"ipv4\",\"proto\":\"icmp\",\"proto_num\":1,"
	"\"orig\":{\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"icmp_type\":8,"
	"\"icmp_code\":0,\"icmp_id\":4660,\"packets\":1,\"bytes\":84},"
	"\"reply\":{\"src\":\"10.0.0.2\",\"dst\":\"10.0.0.1\",\"icmp_type\":0,"
	"\"icmp_code\":0,\"icmp_id\":4660,\"packets\":1,\"bytes\":84},"
	"\"start\":\"2026-11-24T16:00:00.123Z\",\"start_ms\":1795536000123,"
	"\"end\":\"2026-11-24T16:00:00.124Z\",\"end_ms\":1795536000124,"
	"\"duration_ms\":1,\"time_source\":\"kernel\","
	"\"status\":[\"SEEN_REPLY\",\"CONFIRMED\",\"DYING\"],"
	"\"mark\":0,\"zone\":0,\"new_seen\":true,\"start_seen\":false}\n";

/* ICMPv6 with every 32- and 16-bit field at its maximum, no status bit,
 * a millisecond part with a leading zero, start_seen without new_seen. */
static void icmp6(struct ctd_record *r)
{
	memset(r, 0, sizeof(*r));
	r->nsid = CTD_NSID_SELF;
	r->flags = CTD_REC_START_SEEN;
	r->end_reason = CTD_END_LOST;
	r->family = AF_INET6;
	r->proto = IPPROTO_ICMPV6;
	r->id = UINT32_MAX;
	r->mark = UINT32_MAX;
	r->zone = UINT16_MAX;
	set_tuple(&r->tuple[CTD_DIR_ORIG], AF_INET6, "fe80::a:b:c:d", "::1",
		  65535, 128 << 8);
	set_tuple(&r->tuple[CTD_DIR_REPLY], AF_INET6, "::1", "fe80::a:b:c:d",
		  65535, 129 << 8);
	r->start_ns = LATER_NS;
	r->end_ns = LATER_NS;
}

static const char icmp6_line[] =
	"{\"v\":1,\"type\":\"flow\",\"end_reason\":\"lost\",\"id\":4294967295,"
	"\"family\":\"ipv6\",\"proto\":\"icmpv6\",\"proto_num\":58,"
	"\"orig\":{\"src\":\"fe80::a:b:c:d\",\"dst\":\"::1\",\"icmp_type\":128,"
	"\"icmp_code\":0,\"icmp_id\":65535},"
	"\"reply\":{\"src\":\"::1\",\"dst\":\"fe80::a:b:c:d\",\"icmp_type\":129,"
	"\"icmp_code\":0,\"icmp_id\":65535},"
	"\"start\":\"2026-11-24T17:01:01.007Z\",\"start_ms\":1795539661007,"
	"\"end\":\"2026-11-24T17:01:01.007Z\",\"end_ms\":1795539661007,"
	"\"duration_ms\":0,\"time_source\":\"ctd\",\"status\":[],"
	"\"mark\":4294967295,\"zone\":65535,\"new_seen\":false,"
	"\"start_seen\":true}\n";

/* GRE: a named protocol without ports, so the tuples carry addresses
 * only even though the kernel keeps GRE keys in the port fields. No
 * counters: no packets/bytes keys at all. */
static void gre4(struct ctd_record *r)
{
	memset(r, 0, sizeof(*r));
	r->nsid = CTD_NSID_SELF;
	r->flags = CTD_REC_NEW_SEEN;
	r->end_reason = CTD_END_EVICTED;
	r->family = AF_INET;
	r->proto = IPPROTO_GRE;
	r->id = 1000;
	r->status = IPS_CONFIRMED;
	r->mark = 5;
	r->zone = 2;
	set_tuple(&r->tuple[CTD_DIR_ORIG], AF_INET, "192.0.2.1", "192.0.2.2",
		  0x1234, 0x5678);
	set_tuple(&r->tuple[CTD_DIR_REPLY], AF_INET, "192.0.2.2", "192.0.2.1",
		  0x5678, 0x1234);
	r->start_ns = START_NS;
	r->end_ns = END_NS;
}

static const char gre4_line[] =
	"{\"v\":1,\"type\":\"flow\",\"end_reason\":\"evicted\",\"id\":1000,"
	"\"family\":\"ipv4\",\"proto\":\"gre\",\"proto_num\":47,"
	"\"orig\":{\"src\":\"192.0.2.1\",\"dst\":\"192.0.2.2\"},"
	"\"reply\":{\"src\":\"192.0.2.2\",\"dst\":\"192.0.2.1\"},"
	"\"start\":\"2026-11-24T16:00:00.123Z\",\"start_ms\":1795536000123,"
	"\"end\":\"2026-11-24T16:00:30.456Z\",\"end_ms\":1795536030456,"
	"\"duration_ms\":30333,\"time_source\":\"ctd\",\"status\":[\"CONFIRMED\"],"
	"\"mark\":5,\"zone\":2,\"new_seen\":true,\"start_seen\":false}\n";

/* A protocol ctd has no name for: the number, as a string. */
static void proto253(struct ctd_record *r)
{
	gre4(r);
	r->flags = CTD_REC_COUNTERS;
	r->end_reason = CTD_END_DESTROY;
	r->proto = 253;
	r->cnt[CTD_DIR_ORIG] = (struct ctd_counters){ 10, 1000 };
}

static const char proto253_line[] =
	"{\"v\":1,\"type\":\"flow\",\"end_reason\":\"destroy\",\"id\":1000,"
	"\"family\":\"ipv4\",\"proto\":\"253\",\"proto_num\":253,"
	"\"orig\":{\"src\":\"192.0.2.1\",\"dst\":\"192.0.2.2\",\"packets\":10,"
	"\"bytes\":1000},"
	"\"reply\":{\"src\":\"192.0.2.2\",\"dst\":\"192.0.2.1\",\"packets\":0,"
	"\"bytes\":0},"
	"\"start\":\"2026-11-24T16:00:00.123Z\",\"start_ms\":1795536000123,"
	"\"end\":\"2026-11-24T16:00:30.456Z\",\"end_ms\":1795536030456,"
	"\"duration_ms\":30333,\"time_source\":\"ctd\",\"status\":[\"CONFIRMED\"],"
	"\"mark\":5,\"zone\":2,\"new_seen\":false,\"start_seen\":false}\n";

/* An interim record: deltas follow the totals inside each direction. */
static void active_delta(struct ctd_record *r)
{
	udp4(r);
	r->end_reason = CTD_END_ACTIVE;
	r->flags |= CTD_REC_DELTA;
	r->delta[CTD_DIR_ORIG] = (struct ctd_counters){ 1, 2 };
	r->delta[CTD_DIR_REPLY] = (struct ctd_counters){ 3, 4 };
}

/* The longest line any input can give (not only what record.c builds):
 * the longest names, numbers and addresses everywhere. */
static void worst_case(struct ctd_record *r)
{
	size_t d;

	memset(r, 0, sizeof(*r));
	r->nsid = CTD_NSID_SELF;
	r->flags = UINT32_MAX;
	r->end_reason = CTD_END_EXPIRED;
	r->family = AF_INET6;
	r->proto = IPPROTO_UDPLITE;
	r->tcp_state = TCP_CONNTRACK_ESTABLISHED;
	r->status = UINT32_MAX;
	r->id = r->mark = UINT32_MAX;
	r->zone = UINT16_MAX;
	for (d = 0; d < CTD_DIR__COUNT; d++) {
		set_tuple(&r->tuple[d], AF_INET6,
			  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
			  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd", 65535, 65535);
		r->cnt[d].packets = r->cnt[d].bytes = UINT64_MAX;
		r->delta[d].packets = r->delta[d].bytes = UINT64_MAX;
	}
	r->start_ns = UINT64_MAX - 1;
	r->end_ns = UINT64_MAX;
}

struct shape {
	const char *name;
	void (*build)(struct ctd_record *r);
	const char *line;   /* NULL: no exact line, only parse and bounds */
};

static const struct shape shapes[] = {
	{ "udp4", udp4, udp4_line },
	{ "tcp6", tcp6, tcp6_line },
	{ "icmp4", icmp4, icmp4_line },
	{ "icmp6", icmp6, icmp6_line },
	{ "gre4", gre4, gre4_line },
	{ "proto253", proto253, proto253_line },
	{ "active_delta", active_delta, NULL },
	{ "worst_case", worst_case, NULL },
};

#define N_SHAPES (sizeof(shapes) / sizeof(shapes[0]))

/* Renders into a CTD_JSON_MAX buffer; returns a NUL-terminated copy. */
static char *render(const struct ctd_record *r)
{
	char buf[CTD_JSON_MAX];
	size_t n = ctd_jsonfmt_record(r, buf, sizeof(buf));
	char *s;

	assert_true(n > 0);
	assert_true(n <= sizeof(buf));
	assert_int_equal(buf[n - 1], '\n');
	assert_null(memchr(buf, '\n', n - 1));
	s = malloc(n + 1);
	assert_non_null(s);
	memcpy(s, buf, n);
	s[n] = '\0';
	return s;
}

static void test_exact_lines(void **state)
{
	struct ctd_record r;
	size_t i;

	(void)state;
	for (i = 0; i < N_SHAPES; i++) {
		char *got;

		if (!shapes[i].line)
			continue;
		shapes[i].build(&r);
		got = render(&r);
		if (strcmp(got, shapes[i].line) != 0)
			fail_msg("%s:\n got  %s want %s", shapes[i].name, got,
				 shapes[i].line);
		free(got);
	}
}

/* Fails with both strings when needle is missing from the line. */
static void assert_has(const char *line, const char *needle)
{
	if (!strstr(line, needle))
		fail_msg("missing %s\n in %s", needle, line);
}

static void test_deltas(void **state)
{
	struct ctd_record r;
	char *got;

	(void)state;
	active_delta(&r);
	got = render(&r);
	assert_has(got, "\"end_reason\":\"active\"");
	assert_has(got, "\"orig\":{\"src\":\"192.0.2.1\",\"dst\":\"198.51.100.7\","
		   "\"sport\":55091,\"dport\":53,\"packets\":1,\"bytes\":38,"
		   "\"delta_packets\":1,\"delta_bytes\":2},");
	assert_has(got, "\"packets\":2,\"bytes\":18446744073709551615,"
		   "\"delta_packets\":3,\"delta_bytes\":4},\"start\"");
	free(got);
}

/* Event records (NEW/UPDATE for outputs that want them): type "event",
 * the merged event list, the time ctd saw it, no end and no duration. */
static void test_event_records(void **state)
{
	static const struct {
		uint8_t events;
		const char *head;
	} cases[] = {
		{ 1u << CTD_EV_NEW, "{\"v\":1,\"type\":\"event\",\"events\":[\"new\"],\"id\":" },
		{ 1u << CTD_EV_UPDATE, "{\"v\":1,\"type\":\"event\",\"events\":[\"update\"],\"id\":" },
		{ 1u << CTD_EV_NEW | 1u << CTD_EV_UPDATE,
		  "{\"v\":1,\"type\":\"event\",\"events\":[\"new\",\"update\"],\"id\":" },
	};
	struct ctd_record r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got;

		udp4(&r);
		r.events = cases[i].events;
		got = render(&r);
		if (strncmp(got, cases[i].head, strlen(cases[i].head)) != 0)
			fail_msg("got %s want head %s", got, cases[i].head);
		assert_has(got, "\"start_ms\":1795536000123,"
			   "\"time\":\"2026-11-24T16:00:30.456Z\","
			   "\"time_ms\":1795536030456,\"time_source\"");
		assert_null(strstr(got, "end_reason"));
		assert_null(strstr(got, "duration_ms"));
		assert_null(strstr(got, "\"end\""));
		free(got);
	}
}

/* The code is the low byte of dport, the type the high byte. */
static void test_icmp_type_code_split(void **state)
{
	struct ctd_record r;
	char *got;

	(void)state;
	icmp4(&r);
	r.tuple[CTD_DIR_ORIG].dport = 11 << 8 | 1;
	r.tuple[CTD_DIR_ORIG].sport = 0;
	got = render(&r);
	assert_has(got, "\"icmp_type\":11,\"icmp_code\":1,\"icmp_id\":0,");
	assert_null(strstr(got, "port"));
	free(got);
}

static void test_proto_names_and_numbers(void **state)
{
	static const struct { uint8_t num; const char *name; } protos[] = {
		{ IPPROTO_TCP, "tcp" }, { IPPROTO_UDP, "udp" },
		{ IPPROTO_ICMP, "icmp" }, { IPPROTO_ICMPV6, "icmpv6" },
		{ IPPROTO_SCTP, "sctp" }, { IPPROTO_DCCP, "dccp" },
		{ IPPROTO_UDPLITE, "udplite" }, { IPPROTO_GRE, "gre" },
		{ 0, "0" }, { 4, "4" }, { 41, "41" }, { 99, "99" },
		{ 100, "100" }, { 253, "253" }, { 255, "255" },
	};
	struct ctd_record r;
	char want[64], *got;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		gre4(&r);
		r.proto = protos[i].num;
		got = render(&r);
		snprintf(want, sizeof(want), "\"proto\":\"%s\",\"proto_num\":%u,",
			 protos[i].name, protos[i].num);
		assert_has(got, want);
		free(got);
	}
}

static void test_end_reasons(void **state)
{
	static const char *const names[] = {
		[CTD_END_DESTROY] = "destroy", [CTD_END_EXPIRED] = "expired",
		[CTD_END_EVICTED] = "evicted", [CTD_END_LOST] = "lost",
		[CTD_END_ACTIVE] = "active", [CTD_END_NETNS_GONE] = "netns_gone",
	};
	struct ctd_record r;
	char want[64], *got;
	int i;

	(void)state;
	for (i = 0; i < CTD_END__COUNT; i++) {
		udp4(&r);
		r.end_reason = (uint8_t)i;
		got = render(&r);
		snprintf(want, sizeof(want), "\"end_reason\":\"%s\",", names[i]);
		assert_has(got, want);
		free(got);
	}
}

/* Another namespace's record names it (escaped), or gives its nsid;
 * ctd's own has no "netns"; counters from a dump say so. */
static void test_netns(void **state)
{
	struct ctd_record r;
	char *got;

	(void)state;
	udp4(&r);
	got = render(&r);
	assert_null(strstr(got, "\"netns\""));
	free(got);
	r.nsid = 3;
	got = render(&r);
	assert_has(got, ",\"zone\":3,\"netns\":\"nsid:3\",\"new_seen\"");
	free(got);
	strcpy(r.netns, "qrouter-\"x\"");
	r.end_reason = CTD_END_NETNS_GONE;
	r.flags |= CTD_REC_DUMP_COUNTERS;
	got = render(&r);
	assert_has(got, "\"end_reason\":\"netns_gone\"");
	assert_has(got, "\"netns\":\"qrouter-\\\"x\\\"\",\"counters_from\":\"last_dump\"");
	free(got);
}

/* Each status bit has the kernel's name and position. */
static void test_status_bits(void **state)
{
	static const struct { uint32_t bit; const char *name; } bits[] = {
		{ IPS_EXPECTED, "EXPECTED" }, { IPS_SEEN_REPLY, "SEEN_REPLY" },
		{ IPS_ASSURED, "ASSURED" }, { IPS_CONFIRMED, "CONFIRMED" },
		{ IPS_SRC_NAT, "SRC_NAT" }, { IPS_DST_NAT, "DST_NAT" },
		{ IPS_SEQ_ADJUST, "SEQ_ADJUST" },
		{ IPS_SRC_NAT_DONE, "SRC_NAT_DONE" },
		{ IPS_DST_NAT_DONE, "DST_NAT_DONE" }, { IPS_DYING, "DYING" },
		{ IPS_FIXED_TIMEOUT, "FIXED_TIMEOUT" },
		{ IPS_TEMPLATE, "TEMPLATE" }, { IPS_UNTRACKED, "UNTRACKED" },
		{ IPS_HELPER, "HELPER" }, { IPS_OFFLOAD, "OFFLOAD" },
		{ IPS_HW_OFFLOAD, "HW_OFFLOAD" },
	};
	struct ctd_record r;
	char want[64], *got;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		udp4(&r);
		r.status = bits[i].bit;
		got = render(&r);
		snprintf(want, sizeof(want), ",\"status\":[\"%s\"],", bits[i].name);
		assert_has(got, want);
		free(got);
	}
}

/* Only a CTD_REC_TCPSTATE record has tcp_state; a state number the
 * table lacks is named UNKNOWN rather than dropped. */
static void test_tcp_state_flag(void **state)
{
	struct ctd_record r;
	char *got;

	(void)state;
	tcp6(&r);
	r.flags = 0;
	got = render(&r);
	assert_null(strstr(got, "tcp_state"));
	free(got);
	tcp6(&r);
	r.tcp_state = 200;
	got = render(&r);
	assert_has(got, ",\"time_source\":\"ctd\",\"tcp_state\":\"UNKNOWN\",");
	free(got);
}

/* The worst case fits CTD_JSON_MAX: a line that did not would be a
 * dropped record. */
static void test_worst_case_fits(void **state)
{
	struct ctd_record r;
	char *got;

	(void)state;
	worst_case(&r);
	got = render(&r);
	assert_true(strlen(got) <= CTD_JSON_MAX);
	print_message("worst-case line: %zu of %d bytes\n", strlen(got),
		      CTD_JSON_MAX);
	free(got);
}

/* ---- bounds: every cap short of the line ---- */

static void assert_guard_intact(const char *buf, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		if ((unsigned char)buf[i] != CANARY)
			fail_msg("byte %zu past cap %zu was written", i, from);
}

/* For each cap below the full length: returns 0 and leaves every byte
 * from buf[cap] on alone. At exactly the full length it succeeds. */
static void check_record_bounds(const struct ctd_record *r)
{
	char full[CTD_JSON_MAX];
	size_t len = ctd_jsonfmt_record(r, full, sizeof(full)), cap;
	char *buf;

	assert_true(len > 0);
	for (cap = 0; cap < len; cap++) {
		buf = malloc(cap + GUARD);
		assert_non_null(buf);
		memset(buf, CANARY, cap + GUARD);
		assert_int_equal(ctd_jsonfmt_record(r, buf, cap), 0);
		assert_guard_intact(buf, cap, cap + GUARD);
		free(buf);
	}
	buf = malloc(len + GUARD);
	assert_non_null(buf);
	memset(buf, CANARY, len + GUARD);
	assert_int_equal(ctd_jsonfmt_record(r, buf, len), len);
	assert_memory_equal(buf, full, len);
	assert_guard_intact(buf, len, len + GUARD);
	free(buf);
}

static void test_record_bounds(void **state)
{
	struct ctd_record r;
	size_t i;

	(void)state;
	for (i = 0; i < N_SHAPES; i++) {
		shapes[i].build(&r);
		check_record_bounds(&r);
	}
}

/* ---- ctd_jsonfmt_string ---- */

static void check_string(const char *in, const char *want)
{
	char buf[256];
	size_t n = ctd_jsonfmt_string(in, buf, sizeof(buf));

	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
}

static void test_string_escapes(void **state)
{
	(void)state;
	check_string("", "\"\"");
	check_string("plain", "\"plain\"");
	check_string("a\"b", "\"a\\\"b\"");
	check_string("a\\b", "\"a\\\\b\"");
	check_string("\\\"", "\"\\\\\\\"\"");
	check_string("\x01", "\"\\u0001\"");
	check_string("\n", "\"\\u000a\"");
	check_string("\t\r\x1f", "\"\\u0009\\u000d\\u001f\"");
	/* Allowed raw in JSON: solidus, DEL, and UTF-8 of any length. */
	check_string("a/b\x7f", "\"a/b\x7f\"");
	check_string("\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e",
		     "\"\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\"");
}

/* Every control character, one at a time, as \u00XX in lower case. */
static void test_string_every_control_char(void **state)
{
	char in[2] = { 0, 0 }, want[16];
	int c;

	(void)state;
	for (c = 1; c < 0x20; c++) {
		in[0] = (char)c;
		snprintf(want, sizeof(want), "\"\\u%04x\"", c);
		check_string(in, want);
	}
}

static void test_string_bounds(void **state)
{
	const char *in = "q\"b\\c\x01\xc3\xa9z";
	char full[64], *buf;
	size_t len = ctd_jsonfmt_string(in, full, sizeof(full)), cap;

	(void)state;
	assert_int_equal(len, strlen("\"q\\\"b\\\\c\\u0001\xc3\xa9z\""));
	for (cap = 0; cap <= len; cap++) {
		buf = malloc(cap + GUARD);
		assert_non_null(buf);
		memset(buf, CANARY, cap + GUARD);
		assert_int_equal(ctd_jsonfmt_string(in, buf, cap),
				 cap == len ? len : 0);
		assert_guard_intact(buf, cap, cap + GUARD);
		free(buf);
	}
}

/* ---- an independent parser ---- */

/* Reads JSON lines on stdin. Flow records: duration_ms is end_ms -
 * start_ms and start/end are the _ms values in ISO form. String probes
 * ({"s":..., "hex":...}): s decodes to exactly the bytes in hex. Exits 0
 * only if every line checks and the count is argv[1]. */
static const char checker_py[] =
	"import datetime, json, sys\n"
	"def iso(ms):\n"
	"    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)\n"
	"    return t.strftime('%Y-%m-%dT%H:%M:%S') + '.%03dZ' % (ms % 1000)\n"
	"data = sys.stdin.buffer.read()\n"
	"assert data.endswith(b'\\n'), 'last line unterminated'\n"
	"n = 0\n"
	"for raw in data.split(b'\\n')[:-1]:\n"
	"    d = json.loads(raw.decode('utf-8'))\n"
	"    assert isinstance(d, dict), raw\n"
	"    if d.get('type') == 'flow':\n"
	"        assert d['v'] == 1, raw\n"
	"        assert d['duration_ms'] == d['end_ms'] - d['start_ms'], raw\n"
	"        assert d['start'] == iso(d['start_ms']), raw\n"
	"        assert d['end'] == iso(d['end_ms']), raw\n"
	"    else:\n"
	"        assert d['s'].encode('utf-8') == bytes.fromhex(d['hex']), raw\n"
	"    n += 1\n"
	"sys.exit(0 if n == int(sys.argv[1]) else 3)\n";

static const char *const probes[] = {
	"", "plain", "q\"uote", "back\\slash", "\x01\x02\x1f", "line\nfeed",
	"tab\tcr\r", "a/b\x7f", "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e",
	"\\\"\\\"\n",
};

/* One line: {"s":<ctd_jsonfmt_string(s)>,"hex":"<bytes of s>"} */
static void write_probe(FILE *p, const char *s)
{
	char buf[256];
	size_t n = ctd_jsonfmt_string(s, buf, sizeof(buf));
	const unsigned char *u;

	assert_true(n > 0);
	fputs("{\"s\":", p);
	assert_int_equal(fwrite(buf, 1, n, p), n);
	fputs(",\"hex\":\"", p);
	for (u = (const unsigned char *)s; *u; u++)
		fprintf(p, "%02x", *u);
	fputs("\"}\n", p);
}

static void write_record(FILE *p, const struct ctd_record *r)
{
	char *line = render(r);

	assert_int_equal(fputs(line, p) >= 0, 1);
	free(line);
}

/* Every shape, every end reason, all status bits, and the probes. */
static size_t feed_checker(FILE *p)
{
	struct ctd_record r;
	size_t i, lines = 0;

	for (i = 0; i < N_SHAPES; i++, lines++) {
		shapes[i].build(&r);
		write_record(p, &r);
	}
	for (i = 0; i <= CTD_END__COUNT; i++, lines++) {
		tcp6(&r);
		r.end_reason = (uint8_t)i;
		r.status = UINT32_MAX;
		write_record(p, &r);
	}
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++, lines++)
		write_probe(p, probes[i]);
	return lines;
}

/* Returns the checker's wait status. */
static int run_checker(const char *script)
{
	char cmd[256];
	size_t expect;
	FILE *p;

	/* Two passes: the first only counts the lines for the command. */
	p = fopen("/dev/null", "w");
	assert_non_null(p);
	expect = feed_checker(p);
	fclose(p);

	snprintf(cmd, sizeof(cmd), "python3 %s %zu", script, expect);
	p = popen(cmd, "w");
	assert_non_null(p);
	feed_checker(p);
	return pclose(p);
}

/* ---- record-labels ---- */

/* Sets label bit b as ctnetlink carries it (host-order 32-bit words). */
static void set_label(struct ctd_record *r, unsigned b)
{
	uint32_t w;

	memcpy(&w, r->labels + b / 32 * 4, sizeof(w));
	w |= 1u << (b % 32);
	memcpy(r->labels + b / 32 * 4, &w, sizeof(w));
	r->flags |= CTD_REC_LABELS;
}

static struct ctd_connlabel *names_from(const char *text)
{
	struct ctd_connlabel *m = ctd_connlabel_new();
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	assert_non_null(m);
	assert_non_null(f);
	assert_int_equal(ctd_connlabel_read(m, f), 0);
	fclose(f);
	return m;
}

/* Renders with names into a CTD_JSON_MAX buffer, NUL-terminated. */
static size_t render_labels(const struct ctd_record *r,
			    const struct ctd_connlabel *names, char *buf)
{
	size_t n = ctd_jsonfmt_record_labels(r, names, buf, CTD_JSON_MAX - 1);

	assert_true(n > 0);
	buf[n] = '\0';
	return n;
}

/* The plain line with ,"labels":[...] before its closing brace. */
static void assert_labels(const struct ctd_record *r,
			  const struct ctd_connlabel *names, const char *tail)
{
	char *plain = render(r), got[CTD_JSON_MAX], want[CTD_JSON_MAX];
	size_t n = strlen(plain);

	assert_true(n > 2);
	snprintf(want, sizeof(want), "%.*s%s}\n", (int)(n - 2), plain, tail);
	render_labels(r, names, got);
	if (strcmp(got, want) != 0)
		fail_msg("got  %s want %s", got, want);
	free(plain);
}

/* Names where connlabel.conf has them, bit numbers (strings) where not,
 * in bit order; a record without labels, or record-labels off (no
 * table), renders as before. */
static void test_labels(void **state)
{
	struct ctd_connlabel *names = names_from("1 web\n100 blocked\n");
	struct ctd_connlabel *none = ctd_connlabel_new();
	struct ctd_record r;

	(void)state;
	udp4(&r);
	assert_labels(&r, names, "");
	set_label(&r, 100);
	set_label(&r, 1);
	set_label(&r, 5);
	set_label(&r, 127);
	assert_labels(&r, names, ",\"labels\":[\"web\",\"5\",\"blocked\",\"127\"]");
	assert_labels(&r, none, ",\"labels\":[\"1\",\"5\",\"100\",\"127\"]");
	assert_labels(&r, NULL, "");
	r.flags &= ~(uint32_t)CTD_REC_LABELS;
	assert_labels(&r, names, "");
	/* The kernel sends an all-zero bitmap once a label was cleared. */
	udp4(&r);
	r.flags |= CTD_REC_LABELS;
	assert_labels(&r, names, "");
	tcp6(&r);
	set_label(&r, 0);
	r.events = 1u << CTD_EV_NEW;
	assert_labels(&r, none, ",\"labels\":[\"0\"]");
	ctd_connlabel_free(names);
	ctd_connlabel_free(none);
}

/* Every bit set, each named with the longest name kept: the line still
 * fits CTD_JSON_MAX, and no cap short of it writes past the buffer. */
static void test_labels_worst_case(void **state)
{
	char text[CTD_CONNLABEL_BITS * (CTD_CONNLABEL_NAME_MAX + 8)] = "";
	char line[CTD_JSON_MAX], *buf;
	struct ctd_connlabel *names;
	struct ctd_record r;
	size_t len;

	(void)state;
	for (unsigned b = 0; b < CTD_CONNLABEL_BITS; b++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "%u %0*u\n", b, CTD_CONNLABEL_NAME_MAX, b);
	names = names_from(text);
	assert_int_equal(ctd_connlabel_count(names), CTD_CONNLABEL_BITS);
	worst_case(&r);
	for (unsigned b = 0; b < CTD_CONNLABEL_BITS; b++)
		set_label(&r, b);
	len = render_labels(&r, names, line);
	print_message("worst-case line with labels: %zu of %d bytes\n", len,
		      CTD_JSON_MAX);
	assert_int_equal(line[len - 1], '\n');
	buf = malloc(len + GUARD);
	assert_non_null(buf);
	for (size_t cap = 0; cap < len; cap++) {
		memset(buf, CANARY, len + GUARD);
		assert_int_equal(ctd_jsonfmt_record_labels(&r, names, buf, cap), 0);
		assert_guard_intact(buf, cap, len + GUARD);
	}
	free(buf);
	ctd_connlabel_free(names);
}

/* A missing python3 fails the test: it must not pass by doing nothing. */
static void test_python_parses(void **state)
{
	char script[] = "/tmp/ctd-jsoncheck-XXXXXX.py";
	int fd, status;

	(void)state;
	fd = mkstemps(script, 3);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, checker_py, sizeof(checker_py) - 1),
			 (ssize_t)(sizeof(checker_py) - 1));
	close(fd);
	status = run_checker(script);
	unlink(script);
	if (status == -1 || !WIFEXITED(status))
		fail_msg("python3 checker did not run (status %d)", status);
	if (WEXITSTATUS(status) == 127)
		fail_msg("python3 not found: this test needs it to parse the JSON");
	if (WEXITSTATUS(status) != 0)
		fail_msg("python3 rejected the JSON lines (exit %d, see stderr)",
			 WEXITSTATUS(status));
}

/* ctd's IPv6 formatter writes what inet_ntop writes: zero runs of every
 * length and place, ties, IPv4-mapped and -compatible addresses. */
static void test_ipv6_like_inet_ntop(void **state)
{
	static const char *const fixed[] = {
		"::", "::1", "1::", "::2:3", "::ffff:1.2.3.4", "::1.2.3.4",
		"1:0:0:2:0:0:0:3", "1:0:0:2:0:0:3:4", "1:0:2:0:3:0:4:0",
		"fe80::1", "2001:db8::ff00:42:8329", "::ffff:0:1.2.3.4",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0:0:1::",
	};
	uint8_t a[16];
	char want[INET6_ADDRSTRLEN], got[INET6_ADDRSTRLEN];
	unsigned seed = 1;

	(void)state;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		assert_int_equal(inet_pton(AF_INET6, fixed[i], a), 1);
		inet_ntop(AF_INET6, a, want, sizeof(want));
		got[ctd_jsonfmt_ipv6(a, got)] = '\0';
		assert_string_equal(got, want);
	}
	for (int n = 0; n < 200000; n++) {
		for (int g = 0; g < 8; g++) {
			seed = seed * 1103515245u + 12345u;
			/* Mostly zero groups, so every run shape comes up. */
			unsigned v = (seed >> 16) % 3 ? 0 : (seed >> 8) & 0xffff;

			if ((seed >> 28) == 0)
				v = 0xffff;
			a[2 * g] = (uint8_t)(v >> 8);
			a[2 * g + 1] = (uint8_t)v;
		}
		inet_ntop(AF_INET6, a, want, sizeof(want));
		got[ctd_jsonfmt_ipv6(a, got)] = '\0';
		assert_string_equal(got, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_lines),
		cmocka_unit_test(test_ipv6_like_inet_ntop),
		cmocka_unit_test(test_deltas),
		cmocka_unit_test(test_event_records),
		cmocka_unit_test(test_icmp_type_code_split),
		cmocka_unit_test(test_proto_names_and_numbers),
		cmocka_unit_test(test_end_reasons),
		cmocka_unit_test(test_netns),
		cmocka_unit_test(test_status_bits),
		cmocka_unit_test(test_tcp_state_flag),
		cmocka_unit_test(test_worst_case_fits),
		cmocka_unit_test(test_record_bounds),
		cmocka_unit_test(test_string_escapes),
		cmocka_unit_test(test_string_every_control_char),
		cmocka_unit_test(test_string_bounds),
		cmocka_unit_test(test_python_parses),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_labels_worst_case),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
