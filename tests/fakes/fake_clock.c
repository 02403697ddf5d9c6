/* fake_clock: both clocks move only when the test says so. */
#include "fake_clock.h"

static struct ctd_now fake_read(void *arg)
{
	struct fake_clock *fc = arg;

	fc->reads++;
	return fc->now;
}

void fake_clock_init(struct fake_clock *fc)
{
	fc->now.mono_us = 1000000000;           /* 1,000 s after boot */
	fc->now.wall_ns = 1795536579000000000u; /* 2026-11-24 */
	fc->reads = 0;
}

struct ctd_clock fake_clock_of(struct fake_clock *fc)
{
	return (struct ctd_clock){ .read = fake_read, .arg = fc };
}

void fake_clock_step(struct fake_clock *fc, int64_t us)
{
	fc->now.mono_us += us;
	fc->now.wall_ns += (uint64_t)us * 1000u;
}
