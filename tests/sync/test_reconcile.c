/* Tests for src/reconcile.c with an injected clock and a fake dump that
 * plays the adapter: it carries out the actions, can refuse a start
 * (-EBUSY, -EIO) and ends dumps with what a test says the kernel
 * reported. Covers the start-up dump and READY, the resync after
 * overruns, the check interval, the dying dump before a verdict in
 * reliable mode, failed and inconsistent dumps, the pending gauge, the
 * counter timer and the deadline poll returns. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/base/stats.h"
#include "ctd/sync/reconcile.h"

#define SEC 1000000LL
#define T0 (100 * SEC)
#define CHECK (10 * SEC)

/* The fake adapter: what was started, judged, notified. */
struct fake {
	struct ctd_reconcile *rc;
	struct ctd_stats stats;
	int64_t now;
	int start_err;           /* what the next starts return */
	int running;             /* -1 none, else the kind running */
	unsigned starts;         /* the last start tried */
	int tables, dyings;      /* dumps started */
	int ready, gauge_off;    /* READY and GAUGE_OFF seen */
	int judged;              /* verdicts given */
	bool judged_ok;          /* the last one */
};

static void make(struct fake *f, bool reliable, bool resync)
{
	struct ctd_reconcile_cfg cfg = {
		.check_interval_us = CHECK,
		.pending_interval_us = 10 * SEC,
		.active_timeout_us = 30 * SEC,
		.reliable = reliable,
		.resync = resync,
		.dying_walk_max = 5000,
	};

	memset(f, 0, sizeof(*f));
	f->now = T0;
	f->running = -1;
	f->rc = ctd_reconcile_new(&cfg, &f->stats);
	assert_non_null(f->rc);
}

/* Carries out acts in the order the adapter does. */
static void apply(struct fake *f, unsigned acts)
{
	unsigned starts = acts & CTD_RECONCILE_STARTS;

	f->ready += !!(acts & CTD_RECONCILE_READY);
	f->gauge_off += !!(acts & CTD_RECONCILE_GAUGE_OFF);
	if (starts) {
		int err = f->running >= 0 ? -EBUSY : f->start_err;

		f->starts = starts;
		if (!err && (starts & CTD_RECONCILE_TABLE)) {
			f->tables++;
			f->running = CTD_DUMP_TABLE;
		} else if (!err) {
			f->dyings++;
			f->running = CTD_DUMP_DYING;
		}
		acts |= ctd_reconcile_started(f->rc, starts, err, f->now);
	}
	if (acts & CTD_RECONCILE_JUDGE) {
		f->judged++;
		f->judged_ok = acts & CTD_RECONCILE_JUDGE_OK;
	}
}

/* The running dump ends as the kernel reported. */
static void finish(struct fake *f, int err, size_t entries)
{
	enum ctd_dump_kind kind = (enum ctd_dump_kind)f->running;

	assert_true(f->running >= 0);
	f->running = -1;
	apply(f, ctd_reconcile_done(f->rc, kind, err, entries));
}

static int64_t poll_at(struct fake *f, int64_t engine_deadline, bool wants)
{
	int64_t next = -1;

	apply(f, ctd_reconcile_poll(f->rc, f->now, engine_deadline, wants, &next));
	return next;
}

/* The start-up table dump, ended ok; in reliable mode its dying dump too. */
static void boot(struct fake *f)
{
	apply(f, ctd_reconcile_startup(f->rc));
	finish(f, 0, 3);
	if (f->running == CTD_DUMP_DYING)
		finish(f, 0, 0);
	assert_int_equal(f->ready, 1);
	assert_int_equal(f->judged, 1);
}

static void test_startup_dump_then_ready(void **state)
{
	struct fake f;

	(void)state;
	make(&f, false, true);
	apply(&f, ctd_reconcile_startup(f.rc));
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE);
	assert_int_equal(f.tables, 1);
	assert_int_equal(f.ready, 0);        /* not before the table is read */
	finish(&f, 0, 42);
	assert_int_equal(f.ready, 1);
	assert_int_equal(f.judged, 1);
	assert_true(f.judged_ok);
	/* A later table dump is no start-up: READY once only. */
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_COUNTERS));
	finish(&f, 0, 42);
	assert_int_equal(f.ready, 1);
	assert_int_equal(f.judged, 2);
	ctd_reconcile_free(f.rc);
}

