/* Tests for src/jsonfmt.c: exact lines for each record shape (the format
 * contract of docs/json-records.md), escaping, bounds, and that every line
 * parses as JSON (checked by python3's json module, an independent
 * parser). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "ctd/jsonfmt.h"
#include "ctd/record.h"

#define START_NS 1795536000123000000ULL   /* 2026-11-24T16:00:00.123Z */
#define END_NS   1795536030456999999ULL   /* 2026-11-24T16:00:30.456Z */

static void udp4(struct ctd_record *r)
{
	memset(r, 0, sizeof(*r));
	r->flags = CTD_REC_COUNTERS | CTD_REC_KERNEL_TIME | CTD_REC_NEW_SEEN |
		   CTD_REC_START_SEEN;
	r->family = AF_INET;
	r->proto = IPPROTO_UDP;
	r->id = 285046499;
	r->status = IPS_SEEN_REPLY | IPS_CONFIRMED;
	r->mark = 42;
	r->zone = 3;
	inet_pton(AF_INET, "192.0.2.1", r->tuple[CTD_DIR_ORIG].src);
	inet_pton(AF_INET, "198.51.100.7", r->tuple[CTD_DIR_ORIG].dst);
	r->tuple[CTD_DIR_ORIG].sport = 55091;
	r->tuple[CTD_DIR_ORIG].dport = 53;
	inet_pton(AF_INET, "198.51.100.7", r->tuple[CTD_DIR_REPLY].src);
	inet_pton(AF_INET, "203.0.113.9", r->tuple[CTD_DIR_REPLY].dst);
	r->tuple[CTD_DIR_REPLY].sport = 53;
	r->tuple[CTD_DIR_REPLY].dport = 61000;
	r->cnt[CTD_DIR_ORIG] = (struct ctd_counters){ 1, 38 };
	r->cnt[CTD_DIR_REPLY] = (struct ctd_counters){ 2, 18446744073709551615ULL };
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

static void check_line(const struct ctd_record *r, const char *want)
{
	char buf[CTD_JSON_MAX];
	size_t n = ctd_jsonfmt_record(r, buf, sizeof(buf));

	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
}

static void test_udp4_every_field(void **state)
{
	struct ctd_record r;

	(void)state;
	udp4(&r);
	check_line(&r, udp4_line);
}

static void test_tcp6_state_status(void **state)
{
	struct ctd_record r;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.flags = CTD_REC_TCPSTATE;
	r.end_reason = CTD_END_EXPIRED;
	r.family = AF_INET6;
	r.proto = IPPROTO_TCP;
	r.tcp_state = TCP_CONNTRACK_TIME_WAIT;
	r.status = IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED | IPS_DST_NAT;
	r.id = 7;
	inet_pton(AF_INET6, "2001:db8::1", r.tuple[CTD_DIR_ORIG].src);
	inet_pton(AF_INET6, "::1", r.tuple[CTD_DIR_ORIG].dst);
	inet_pton(AF_INET6, "fe80::a:b:c:d", r.tuple[CTD_DIR_REPLY].src);
	inet_pton(AF_INET6, "2001:db8:0:0:1::", r.tuple[CTD_DIR_REPLY].dst);
	r.tuple[CTD_DIR_ORIG].sport = 1;
	r.tuple[CTD_DIR_ORIG].dport = 65535;
	r.start_ns = START_NS;
	r.end_ns = START_NS;
	check_line(&r,
		"{\"v\":1,\"type\":\"flow\",\"end_reason\":\"expired\",\"id\":7,"
		"\"family\":\"ipv6\",\"proto\":\"tcp\",\"proto_num\":6,"
		"\"orig\":{\"src\":\"2001:db8::1\",\"dst\":\"::1\",\"sport\":1,"
		"\"dport\":65535},"
		"\"reply\":{\"src\":\"fe80::a:b:c:d\",\"dst\":\"2001:db8:0:0:1::\","
		"\"sport\":0,\"dport\":0},"
		"\"start\":\"2026-11-24T16:00:00.123Z\",\"start_ms\":1795536000123,"
		"\"end\":\"2026-11-24T16:00:00.123Z\",\"end_ms\":1795536000123,"
		"\"duration_ms\":0,\"time_source\":\"ctd\",\"tcp_state\":\"TIME_WAIT\","
		"\"status\":[\"SEEN_REPLY\",\"ASSURED\",\"CONFIRMED\",\"DST_NAT\"],"
		"\"mark\":0,\"zone\":0,\"new_seen\":false,\"start_seen\":false}\n");
}

static void test_icmp_and_unknown_proto(void **state)
{
	struct ctd_record r;
	char buf[CTD_JSON_MAX];
	size_t n;

	(void)state;
	udp4(&r);
	r.proto = IPPROTO_ICMP;
	r.tuple[CTD_DIR_ORIG].sport = 4660;          /* echo id */
	r.tuple[CTD_DIR_ORIG].dport = 8 << 8;        /* echo request */
	r.tuple[CTD_DIR_REPLY].dport = 0;            /* echo reply */
	n = ctd_jsonfmt_record(&r, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"proto\":\"icmp\",\"proto_num\":1,"));
	assert_non_null(strstr(buf, "\"dst\":\"198.51.100.7\",\"icmp_type\":8,"
				    "\"icmp_code\":0,\"icmp_id\":4660,\"packets\":1"));
	assert_null(strstr(buf, "sport"));
	r.proto = 253;
	n = ctd_jsonfmt_record(&r, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"proto\":\"253\",\"proto_num\":253,"));
	r.proto = 47;
	n = ctd_jsonfmt_record(&r, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"proto\":\"gre\",\"proto_num\":47,"));
	r.proto = 4;
	n = ctd_jsonfmt_record(&r, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"proto\":\"4\",\"proto_num\":4,"));
}

