/* Tests for src/delivery/dest.c, one output's books: a record taken is
 * held until the output's settled count passes it, then delivered (and
 * counted by how it came); one the output has no settled op for is
 * final at once; one the output gave up moves from delivered to failed;
 * failures count by reason; the taken ring grows through the budget and
 * refuses past its bound; records = delivered + failed + held after
 * every gauge update. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/base/membudget.h"
#include "ctd/delivery/dest.h"
#include "ctd/delivery/retry.h"
#include "ctd/flows/record.h"
#include "ctd/outputs/output.h"
#include "fake_output.h"

struct fixture {
	struct fake_output out;
	struct ctd_membudget budget;
	struct ctd_dest t;
};

static uint32_t no_random(void *arg)
{
	(void)arg;
	return 0;
}

static struct fixture *make(void)
{
	static struct fixture fx;
	struct ctd_retry_cfg rc = { 1000, 16, no_random, NULL, NULL };

	memset(&fx, 0, sizeof(fx));
	fake_output_init(&fx.out, "fake", true);
	fx.t.out = &fx.out.base;
	fx.t.st = &fx.out.base.stats;
	fx.t.budget = &fx.budget;
	fx.t.retry = ctd_retry_new(&rc);
	assert_non_null(fx.t.retry);
	return &fx;
}

static void drop(struct fixture *fx)
{
	ctd_retry_free(fx->t.retry);
	free(fx->t.taken);
}

static void assert_identity(struct ctd_dest *t)
{
	const struct ctd_out_stats *s = t->st;

	ctd_dest_update_gauges(t);
	assert_int_equal(s->records, s->delivered + s->failed + s->held);
}

/* What delivery does when the output took a new record. */
static void take(struct ctd_dest *t, uint32_t flags)
{
	struct ctd_record rec = { .id = 1 };

	t->st->records++;
	assert_false(ctd_dest_taken_full(t));
	ctd_dest_took(t, &rec, flags, 0);
}

static void test_final_when_settled(void **state)
{
	struct fixture *fx = make();

	(void)state;
	take(&fx->t, 0);
	take(&fx->t, CTD_TAKEN_RETRIED);
	take(&fx->t, 0);
	assert_identity(&fx->t);
	assert_int_equal(fx->t.st->held, 3);
	fx->out.final = 2;              /* the first two are final */
	ctd_dest_settle(&fx->t);
	assert_identity(&fx->t);
	assert_int_equal(fx->t.st->delivered, 2);
	assert_int_equal(fx->t.st->retried, 1);
	assert_int_equal(fx->t.st->held, 1);
	fx->out.final = 3;
	ctd_dest_settle(&fx->t);
	assert_identity(&fx->t);
	assert_int_equal(fx->t.st->held, 0);
	drop(fx);
}

static void test_final_at_once_without_settled(void **state)
{
	struct fixture *fx = make();
	struct ctd_output_ops ops = *fx->out.base.ops;

	(void)state;
	ops.settled = NULL;
	fx->out.base.ops = &ops;
	take(&fx->t, 0);
	assert_identity(&fx->t);
	assert_int_equal(fx->t.st->delivered, 1);
	assert_int_equal(fx->t.taken_n, 0);
	drop(fx);
}

/* Taken, then given up by the output (it counted failed_output). */
static void test_given_up(void **state)
{
	struct fixture *fx = make();

	(void)state;
	take(&fx->t, 0);
	take(&fx->t, 0);
	fx->out.base.given_up = 1;
	fx->out.base.stats.failed_output = 1;
	fx->out.final = 2;
	ctd_dest_settle(&fx->t);
	assert_identity(&fx->t);
	assert_int_equal(fx->t.st->delivered, 1);
	assert_int_equal(fx->t.st->failed, 1);
	drop(fx);
}

static void test_fail_by_reason(void **state)
{
	struct fixture *fx = make();

	(void)state;
	fx->t.st->records += 3;
	ctd_dest_fail(&fx->t, &fx->t.st->failed_render, 1);
	ctd_dest_fail(&fx->t, &fx->t.st->failed_shutdown, 2);
	assert_identity(&fx->t);
	assert_int_equal(fx->t.st->failed, 3);
	assert_int_equal(fx->t.st->failed_render, 1);
	assert_int_equal(fx->t.st->failed_shutdown, 2);
	drop(fx);
}

/* The ring grows charged to the budget (even past it), and is given
 * back once empty when large; 65,536 records at most, unless the output
 * says how many it holds (the flow store: 262,144). */
static void test_taken_ring_bounds(void **state)
{
	struct fixture *fx = make();
	size_t n = 0;

	(void)state;
	fx->budget.max = 1;              /* already passed: charged anyway */
	while (!ctd_dest_taken_full(&fx->t)) {
		take(&fx->t, 0);
		n++;
	}
	assert_int_equal(n, 65536);
	assert_int_equal(fx->budget.held,
			 fx->t.taken_cap * sizeof(struct ctd_taken));
	assert_identity(&fx->t);
	fx->out.final = n;
	ctd_dest_settle(&fx->t);
	assert_int_equal(fx->t.taken_cap, 0);
	assert_int_equal(fx->budget.held, 0);
	assert_identity(&fx->t);
	fx->out.base.taken_max = 70000;
	for (n = 0; !ctd_dest_taken_full(&fx->t); n++)
		take(&fx->t, 0);
	assert_int_equal(n, 70000);
	fx->out.final += n;
	ctd_dest_settle(&fx->t);
	assert_identity(&fx->t);
	drop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_final_when_settled),
		cmocka_unit_test(test_final_at_once_without_settled),
		cmocka_unit_test(test_given_up),
		cmocka_unit_test(test_fail_by_reason),
		cmocka_unit_test(test_taken_ring_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
