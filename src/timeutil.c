/* timeutil: clock reads and the record timestamp format. The only place
 * ctd reads a clock, so tests and benchmarks can reason about how often
 * that happens (once per netlink wakeup, not per event). */
#include <time.h>

#include "ctd/timeutil.h"

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

size_t ctd_fmt_iso8601_ms(uint64_t wall_ns, char *buf, size_t cap)
{
	time_t secs = (time_t)(wall_ns / 1000000000ULL);
	unsigned ms = (unsigned)(wall_ns / 1000000ULL % 1000);
	unsigned year;
	struct tm tm;

	if (cap < 25 || !gmtime_r(&secs, &tm))
		return 0;
	year = (unsigned)tm.tm_year + 1900;
	put2(buf, year / 100);
	put2(buf + 2, year % 100);
	buf[4] = '-';
	put2(buf + 5, (unsigned)tm.tm_mon + 1);
	buf[7] = '-';
	put2(buf + 8, (unsigned)tm.tm_mday);
	buf[10] = 'T';
	put2(buf + 11, (unsigned)tm.tm_hour);
	buf[13] = ':';
	put2(buf + 14, (unsigned)tm.tm_min);
	buf[16] = ':';
	put2(buf + 17, (unsigned)tm.tm_sec);
	buf[19] = '.';
	buf[20] = (char)('0' + ms / 100);
	put2(buf + 21, ms % 100);
	buf[23] = 'Z';
	buf[24] = '\0';
	return 24;
}
