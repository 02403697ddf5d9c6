/* Tests for src/timeutil.c: the record timestamp agrees with gmtime_r
 * from 1970 to the end of what 64-bit nanoseconds hold (2554), across
 * leap days and century years. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "ctd/base/timeutil.h"

static void expect_gmtime(uint64_t s, unsigned ms)
{
	char want[96], got[32];
	time_t t = (time_t)s;
	struct tm tm;

	assert_non_null(gmtime_r(&t, &tm));
	snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ms);
	assert_int_equal(ctd_fmt_iso8601_ms(s * 1000000000ULL + ms * 1000000ULL +
					    999, got, sizeof(got)), 24);
	assert_string_equal(got, want);
}

static void test_matches_gmtime(void **state)
{
	(void)state;
	for (uint64_t s = 0; s < 18446744073ULL; s += 86399ULL * 7 + 12345)
		expect_gmtime(s, (unsigned)(s % 1000));
}

static void test_calendar_edges(void **state)
{
	static const uint64_t days[] = {
		0, 59, 789, 790, 11016, 11017, 11322, 47541, 47540, 47482,
	};

	(void)state;
	/* 1970-01-01, 1972-02-29/03-01, 2000-02-29, 2100-03-01 and the
	 * last second of each of those days. */
	for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
		expect_gmtime(days[i] * 86400, 0);
		expect_gmtime(days[i] * 86400 + 86399, 999);
	}
}

static void test_short_buffer(void **state)
{
	char buf[24];

	(void)state;
	assert_int_equal(ctd_fmt_iso8601_ms(0, buf, sizeof(buf)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches_gmtime),
		cmocka_unit_test(test_calendar_edges),
		cmocka_unit_test(test_short_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
