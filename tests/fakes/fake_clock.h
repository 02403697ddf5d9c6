/* fake_clock: a struct ctd_clock that a test steps by hand, so timers
 * and deadlines are checked at exact instants instead of waited for. */
#ifndef CTD_TEST_FAKE_CLOCK_H
#define CTD_TEST_FAKE_CLOCK_H

#include <stdint.h>

#include "ctd/base/timeutil.h"

struct fake_clock {
	struct ctd_now now;
	unsigned reads;             /* how often the module looked */
};

/* Starts at an arbitrary, non-zero instant on both clocks. */
void fake_clock_init(struct fake_clock *fc);
/* The clock to inject; it reads fc. */
struct ctd_clock fake_clock_of(struct fake_clock *fc);
/* Moves both clocks forward by us microseconds. */
void fake_clock_step(struct fake_clock *fc, int64_t us);

#endif