static void test_ready_even_when_startup_dump_fails(void **state)
{
	struct fake f;

	(void)state;
	make(&f, true, true);
	apply(&f, ctd_reconcile_startup(f.rc));
	finish(&f, -ENOMEM, 0);
	assert_int_equal(f.ready, 1);
	/* A failed dump is judged untrusted, without a dying dump. */
	assert_int_equal(f.dyings, 0);
	assert_int_equal(f.judged, 1);
	assert_false(f.judged_ok);
	ctd_reconcile_free(f.rc);
}

static void test_startup_start_refused_ready_with_next_table(void **state)
{
	struct fake f;

	(void)state;
	make(&f, false, true);
	f.start_err = -EIO;
	apply(&f, ctd_reconcile_startup(f.rc));
	assert_int_equal(f.tables, 0);
	f.start_err = 0;
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_COUNTERS));
	finish(&f, 0, 1);
	assert_int_equal(f.ready, 1);
	ctd_reconcile_free(f.rc);
}

static void test_resync_after_enobufs(void **state)
{
	struct fake f;

	(void)state;
	make(&f, false, true);
	boot(&f);
	assert_false(ctd_reconcile_prepare(f.rc, INT64_MAX));
	f.stats.nl_enobufs++;
	f.now += SEC;                        /* well inside the check interval */
	assert_true(ctd_reconcile_prepare(f.rc, INT64_MAX));
	poll_at(&f, INT64_MAX, false);
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE | CTD_RECONCILE_RESYNC);
	assert_int_equal(f.tables, 2);
	/* Started: no longer pending, a second prepare has nothing to do. */
	assert_false(ctd_reconcile_prepare(f.rc, INT64_MAX));
	finish(&f, 0, 5);
	assert_int_equal(f.judged, 2);
	assert_true(f.judged_ok);
	ctd_reconcile_free(f.rc);
}

static void test_resync_waits_for_running_dump(void **state)
{
	struct fake f;

	(void)state;
	make(&f, false, true);
	boot(&f);
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_COUNTERS));
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE);
	f.stats.nl_enobufs += 3;
	assert_true(ctd_reconcile_prepare(f.rc, INT64_MAX));
	assert_int_equal(poll_at(&f, INT64_MAX, false), INT64_MAX);
	assert_int_equal(f.tables, 2);       /* nothing started meanwhile */
	finish(&f, 0, 5);
	/* Still pending after that dump, which began before the loss. */
	assert_true(ctd_reconcile_prepare(f.rc, INT64_MAX));
	poll_at(&f, INT64_MAX, false);
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE | CTD_RECONCILE_RESYNC);
	assert_int_equal(f.tables, 3);
	ctd_reconcile_free(f.rc);
}

static void test_no_resync_when_off(void **state)
{
	struct fake f;

	(void)state;
	make(&f, false, false);
	boot(&f);
	poll_at(&f, INT64_MAX, false);
	f.stats.nl_enobufs++;
	assert_false(ctd_reconcile_prepare(f.rc, INT64_MAX));
	poll_at(&f, INT64_MAX, false);
	assert_int_equal(f.tables, 1);
	ctd_reconcile_free(f.rc);
}

static void test_counters_tick_resyncs_when_pending(void **state)
{
	struct fake f;

	(void)state;
	make(&f, false, true);
	boot(&f);
	f.stats.nl_enobufs++;
	assert_true(ctd_reconcile_prepare(f.rc, INT64_MAX));
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_COUNTERS));
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE | CTD_RECONCILE_RESYNC);
	assert_false(ctd_reconcile_prepare(f.rc, INT64_MAX));
	ctd_reconcile_free(f.rc);
}

static void test_check_respects_interval(void **state)
{
	struct fake f;
	int64_t engine = T0 + 3600 * SEC;

	(void)state;
	make(&f, false, true);
	boot(&f);                            /* a check began at T0 */
	f.now = T0 + SEC;
	/* Suspects wait: the next permitted check is the deadline. */
	assert_int_equal(poll_at(&f, engine, true), T0 + CHECK);
	assert_int_equal(f.tables, 1);
	f.now = T0 + CHECK - 1;
	assert_int_equal(poll_at(&f, engine, true), T0 + CHECK);
	assert_int_equal(f.tables, 1);
	f.now = T0 + CHECK;
	assert_int_equal(poll_at(&f, engine, true), engine);
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE);
	assert_int_equal(f.tables, 2);
	/* While it runs, no second one and no check deadline. */
	assert_int_equal(poll_at(&f, engine, true), engine);
	assert_int_equal(f.tables, 2);
	finish(&f, 0, 9);
	assert_int_equal(poll_at(&f, engine, true), T0 + 2 * CHECK);
	ctd_reconcile_free(f.rc);
}

