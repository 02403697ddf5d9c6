/* Tests for src/pressure.c, the kernel-pressure governor, with an
 * injected clock and made-up gauges: when it fails open (table past the
 * high mark and ctd the reason: stalled, or slow), when it must not (under
 * the mark; ctd keeping up; hold), how it counts what the kernel drops
 * while open (also across a wrap of the drop counter, and at the edges of
 * the mode), what the fail-open freed, and when reliable mode comes back
 * (under the low mark, socket drained, events fresh, after the minimum
 * time; an idle reader's stale lag does not block it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/kernel/pressure.h"

#define SEC 1000000LL
#define T0 (1000 * SEC)
#define MAX 262144
#define RCVBUF (16u << 20)

struct fake {
	struct ctd_pressure *p;
	struct ctd_pressure_gauges g;
	int64_t now;
};

static void make(struct fake *f, bool hold)
{
	struct ctd_pressure_cfg cfg = {
		.hold = hold, .high_pct = 85, .low_pct = 70,
		.lag_us = 1 * SEC, .min_open_us = 2 * SEC,
	};

	memset(f, 0, sizeof(*f));
	f->p = ctd_pressure_new(&cfg);
	assert_non_null(f->p);
	f->now = T0;
	f->g = (struct ctd_pressure_gauges){ .count = 1000, .max = MAX,
					     .rcvbuf = RCVBUF };
}

/* One tick 100 ms after the last; a reader that keeps up moves on. */
static enum ctd_pressure_action tick(struct fake *f)
{
	f->now += SEC / 10;
	return ctd_pressure_step(f->p, &f->g, f->now);
}

static const struct ctd_pressure_state *state(const struct fake *f)
{
	return ctd_pressure_state(f->p);
}

/* The count that is pct percent full, rounded up. */
static uint64_t at(unsigned pct)
{
	return ((uint64_t)MAX * pct + 99) / 100;
}

static void fill(struct fake *f, unsigned pct)
{
	f->g.count = at(pct);
}

/* ctd stopped with its socket full: the kernel overruns it each retry. */
static void stall(struct fake *f)
{
	f->g.rmem = RCVBUF;
	f->g.drops += 500;
}

static void test_quiet_below_the_mark(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, false);
	fill(&f, 84);
	stall(&f);
	assert_int_equal(tick(&f), CTD_PRESSURE_KEEP);
	stall(&f);
	assert_int_equal(tick(&f), CTD_PRESSURE_KEEP);
	assert_int_equal(state(&f)->cause, CTD_PRESSURE_NONE);
	assert_false(state(&f)->open);
	assert_int_equal(state(&f)->fill_pct, 84);
	ctd_pressure_free(f.p);
}

static void test_stalled_reader_fails_open(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, false);
	for (int i = 0; i < 10; i++) {      /* stopped for a second */
		stall(&f);
		assert_int_equal(tick(&f), CTD_PRESSURE_KEEP);
	}
	fill(&f, 86);
	stall(&f);
	assert_int_equal(tick(&f), CTD_PRESSURE_FAIL_OPEN);
	assert_int_equal(state(&f)->cause, CTD_PRESSURE_STALLED);
	assert_true(state(&f)->open);
	assert_int_equal(state(&f)->fail_opens, 1);
	assert_int_equal(state(&f)->since_us, f.now);
	/* Drops before the flag was cleared were re-sent: not lost. */
	assert_int_equal(state(&f)->lost, 0);
	ctd_pressure_free(f.p);
}

static void test_slow_reader_fails_open(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, false);
	tick(&f);
	fill(&f, 90);
	f.g.progress += 4096;
	f.g.rmem = RCVBUF / 2;     /* half full, no overrun yet */
	assert_int_equal(tick(&f), CTD_PRESSURE_FAIL_OPEN);
	assert_int_equal(state(&f)->cause, CTD_PRESSURE_SLOW);
	ctd_pressure_free(f.p);
}

