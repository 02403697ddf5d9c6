/* Tests for src/service/restart.c: what the start says about a
 * predecessor that died. Advice to run under a service manager with an fd
 * store is given only where there was none; under one, a socket that did
 * not come back means the store itself was lost (a reboot, a power loss). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/service/restart.h"

static void test_kept(void **state)
{
	(void)state;
	assert_non_null(strstr(ctd_restart_unclean_note(true, true),
			       "socket came back"));
}

static void test_managed_no_advice(void **state)
{
	const char *note = ctd_restart_unclean_note(false, true);

	(void)state;
	assert_null(strstr(note, "run ctd under"));
	assert_non_null(strstr(note, "power loss"));
}

static void test_unmanaged_advice(void **state)
{
	(void)state;
	assert_non_null(strstr(ctd_restart_unclean_note(false, false),
			       "run ctd under a service manager with an fd store"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kept),
		cmocka_unit_test(test_managed_no_advice),
		cmocka_unit_test(test_unmanaged_advice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
