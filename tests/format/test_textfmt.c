/* Tests for src/textfmt.c: the exact `ctd -f` line for each kind of
 * event, and that a short buffer gives 0 without writing past it; the
 * [UNREPLIED]/[ASSURED] flags, local time and the END line of a flow
 * that ended without a DESTROY. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "ctd/flows/record.h"
#include "ctd/format/textfmt.h"

#define NOW_NS   1795536000123000000ULL   /* 2026-11-24T16:00:00.123Z */
#define LATER_NS 1795539661007000000ULL   /* 2026-11-24T17:01:01.007Z */

#define GUARD 64
#define CANARY 0xa5

/* An event whose reply tuple mirrors the original (no NAT), from a:40000
 * to b:53, conntrack id 99. */
static void event(struct ctd_event *ev, enum ctd_evtype type, uint8_t proto,
		  int family, const char *a, const char *b)
{
	memset(ev, 0, sizeof(*ev));
	ev->nsid = CTD_NSID_SELF;
	ev->type = (uint8_t)type;
	ev->family = (uint8_t)family;
	ev->proto = proto;
	ev->id = 99;
	ev->have = CTD_HAVE_ORIG | CTD_HAVE_REPLY | CTD_HAVE_ID;
	assert_int_equal(inet_pton(family, a, ev->tuple[CTD_DIR_ORIG].src), 1);
	assert_int_equal(inet_pton(family, b, ev->tuple[CTD_DIR_ORIG].dst), 1);
	assert_int_equal(inet_pton(family, b, ev->tuple[CTD_DIR_REPLY].src), 1);
	assert_int_equal(inet_pton(family, a, ev->tuple[CTD_DIR_REPLY].dst), 1);
	ev->tuple[CTD_DIR_ORIG].sport = ev->tuple[CTD_DIR_REPLY].dport = 40000;
	ev->tuple[CTD_DIR_ORIG].dport = ev->tuple[CTD_DIR_REPLY].sport = 53;
}

/* An ICMP echo request: dport is type << 8 | code, sport the echo id;
 * the reply is the echo reply (type 0 or 129). */
static void icmp_event(struct ctd_event *ev, uint8_t proto, int family,
		       const char *a, const char *b)
{
	bool v6 = proto == IPPROTO_ICMPV6;

	event(ev, CTD_EV_NEW, proto, family, a, b);
	ev->tuple[CTD_DIR_ORIG].sport = ev->tuple[CTD_DIR_REPLY].sport = 7;
	ev->tuple[CTD_DIR_ORIG].dport = (uint16_t)((v6 ? 128 : 8) << 8);
	ev->tuple[CTD_DIR_REPLY].dport = (uint16_t)((v6 ? 129 : 0) << 8);
}

static void record(struct ctd_record *rec, uint64_t dur_ns)
{
	memset(rec, 0, sizeof(*rec));
	rec->nsid = CTD_NSID_SELF;
	rec->flags = CTD_REC_COUNTERS;
	rec->start_ns = NOW_NS - dur_ns;
	rec->end_ns = NOW_NS;
	rec->cnt[CTD_DIR_ORIG] = (struct ctd_counters){ 3, 300 };
	rec->cnt[CTD_DIR_REPLY] = (struct ctd_counters){ 2, 120 };
}

static void check_at(const struct ctd_event *ev, const struct ctd_record *rec,
		     uint64_t now_ns, const char *want)
{
	char buf[CTD_TEXT_MAX];
	size_t n = ctd_textfmt_event(ev, rec, NULL, now_ns, NULL, buf, sizeof(buf));

	if (n != strlen(want) || memcmp(buf, want, n) != 0)
		fail_msg("\n got  %.*s want %s", (int)n, buf, want);
}

static void check(const struct ctd_event *ev, const struct ctd_record *rec,
		  const char *want)
{
	check_at(ev, rec, NOW_NS, want);
}