static void test_deltas(void **state)
{
	struct ctd_record r;
	char buf[CTD_JSON_MAX];
	size_t n;

	(void)state;
	udp4(&r);
	r.end_reason = CTD_END_ACTIVE;
	r.flags |= CTD_REC_DELTA;
	r.delta[CTD_DIR_ORIG] = (struct ctd_counters){ 1, 2 };
	r.delta[CTD_DIR_REPLY] = (struct ctd_counters){ 3, 4 };
	n = ctd_jsonfmt_record(&r, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"end_reason\":\"active\""));
	assert_non_null(strstr(buf, "\"bytes\":38,\"delta_packets\":1,\"delta_bytes\":2}"));
	assert_non_null(strstr(buf, "\"delta_packets\":3,\"delta_bytes\":4}"));
}

/* Every cap short of the line fails cleanly and writes nothing past it. */
static void test_bounds(void **state)
{
	struct ctd_record r;
	size_t len = strlen(udp4_line), cap;
	char *buf = malloc(len + 16);

	(void)state;
	assert_non_null(buf);
	udp4(&r);
	for (cap = 0; cap < len; cap++) {
		memset(buf, 'Z', len + 16);
		assert_int_equal(ctd_jsonfmt_record(&r, buf, cap), 0);
		assert_int_equal(buf[cap], 'Z');
	}
	assert_int_equal(ctd_jsonfmt_record(&r, buf, len), len);
	free(buf);
}

static void test_escaping(void **state)
{
	char buf[64];
	size_t n;

	(void)state;
	n = ctd_jsonfmt_string("a\"b\\c\x01\n\x1f\xc3\xa9", buf, sizeof(buf));
	assert_int_equal(n, strlen("\"a\\\"b\\\\c\\u0001\\u000a\\u001f\xc3\xa9\""));
	assert_memory_equal(buf, "\"a\\\"b\\\\c\\u0001\\u000a\\u001f\xc3\xa9\"", n);
	assert_int_equal(ctd_jsonfmt_string("abc", buf, 4), 0);
}

/* An independent parser agrees these are JSON objects, one per line. */
static void test_python_parses(void **state)
{
	struct ctd_record r;
	char buf[CTD_JSON_MAX];
	FILE *p = popen("python3 -c 'import json,sys; "
			"[json.loads(l) for l in sys.stdin]; print(\"ok\")' "
			">/dev/null", "w");
	size_t n;
	int i;

	(void)state;
	assert_non_null(p);
	for (i = 0; i < 4; i++) {
		udp4(&r);
		r.end_reason = (uint8_t)i;
		r.family = i % 2 ? AF_INET6 : AF_INET;
		r.flags ^= (uint32_t)i;
		r.status = 0xffffu;
		n = ctd_jsonfmt_record(&r, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(fwrite(buf, 1, n, p), n);
	}
	assert_int_equal(pclose(p), 0);
}

/* The longest record ctd can make fits CTD_JSON_MAX: a line that did
 * not would be a dropped record. */
static void test_worst_case_fits(void **state)
{
	struct ctd_record r;
	char buf[CTD_JSON_MAX];
	size_t d, n;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.flags = 0xffffffffu;
	r.end_reason = CTD_END_EXPIRED;
	r.family = AF_INET6;
	r.proto = IPPROTO_TCP;
	r.tcp_state = TCP_CONNTRACK_SYN_SENT2;
	r.status = 0xffffffffu;
	r.id = r.mark = 0xffffffffu;
	r.zone = 0xffff;
	for (d = 0; d < CTD_DIR__COUNT; d++) {
		inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
			  r.tuple[d].src);
		inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd",
			  r.tuple[d].dst);
		r.tuple[d].sport = r.tuple[d].dport = 65535;
		r.cnt[d].packets = r.cnt[d].bytes = UINT64_MAX;
		r.delta[d].packets = r.delta[d].bytes = UINT64_MAX;
	}
	r.start_ns = 0;
	r.end_ns = UINT64_MAX;
	n = ctd_jsonfmt_record(&r, buf, sizeof(buf));
	assert_true(n > 0);
	print_message("worst-case line: %zu of %d bytes\n", n, CTD_JSON_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_udp4_every_field),
		cmocka_unit_test(test_tcp6_state_status),
		cmocka_unit_test(test_icmp_and_unknown_proto),
		cmocka_unit_test(test_deltas),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_python_parses),
		cmocka_unit_test(test_worst_case_fits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