/* A CPU quota lets ctd run one slice in three ticks: slow, not stalled. */
static void test_starved_reader_is_slow(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, true);
	fill(&f, 95);
	for (int i = 0; i < 30; i++) {
		f.g.progress += i % 3 == 0 ? 4096 : 0;
		f.g.rmem = RCVBUF;
		tick(&f);
		assert_int_equal(state(&f)->cause, CTD_PRESSURE_SLOW);
	}
	ctd_pressure_free(f.p);
}

static void test_old_events_mean_slow(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, false);
	tick(&f);
	fill(&f, 90);
	f.g.progress += 10;
	f.g.lag_us = 3 * SEC;      /* re-sent DESTROYs: the kernel held them */
	assert_int_equal(tick(&f), CTD_PRESSURE_FAIL_OPEN);
	assert_int_equal(state(&f)->cause, CTD_PRESSURE_SLOW);
	ctd_pressure_free(f.p);
}

static void test_full_table_not_ctds_doing(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, false);
	tick(&f);
	fill(&f, 99);
	for (int i = 0; i < 20; i++) {
		f.g.progress += 100;
		f.g.rmem = 4096;
		f.g.lag_us = 2000;
		assert_int_equal(tick(&f), CTD_PRESSURE_KEEP);
	}
	assert_int_equal(state(&f)->cause, CTD_PRESSURE_OTHER);
	assert_false(state(&f)->open);
	assert_int_equal(state(&f)->peak_pct, 99);
	ctd_pressure_free(f.p);
}

static void test_hold_never_fails_open(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, true);
	tick(&f);
	fill(&f, 100);
	for (int i = 0; i < 20; i++) {
		stall(&f);
		assert_int_equal(tick(&f), CTD_PRESSURE_KEEP);
	}
	assert_int_equal(state(&f)->cause, CTD_PRESSURE_STALLED);
	assert_int_equal(state(&f)->fail_opens, 0);
	assert_int_equal(ctd_pressure_orphaned(f.p, f.now), CTD_PRESSURE_KEEP);
	ctd_pressure_free(f.p);
}

static void open_stalled(struct fake *f)
{
	stall(f);
	tick(f);
	fill(f, 88);
	stall(f);
	assert_int_equal(tick(f), CTD_PRESSURE_FAIL_OPEN);
}

static void test_drops_while_open_are_lost(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, false);
	f.g.drops = UINT32_MAX - 100;      /* the counter wraps while open */
	open_stalled(&f);
	fill(&f, 40);                      /* the kernel let go of them */
	/* Failed deliveries between the tick's reading and the flag. */
	ctd_pressure_opening(f.p, f.g.drops + 20);
	f.g.drops += 320;
	tick(&f);
	assert_int_equal(state(&f)->lost, 300);
	assert_int_equal(state(&f)->released, at(88) - at(40));
	f.g.drops += 1000;
	tick(&f);
	assert_int_equal(state(&f)->lost, 1300);
	ctd_pressure_free(f.p);
}

/* Still stopped: under the low mark, but the socket is full. */
static void test_no_rearm_while_socket_full(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, false);
	open_stalled(&f);
	fill(&f, 10);
	for (int i = 0; i < 50; i++) {
		stall(&f);
		assert_int_equal(tick(&f), CTD_PRESSURE_KEEP);
	}
	assert_true(state(&f)->open);
	assert_int_equal(state(&f)->lost, 50 * 500);
	ctd_pressure_free(f.p);
}

static void catch_up(struct fake *f)
{
	f->g.rmem = 0;
	f->g.progress += 1000;
	f->g.lag_us = 5000;
}