static void test_dying_dump_before_verdict_when_reliable(void **state)
{
	struct fake f;

	(void)state;
	make(&f, true, true);
	apply(&f, ctd_reconcile_startup(f.rc));
	finish(&f, 0, 100);
	assert_int_equal(f.ready, 1);
	/* Not judged yet: the dying list first, and its entries count. */
	assert_int_equal(f.judged, 0);
	assert_int_equal(f.starts, CTD_RECONCILE_CHECK_DYING);
	assert_int_equal(f.running, CTD_DUMP_DYING);
	assert_true(ctd_reconcile_checking(f.rc));
	finish(&f, 0, 7);
	assert_false(ctd_reconcile_checking(f.rc));
	assert_int_equal(f.judged, 1);
	assert_true(f.judged_ok);
	assert_int_equal(f.stats.kernel_pending, 7);
	ctd_reconcile_free(f.rc);
}

/* Failing open: a plain table dump learns the live flows; the rearm:
 * a resync ends those not listed as lost. */
static void test_fail_open_learns_rearm_resyncs(void **state)
{
	struct fake f;

	(void)state;
	make(&f, true, true);
	boot(&f);
	f.stats.kernel_fail_opens = 1;
	assert_true(ctd_reconcile_prepare(f.rc, INT64_MAX));
	poll_at(&f, INT64_MAX, false);
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE);
	finish(&f, 0, 10);
	finish(&f, 0, 0);
	assert_false(ctd_reconcile_prepare(f.rc, INT64_MAX));
	f.stats.kernel_rearms = 1;
	assert_true(ctd_reconcile_prepare(f.rc, INT64_MAX));
	poll_at(&f, INT64_MAX, false);
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE | CTD_RECONCILE_RESYNC);
	ctd_reconcile_free(f.rc);
}

/* Namespaces found at start come with the start-up dump; one set up
 * later asks for a plain table dump of its own (its flows that began
 * before ctd set it up), in lossy mode too. */
static void test_new_namespace_learns(void **state)
{
	struct fake f;

	(void)state;
	make(&f, false, false);
	f.stats.netns_added = 2;
	boot(&f);
	assert_false(ctd_reconcile_prepare(f.rc, INT64_MAX));
	f.stats.netns_added = 3;
	assert_true(ctd_reconcile_prepare(f.rc, INT64_MAX));
	poll_at(&f, INT64_MAX, false);
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE);
	finish(&f, 0, 5);
	assert_false(ctd_reconcile_prepare(f.rc, INT64_MAX));
	ctd_reconcile_free(f.rc);
}

/* 20,000 more counted than listed: the quadratic walk is skipped and
 * the dump decides nothing; the estimate is kept. */
static void test_no_dying_walk_when_much_is_held(void **state)
{
	struct fake f;

	(void)state;
	make(&f, true, true);
	f.stats.kernel_table_count = 20100;
	apply(&f, ctd_reconcile_startup(f.rc));
	finish(&f, 0, 100);
	assert_int_equal(f.ready, 1);
	assert_int_equal(f.dyings, 0);
	assert_int_equal(f.judged, 1);
	assert_false(f.judged_ok);
	assert_int_equal(f.stats.kernel_held_est, 20000);
	assert_int_equal(f.stats.dying_walks_skipped, 1);
	/* Little held: the walk decides again. */
	f.stats.kernel_table_count = 150;
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_COUNTERS));
	finish(&f, 0, 100);
	assert_int_equal(f.stats.kernel_held_est, 50);
	assert_int_equal(f.starts, CTD_RECONCILE_CHECK_DYING);
	ctd_reconcile_free(f.rc);
}

static void test_gauge_dump_is_no_check(void **state)
{
	struct fake f;

	(void)state;
	make(&f, true, true);
	boot(&f);
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_GAUGE));
	assert_int_equal(f.starts, CTD_RECONCILE_DYING);
	assert_false(ctd_reconcile_checking(f.rc));
	finish(&f, 0, 4);
	assert_int_equal(f.judged, 1);       /* no verdict from a gauge dump */
	ctd_reconcile_free(f.rc);
}

