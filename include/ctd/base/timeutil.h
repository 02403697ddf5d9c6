/* timeutil: ctd's one time type, the clock that gives it and the
 * conversions for records. Monotonic time is in microseconds for
 * scheduling; wall-clock time (nanoseconds since the epoch) appears only
 * in records and export headers. */
#ifndef CTD_TIMEUTIL_H
#define CTD_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Both clocks, read together once per batch of events. */
struct ctd_now {
	int64_t mono_us;     /* CLOCK_MONOTONIC: deadlines and intervals */
	uint64_t wall_ns;    /* CLOCK_REALTIME: record times only */
};

/* The system clocks. */
struct ctd_now ctd_now_read(void);

/* The clock a module with timers reads, given at construction so a test
 * can step time; a zeroed struct (read == NULL) is ctd_now_read. */
struct ctd_clock {
	struct ctd_now (*read)(void *arg);
	void *arg;
};

static inline struct ctd_now ctd_clock_read(const struct ctd_clock *clock)
{
	return clock->read ? clock->read(clock->arg) : ctd_now_read();
}

/* "2026-11-24T16:00:00.123Z": writes 24 bytes plus a NUL; cap >= 25. */
size_t ctd_fmt_iso8601_ms(uint64_t wall_ns, char *buf, size_t cap);

#endif
