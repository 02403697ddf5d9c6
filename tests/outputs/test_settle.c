/* Tests for src/settle.c: records settle in the order taken as the done
 * position passes their ends (a record of no bytes settles with the one
 * before it), the bound refuses the one too many, the ring grows without
 * losing order, a position inside a record is told apart from one on a
 * boundary, and abandoning counts everything once. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctd/outputs/settle.h"

static void test_order_and_positions(void **state)
{
	struct ctd_settle s;

	(void)state;
	ctd_settle_init(&s, 16);
	assert_int_equal(ctd_settle_take(&s, 100), 0);
	assert_int_equal(ctd_settle_take(&s, 100), 0);   /* skipped: 0 bytes */
	assert_int_equal(ctd_settle_take(&s, 250), 0);
	assert_int_equal(ctd_settle_advance(&s, 99), 0);
	assert_true(ctd_settle_inside(&s, 99));
	assert_int_equal(ctd_settle_advance(&s, 100), 2);
	assert_false(ctd_settle_inside(&s, 100));
	assert_true(ctd_settle_inside(&s, 200));
	assert_int_equal(ctd_settle_oldest_end(&s), 250);
	assert_int_equal(ctd_settle_advance(&s, 1000), 3);
	assert_int_equal(ctd_settle_pending(&s), 0);
	assert_int_equal(ctd_settle_oldest_end(&s), UINT64_MAX);
	ctd_settle_free(&s);
}

static void test_bound_and_growth(void **state)
{
	struct ctd_settle s;

	(void)state;
	ctd_settle_init(&s, 1000);
	for (uint64_t i = 1; i <= 1000; i++)
		assert_int_equal(ctd_settle_take(&s, i * 10), 0);
	assert_int_equal(ctd_settle_take(&s, 20000), -ENOSPC);
	/* Settle half, take more: the ring wraps and grows in order. */
	assert_int_equal(ctd_settle_advance(&s, 5000), 500);
	for (uint64_t i = 1001; i <= 1500; i++)
		assert_int_equal(ctd_settle_take(&s, i * 10), 0);
	for (uint64_t i = 501; i <= 1500; i++)
		assert_int_equal(ctd_settle_advance(&s, i * 10), i);
	ctd_settle_free(&s);
}

static void test_abandon(void **state)
{
	struct ctd_settle s;

	(void)state;
	ctd_settle_init(&s, 8);
	ctd_settle_take(&s, 10);
	ctd_settle_take(&s, 20);
	ctd_settle_take(&s, 30);
	assert_int_equal(ctd_settle_advance(&s, 10), 1);
	ctd_settle_abandon(&s);
	assert_int_equal(ctd_settle_pending(&s), 0);
	assert_int_equal(ctd_settle_advance(&s, 30), 3);
	assert_false(ctd_settle_inside(&s, 25));
	ctd_settle_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_positions),
		cmocka_unit_test(test_bound_and_growth),
		cmocka_unit_test(test_abandon),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