static void test_check_dying_start_fails_table_decides(void **state)
{
	struct fake f;

	(void)state;
	make(&f, true, true);
	apply(&f, ctd_reconcile_startup(f.rc));
	f.start_err = -EIO;
	finish(&f, 0, 100);
	assert_int_equal(f.dyings, 0);
	assert_int_equal(f.judged, 1);
	assert_true(f.judged_ok);
	assert_false(ctd_reconcile_checking(f.rc));
	ctd_reconcile_free(f.rc);
}

static void test_busy_and_failed_starts_change_nothing(void **state)
{
	struct fake f;
	int64_t engine = T0 + 3600 * SEC;

	(void)state;
	make(&f, false, true);
	boot(&f);
	f.now = T0 + CHECK;
	f.start_err = -EBUSY;                /* another dump holds the socket */
	poll_at(&f, engine, true);
	assert_int_equal(f.tables, 1);
	f.start_err = -EIO;
	f.stats.nl_enobufs++;
	assert_true(ctd_reconcile_prepare(f.rc, engine));
	poll_at(&f, engine, true);
	assert_int_equal(f.tables, 1);
	/* Neither counted as a check nor cleared the resync: retried. */
	assert_true(ctd_reconcile_prepare(f.rc, engine));
	f.start_err = 0;
	f.now += SEC;
	poll_at(&f, engine, true);
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE | CTD_RECONCILE_RESYNC);
	assert_int_equal(f.tables, 2);
	finish(&f, 0, 1);
	assert_int_equal(poll_at(&f, engine, true), f.now + CHECK);
	ctd_reconcile_free(f.rc);
}

static void test_interrupted_walks_decide_nothing(void **state)
{
	struct fake f;

	(void)state;
	make(&f, true, true);
	boot(&f);
	/* An inconsistent table walk: judged untrusted, no dying dump. */
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_COUNTERS));
	finish(&f, -EINTR, 50);
	assert_int_equal(f.judged, 2);
	assert_false(f.judged_ok);
	assert_int_equal(f.dyings, 1);
	/* An inconsistent dying walk: the verdict is untrusted too. */
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_COUNTERS));
	finish(&f, 0, 50);
	assert_true(ctd_reconcile_checking(f.rc));
	finish(&f, -EINTR, 3);
	assert_int_equal(f.judged, 3);
	assert_false(f.judged_ok);
	ctd_reconcile_free(f.rc);
}

static void test_pending_gauge_and_peak(void **state)
{
	struct fake f;

	(void)state;
	make(&f, true, true);
	boot(&f);
	assert_int_equal(ctd_reconcile_period(f.rc, CTD_RECONCILE_GAUGE), 10 * SEC);
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_GAUGE));
	finish(&f, 0, 120);
	assert_int_equal(f.stats.kernel_pending, 120);
	assert_int_equal(f.stats.kernel_pending_peak, 120);
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_GAUGE));
	finish(&f, 0, 30);
	assert_int_equal(f.stats.kernel_pending, 30);
	assert_int_equal(f.stats.kernel_pending_peak, 120);
	/* A tick while a dump runs waits for the next. */
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_COUNTERS));
	assert_int_equal(ctd_reconcile_tick(f.rc, CTD_RECONCILE_GAUGE), 0);
	finish(&f, 0, 1);
	finish(&f, 0, 2);                    /* that check's dying dump */
	/* A kernel that cannot list it: the gauge goes off, keeps its value. */
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_GAUGE));
	finish(&f, -EOPNOTSUPP, 0);
	assert_int_equal(f.gauge_off, 1);
	assert_int_equal(f.stats.kernel_pending, 2);
	assert_int_equal(f.stats.kernel_pending_peak, 120);
	assert_int_equal(ctd_reconcile_tick(f.rc, CTD_RECONCILE_GAUGE), 0);
	ctd_reconcile_free(f.rc);
}

static void test_no_gauge_in_lossy_mode(void **state)
{
	struct fake f;

	(void)state;
	make(&f, false, true);
	assert_int_equal(ctd_reconcile_period(f.rc, CTD_RECONCILE_GAUGE), 0);
	boot(&f);
	assert_int_equal(f.dyings, 0);       /* no dying dump before verdicts */
	ctd_reconcile_free(f.rc);
}

