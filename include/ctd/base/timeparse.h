/* timeparse: the times and durations a person types (`ctd report
 * --since 1h --from 2026-12-05T08:00Z`), into wall-clock milliseconds.
 * PURE: the current time is a parameter; local time follows TZ. */
#ifndef CTD_TIMEPARSE_H
#define CTD_TIMEPARSE_H

#include <stdint.h>

/* "90s", "5m", "1h", "2d", "1w" (a number and one unit; no unit:
 * seconds) into milliseconds. -EINVAL for anything else or past ten
 * years. */
int ctd_timeparse_duration(const char *s, uint64_t *ret_ms);

/* A point in time into milliseconds since the epoch:
 *   ISO 8601 with a zone: 2026-12-05T17:00:00Z, ...T17:00+01:00,
 *     ...T17:00:00.250Z (the T may be a space);
 *   local time without one: 2026-12-05 17:00[:SS], 2026-12-05 (midnight);
 *   @SECONDS since the epoch; "now"; a duration ago: -1h or 1h ago.
 * now_ms is what "now" and "ago" count from. -EINVAL otherwise. */
int ctd_timeparse_when(const char *s, uint64_t now_ms, uint64_t *ret_ms);

#endif
