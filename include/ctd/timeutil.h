/* timeutil: ctd's one time type and the conversions for records.
 * Monotonic time is in microseconds for scheduling; wall-clock time
 * (nanoseconds since the epoch) appears only in records. */
#ifndef CTD_TIMEUTIL_H
#define CTD_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

struct ctd_mono {
	int64_t us;
};

struct ctd_mono ctd_mono_now(void);
uint64_t ctd_wall_now_ns(void);

/* "2026-11-24T16:00:00.123Z": writes 24 bytes plus a NUL; cap >= 25. */
size_t ctd_fmt_iso8601_ms(uint64_t wall_ns, char *buf, size_t cap);

#endif