static void test_new_udp4(void **state)
{
	struct ctd_event ev;

	(void)state;
	event(&ev, CTD_EV_NEW, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	check(&ev, NULL, "16:00:00.123Z NEW       udp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 id=99\n");
	check_at(&ev, NULL, LATER_NS, "17:01:01.007Z NEW       udp  "
		 "10.0.0.1:40000 -> 10.0.0.2:53 id=99\n");
}

/* The state shows only when the event carried one the table can name. */
static void test_update_tcp_state(void **state)
{
	struct ctd_event ev;

	(void)state;
	event(&ev, CTD_EV_UPDATE, IPPROTO_TCP, AF_INET, "10.0.0.1", "10.0.0.2");
	ev.have |= CTD_HAVE_TCPSTATE;
	ev.tcp_state = TCP_CONNTRACK_ESTABLISHED;
	check(&ev, NULL, "16:00:00.123Z UPDATE    tcp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 ESTABLISHED id=99\n");
	ev.tcp_state = TCP_CONNTRACK_TIME_WAIT;
	check(&ev, NULL, "16:00:00.123Z UPDATE    tcp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 TIME_WAIT id=99\n");
	ev.tcp_state = 200;
	check(&ev, NULL, "16:00:00.123Z UPDATE    tcp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 id=99\n");
	ev.have &= ~(uint32_t)CTD_HAVE_TCPSTATE;
	ev.tcp_state = TCP_CONNTRACK_ESTABLISHED;
	check(&ev, NULL, "16:00:00.123Z UPDATE    tcp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 id=99\n");
}

/* A DESTROY that ends a flow adds its duration (milliseconds, as
 * end_ms - start_ms) and both directions' counters. */
static void test_destroy_with_record(void **state)
{
	struct ctd_event ev;
	struct ctd_record rec;

	(void)state;
	event(&ev, CTD_EV_DESTROY, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	record(&rec, 2500000000ULL);
	check(&ev, &rec, "16:00:00.123Z DESTROY   udp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 dur=2.500s orig=3p/300B reply=2p/120B id=99\n");
	record(&rec, 61006999999ULL);
	rec.cnt[CTD_DIR_REPLY] = (struct ctd_counters){ 0, 0 };
	check(&ev, &rec, "16:00:00.123Z DESTROY   udp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 dur=61.007s orig=3p/300B reply=0p/0B id=99\n");
	rec.flags = 0;
	rec.start_ns = NOW_NS;
	check(&ev, &rec, "16:00:00.123Z DESTROY   udp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 dur=0.000s id=99\n");
	check(&ev, NULL, "16:00:00.123Z DESTROY   udp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 id=99\n");
}

/* A reply tuple that is not the mirror of the original is NAT. */
static void test_nat(void **state)
{
	struct ctd_event ev;

	(void)state;
	event(&ev, CTD_EV_NEW, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	inet_pton(AF_INET, "192.0.2.5", ev.tuple[CTD_DIR_REPLY].src);  /* DNAT */
	check(&ev, NULL, "16:00:00.123Z NEW       udp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 nat 192.0.2.5:53 -> 10.0.0.1:40000 id=99\n");

	event(&ev, CTD_EV_NEW, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	inet_pton(AF_INET, "203.0.113.1", ev.tuple[CTD_DIR_REPLY].dst);
	ev.tuple[CTD_DIR_REPLY].dport = 61000;                        /* SNAT */
	check(&ev, NULL, "16:00:00.123Z NEW       udp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 nat 10.0.0.2:53 -> 203.0.113.1:61000 id=99\n");

	event(&ev, CTD_EV_NEW, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	ev.tuple[CTD_DIR_REPLY].sport = 5353;                    /* port only */
	check(&ev, NULL, "16:00:00.123Z NEW       udp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 nat 10.0.0.2:5353 -> 10.0.0.1:40000 id=99\n");

	/* Without a reply tuple there is nothing to compare. */
	event(&ev, CTD_EV_NEW, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	ev.have &= ~(uint32_t)CTD_HAVE_REPLY;
	memset(&ev.tuple[CTD_DIR_REPLY], 0, sizeof(ev.tuple[CTD_DIR_REPLY]));
	check(&ev, NULL, "16:00:00.123Z NEW       udp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 id=99\n");
}

static void test_ipv6_brackets(void **state)
{
	struct ctd_event ev;
	struct ctd_record rec;

	(void)state;
	event(&ev, CTD_EV_UPDATE, IPPROTO_TCP, AF_INET6, "2001:db8::1", "::1");
	ev.have |= CTD_HAVE_TCPSTATE;
	ev.tcp_state = TCP_CONNTRACK_SYN_RECV;
	check(&ev, NULL, "16:00:00.123Z UPDATE    tcp  [2001:db8::1]:40000 -> "
			 "[::1]:53 SYN_RECV id=99\n");

	event(&ev, CTD_EV_DESTROY, IPPROTO_UDP, AF_INET6, "2001:db8::1",
	      "2001:db8:0:1:1:1:1:1");
	inet_pton(AF_INET6, "fe80::5", ev.tuple[CTD_DIR_REPLY].src);
	record(&rec, 1000000ULL);
	check(&ev, &rec, "16:00:00.123Z DESTROY   udp  [2001:db8::1]:40000 -> "
			 "[2001:db8:0:1:1:1:1:1]:53 nat [fe80::5]:53 -> "
			 "[2001:db8::1]:40000 dur=0.001s orig=3p/300B "
			 "reply=2p/120B id=99\n");
}

/* ICMP has no ports: type, code and echo id follow the addresses, and
 * the type change from request to reply is not NAT. */
static void test_icmp(void **state)
{
	struct ctd_event ev;

	(void)state;
	icmp_event(&ev, IPPROTO_ICMP, AF_INET, "10.0.0.1", "10.0.0.2");
	check(&ev, NULL, "16:00:00.123Z NEW       icmp 10.0.0.1 -> 10.0.0.2"
			 " type=8 code=0 icmp_id=7 id=99\n");

	inet_pton(AF_INET, "203.0.113.1", ev.tuple[CTD_DIR_REPLY].dst);
	check(&ev, NULL, "16:00:00.123Z NEW       icmp 10.0.0.1 -> 10.0.0.2"
			 " type=8 code=0 icmp_id=7 nat 10.0.0.2 -> 203.0.113.1"
			 " type=0 code=0 icmp_id=7 id=99\n");

	icmp_event(&ev, IPPROTO_ICMPV6, AF_INET6, "2001:db8::1", "2001:db8::2");
	ev.tuple[CTD_DIR_ORIG].dport |= 3;   /* the code is the low byte */
	check(&ev, NULL, "16:00:00.123Z NEW       icmpv6 2001:db8::1 -> "
			 "2001:db8::2 type=128 code=3 icmp_id=7 id=99\n");
}

/* Protocols without ports print bare addresses; unnamed ones a number. */
static void test_portless_protocols(void **state)
{
	struct ctd_event ev;

	(void)state;
	event(&ev, CTD_EV_NEW, IPPROTO_GRE, AF_INET, "10.0.0.1", "10.0.0.2");
	check(&ev, NULL, "16:00:00.123Z NEW       gre  10.0.0.1 -> 10.0.0.2 id=99\n");
	event(&ev, CTD_EV_NEW, 253, AF_INET, "10.0.0.1", "10.0.0.2");
	check(&ev, NULL, "16:00:00.123Z NEW       253  10.0.0.1 -> 10.0.0.2 id=99\n");
	event(&ev, CTD_EV_DESTROY, IPPROTO_SCTP, AF_INET, "10.0.0.1", "10.0.0.2");
	check(&ev, NULL, "16:00:00.123Z DESTROY   sctp 10.0.0.1:40000 -> "
			 "10.0.0.2:53 id=99\n");
}

/* ---- bounds ---- */

static void assert_guard_intact(const char *buf, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		if ((unsigned char)buf[i] != CANARY)
			fail_msg("byte %zu past cap %zu was written", i, from);
}

/* Every cap short of the line gives 0 and writes nothing past cap. At
 * exactly the line's length either answer is fair (the header does not
 * say whether the NUL vsnprintf adds must fit), but never a clipped
 * line; one byte more always succeeds. */
static void check_bounds(const struct ctd_event *ev,
			 const struct ctd_record *rec)
{
	char full[CTD_TEXT_MAX], *buf;
	size_t len = ctd_textfmt_event(ev, rec, NULL, NOW_NS, NULL, full, sizeof(full));
	size_t cap, n;

	assert_true(len > 0);
	for (cap = 0; cap < len; cap++) {
		buf = malloc(cap + GUARD);
		assert_non_null(buf);
		memset(buf, CANARY, cap + GUARD);
		assert_int_equal(ctd_textfmt_event(ev, rec, NULL, NOW_NS, NULL, buf, cap), 0);
		assert_guard_intact(buf, cap, cap + GUARD);
		free(buf);
	}
	buf = malloc(len + GUARD);
	assert_non_null(buf);
	memset(buf, CANARY, len + GUARD);
	n = ctd_textfmt_event(ev, rec, NULL, NOW_NS, NULL, buf, len);
	assert_true(n == 0 || (n == len && memcmp(buf, full, len) == 0));
	assert_guard_intact(buf, len, len + GUARD);
	free(buf);
	buf = malloc(len + 1 + GUARD);
	assert_non_null(buf);
	memset(buf, CANARY, len + 1 + GUARD);
	assert_int_equal(ctd_textfmt_event(ev, rec, NULL, NOW_NS, NULL, buf, len + 1), len);
	assert_memory_equal(buf, full, len);
	assert_guard_intact(buf, len + 1, len + 1 + GUARD);
	free(buf);
}

static void test_small_cap(void **state)
{
	struct ctd_event ev;
	struct ctd_record rec;

	(void)state;
	event(&ev, CTD_EV_DESTROY, IPPROTO_TCP, AF_INET6, "2001:db8::1", "::1");
	inet_pton(AF_INET6, "2001:db8::9", ev.tuple[CTD_DIR_REPLY].src);
	ev.have |= CTD_HAVE_TCPSTATE;
	ev.tcp_state = TCP_CONNTRACK_CLOSE;
	record(&rec, 2500000000ULL);
	check_bounds(&ev, &rec);
	icmp_event(&ev, IPPROTO_ICMP, AF_INET, "10.0.0.1", "10.0.0.2");
	check_bounds(&ev, NULL);
}

/* The longest line fits CTD_TEXT_MAX, or out_text would commit 0 bytes
 * and the line would vanish without a counter. */
static void test_worst_case_fits(void **state)
{
	const char *a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe";
	const char *b = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd";
	static const uint8_t protos[] = { IPPROTO_UDPLITE, IPPROTO_ICMPV6 };
	struct ctd_event ev;
	struct ctd_record rec;
	char buf[CTD_TEXT_MAX];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(protos); i++) {
		event(&ev, CTD_EV_DESTROY, protos[i], AF_INET6, a, b);
		ev.id = UINT32_MAX;
		ev.have |= CTD_HAVE_TCPSTATE;
		ev.tcp_state = TCP_CONNTRACK_ESTABLISHED;
		ev.tuple[CTD_DIR_ORIG].sport = ev.tuple[CTD_DIR_ORIG].dport = 65535;
		ev.tuple[CTD_DIR_REPLY].sport = ev.tuple[CTD_DIR_REPLY].dport = 65535;
		inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc",
			  ev.tuple[CTD_DIR_REPLY].dst);
		memset(&rec, 0, sizeof(rec));
		rec.flags = CTD_REC_COUNTERS;
		rec.end_ns = UINT64_MAX;
		memset(rec.cnt, 0xff, sizeof(rec.cnt));
		ev.have |= CTD_HAVE_STATUS;
		ev.status = IPS_ASSURED;      /* both flags: the longest */
		n = ctd_textfmt_event(&ev, &rec, NULL, NOW_NS, NULL, buf, sizeof(buf));
		assert_true(n > 0);
		assert_non_null(strstr(buf, " nat "));
		rec.family = AF_INET6;
		rec.proto = protos[i];
		memcpy(rec.tuple, ev.tuple, sizeof(rec.tuple));
		rec.status = IPS_ASSURED;
		rec.flags |= CTD_REC_TCPSTATE;
		rec.tcp_state = TCP_CONNTRACK_ESTABLISHED;
		rec.end_reason = CTD_END_NETNS_GONE;
		rec.nsid = INT32_MAX;
		memset(rec.netns, 'n', sizeof(rec.netns) - 1);
		rec.netns[sizeof(rec.netns) - 1] = '\0';
		assert_true(ctd_textfmt_end(&rec, NULL, buf, sizeof(buf)) > 0);
		rec.nsid = CTD_NSID_SELF;
		print_message("worst-case %s line: %zu of %d bytes\n",
			      i ? "icmpv6" : "udplite", n, CTD_TEXT_MAX);
	}
}

/* Another namespace's events: its name when ctd knows one, else nsid:N. */
static void test_netns(void **state)
{
	struct ctd_event ev;
	struct ctd_record rec;
	char buf[CTD_TEXT_MAX];
	size_t n;

	(void)state;
	event(&ev, CTD_EV_NEW, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	ev.nsid = 4;
	n = ctd_textfmt_event(&ev, NULL, "qrouter-1", NOW_NS, NULL, buf, sizeof(buf));
	assert_string_equal(buf, "16:00:00.123Z NEW       udp  10.0.0.1:40000 -> "
			    "10.0.0.2:53 netns=qrouter-1 id=99\n");
	assert_int_equal(n, strlen(buf));
	ctd_textfmt_event(&ev, NULL, NULL, NOW_NS, NULL, buf, sizeof(buf));
	assert_non_null(strstr(buf, " netns=nsid:4 id=99\n"));
	ctd_textfmt_event(&ev, NULL, "", NOW_NS, NULL, buf, sizeof(buf));
	assert_non_null(strstr(buf, " netns=nsid:4 id=99\n"));
	/* A DESTROY: the record's name wins. */
	record(&rec, 1000000000);
	rec.nsid = 4;
	strcpy(rec.netns, "blue");
	ev.type = CTD_EV_DESTROY;
	ctd_textfmt_event(&ev, &rec, "qrouter-1", NOW_NS, NULL, buf, sizeof(buf));
	assert_non_null(strstr(buf, " netns=blue id=99\n"));
	ev.nsid = rec.nsid = CTD_NSID_SELF;
	ctd_textfmt_event(&ev, NULL, "ignored", NOW_NS, NULL, buf, sizeof(buf));
	assert_null(strstr(buf, "netns="));
}

/* conntrack -E's flags, from the event's status when it carried one. */
static void test_status_flags(void **state)
{
	struct ctd_event ev;

	(void)state;
	event(&ev, CTD_EV_DESTROY, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	ev.have |= CTD_HAVE_STATUS;
	ev.status = IPS_CONFIRMED;
	check(&ev, NULL, "16:00:00.123Z DESTROY   udp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 [UNREPLIED] id=99\n");
	ev.status = IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED;
	ev.have |= CTD_HAVE_TCPSTATE;
	ev.proto = IPPROTO_TCP;
	ev.tcp_state = TCP_CONNTRACK_TIME_WAIT;
	check(&ev, NULL, "16:00:00.123Z DESTROY   tcp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 TIME_WAIT [ASSURED] id=99\n");
	ev.status = IPS_SEEN_REPLY;
	check(&ev, NULL, "16:00:00.123Z DESTROY   tcp  10.0.0.1:40000 -> "
			 "10.0.0.2:53 TIME_WAIT id=99\n");
}

/* Local time: shifted by the zone's offset, either way round midnight,
 * with no Z; UTC keeps its Z. */
static void test_local_time(void **state)
{
	const struct ctd_textfmt_tz east = { false, 5 * 3600 + 1800 };
	const struct ctd_textfmt_tz west = { false, -17 * 3600 };
	const struct ctd_textfmt_tz utc = { true, 3600 };
	struct ctd_event ev;
	char buf[CTD_TEXT_MAX];

	(void)state;
	event(&ev, CTD_EV_NEW, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	ctd_textfmt_event(&ev, NULL, NULL, NOW_NS, &east, buf, sizeof(buf));
	assert_string_equal(buf, "21:30:00.123 NEW       udp  10.0.0.1:40000 -> "
			    "10.0.0.2:53 id=99\n");
	ctd_textfmt_event(&ev, NULL, NULL, NOW_NS, &west, buf, sizeof(buf));
	assert_non_null(strstr(buf, "23:00:00.123 NEW "));
	ctd_textfmt_event(&ev, NULL, NULL, NOW_NS, &utc, buf, sizeof(buf));
	assert_non_null(strstr(buf, "16:00:00.123Z NEW "));
}

/* A flow ctd ended without a DESTROY: an END line with the reason, at
 * the record's end. */
static void test_end_line(void **state)
{
	struct ctd_event ev;
	struct ctd_record rec;
	char buf[CTD_TEXT_MAX];
	size_t n;

	(void)state;
	event(&ev, CTD_EV_NEW, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	record(&rec, 2500000000ULL);
	rec.family = AF_INET;
	rec.proto = IPPROTO_UDP;
	memcpy(rec.tuple, ev.tuple, sizeof(rec.tuple));
	rec.id = 99;
	rec.status = IPS_SEEN_REPLY;
	rec.end_reason = CTD_END_EXPIRED;
	rec.end_ns = LATER_NS;
	rec.start_ns = LATER_NS - 2500000000ULL;
	n = ctd_textfmt_end(&rec, NULL, buf, sizeof(buf));
	assert_string_equal(buf, "17:01:01.007Z END       udp  10.0.0.1:40000 -> "
			    "10.0.0.2:53 dur=2.500s orig=3p/300B reply=2p/120B "
			    "end=expired id=99\n");
	assert_int_equal(n, strlen(buf));
	rec.end_reason = CTD_END_LOST;
	rec.status = 0;
	ctd_textfmt_end(&rec, NULL, buf, sizeof(buf));
	assert_non_null(strstr(buf, " [UNREPLIED] dur="));
	assert_non_null(strstr(buf, " end=lost id=99\n"));
	assert_int_equal(ctd_textfmt_end(&rec, NULL, buf, 20), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_udp4),
		cmocka_unit_test(test_update_tcp_state),
		cmocka_unit_test(test_destroy_with_record),
		cmocka_unit_test(test_nat),
		cmocka_unit_test(test_ipv6_brackets),
		cmocka_unit_test(test_icmp),
		cmocka_unit_test(test_portless_protocols),
		cmocka_unit_test(test_small_cap),
		cmocka_unit_test(test_worst_case_fits),
		cmocka_unit_test(test_netns),
		cmocka_unit_test(test_status_flags),
		cmocka_unit_test(test_local_time),
		cmocka_unit_test(test_end_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
