/* Tests for src/expiry.c with an injected clock (plain numbers). */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "ctd/flows/expiry.h"

#define S 1000000LL   /* one second in µs */

struct seen {
	struct ctd_expiry_node *nodes[64];
	size_t count;
	struct ctd_expiry *requeue;   /* when set, the callback re-touches */
	int64_t now;
};

static void collect(void *arg, struct ctd_expiry_node *n)
{
	struct seen *s = arg;

	assert_null(n->link.prev);
	assert_null(n->link.next);
	s->nodes[s->count++] = n;
	if (s->requeue)
		ctd_expiry_touch(s->requeue, n, n->cls, s->now);
}

static struct ctd_expiry *new_exp(void)
{
	uint32_t t[CTD_TMO__COUNT];
	size_t i;

	for (i = 0; i < CTD_TMO__COUNT; i++)
		t[i] = (uint32_t)(10 * (i + 1));   /* class i: 10(i+1) s */
	return ctd_expiry_new(t, 5);              /* + 5 s slack */
}

static void test_fifo_order_and_stop(void **state)
{
	struct ctd_expiry *exp = new_exp();
	struct ctd_expiry_node n[4];
	struct seen s = { 0 };
	int64_t next;
	size_t i;

	(void)state;
	memset(n, 0, sizeof(n));
	for (i = 0; i < 4; i++)          /* class 0: timeout 10 s + 5 s */
		ctd_expiry_touch(exp, &n[i], CTD_TMO_TCP_SYN_SENT, (int64_t)i * S);
	assert_int_equal(ctd_expiry_count(exp, CTD_TMO_TCP_SYN_SENT), 4);
	/* At 16.5 s, n[0] (15 s) and n[1] (16 s) are due; n[2] (17 s) is not. */
	assert_int_equal(ctd_expiry_sweep(exp, 16 * S + S / 2, 100, collect, &s, &next), 2);
	assert_ptr_equal(s.nodes[0], &n[0]);
	assert_ptr_equal(s.nodes[1], &n[1]);
	assert_int_equal(next, 17 * S);
	assert_int_equal(ctd_expiry_count(exp, CTD_TMO_TCP_SYN_SENT), 2);
	ctd_expiry_free(exp);
}

static void test_touch_moves_to_tail(void **state)
{
	struct ctd_expiry *exp = new_exp();
	struct ctd_expiry_node n[3];
	struct seen s = { 0 };
	int64_t next;

	(void)state;
	memset(n, 0, sizeof(n));
	ctd_expiry_touch(exp, &n[0], CTD_TMO_ICMP, 0);
	ctd_expiry_touch(exp, &n[1], CTD_TMO_ICMP, 1 * S);
	ctd_expiry_touch(exp, &n[2], CTD_TMO_ICMP, 2 * S);
	ctd_expiry_touch(exp, &n[0], CTD_TMO_ICMP, 3 * S);   /* refreshed */
	assert_int_equal(ctd_expiry_count(exp, CTD_TMO_ICMP), 3);
	/* ICMP is class 10: 110 s + 5 s. */
	ctd_expiry_sweep(exp, 118 * S, 100, collect, &s, &next);
	assert_int_equal(s.count, 3);
	assert_ptr_equal(s.nodes[0], &n[1]);
	assert_ptr_equal(s.nodes[1], &n[2]);
	assert_ptr_equal(s.nodes[2], &n[0]);
	assert_int_equal(next, INT64_MAX);
	ctd_expiry_free(exp);
}

static void test_class_change_and_remove(void **state)
{
	struct ctd_expiry *exp = new_exp();
	struct ctd_expiry_node a = { 0 }, b = { 0 };
	struct seen s = { 0 };
	int64_t next;

	(void)state;
	ctd_expiry_touch(exp, &a, CTD_TMO_TCP_SYN_SENT, 0);
	ctd_expiry_touch(exp, &a, CTD_TMO_TCP_ESTABLISHED, 0);
	assert_int_equal(ctd_expiry_count(exp, CTD_TMO_TCP_SYN_SENT), 0);
	assert_int_equal(ctd_expiry_count(exp, CTD_TMO_TCP_ESTABLISHED), 1);
	ctd_expiry_touch(exp, &b, CTD_TMO_GENERIC, 0);
	ctd_expiry_remove(exp, &b);
	ctd_expiry_remove(exp, &b);            /* twice is harmless */
	assert_int_equal(ctd_expiry_count(exp, CTD_TMO_GENERIC), 0);
	assert_int_equal(ctd_expiry_sweep(exp, 34 * S, 100, collect, &s, &next), 0);
	assert_int_equal(next, 35 * S);         /* established: 30 s + 5 s */
	ctd_expiry_free(exp);
}

