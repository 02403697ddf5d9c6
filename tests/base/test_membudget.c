/* Tests for src/membudget.c: the budget's arithmetic, and memory-max
 * auto read from a fake tree of /proc/self/cgroup and /sys/fs/cgroup
 * (v2, v1, a parent's lower limit, "max" and v1's no-limit number). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctd/base/membudget.h"

static char root[64];

/* Writes text to root/rel, making its directories. */
static void put(const char *rel, const char *text)
{
	char path[512], cmd[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	strcpy(root, "/tmp/ctd-membudget-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd);
}

static void test_take_give(void **state)
{
	struct ctd_membudget b = { 100, 0, 0 };

	(void)state;
	assert_true(ctd_membudget_take(&b, 60));
	assert_false(ctd_membudget_take(&b, 41));
	assert_int_equal(ctd_membudget_room(&b), 40);
	ctd_membudget_charge(&b, 50);
	assert_int_equal(b.held, 110);
	assert_int_equal(ctd_membudget_room(&b), 0);
	assert_false(ctd_membudget_take(&b, 1));
	ctd_membudget_give(&b, 110);
	assert_int_equal(b.held, 0);
	assert_int_equal(b.peak, 110);
}

static uint64_t limit_of(void)
{
	uint64_t limit = 1;

	assert_int_equal(ctd_membudget_cgroup_limit(root, &limit), 0);
	return limit;
}

/* v2: the lowest memory.max from ctd's cgroup up. */
static void test_v2_lowest_on_path(void **state)
{
	(void)state;
	put("proc/self/cgroup", "0::/system.slice/ctd.service\n");
	put("sys/fs/cgroup/system.slice/ctd.service/memory.max", "max\n");
	put("sys/fs/cgroup/system.slice/memory.max", "67108864\n");
	assert_int_equal(limit_of(), 64u << 20);
	put("sys/fs/cgroup/system.slice/ctd.service/memory.max", "33554432\n");
	assert_int_equal(limit_of(), 32u << 20);
}

/* v1 (and a hybrid's empty 0:: line): the memory controller's file;
 * its no-limit value is no limit. */
static void test_v1(void **state)
{
	(void)state;
	put("proc/self/cgroup", "5:cpu,cpuacct:/x\n4:memory:/box/ctd\n0::/\n");
	put("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
	put("sys/fs/cgroup/memory/box/ctd/memory.limit_in_bytes",
	    "9223372036854771712\n");
	assert_int_equal(limit_of(), 0);
	put("sys/fs/cgroup/memory/box/memory.limit_in_bytes", "134217728\n");
	assert_int_equal(limit_of(), 128u << 20);
}

static void test_auto_share(void **state)
{
	char why[160];

	(void)state;
	assert_int_equal(ctd_membudget_auto(0), CTD_MEMBUDGET_DEFAULT);
	assert_int_equal(ctd_membudget_auto(64u << 20), 16u << 20);
	assert_int_equal(ctd_membudget_auto(8u << 20), CTD_MEMBUDGET_MIN);
	assert_int_equal(ctd_membudget_auto(64ULL << 30), CTD_MEMBUDGET_DEFAULT);
	assert_int_equal(ctd_membudget_resolve(1234, root, why, sizeof(why)), 1234);
	assert_string_equal(why, "");
	put("proc/self/cgroup", "0::/a\n");
	put("sys/fs/cgroup/a/memory.max", "67108864\n");
	assert_int_equal(ctd_membudget_resolve(SIZE_MAX, root, why, sizeof(why)),
			 16u << 20);
	assert_non_null(strstr(why, "64 MiB"));
}

/* No /proc/self/cgroup: an error; auto then means the fixed default. */
static void test_no_cgroup_file(void **state)
{
	uint64_t limit;
	char why[160];

	(void)state;
	assert_true(ctd_membudget_cgroup_limit(root, &limit) < 0);
	assert_int_equal(ctd_membudget_resolve(SIZE_MAX, root, why, sizeof(why)),
			 CTD_MEMBUDGET_DEFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_give),
		cmocka_unit_test_setup_teardown(test_v2_lowest_on_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_cgroup_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
