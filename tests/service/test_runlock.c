/* Tests for src/runlock.c on real files: the marks read back as what
 * they say; a second taker is refused while the first holds the lock
 * and told its pid; a holder that goes away without a mark leaves
 * "unclean" for the next one; a clean stop and a re-exec say so. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctd/service/runlock.h"
#include "tmpdir.h"

static void test_parse(void **state)
{
	long pid;

	(void)state;
	assert_int_equal(ctd_runlock_parse("", &pid), CTD_LAST_NONE);
	assert_int_equal(ctd_runlock_parse("stopped\n", &pid), CTD_LAST_STOPPED);
	assert_int_equal(ctd_runlock_parse("running 42\n", &pid),
			 CTD_LAST_UNCLEAN);
	assert_int_equal(pid, 42);
	assert_int_equal(ctd_runlock_parse("reexec 7\n", &pid), CTD_LAST_REEXEC);
	assert_int_equal(pid, 7);
	assert_int_equal(ctd_runlock_parse("garbage", &pid), CTD_LAST_NONE);
}

static void test_lifecycle(void **state)
{
	char dir[TMPDIR_MAX];
	struct ctd_runlock *a = NULL, *b = NULL;
	enum ctd_runlock_last last;
	long pid;

	(void)state;
	tmpdir_make(dir, "runlock");
	assert_int_equal(ctd_runlock_take(dir, NULL, &a, &last, &pid), 0);
	assert_int_equal(last, CTD_LAST_NONE);
	/* A second ctd on the same directory. */
	assert_int_equal(ctd_runlock_take(dir, NULL, &b, &last, &pid), -EBUSY);
	assert_int_equal(pid, (long)getpid());
	/* Gone without a mark: a crash, for the next one. */
	ctd_runlock_free(a);
	assert_int_equal(ctd_runlock_take(dir, NULL, &a, &last, &pid), 0);
	assert_int_equal(last, CTD_LAST_UNCLEAN);
	assert_int_equal(ctd_runlock_mark(a, CTD_LAST_REEXEC), 0);
	ctd_runlock_free(a);
	assert_int_equal(ctd_runlock_take(dir, NULL, &a, &last, &pid), 0);
	assert_int_equal(last, CTD_LAST_REEXEC);
	assert_int_equal(ctd_runlock_mark(a, CTD_LAST_STOPPED), 0);
	ctd_runlock_free(a);
	assert_int_equal(ctd_runlock_take(dir, NULL, &a, &last, &pid), 0);
	assert_int_equal(last, CTD_LAST_STOPPED);
	ctd_runlock_free(a);
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_lifecycle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
