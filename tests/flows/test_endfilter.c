/* Tests for src/endfilter.c: no false negatives for the last n keys
 * added, a false-positive rate near the design's 1/50000 at capacity,
 * keys two generations old forgotten, and the turn of a generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctd/flows/endfilter.h"

static uint64_t key(uint64_t i)
{
	uint64_t h = i * 0x9e3779b97f4a7c15ULL;

	h ^= h >> 31;
	return h * 0xbf58476d1ce4e5b9ULL;
}

static void test_members_and_strangers(void **state)
{
	struct ctd_endfilter *f = ctd_endfilter_new(10000);
	unsigned fp = 0;

	(void)state;
	assert_non_null(f);
	for (uint64_t i = 0; i < 10000; i++)
		ctd_endfilter_add(f, key(i));
	for (uint64_t i = 0; i < 10000; i++)
		assert_true(ctd_endfilter_maybe(f, key(i)));
	for (uint64_t i = 1000000; i < 1100000; i++)
		fp += ctd_endfilter_maybe(f, key(i));
	/* 100,000 strangers: about 2 expected, 20 is far out. */
	assert_true(fp < 20);
	ctd_endfilter_free(f);
}

static void test_generations(void **state)
{
	struct ctd_endfilter *f = ctd_endfilter_new(1024);
	unsigned old = 0;

	(void)state;
	for (uint64_t i = 0; i < 1024 * 3; i++)
		ctd_endfilter_add(f, key(i));
	/* The last full generation and the current one are kept. */
	for (uint64_t i = 1024; i < 1024 * 3; i++)
		assert_true(ctd_endfilter_maybe(f, key(i)));
	for (uint64_t i = 0; i < 1024; i++)
		old += ctd_endfilter_maybe(f, key(i));
	assert_true(old < 20);
	ctd_endfilter_free(f);
}

/* Around a generation's turn: the newer one full, then empty again
 * while the older one holds every key. An empty filter knows nothing. */
static void test_turn(void **state)
{
	struct ctd_endfilter *f = ctd_endfilter_new(1024);

	(void)state;
	for (uint64_t i = 0; i < 1000; i++) {
		ctd_endfilter_prefetch(f, key(i));
		assert_false(ctd_endfilter_maybe(f, key(i)));
	}
	for (uint64_t i = 0; i < 1024; i++)
		ctd_endfilter_add(f, key(i));
	for (uint64_t i = 0; i < 1024; i++)
		assert_true(ctd_endfilter_maybe(f, key(i)));
	ctd_endfilter_add(f, key(1024));
	for (uint64_t i = 0; i <= 1024; i++) {
		ctd_endfilter_prefetch(f, key(i));
		assert_true(ctd_endfilter_maybe(f, key(i)));
	}
	ctd_endfilter_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_members_and_strangers),
		cmocka_unit_test(test_generations),
		cmocka_unit_test(test_turn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