static void test_rearm_after_min_time_under_low_mark(void **unused)
{
	struct fake f;
	int64_t opened;

	(void)unused;
	make(&f, false);
	open_stalled(&f);
	opened = f.now;
	catch_up(&f);
	fill(&f, 75);              /* caught up, but above the low mark */
	assert_int_equal(tick(&f), CTD_PRESSURE_KEEP);
	fill(&f, 50);
	while (f.now + SEC / 10 < opened + 2 * SEC) {
		catch_up(&f);
		assert_int_equal(tick(&f), CTD_PRESSURE_KEEP);
	}
	catch_up(&f);
	assert_int_equal(tick(&f), CTD_PRESSURE_REARM);
	assert_false(state(&f)->open);
	assert_int_equal(state(&f)->rearms, 1);
	assert_int_equal(state(&f)->since_us, f.now);
	/* A drop between the tick's reading and the flag counts as lost. */
	ctd_pressure_rearmed(f.p, f.g.drops + 7);
	assert_int_equal(state(&f)->lost, 7);
	f.g.drops += 7;
	f.g.drops += 40;           /* reliable again: re-sent, not lost */
	tick(&f);
	assert_int_equal(state(&f)->lost, 7);
	ctd_pressure_free(f.p);
}

static void test_late_events_block_rearm_stale_lag_does_not(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, false);
	open_stalled(&f);
	fill(&f, 20);
	f.now += 3 * SEC;
	f.g.rmem = 0;
	f.g.progress += 10;
	f.g.lag_us = 4 * SEC;      /* still reading old events */
	assert_int_equal(tick(&f), CTD_PRESSURE_KEEP);
	/* Then idle: the last lag stays, but nothing is waiting. */
	assert_int_equal(tick(&f), CTD_PRESSURE_REARM);
	ctd_pressure_free(f.p);
}

static void test_orphaned_fails_open_past_low_mark(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, false);
	assert_int_equal(ctd_pressure_orphaned(f.p, f.now), CTD_PRESSURE_KEEP);
	fill(&f, 69);
	tick(&f);
	/* A crash with room in the table: the next ctd takes over. */
	assert_int_equal(ctd_pressure_orphaned(f.p, f.now), CTD_PRESSURE_KEEP);
	fill(&f, 71);
	tick(&f);
	assert_int_equal(ctd_pressure_orphaned(f.p, f.now), CTD_PRESSURE_FAIL_OPEN);
	assert_int_equal(state(&f)->cause, CTD_PRESSURE_STALLED);
	assert_int_equal(ctd_pressure_orphaned(f.p, f.now), CTD_PRESSURE_KEEP);
	assert_int_equal(state(&f)->fail_opens, 1);
	ctd_pressure_free(f.p);
}

static void test_unknown_max_never_acts(void **unused)
{
	struct fake f;

	(void)unused;
	make(&f, false);
	f.g.max = 0;
	f.g.count = 1u << 30;
	stall(&f);
	assert_int_equal(tick(&f), CTD_PRESSURE_KEEP);
	assert_int_equal(state(&f)->cause, CTD_PRESSURE_NONE);
	assert_string_equal(ctd_pressure_cause_name(CTD_PRESSURE_SLOW),
			    "ctd too slow");
	ctd_pressure_free(f.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quiet_below_the_mark),
		cmocka_unit_test(test_stalled_reader_fails_open),
		cmocka_unit_test(test_slow_reader_fails_open),
		cmocka_unit_test(test_starved_reader_is_slow),
		cmocka_unit_test(test_old_events_mean_slow),
		cmocka_unit_test(test_full_table_not_ctds_doing),
		cmocka_unit_test(test_hold_never_fails_open),
		cmocka_unit_test(test_drops_while_open_are_lost),
		cmocka_unit_test(test_no_rearm_while_socket_full),
		cmocka_unit_test(test_rearm_after_min_time_under_low_mark),
		cmocka_unit_test(test_late_events_block_rearm_stale_lag_does_not),
		cmocka_unit_test(test_orphaned_fails_open_past_low_mark),
		cmocka_unit_test(test_unknown_max_never_acts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
