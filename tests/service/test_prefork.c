/* Tests for the pure parts of src/service/prefork.c: a shard reads its
 * part from CTD_SHARD ("k n fd") and refuses anything else, and its
 * directory is "base/shard-k" or -ENAMETOOLONG, never cut short. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/service/prefork.h"

static void parses_part(void **state)
{
	unsigned k = 9, n = 9;
	int fd = -1;

	(void)state;
	assert_int_equal(ctd_prefork_parse("3 4 7", 64, &k, &n, &fd), 0);
	assert_int_equal(k, 3);
	assert_int_equal(n, 4);
	assert_int_equal(fd, 7);
	assert_int_equal(ctd_prefork_parse("0 1 3", 64, &k, &n, &fd), 0);
}

static void refuses_bad(void **state)
{
	static const char *const bad[] = {
		NULL, "", "1", "1 2", "4 4 3", "0 0 3", "0 65 3", "0 2 -1",
		"0 2 3 x", "a 2 3", "1 2 3x",
	};
	unsigned k, n;
	int fd;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_int_equal(ctd_prefork_parse(bad[i], 64, &k, &n, &fd),
				 -EINVAL);
}

static void shard_dir(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(ctd_prefork_dir("/var/lib/ctd", 12, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/var/lib/ctd/shard-12");
	assert_int_equal(ctd_prefork_dir("/a/very/long/spool/directory", 1, buf,
					 sizeof(buf)), -ENAMETOOLONG);
	assert_int_equal(ctd_prefork_dir("/x", 0, buf, 11), 0);
	assert_string_equal(buf, "/x/shard-0");
	assert_int_equal(ctd_prefork_dir("/x", 0, buf, 10), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_part),
		cmocka_unit_test(refuses_bad),
		cmocka_unit_test(shard_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
