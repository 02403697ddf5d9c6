/* Tests for src/base/timeparse.c: durations with each unit and the ones
 * refused; ISO 8601 with Z, offsets and milliseconds; local times under
 * two zones (one with DST) set through TZ; @epoch, now and "ago" counted
 * from an injected now. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "ctd/base/timeparse.h"

#define NOW_MS 1796486400000ull   /* 2026-12-05T16:00:00Z */

static uint64_t when(const char *s)
{
	uint64_t ms = 0;

	assert_int_equal(ctd_timeparse_when(s, NOW_MS, &ms), 0);
	return ms;
}

static void test_durations(void **state)
{
	static const char *const bad[] = { "", "h", "1x", "1hh", "-1h",
					   "99999d", "1.5h", " 1h" };
	uint64_t ms;

	(void)state;
	assert_int_equal(ctd_timeparse_duration("90s", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(ctd_timeparse_duration("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(ctd_timeparse_duration("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(ctd_timeparse_duration("2d", &ms), 0);
	assert_int_equal(ms, 2 * 86400000ull);
	assert_int_equal(ctd_timeparse_duration("1w", &ms), 0);
	assert_int_equal(ms, 7 * 86400000ull);
	assert_int_equal(ctd_timeparse_duration("30", &ms), 0);
	assert_int_equal(ms, 30000);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ctd_timeparse_duration(bad[i], &ms), -EINVAL);
}

static void test_iso8601(void **state)
{
	(void)state;
	assert_int_equal(when("2026-12-05T16:00:00Z"), NOW_MS);
	assert_int_equal(when("2026-12-05T16:00Z"), NOW_MS);
	assert_int_equal(when("2026-12-05 16:00:00.250Z"), NOW_MS + 250);
	assert_int_equal(when("2026-12-05T17:00:00+01:00"), NOW_MS);
	assert_int_equal(when("2026-12-05T11:30:00-0430"), NOW_MS);
	assert_int_equal(when("@1796486400"), NOW_MS);
	assert_int_equal(when("now"), NOW_MS);
	assert_int_equal(when("-1h"), NOW_MS - 3600000);
	assert_int_equal(when("2d ago"), NOW_MS - 2 * 86400000ull);
}

static void test_local(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(when("2026-12-05 16:00"), NOW_MS);
	assert_int_equal(when("2026-12-05"), NOW_MS - 16 * 3600000ull);
	setenv("TZ", "Europe/Berlin", 1);   /* CET in December, CEST in July */
	tzset();
	assert_int_equal(when("2026-12-05 17:00:00"), NOW_MS);
	assert_int_equal(when("2026-07-01T02:00"), 1782864000000ull);
	unsetenv("TZ");
	tzset();
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		"", "yesterday", "2026-12-5", "2026-13-01", "2026-12-05T25:00Z",
		"2026-12-05T16:00:00Zjunk", "2026-12-05T16:00+1", "@", "@12x",
		"1969-12-31", "-1x", "2026-12-05T16",
	};
	uint64_t ms;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ctd_timeparse_when(bad[i], NOW_MS, &ms), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_iso8601),
		cmocka_unit_test(test_local),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
