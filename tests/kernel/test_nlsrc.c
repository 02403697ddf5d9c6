/* Tests for src/nlsrc.c's subscription decision (the socket itself is
 * exercised by the kernel tests): DESTROY always, NEW and UPDATE only
 * when something uses them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctd/kernel/nlsrc.h"

static void test_records_only_is_destroy_only(void **state)
{
	struct ctd_nlsrc_need need = { 0 };

	(void)state;
	assert_int_equal(ctd_nlsrc_groups(&need), CTD_NLSRC_DESTROY);
}

/* Each reason alone asks for all three groups. */
static void test_each_need_joins_all(void **state)
{
	struct ctd_nlsrc_need needs[] = {
		{ .event_records = true },
		{ .text = true },
		{ .lossy = true },
		{ .all = true },
		{ .labels = true },
		{ .event_records = true, .text = true, .lossy = true, .all = true,
		  .labels = true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(needs) / sizeof(needs[0]); i++)
		assert_int_equal(ctd_nlsrc_groups(&needs[i]), CTD_NLSRC_ALL);
}

/* Whatever is decided, DESTROY is in it: records come from it. */
static void test_destroy_always(void **state)
{
	(void)state;
	for (unsigned bits = 0; bits < 32; bits++) {
		struct ctd_nlsrc_need need = {
			.event_records = bits & 1, .text = bits & 2,
			.lossy = bits & 4, .all = bits & 8, .labels = bits & 16,
		};

		assert_true(ctd_nlsrc_groups(&need) & CTD_NLSRC_DESTROY);
		assert_int_equal(!!(ctd_nlsrc_groups(&need) & CTD_NLSRC_NEW),
				 bits != 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_only_is_destroy_only),
		cmocka_unit_test(test_each_need_joins_all),
		cmocka_unit_test(test_destroy_always),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
