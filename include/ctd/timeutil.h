/* timeutil: ctd's one time type and the conversions for records.
 * Monotonic time is in microseconds for scheduling; wall-clock time
 * (nanoseconds since the epoch) appears only in records. */
#ifndef CTD_TIMEUTIL_H
#define CTD_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Both clocks, read together once per batch of events. */
struct ctd_now {
	int64_t mono_us;     /* CLOCK_MONOTONIC: deadlines and intervals */
	uint64_t wall_ns;    /* CLOCK_REALTIME: record times only */
};

struct ctd_now ctd_now_read(void);

/* "2026-11-24T16:00:00.123Z": writes 24 bytes plus a NUL; cap >= 25. */
size_t ctd_fmt_iso8601_ms(uint64_t wall_ns, char *buf, size_t cap);

#endif
