/* Tests for src/readback.c: the final offset moves only over a run of
 * entries that are all final, whatever order they become final in; a
 * token is never 0 and a stale or unknown one changes nothing; the ring
 * grows past its first size without losing order; the last add can be
 * taken back; a restart starts the offsets again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctd/delivery/readback.h"

static void test_out_of_order(void **state)
{
	struct ctd_readback *rb = ctd_readback_new(40);
	uint64_t a, b, c;

	(void)state;
	assert_non_null(rb);
	assert_int_equal(ctd_readback_final_end(rb), 40);
	a = ctd_readback_add(rb, 100);
	b = ctd_readback_add(rb, 200);
	c = ctd_readback_add(rb, 300);
	assert_true(a != 0 && b == a + 1 && c == b + 1);
	/* The last and the middle final: the first still holds the mark. */
	ctd_readback_final(rb, c);
	ctd_readback_final(rb, b);
	assert_int_equal(ctd_readback_final_end(rb), 40);
	assert_int_equal(ctd_readback_pending(rb), 3);
	ctd_readback_final(rb, a);
	assert_int_equal(ctd_readback_final_end(rb), 300);
	assert_int_equal(ctd_readback_pending(rb), 0);
	/* Twice, stale, unknown: nothing moves. */
	ctd_readback_final(rb, a);
	ctd_readback_final(rb, c + 5);
	assert_int_equal(ctd_readback_final_end(rb), 300);
	ctd_readback_free(rb);
}

static void test_growth_keeps_order(void **state)
{
	struct ctd_readback *rb = ctd_readback_new(0);
	uint64_t first = 0, t;

	(void)state;
	/* Wrap the first ring, then grow it with the head mid-way. */
	for (uint64_t i = 1; i <= 200; i++)
		ctd_readback_final(rb, ctd_readback_add(rb, i * 10));
	assert_int_equal(ctd_readback_final_end(rb), 2000);
	for (uint64_t i = 201; i <= 1200; i++) {
		t = ctd_readback_add(rb, i * 10);
		assert_true(t != 0);
		if (!first)
			first = t;
	}
	/* Every other one final: the mark waits for the first. */
	for (uint64_t k = 1; k < 1000; k += 2)
		ctd_readback_final(rb, first + k);
	assert_int_equal(ctd_readback_final_end(rb), 2000);
	ctd_readback_final(rb, first);
	assert_int_equal(ctd_readback_final_end(rb), 2020);
	for (uint64_t k = 2; k < 1000; k += 2)
		ctd_readback_final(rb, first + k);
	assert_int_equal(ctd_readback_final_end(rb), 12000);
	assert_int_equal(ctd_readback_pending(rb), 0);
	ctd_readback_free(rb);
}

static void test_restart(void **state)
{
	struct ctd_readback *rb = ctd_readback_new(500);
	uint64_t a;

	(void)state;
	a = ctd_readback_add(rb, 600);
	ctd_readback_cancel_last(rb);
	assert_int_equal(ctd_readback_pending(rb), 0);
	assert_int_equal(ctd_readback_add(rb, 600), a);
	ctd_readback_final(rb, a);
	ctd_readback_restart(rb, 0);
	assert_int_equal(ctd_readback_final_end(rb), 0);
	/* A token from before the restart is stale. */
	assert_true(ctd_readback_add(rb, 50) > a);
	ctd_readback_final(rb, a);
	assert_int_equal(ctd_readback_final_end(rb), 0);
	ctd_readback_free(rb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_growth_keeps_order),
		cmocka_unit_test(test_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
