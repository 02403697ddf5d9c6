/* timeutil: clock reads and the record timestamp format. The only place
 * ctd reads a clock, so tests and benchmarks can reason about how often
 * that happens (once per netlink wakeup, not per event). Modules with
 * timers read it through an injected struct ctd_clock, whose default is
 * ctd_now_read; none uses libev's ev_now() or time(). */
#include <time.h>

#include "ctd/base/timeutil.h"

struct ctd_now ctd_now_read(void)
{
	struct timespec mono, wall;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &wall);
	return (struct ctd_now){
		.mono_us = (int64_t)mono.tv_sec * 1000000 + mono.tv_nsec / 1000,
		.wall_ns = (uint64_t)wall.tv_sec * 1000000000ULL +
			   (uint64_t)wall.tv_nsec,
	};
}

static void put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

/* Days since 1970-01-01 to a date in the proleptic Gregorian calendar,
 * counting in 400-year eras that start on March 1st (so the leap day
 * ends a year). Arithmetic only: gmtime_r took a tenth of a record's
 * rendering, twice per record. */
static void civil_date(uint64_t days, unsigned *ret_y, unsigned *ret_m,
		       unsigned *ret_d)
{
	uint64_t z = days + 719468;              /* days since 0000-03-01 */
	uint64_t era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);             /* 0..146096 */
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  /* 0..365 */
	unsigned mp = (5 * doy + 2) / 153;                       /* 0 = March */

	*ret_d = doy - (153 * mp + 2) / 5 + 1;
	*ret_m = mp < 10 ? mp + 3 : mp - 9;
	*ret_y = (unsigned)(era * 400 + yoe) + (*ret_m <= 2);
}

size_t ctd_fmt_iso8601_ms(uint64_t wall_ns, char *buf, size_t cap)
{
	uint64_t secs = wall_ns / 1000000000ULL;
	unsigned ms = (unsigned)(wall_ns / 1000000ULL % 1000);
	unsigned sod = (unsigned)(secs % 86400), year, month, day;

	if (cap < 25 || secs / 86400 > 2932896)  /* after 9999-12-31 */
		return 0;
	civil_date(secs / 86400, &year, &month, &day);
	put2(buf, year / 100);
	put2(buf + 2, year % 100);
	buf[4] = '-';
	put2(buf + 5, month);
	buf[7] = '-';
	put2(buf + 8, day);
	buf[10] = 'T';
	put2(buf + 11, sod / 3600);
	buf[13] = ':';
	put2(buf + 14, sod / 60 % 60);
	buf[16] = ':';
	put2(buf + 17, sod % 60);
	buf[19] = '.';
	buf[20] = (char)('0' + ms / 100);
	put2(buf + 21, ms % 100);
	buf[23] = 'Z';
	buf[24] = '\0';
	return 24;
}