/* The earliest deadline over all classes, whichever list holds it. */
static void test_next_deadline_across_classes(void **state)
{
	struct ctd_expiry *exp = new_exp();
	struct ctd_expiry_node a = { 0 }, b = { 0 };
	struct seen s = { 0 };
	int64_t next;

	(void)state;
	ctd_expiry_touch(exp, &a, CTD_TMO_GENERIC, 0);         /* 155 s */
	ctd_expiry_touch(exp, &b, CTD_TMO_UDP_UNREPLIED, 7 * S); /* 7+90+5 */
	ctd_expiry_sweep(exp, 0, 100, collect, &s, &next);
	assert_int_equal(next, 102 * S);
	ctd_expiry_free(exp);
}

/* A mass expiry stops at the budget and asks to be called again now. */
static void test_budget(void **state)
{
	struct ctd_expiry *exp = new_exp();
	struct ctd_expiry_node n[50];
	struct seen s = { 0 };
	int64_t next;
	size_t i;

	(void)state;
	memset(n, 0, sizeof(n));
	for (i = 0; i < 50; i++)
		ctd_expiry_touch(exp, &n[i], CTD_TMO_UDP_STREAM, 0);
	assert_int_equal(ctd_expiry_sweep(exp, 1000 * S, 20, collect, &s, &next), 20);
	assert_int_equal(next, 1000 * S);
	s.count = 0;
	assert_int_equal(ctd_expiry_sweep(exp, 1000 * S, 20, collect, &s, &next), 20);
	s.count = 0;
	assert_int_equal(ctd_expiry_sweep(exp, 1000 * S, 20, collect, &s, &next), 10);
	assert_int_equal(next, INT64_MAX);
	ctd_expiry_free(exp);
}

/* A callback that re-queues (the kernel still has the flow) must not
 * make the sweep loop: the node's new deadline lies in the future. */
static void test_requeue_from_callback(void **state)
{
	struct ctd_expiry *exp = new_exp();
	struct ctd_expiry_node n[3];
	struct seen s = { 0 };
	int64_t next;
	size_t i;

	(void)state;
	memset(n, 0, sizeof(n));
	for (i = 0; i < 3; i++)
		ctd_expiry_touch(exp, &n[i], CTD_TMO_TCP_CLOSE, 0);
	s.requeue = exp;
	s.now = 200 * S;
	assert_int_equal(ctd_expiry_sweep(exp, 200 * S, 100, collect, &s, &next), 3);
	assert_int_equal(ctd_expiry_count(exp, CTD_TMO_TCP_CLOSE), 3);
	assert_int_equal(next, 200 * S + 85 * S);   /* close: 80 s + 5 s */
	ctd_expiry_free(exp);
}

static void test_classes(void **state)
{
	(void)state;
	assert_int_equal(ctd_expiry_class(IPPROTO_TCP, TCP_CONNTRACK_TIME_WAIT, 0),
			 CTD_TMO_TCP_TIME_WAIT);
	assert_int_equal(ctd_expiry_class(IPPROTO_TCP, TCP_CONNTRACK_ESTABLISHED, 0),
			 CTD_TMO_TCP_ESTABLISHED);
	assert_int_equal(ctd_expiry_class(IPPROTO_TCP, 99, 0), CTD_TMO_TCP_ESTABLISHED);
	assert_int_equal(ctd_expiry_class(IPPROTO_UDP, 0, 0), CTD_TMO_UDP_UNREPLIED);
	assert_int_equal(ctd_expiry_class(IPPROTO_UDP, 0, IPS_SEEN_REPLY),
			 CTD_TMO_UDP_STREAM);
	assert_int_equal(ctd_expiry_class(IPPROTO_ICMPV6, 0, 0), CTD_TMO_ICMPV6);
	assert_int_equal(ctd_expiry_class(IPPROTO_GRE, 0, 0), CTD_TMO_GRE);
	assert_int_equal(ctd_expiry_class(IPPROTO_ESP, 0, 0), CTD_TMO_GENERIC);
	assert_string_equal(ctd_expiry_class_sysctl(CTD_TMO_UDP_STREAM),
			    "udp_timeout_stream");
	assert_null(ctd_expiry_class_sysctl(CTD_TMO__COUNT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_order_and_stop),
		cmocka_unit_test(test_touch_moves_to_tail),
		cmocka_unit_test(test_class_change_and_remove),
		cmocka_unit_test(test_next_deadline_across_classes),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_requeue_from_callback),
		cmocka_unit_test(test_classes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
