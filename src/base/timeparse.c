/* timeparse: durations and points in time as people type them.
 *
 * ISO 8601 covers what scripts pass (a zone makes it unambiguous); the
 * same layout without a zone is local time, since that is what an admin
 * reads off a clock, and mktime applies the zone's rules (DST included)
 * for that date. Fields are read with explicit widths, so "2026-1-5" or
 * trailing junk are refused rather than guessed at. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctd/base/timeparse.h"

#define TEN_YEARS_MS (3650ULL * 86400 * 1000)

int ctd_timeparse_duration(const char *s, uint64_t *ret_ms)
{
	static const char units[] = "smhdw";
	static const uint64_t secs[] = { 1, 60, 3600, 86400, 7 * 86400 };
	char *end;
	unsigned long long v;
	const char *u;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	v = strtoull(s, &end, 10);
	u = *end ? strchr(units, *end) : units;
	if (!u || !*u || (*end && end[1]) || v > TEN_YEARS_MS / 1000 ||
	    v * secs[u - units] * 1000 > TEN_YEARS_MS)
		return -EINVAL;
	*ret_ms = v * secs[u - units] * 1000;
	return 0;
}

/* Exactly n digits at *p, advancing it. */
static bool digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return false;
		v = v * 10 + (**p - '0');
	}
	*ret = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/* YYYY-MM-DD, then optionally [T ]HH:MM[:SS[.fff]]. */
static bool date_time(const char **p, struct tm *tm, int *ret_ms)
{
	*ret_ms = 0;
	if (!digits(p, 4, &tm->tm_year) || !expect(p, '-') ||
	    !digits(p, 2, &tm->tm_mon) || !expect(p, '-') ||
	    !digits(p, 2, &tm->tm_mday))
		return false;
	tm->tm_year -= 1900;
	tm->tm_mon -= 1;
	if (**p != 'T' && **p != ' ')
		return true;
	(*p)++;
	if (!digits(p, 2, &tm->tm_hour) || !expect(p, ':') ||
	    !digits(p, 2, &tm->tm_min))
		return false;
	if (expect(p, ':') && !digits(p, 2, &tm->tm_sec))
		return false;
	if (expect(p, '.') && !digits(p, 3, ret_ms))
		return false;
	return true;
}

/* "", "Z" or +HH:MM / -HH:MM (also +HHMM); offset in seconds. */
static bool zone(const char *p, bool *ret_local, long *ret_off)
{
	int h, m, sign;

	*ret_local = !*p;
	*ret_off = 0;
	if (!*p || strcmp(p, "Z") == 0)
		return true;
	if (*p != '+' && *p != '-')
		return false;
	sign = *p++ == '-' ? -1 : 1;
	if (!digits(&p, 2, &h))
		return false;
	expect(&p, ':');
	if (!digits(&p, 2, &m) || *p || h > 23 || m > 59)
		return false;
	*ret_off = sign * (h * 3600L + m * 60L);
	return true;
}

static bool valid(const struct tm *tm)
{
	return tm->tm_mon >= 0 && tm->tm_mon < 12 && tm->tm_mday >= 1 &&
	       tm->tm_mday <= 31 && tm->tm_hour < 24 && tm->tm_min < 60 &&
	       tm->tm_sec < 61 && tm->tm_year >= 70;
}

static int calendar(const char *s, uint64_t *ret_ms)
{
	struct tm tm = { 0 };
	bool local;
	long off;
	int ms;
	time_t t;

	if (!date_time(&s, &tm, &ms) || !zone(s, &local, &off) || !valid(&tm))
		return -EINVAL;
	if (local) {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	} else {
		t = timegm(&tm) - off;
	}
	if (t < 0)
		return -EINVAL;
	*ret_ms = (uint64_t)t * 1000 + (uint64_t)ms;
	return 0;
}

/* "-1h" or "1h ago". */
static int ago(const char *s, uint64_t now_ms, uint64_t *ret_ms)
{
	char num[32];
	size_t n = strlen(s);
	uint64_t d;

	if (*s == '-')
		snprintf(num, sizeof(num), "%s", s + 1);
	else if (n > 4 && n < sizeof(num) && strcmp(s + n - 4, " ago") == 0)
		snprintf(num, sizeof(num), "%.*s", (int)(n - 4), s);
	else
		return -EINVAL;
	if (ctd_timeparse_duration(num, &d) < 0 || d > now_ms)
		return -EINVAL;
	*ret_ms = now_ms - d;
	return 0;
}

int ctd_timeparse_when(const char *s, uint64_t now_ms, uint64_t *ret_ms)
{
	char *end;
	unsigned long long v;

	if (strcmp(s, "now") == 0) {
		*ret_ms = now_ms;
		return 0;
	}
	if (*s == '@') {
		v = strtoull(s + 1, &end, 10);
		if (end == s + 1 || *end || v > 1ULL << 40)
			return -EINVAL;
		*ret_ms = v * 1000;
		return 0;
	}
	if (ago(s, now_ms, ret_ms) == 0)
		return 0;
	return calendar(s, ret_ms);
}
