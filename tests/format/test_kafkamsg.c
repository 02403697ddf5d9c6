/* Tests for src/kafkamsg.c: the message key is the original tuple in the
 * documented text form for IPv4 and IPv6, the de-duplication key tells a
 * flow's end, interim and event records apart and is the same for a
 * record produced twice, short buffers give 0, and librdkafka's
 * statistics (a sample in its documented layout) reduce to brokers up,
 * queue length and the slowest round trip. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "ctd/flows/record.h"
#include "ctd/format/kafkamsg.h"

static void make(struct ctd_record *r, int family, const char *src,
		 const char *dst)
{
	memset(r, 0, sizeof(*r));
	r->family = (uint8_t)family;
	r->proto = 17;
	r->zone = 3;
	r->id = 4130295734u;
	r->start_ns = 1795536579852000000ull;
	r->end_ns = 1795536580378000000ull;
	assert_int_equal(inet_pton(family, src, r->tuple[CTD_DIR_ORIG].src), 1);
	assert_int_equal(inet_pton(family, dst, r->tuple[CTD_DIR_ORIG].dst), 1);
	r->tuple[CTD_DIR_ORIG].sport = 40001;
	r->tuple[CTD_DIR_ORIG].dport = 53;
	/* The reply tuple (NAT) is not part of the key. */
	r->tuple[CTD_DIR_REPLY].sport = 9;
}

static void test_key(void **state)
{
	struct ctd_record r;
	char buf[CTD_KAFKAMSG_KEY_MAX];
	size_t n;

	(void)state;
	make(&r, AF_INET, "10.0.0.1", "192.0.2.53");
	n = ctd_kafkamsg_key(&r, buf, sizeof(buf));
	assert_string_equal(buf, "17 10.0.0.1 40001 192.0.2.53 53 3");
	assert_int_equal(n, strlen(buf));
	make(&r, AF_INET6, "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	r.tuple[CTD_DIR_ORIG].sport = 65535;
	r.tuple[CTD_DIR_ORIG].dport = 65535;
	r.zone = 65535;
	r.proto = 255;
	n = ctd_kafkamsg_key(&r, buf, sizeof(buf));
	assert_string_equal(buf, "255 2001:db8::1 65535 "
			    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535");
	/* Too small: 0, never a cut key. */
	assert_int_equal(ctd_kafkamsg_key(&r, buf, n), 0);
	assert_int_equal(ctd_kafkamsg_key(&r, buf, n + 1), n);
}

static void test_dedup(void **state)
{
	struct ctd_record r, interim, ev;
	char a[CTD_KAFKAMSG_KEY_MAX + 64], b[sizeof(a)], c[sizeof(a)];

	(void)state;
	make(&r, AF_INET, "10.0.0.1", "192.0.2.53");
	assert_true(ctd_kafkamsg_dedup(&r, a, sizeof(a)) > 0);
	assert_string_equal(a, "4130295734 17 10.0.0.1 40001 192.0.2.53 53 3 "
			    "1795536579852000000 destroy 1795536580378000000");
	/* The same record again (re-produced, replayed): the same key. */
	assert_true(ctd_kafkamsg_dedup(&r, b, sizeof(b)) > 0);
	assert_string_equal(a, b);
	/* An interim record and an event record of the same flow differ. */
	interim = r;
	interim.end_reason = CTD_END_ACTIVE;
	ev = r;
	ev.events = 1u << CTD_EV_NEW;
	assert_true(ctd_kafkamsg_dedup(&interim, b, sizeof(b)) > 0);
	assert_true(ctd_kafkamsg_dedup(&ev, c, sizeof(c)) > 0);
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(b, c);
	assert_int_equal(ctd_kafkamsg_dedup(&r, a, 20), 0);
}

/* Trimmed from librdkafka 2.0.2's statistics of a producer talking to
 * a 3-broker cluster with one broker down. */
static const char stats[] =
	"{\"name\":\"rdkafka#producer-1\",\"client_id\":\"rdkafka\","
	"\"type\":\"producer\",\"ts\":1,\"time\":2,\"age\":3,\"replyq\":0,"
	"\"msg_cnt\":1234,\"msg_size\":99,\"msg_max\":100000,"
	"\"brokers\":{"
	"\"GroupCoordinator\":{\"name\":\"GroupCoordinator\",\"nodeid\":-1,"
	"\"state\":\"UP\",\"rtt\":{\"min\":0,\"max\":0,\"avg\":0}},"
	"\"127.0.0.1:1/1\":{\"name\":\"127.0.0.1:1/1\",\"nodeid\":1,"
	"\"nodename\":\"127.0.0.1:1\",\"state\":\"UP\","
	"\"int_latency\":{\"min\":1,\"max\":2,\"avg\":900},"
	"\"rtt\":{\"min\":100,\"max\":400,\"avg\":250}},"
	"\"127.0.0.1:2/2\":{\"name\":\"127.0.0.1:2/2\",\"nodeid\":2,"
	"\"state\":\"UP\",\"rtt\":{\"min\":100,\"max\":900,\"avg\":700}},"
	"\"127.0.0.1:3/3\":{\"name\":\"127.0.0.1:3/3\",\"nodeid\":3,"
	"\"state\":\"DOWN\",\"rtt\":{\"min\":0,\"max\":9000,\"avg\":5000}}},"
	"\"topics\":{\"ctd-flows\":{\"topic\":\"ctd-flows\",\"partitions\":{"
	"\"0\":{\"partition\":0,\"broker\":1,\"leader\":1,\"msgq_cnt\":7}}}}}";

static void test_summary(void **state)
{
	struct ctd_kafka_summary s;

	(void)state;
	assert_int_equal(ctd_kafkamsg_summary(stats, &s), 0);
	assert_int_equal(s.brokers, 3);
	assert_int_equal(s.brokers_up, 2);
	assert_int_equal(s.queue_msgs, 1234);
	/* The slowest broker up, its rtt's avg (not int_latency's). */
	assert_int_equal(s.rtt_us, 700);
	assert_int_equal(ctd_kafkamsg_summary("{\"msg_cnt\":1}", &s), -EINVAL);
	assert_int_equal(ctd_kafkamsg_summary("not json", &s), -EINVAL);
	assert_int_equal(ctd_kafkamsg_summary("{\"brokers\":{}}", &s), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_dedup),
		cmocka_unit_test(test_summary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