static void test_counters_timer(void **state)
{
	struct fake f;
	int64_t engine = T0 + 3600 * SEC;

	(void)state;
	make(&f, false, true);
	/* Half the active timeout: a flow is reported at most that late. */
	assert_int_equal(ctd_reconcile_period(f.rc, CTD_RECONCILE_COUNTERS), 15 * SEC);
	boot(&f);
	f.now = T0 + 15 * SEC;
	apply(&f, ctd_reconcile_tick(f.rc, CTD_RECONCILE_COUNTERS));
	assert_int_equal(f.starts, CTD_RECONCILE_TABLE);
	assert_int_equal(f.tables, 2);
	assert_int_equal(ctd_reconcile_tick(f.rc, CTD_RECONCILE_COUNTERS), 0);
	finish(&f, 0, 8);
	assert_int_equal(f.judged, 2);
	/* It was a check too: the next one waits its interval from it. */
	f.now += SEC;
	assert_int_equal(poll_at(&f, engine, true), T0 + 15 * SEC + CHECK);
	assert_int_equal(f.tables, 2);
	ctd_reconcile_free(f.rc);
}

static void test_counters_off_without_active_timeout(void **state)
{
	struct ctd_reconcile_cfg cfg = { .check_interval_us = CHECK };
	struct ctd_stats stats;
	struct ctd_reconcile *rc;

	(void)state;
	memset(&stats, 0, sizeof(stats));
	rc = ctd_reconcile_new(&cfg, &stats);
	assert_non_null(rc);
	assert_int_equal(ctd_reconcile_period(rc, CTD_RECONCILE_COUNTERS), 0);
	assert_int_equal(ctd_reconcile_period(rc, CTD_RECONCILE_GAUGE), 0);
	ctd_reconcile_free(rc);
}

static void test_next_deadline(void **state)
{
	struct fake f;

	(void)state;
	make(&f, false, true);
	boot(&f);
	f.now = T0 + SEC;
	/* Nothing waits: nothing to arm. */
	assert_int_equal(poll_at(&f, INT64_MAX, false), INT64_MAX);
	/* No suspects: the engine's deadline alone, even past the check. */
	assert_int_equal(poll_at(&f, T0 + 60 * SEC, false), T0 + 60 * SEC);
	/* Suspects: the earlier of the two. */
	assert_int_equal(poll_at(&f, T0 + 60 * SEC, true), T0 + CHECK);
	assert_int_equal(poll_at(&f, T0 + 2 * SEC, true), T0 + 2 * SEC);
	assert_int_equal(poll_at(&f, INT64_MAX, true), T0 + CHECK);
	assert_int_equal(f.tables, 1);
	ctd_reconcile_free(f.rc);
}

static void test_prepare_when_deadline_moves_earlier(void **state)
{
	struct fake f;

	(void)state;
	make(&f, false, true);
	boot(&f);
	poll_at(&f, T0 + 60 * SEC, false);   /* armed at T0 + 60 s */
	assert_false(ctd_reconcile_prepare(f.rc, T0 + 60 * SEC));
	assert_false(ctd_reconcile_prepare(f.rc, T0 + 90 * SEC));
	assert_true(ctd_reconcile_prepare(f.rc, T0 + 30 * SEC));
	poll_at(&f, T0 + 30 * SEC, false);
	assert_false(ctd_reconcile_prepare(f.rc, T0 + 30 * SEC));
	ctd_reconcile_free(f.rc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_startup_dump_then_ready),
		cmocka_unit_test(test_ready_even_when_startup_dump_fails),
		cmocka_unit_test(test_startup_start_refused_ready_with_next_table),
		cmocka_unit_test(test_resync_after_enobufs),
		cmocka_unit_test(test_resync_waits_for_running_dump),
		cmocka_unit_test(test_no_resync_when_off),
		cmocka_unit_test(test_counters_tick_resyncs_when_pending),
		cmocka_unit_test(test_check_respects_interval),
		cmocka_unit_test(test_dying_dump_before_verdict_when_reliable),
		cmocka_unit_test(test_fail_open_learns_rearm_resyncs),
		cmocka_unit_test(test_no_dying_walk_when_much_is_held),
		cmocka_unit_test(test_gauge_dump_is_no_check),
		cmocka_unit_test(test_check_dying_start_fails_table_decides),
		cmocka_unit_test(test_busy_and_failed_starts_change_nothing),
		cmocka_unit_test(test_interrupted_walks_decide_nothing),
		cmocka_unit_test(test_pending_gauge_and_peak),
		cmocka_unit_test(test_no_gauge_in_lossy_mode),
		cmocka_unit_test(test_counters_timer),
		cmocka_unit_test(test_counters_off_without_active_timeout),
		cmocka_unit_test(test_next_deadline),
		cmocka_unit_test(test_new_namespace_learns),
		cmocka_unit_test(test_prepare_when_deadline_moves_earlier),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
