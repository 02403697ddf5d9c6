/* Tests for src/route.c: a record the filter leaves out is counted and
 * never reaches delivery; one it keeps does, once; a filter replaced
 * behind the pointer (a reload) takes effect at once; without -f events
 * go nowhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <ev.h>
#include <cmocka.h>

#include "ctd/base/stats.h"
#include "ctd/delivery/deliver.h"
#include "ctd/flows/filter.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/output.h"
#include "ctd/route.h"
#include "ctd/sync/netnstab.h"

struct fake_out {
	struct ctd_output base;
	unsigned taken;
};

static enum ctd_out_status take(struct ctd_output *out,
				const struct ctd_record *rec)
{
	(void)rec;
	((struct fake_out *)out)->taken++;
	return CTD_OUT_DELIVERED;
}

static void nothing(struct ctd_output *out)
{
	(void)out;
}

static const struct ctd_output_ops ops = { .submit = take, .flush = nothing,
					   .free = nothing };

static struct ctd_record rec_of(uint8_t proto)
{
	struct ctd_record r;

	memset(&r, 0, sizeof(r));
	r.proto = proto;
	r.family = 2;
	r.nsid = CTD_NSID_SELF;
	return r;
}

static void test_filter_then_delivery(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct ctd_deliver_cfg dc = { .grace_ms = 1000, .retry_max = 10 };
	struct ctd_stats st = { 0 };
	struct fake_out out = { .base = { .ops = &ops, .name = "fake" } };
	struct ctd_deliver *d;
	struct ctd_filter *f = ctd_filter_new();
	struct ctd_route r = { &f, NULL, NULL, NULL, &st };
	struct ctd_record udp = rec_of(17), tcp = rec_of(6);
	char why[160];

	(void)state;
	assert_int_equal(ctd_deliver_new(loop, &dc, &st, &d), 0);
	assert_int_equal(ctd_deliver_add(d, &out.base, 1u << CTD_EV_DESTROY), 0);
	r.deliver = d;
	assert_int_equal(ctd_filter_set(f, CTD_FILTER_PROTO, "udp", why,
					sizeof(why)), 0);
	ctd_route_record(&r, &udp);
	ctd_route_record(&r, &tcp);
	assert_int_equal(out.taken, 1);
	assert_int_equal(st.records_filtered, 1);
	/* A reload swaps the filter behind the pointer. */
	ctd_filter_free(f);
	f = ctd_filter_new();
	ctd_route_record(&r, &tcp);
	assert_int_equal(out.taken, 2);
	assert_int_equal(st.records_filtered, 1);
	/* No -f: events go nowhere, and nothing breaks. */
	ctd_route_event(&r, NULL, &tcp, NULL);
	ctd_deliver_free(d);
	ctd_filter_free(f);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_then_delivery),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
