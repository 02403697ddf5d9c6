/* Tests for src/ctlogfmt.c: the exact conntrackd LogFile line for a UDP
 * flow, a NATed and marked one in a zone and a closed TCP connection
 * over IPv6; interim and event records give no line; a short buffer
 * gives none rather than a cut one. The expected lines follow what
 * conntrackd 1.4.7 wrote for the same kind of flows (test_ctlog.py
 * compares with conntrackd itself). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "ctd/flows/record.h"
#include "ctd/format/ctlogfmt.h"

static void set_tuple(struct ctd_tuple *t, int family, const char *src,
		      const char *dst, uint16_t sport, uint16_t dport)
{
	assert_int_equal(inet_pton(family, src, t->src), 1);
	assert_int_equal(inet_pton(family, dst, t->dst), 1);
	t->sport = sport;
	t->dport = dport;
}

static void udp(struct ctd_record *r)
{
	memset(r, 0, sizeof(*r));
	r->flags = CTD_REC_COUNTERS | CTD_REC_KERNEL_TIME;
	r->family = AF_INET;
	r->proto = IPPROTO_UDP;
	r->status = IPS_SEEN_REPLY | IPS_CONFIRMED;
	set_tuple(&r->tuple[0], AF_INET, "127.0.0.1", "127.0.0.1", 40000, 5555);
	set_tuple(&r->tuple[1], AF_INET, "127.0.0.1", "127.0.0.1", 5555, 40000);
	r->cnt[0] = (struct ctd_counters){ 1, 48 };
	r->cnt[1] = (struct ctd_counters){ 1, 58 };
	r->start_ns = 1795560230000000000ull;     /* Tue Nov 24 22:43:50 2026 UTC */
	r->end_ns = 1795560230400000000ull;
}

static void expect(struct ctd_ctlog *c, const struct ctd_record *r, const char *want)
{
	char buf[CTD_CTLOG_MAX];
	size_t n = ctd_ctlog_line(c, r, buf, sizeof(buf));

	assert_true(n > 0 && n < sizeof(buf));
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_lines(void **state)
{
	struct ctd_ctlog *c = ctd_ctlog_new();
	struct ctd_record r;

	(void)state;
	assert_non_null(c);
	udp(&r);
	expect(c, &r, "Tue Nov 24 22:43:50 2026\tudp      17 src=127.0.0.1 dst=127.0.0.1 "
	       "sport=40000 dport=5555 packets=1 bytes=48 src=127.0.0.1 dst=127.0.0.1 "
	       "sport=5555 dport=40000 packets=1 bytes=58 delta-time=0\n");

	/* SNAT, mark 42, zone 7, unreplied, lasting 65 s. */
	r.status = IPS_CONFIRMED | IPS_SRC_NAT;
	r.mark = 42;
	r.zone = 7;
	set_tuple(&r.tuple[1], AF_INET, "127.0.0.1", "127.0.0.7", 5556, 30001);
	r.cnt[1] = (struct ctd_counters){ 0, 0 };
	r.end_ns = r.start_ns + 65000000000ull;
	expect(c, &r, "Tue Nov 24 22:44:55 2026\tudp      17 src=127.0.0.1 dst=127.0.0.1 "
	       "sport=40000 dport=5555 packets=1 bytes=48 [UNREPLIED] src=127.0.0.1 "
	       "dst=127.0.0.7 sport=5556 dport=30001 packets=0 bytes=0 mark=42 zone=7 "
	       "delta-time=65\n");

	/* A closed TCP connection, IPv6. */
	udp(&r);
	r.family = AF_INET6;
	r.proto = IPPROTO_TCP;
	r.flags |= CTD_REC_TCPSTATE;
	r.tcp_state = TCP_CONNTRACK_TIME_WAIT;
	r.status |= IPS_ASSURED;
	set_tuple(&r.tuple[0], AF_INET6, "::1", "::1", 49018, 6000);
	set_tuple(&r.tuple[1], AF_INET6, "::1", "::1", 6000, 49018);
	expect(c, &r, "Tue Nov 24 22:43:50 2026\ttcp      6 TIME_WAIT src=::1 dst=::1 "
	       "sport=49018 dport=6000 packets=1 bytes=48 src=::1 dst=::1 sport=6000 "
	       "dport=49018 packets=1 bytes=58 [ASSURED] delta-time=0\n");
	ctd_ctlog_free(c);
}

static void test_no_line(void **state)
{
	struct ctd_ctlog *c = ctd_ctlog_new();
	struct ctd_record r;
	char buf[CTD_CTLOG_MAX];

	(void)state;
	udp(&r);
	r.end_reason = CTD_END_ACTIVE;
	assert_int_equal(ctd_ctlog_line(c, &r, buf, sizeof(buf)), 0);
	udp(&r);
	r.events = 1u << 0;
	assert_int_equal(ctd_ctlog_line(c, &r, buf, sizeof(buf)), 0);
	udp(&r);
	assert_int_equal(ctd_ctlog_line(c, &r, buf, 40), SIZE_MAX);
	assert_int_equal(ctd_ctlog_text(c, &r, buf, 20), 0);
	ctd_ctlog_free(c);
	ctd_ctlog_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_no_line),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
