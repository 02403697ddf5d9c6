/* Tests for src/textfmt.c: the `ctd -f` line. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>
#include <cmocka.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "ctd/record.h"
#include "ctd/textfmt.h"

#define NOW_NS 1795536000123000000ULL   /* 16:00:00.123 UTC */

static void event(struct ctd_event *ev, enum ctd_evtype type, uint8_t proto,
		  int family, const char *a, const char *b)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = (uint8_t)type;
	ev->family = (uint8_t)family;
	ev->proto = proto;
	ev->id = 99;
	ev->have = CTD_HAVE_ORIG | CTD_HAVE_REPLY;
	inet_pton(family, a, ev->tuple[CTD_DIR_ORIG].src);
	inet_pton(family, b, ev->tuple[CTD_DIR_ORIG].dst);
	inet_pton(family, b, ev->tuple[CTD_DIR_REPLY].src);
	inet_pton(family, a, ev->tuple[CTD_DIR_REPLY].dst);
	ev->tuple[CTD_DIR_ORIG].sport = ev->tuple[CTD_DIR_REPLY].dport = 40000;
	ev->tuple[CTD_DIR_ORIG].dport = ev->tuple[CTD_DIR_REPLY].sport = 53;
}

static void check(const struct ctd_event *ev, const struct ctd_record *rec,
		  const char *want)
{
	char buf[CTD_TEXT_MAX];
	size_t n = ctd_textfmt_event(ev, rec, NOW_NS, buf, sizeof(buf));

	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
}

static void test_new_udp4(void **state)
{
	struct ctd_event ev;

	(void)state;
	event(&ev, CTD_EV_NEW, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	check(&ev, NULL, "16:00:00.123Z NEW       udp  10.0.0.1:40000 -> 10.0.0.2:53 id=99\n");
}

static void test_update_tcp6_state(void **state)
{
	struct ctd_event ev;

	(void)state;
	event(&ev, CTD_EV_UPDATE, IPPROTO_TCP, AF_INET6, "2001:db8::1", "::1");
	ev.have |= CTD_HAVE_TCPSTATE;
	ev.tcp_state = TCP_CONNTRACK_ESTABLISHED;
	check(&ev, NULL, "16:00:00.123Z UPDATE    tcp  [2001:db8::1]:40000 -> "
			 "[::1]:53 ESTABLISHED id=99\n");
}

static void test_destroy_nat_counters(void **state)
{
	struct ctd_event ev;
	struct ctd_record rec;

	(void)state;
	event(&ev, CTD_EV_DESTROY, IPPROTO_UDP, AF_INET, "10.0.0.1", "10.0.0.2");
	inet_pton(AF_INET, "192.0.2.5", ev.tuple[CTD_DIR_REPLY].src);  /* DNAT */
	memset(&rec, 0, sizeof(rec));
	rec.flags = CTD_REC_COUNTERS;
	rec.start_ns = NOW_NS - 2500000000ULL;
	rec.end_ns = NOW_NS;
	rec.cnt[CTD_DIR_ORIG] = (struct ctd_counters){ 3, 300 };
	rec.cnt[CTD_DIR_REPLY] = (struct ctd_counters){ 2, 120 };
	check(&ev, &rec, "16:00:00.123Z DESTROY   udp  10.0.0.1:40000 -> 10.0.0.2:53"
			 " nat 192.0.2.5:53 -> 10.0.0.1:40000 dur=2.500s"
			 " orig=3p/300B reply=2p/120B id=99\n");
}

static void test_icmp_and_small_cap(void **state)
{
	struct ctd_event ev;
	char buf[16];

	(void)state;
	event(&ev, CTD_EV_NEW, IPPROTO_ICMP, AF_INET, "10.0.0.1", "10.0.0.2");
	ev.tuple[CTD_DIR_ORIG].sport = ev.tuple[CTD_DIR_REPLY].sport = 7;
	ev.tuple[CTD_DIR_ORIG].dport = 8 << 8;
	ev.tuple[CTD_DIR_REPLY].dport = 0;
	check(&ev, NULL, "16:00:00.123Z NEW       icmp 10.0.0.1 -> 10.0.0.2"
			 " type=8 code=0 id=7 id=99\n");
	assert_int_equal(ctd_textfmt_event(&ev, NULL, NOW_NS, buf, sizeof(buf)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_udp4),
		cmocka_unit_test(test_update_tcp6_state),
		cmocka_unit_test(test_destroy_nat_counters),
		cmocka_unit_test(test_icmp_and_small_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
