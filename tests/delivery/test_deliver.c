/* Tests for src/deliver.c with fake outputs on a real libev loop and a
 * fake clock: a refused record is held and re-sent at its random share
 * of the grace period, or at once when the output is ready, and is
 * delivered exactly once; over the retry list's bound records go to the
 * spool; at finish everything held, and what an output took but did not
 * make final, is spooled; a new instance replays the spool into its
 * outputs before emptying it; after a crash (no finish) the write-ahead
 * log brings back everything held at the last commit; a crash while the
 * spool is read back replays exactly what was not final; a crash while
 * the log moves to the spool is undone at the next start; every output
 * keeps records = delivered + failed + held; two outputs share one
 * memory budget, and what passes it goes to their spools.
 * Nothing waits on wall time: the loop only runs timers that are due at
 * once, and the tests step the clock and call ctd_deliver_tick for the
 * rest. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ev.h>
#include <cmocka.h>

#include "ctd/base/stats.h"
#include "ctd/delivery/deliver.h"
#include "ctd/delivery/spool.h"
#include "ctd/delivery/wal.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/output.h"
#include "fake_clock.h"
#include "fake_output.h"
#include "logcap.h"

#define GRACE_MS 1000
#define MS 1000

struct fixture {
	struct ev_loop *loop;
	struct ctd_stats stats;
	struct fake_clock clock;
	char dir[64];
	uint32_t rnd;               /* the next random value ... */
	uint32_t rnd_step;          /* ... and how it moves on */
	bool freed;
	struct fake_output out;
};

static uint32_t fake_random(void *arg)
{
	struct fixture *fx = arg;
	uint32_t r = fx->rnd;

	fx->rnd += fx->rnd_step;
	return r;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(fx->loop);
	strcpy(fx->dir, "/tmp/ctd-deliver-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fake_clock_init(&fx->clock);
	fx->rnd_step = 1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char path[128];

	snprintf(path, sizeof(path), "%s/fake.spool", fx->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/fake.wal", fx->dir);
	unlink(path);
	rmdir(fx->dir);
	ev_loop_destroy(fx->loop);
	free(fx);
	return 0;
}

static struct ctd_deliver_cfg cfg_for(struct fixture *fx, size_t retry_max,
				      const char *spool_dir)
{
	return (struct ctd_deliver_cfg){
		.grace_ms = GRACE_MS,
		.retry_max = retry_max,
		.spool_dir = spool_dir,
		.random = fake_random,
		.random_arg = fx,
		.clock = fake_clock_of(&fx->clock),
	};
}

static struct ctd_deliver *make_for(struct fixture *fx, size_t retry_max,
				    bool accept, unsigned events)
{
	struct ctd_deliver_cfg cfg = cfg_for(fx, retry_max, fx->dir);
	struct ctd_deliver *d = NULL;

	fake_output_init(&fx->out, "fake", accept);
	fx->out.freed = &fx->freed;
	fx->freed = false;
	assert_int_equal(ctd_deliver_new(fx->loop, &cfg, &fx->stats, &d), 0);
	assert_int_equal(ctd_deliver_add(d, &fx->out.base, events), 0);
	return d;
}

static struct ctd_deliver *make(struct fixture *fx, size_t retry_max,
				bool accept)
{
	return make_for(fx, retry_max, accept, 1u << CTD_EV_DESTROY);
}

static void send_ids(struct ctd_deliver *d, uint32_t from, uint32_t to)
{
	for (uint32_t id = from; id < to; id++) {
		struct ctd_record rec;

		memset(&rec, 0, sizeof(rec));
		rec.id = id;
		ctd_deliver_record(d, &rec);
	}
}

/* Turns the loop until the fake output has n records (bounded). */
static void run_until_taken(struct fixture *fx, size_t n)
{
	for (int i = 0; i < 1000 && fx->out.taken < n; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	assert_int_equal(fx->out.taken, n);
}

/* Moves the clock by us and does what the timer would do then; returns
 * the next deadline relative to the new now. */
static int64_t step(struct fixture *fx, struct ctd_deliver *d, int64_t us)
{
	int64_t next;

	fake_clock_step(&fx->clock, us);
	next = ctd_deliver_tick(d);
	return next == INT64_MAX ? INT64_MAX : next - fx->clock.now.mono_us;
}

static void assert_each_once(struct fixture *fx, uint32_t from, uint32_t to)
{
	for (uint32_t id = from; id < to; id++)
		assert_int_equal(fx->out.got[id], 1);
}

/* The accounting identity every output keeps at every moment. */
static void assert_identity(const struct fake_output *f)
{
	const struct ctd_out_stats *st = &f->base.stats;

	assert_int_equal(st->records, st->delivered + st->failed + st->held);
	assert_int_equal(st->failed, st->failed_render + st->failed_spool +
			 st->failed_shutdown + st->failed_output);
}

static void test_direct(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver *d = make(fx, 10, true);

	send_ids(d, 0, 5);
	assert_each_once(fx, 0, 5);
	/* Taken, final at the commit after the batch. */
	assert_int_equal(fx->out.base.stats.delivered, 0);
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.base.stats.delivered, 5);
	assert_int_equal(fx->out.base.stats.records, 5);
	assert_int_equal(fx->out.base.stats.held, 0);
	assert_identity(&fx->out);
	assert_int_equal(fx->out.base.stats.deferred, 0);
	assert_ptr_equal(fx->stats.out[0], &fx->out.base.stats);
	assert_string_equal(fx->stats.out_name[0], "fake");
	ctd_deliver_free(d);
	assert_true(fx->freed);
	assert_null(fx->stats.out[0]);
}

static void test_held_until_ready(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver *d = make(fx, 10, false);

	send_ids(d, 0, 8);
	assert_int_equal(fx->out.taken, 0);
	assert_int_equal(fx->out.base.stats.deferred, 8);
	assert_int_equal(fx->out.base.stats.dying, 8);
	/* Still refusing through ten grace periods: every record is re-sent
	 * within each, and nothing is lost or doubled. */
	for (int i = 0; i < 10; i++)
		assert_true(step(fx, d, GRACE_MS * MS) < GRACE_MS * MS);
	assert_int_equal(fx->out.taken, 0);
	assert_int_equal(fx->out.base.stats.dying, 8);
	assert_int_equal(fx->out.base.stats.failed, 0);
	fx->out.accept = true;
	ctd_output_ready(&fx->out.base);
	run_until_taken(fx, 8);
	assert_each_once(fx, 0, 8);
	assert_int_equal(fx->out.base.stats.retried, 8);
	assert_int_equal(fx->out.base.stats.delivered, 8);
	assert_int_equal(fx->out.base.stats.failed, 0);
	for (int i = 0; i < 5; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	assert_int_equal(fx->out.taken, 8);
	ctd_deliver_free(d);
}

static void test_bound_spool_and_replay(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver *d = make(fx, 4, false);

	/* 4 held in memory, 6 over the bound go to the spool. */
	send_ids(d, 0, 10);
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.base.stats.dying, 4);
	assert_int_equal(fx->out.base.stats.spooled, 6);
	assert_int_equal(fx->out.base.stats.failed, 0);
	assert_int_equal(fx->out.base.stats.held, 10);
	assert_identity(&fx->out);
	/* The output takes the 4 again but never makes them final (its
	 * collector does not acknowledge) before the shutdown: they go to
	 * the spool too, from the write-ahead log. */
	fx->out.accept = true;
	fx->out.hold_back = true;
	ctd_output_ready(&fx->out.base);
	for (int i = 0; i < 20; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	assert_true(fx->out.taken >= 4);
	assert_int_equal(fx->out.base.stats.delivered, 0);
	assert_identity(&fx->out);
	ctd_deliver_finish(d, 0);
	assert_true(fx->out.abandoned);
	assert_int_equal(fx->out.base.stats.held, 10);
	assert_int_equal(fx->out.base.stats.failed, 0);
	assert_identity(&fx->out);
	ctd_deliver_free(d);

	/* Next start: everything comes back exactly once. */
	memset(fx->out.got, 0, sizeof(fx->out.got));
	d = make(fx, 4, true);
	assert_int_equal(fx->out.base.stats.carried, 10);
	run_until_taken(fx, 10);
	assert_each_once(fx, 0, 10);
	assert_int_equal(fx->out.base.stats.replayed, 10);
	for (int i = 0; i < 20 && fx->out.base.stats.spool_size; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	assert_int_equal(fx->out.base.stats.spool_size, 0);
	assert_int_equal(fx->out.base.stats.delivered, 10);
	assert_identity(&fx->out);
	ctd_deliver_free(d);

	/* And the emptied spool gives nothing the time after. */
	d = make(fx, 4, true);
	for (int i = 0; i < 20; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	assert_int_equal(fx->out.taken, 0);
	ctd_deliver_free(d);
}

/* A crash: no finish, no spooling. What was held on the retry list and
 * what was taken but not final was in the write-ahead log after the
 * commit, and comes back, once, from the spool at the next start. */
static void test_crash_loses_nothing_committed(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver *d = make(fx, 10, false);

	send_ids(d, 0, 3);                /* refused: retry list */
	fx->out.accept = true;
	fx->out.hold_back = true;
	send_ids(d, 3, 8);                /* taken, never final */
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.base.stats.held, 8);
	assert_identity(&fx->out);
	/* Gone without a word (what kill -9 leaves is the files). */
	ctd_deliver_free(d);

	memset(fx->out.got, 0, sizeof(fx->out.got));
	d = make(fx, 10, true);
	assert_int_equal(fx->out.base.stats.carried, 8);
	run_until_taken(fx, 8);
	assert_each_once(fx, 0, 8);
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.base.stats.delivered, 8);
	assert_identity(&fx->out);
	ctd_deliver_free(d);
}

/* Ten records in the spool, from a run whose output took none. */
static void spool_ten(struct fixture *fx)
{
	struct ctd_deliver *d = make(fx, 4, false);

	send_ids(d, 0, 10);
	ctd_deliver_finish(d, 0);
	ctd_deliver_free(d);
	memset(fx->out.got, 0, sizeof(fx->out.got));
}

/* A crash while the spool is read back: replayed in the spool's order,
 * what the output made final before it is not replayed again, what it
 * took without making final and what was not read yet is, once. */
static void test_crash_during_read_back(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver *d;
	unsigned final[FAKE_OUTPUT_IDS];

	spool_ten(fx);
	d = make(fx, 4, true);
	fx->out.limit = 5;
	for (int i = 0; i < 20; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.base.stats.delivered, 5);
	memcpy(final, fx->out.got, sizeof(final));
	fx->out.hold_back = true;          /* two more taken, never final */
	fx->out.limit = 7;
	ctd_output_ready(&fx->out.base);
	for (int i = 0; i < 20; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.taken, 7);
	assert_identity(&fx->out);
	/* In the spool's order (the four held at the stop went last). */
	for (uint32_t i = 0; i < 7; i++)
		assert_int_equal(fx->out.order[i], (i + 4) % 10);
	ctd_deliver_free(d);               /* kill -9 */

	d = make(fx, 4, true);
	assert_int_equal(fx->out.base.stats.carried, 5);
	run_until_taken(fx, 5);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(fx->out.order[i], (i + 9) % 10);
	for (uint32_t id = 0; id < 10; id++)
		assert_int_equal(fx->out.got[id] + final[id], 1);
	for (int i = 0; i < 20 && fx->out.base.stats.spool_size; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	assert_int_equal(fx->out.base.stats.spool_size, 0);
	assert_identity(&fx->out);
	ctd_deliver_free(d);
}

static int append_until_three(void *arg, const struct ctd_record *rec)
{
	struct ctd_spool *sp = arg;
	static int n;

	if (++n > 3)
		return -EIO;
	return ctd_spool_append(sp, CTD_SPOOL_RECORD, rec, sizeof(*rec));
}

/* A crash while the next start moved the log to the spool (simulated:
 * the move stops after three records, as a kill would stop it): the
 * start after that cuts those three off and moves all eight again. */
static void test_crash_during_log_recovery(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver *d = make(fx, 10, false);
	struct ctd_spool *sp;
	struct ctd_wal *w;
	char path[128];

	send_ids(d, 0, 3);
	fx->out.accept = true;
	fx->out.hold_back = true;
	send_ids(d, 3, 8);
	ctd_deliver_commit(d);
	ctd_deliver_free(d);               /* kill -9: eight in the log */

	snprintf(path, sizeof(path), "%s/fake.spool", fx->dir);
	assert_int_equal(ctd_spool_open(path, NULL, &sp), 0);
	snprintf(path, sizeof(path), "%s/fake.wal", fx->dir);
	assert_int_equal(ctd_wal_open(path, NULL, &w), 0);
	assert_int_equal(ctd_wal_recover(w, ctd_spool_size(sp),
					 append_until_three, sp), -EIO);
	assert_true(ctd_spool_size(sp) > 0);
	ctd_wal_free(w);
	ctd_spool_free(sp);                /* kill -9 mid-move */

	memset(fx->out.got, 0, sizeof(fx->out.got));
	d = make(fx, 10, true);
	assert_int_equal(fx->out.base.stats.carried, 8);
	run_until_taken(fx, 8);
	assert_each_once(fx, 0, 8);
	for (int i = 0; i < 20; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	assert_int_equal(fx->out.taken, 8);
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.base.stats.delivered, 8);
	assert_identity(&fx->out);
	ctd_deliver_free(d);
}

/* A record made final before the commit costs the log nothing. */
static void test_final_before_commit_not_logged(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver *d = make(fx, 10, true);

	send_ids(d, 0, 20);
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.base.stats.wal_bytes, 0);
	fx->out.hold_back = true;
	send_ids(d, 20, 30);
	ctd_deliver_commit(d);
	assert_true(fx->out.base.stats.wal_bytes > 0);
	/* All final: the log is emptied, not grown. */
	fx->out.hold_back = false;
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.base.stats.wal_bytes, 0);
	assert_int_equal(fx->out.base.stats.delivered, 30);
	assert_identity(&fx->out);
	ctd_deliver_free(d);
}

/* The kernel's missed-event cache, one level up: a refused NEW stays
 * pending on the flow and goes out merged with the next event. */
static void test_missed_event_merge(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver *d = make_for(fx, 10, false, 1u << CTD_EV_NEW |
					 1u << CTD_EV_UPDATE | 1u << CTD_EV_DESTROY);
	struct ctd_record rec;
	uint8_t missed = 0;

	memset(&rec, 0, sizeof(rec));
	rec.id = 3;
	assert_true(ctd_deliver_wants_events(d));
	rec.events = 1u << CTD_EV_NEW;
	ctd_deliver_event(d, &rec, &missed);
	assert_int_equal(missed, 1u << CTD_EV_NEW);
	assert_int_equal(fx->out.base.stats.events_missed, 1);
	/* Not held on the retry list: the flow holds it. */
	assert_int_equal(fx->out.base.stats.dying, 0);
	rec.events = 1u << CTD_EV_UPDATE;
	ctd_deliver_event(d, &rec, &missed);
	assert_int_equal(missed, 1u << CTD_EV_NEW | 1u << CTD_EV_UPDATE);
	assert_int_equal(fx->out.base.stats.events_missed, 2);
	fx->out.accept = true;
	ctd_deliver_event(d, &rec, &missed);
	assert_int_equal(missed, 0);
	assert_int_equal(fx->out.taken, 1);
	assert_int_equal(fx->out.last_events, 1u << CTD_EV_NEW | 1u << CTD_EV_UPDATE);
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.base.stats.events, 1);
	assert_int_equal(fx->out.base.stats.events_merged, 2);
	/* A flow that ends with events pending: the final record has them. */
	fx->out.accept = false;
	rec.events = 1u << CTD_EV_NEW;
	ctd_deliver_event(d, &rec, &missed);
	fx->out.accept = true;
	rec.events = 0;
	rec.missed = missed;
	ctd_deliver_record(d, &rec);
	ctd_deliver_commit(d);
	assert_int_equal(fx->out.last_events, 0);
	assert_int_equal(fx->out.base.stats.events_merged, 3);
	assert_int_equal(fx->out.base.stats.delivered, 1);
	ctd_deliver_free(d);

	/* An output that takes only flow records is never offered events. */
	d = make(fx, 10, true);
	assert_false(ctd_deliver_wants_events(d));
	rec.events = 1u << CTD_EV_NEW;
	missed = 0;
	ctd_deliver_event(d, &rec, &missed);
	assert_int_equal(fx->out.taken, 0);
	assert_int_equal(missed, 0);
	ctd_deliver_free(d);
}

/* The kernel's dying-list schedule, stepped: each refused record comes
 * back at its own random share of the grace period, not before; the
 * timer is asked for exactly the earliest of them; a refused re-send
 * draws a new time. */
static void test_resend_schedule(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver *d;

	fx->rnd = 100;                      /* due after 100, 200, 300 ms */
	fx->rnd_step = 100;
	d = make(fx, 10, false);
	send_ids(d, 0, 3);
	assert_int_equal(step(fx, d, 0), 100 * MS);
	fx->out.accept = true;
	assert_int_equal(step(fx, d, 100 * MS - 1), 1);
	assert_int_equal(fx->out.taken, 0);
	assert_int_equal(step(fx, d, 1), 100 * MS);
	assert_int_equal(fx->out.taken, 1);
	assert_int_equal(fx->out.got[0], 1);
	/* Refused again at its time: id 1 is due 400 ms later (the next
	 * random value), after id 2. */
	fx->out.accept = false;
	assert_int_equal(step(fx, d, 100 * MS), 100 * MS);
	assert_int_equal(fx->out.base.stats.dying, 2);
	fx->out.accept = true;
	assert_int_equal(step(fx, d, 100 * MS), 300 * MS);
	assert_int_equal(fx->out.got[2], 1);
	assert_int_equal(fx->out.got[1], 0);
	assert_int_equal(step(fx, d, 300 * MS), INT64_MAX);
	assert_each_once(fx, 0, 3);
	assert_int_equal(fx->out.base.stats.retried, 3);
	assert_int_equal(fx->out.base.stats.deferred, 3);
	assert_int_equal(fx->out.base.stats.dying, 0);
	ctd_deliver_free(d);
}

/* Records an output took and did not make final (a stuck file or
 * socket) get a look every second even with nothing on the retry list. */
static void test_stuck_output_polled(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver *d = make(fx, 10, true);

	assert_int_equal(step(fx, d, 0), INT64_MAX);
	fx->out.hold_back = true;
	send_ids(d, 0, 1);
	assert_int_equal(step(fx, d, 0), 1000 * MS);
	fx->out.hold_back = false;
	assert_int_equal(step(fx, d, 1000 * MS), INT64_MAX);
	ctd_deliver_free(d);
}

static void test_no_spool_counts_losses(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver_cfg cfg = cfg_for(fx, 2, NULL);
	struct ctd_deliver *d = NULL;
	struct logcap lc;

	fake_output_init(&fx->out, "fake", false);
	fx->out.freed = &fx->freed;
	assert_int_equal(ctd_deliver_new(fx->loop, &cfg, &fx->stats, &d), 0);
	assert_int_equal(ctd_deliver_add(d, &fx->out.base, 1u << CTD_EV_DESTROY), 0);
	logcap_begin(&lc);
	send_ids(d, 0, 5);
	/* One line for the burst (the rest follow in 10 s at the earliest). */
	assert_string_equal(logcap_end(&lc), "ctd: error: output fake: lost 1 "
			    "records (no spool to hold them)\n");
	assert_int_equal(fx->out.base.stats.dying, 2);
	assert_int_equal(fx->out.base.stats.failed, 3);
	assert_int_equal(ctd_deliver_finish(d, 0), 2);
	assert_int_equal(fx->out.base.stats.failed, 5);
	assert_int_equal(fx->out.base.stats.failed_spool, 3);
	assert_int_equal(fx->out.base.stats.failed_shutdown, 2);
	assert_identity(&fx->out);
	ctd_deliver_free(d);
}

static void init_fake(struct fake_output *f, const char *name, bool *freed)
{
	fake_output_init(f, name, false);
	f->freed = freed;
}

static void unlink_spool(struct fixture *fx, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s.spool", fx->dir, name);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s.wal", fx->dir, name);
	unlink(path);
}

/* The budget's gauges agree with the outputs' shares, it is not passed
 * (no ring grew here), and both keep the identity. */
static void assert_budget(struct fixture *fx, const struct fake_output *a,
			  const struct fake_output *b, size_t max)
{
	assert_true(fx->stats.memory_held_bytes <= max);
	assert_int_equal(fx->stats.memory_max_bytes, max);
	assert_int_equal(fx->stats.memory_held_bytes,
			 a->base.stats.memory_bytes + b->base.stats.memory_bytes);
	assert_identity(a);
	assert_identity(b);
}

/* memory-max is one bound for both outputs: together they hold no more
 * than it allows (a record is at least 248 bytes) and spool the rest
 * (spilled_memory); once one drains, its memory goes back and the other
 * holds its next refused records in memory. Every record reaches each
 * output once, the spilled ones from the spool. */
static void test_memory_budget_shared(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver_cfg cfg = cfg_for(fx, 1000, fx->dir);
	struct ctd_deliver *d = NULL;
	struct fake_output a, b;
	bool freed_a, freed_b;
	size_t max = 32u << 10;
	uint64_t spilled;

	cfg.memory_max = max;
	init_fake(&a, "a", &freed_a);
	init_fake(&b, "b", &freed_b);
	assert_int_equal(ctd_deliver_new(fx->loop, &cfg, &fx->stats, &d), 0);
	assert_int_equal(ctd_deliver_add(d, &a.base, 1u << CTD_EV_DESTROY), 0);
	assert_int_equal(ctd_deliver_add(d, &b.base, 1u << CTD_EV_DESTROY), 0);
	send_ids(d, 0, 150);
	ctd_deliver_commit(d);
	assert_budget(fx, &a, &b, max);
	assert_true(fx->stats.memory_held_bytes > max / 2);
	assert_true(a.base.stats.dying + b.base.stats.dying <= max / 248);
	assert_true(a.base.stats.dying > 0 && b.base.stats.dying > 0);
	assert_int_equal(a.base.stats.spilled_memory, 150 - a.base.stats.dying);
	assert_int_equal(b.base.stats.spilled_memory, 150 - b.base.stats.dying);
	assert_int_equal(a.base.stats.spooled, a.base.stats.spilled_memory);
	assert_int_equal(b.base.stats.held, 150);
	assert_int_equal(b.base.stats.failed, 0);

	/* a drains (retry list, then its spool): its memory goes back. */
	a.accept = true;
	ctd_output_ready(&a.base);
	for (int i = 0; i < 50 && a.base.stats.delivered < 150; i++) {
		ev_run(fx->loop, EVRUN_NOWAIT);
		assert_identity(&a);
		assert_identity(&b);
	}
	for (uint32_t id = 0; id < 150; id++)
		assert_int_equal(a.got[id], 1);
	assert_int_equal(a.base.stats.held, 0);
	assert_int_equal(a.base.stats.dying, 0);

	/* Now b's next refusals fit in memory. */
	spilled = b.base.stats.spilled_memory;
	send_ids(d, 150, 170);
	ctd_deliver_commit(d);
	assert_int_equal(b.base.stats.spilled_memory, spilled);
	assert_int_equal(b.base.stats.dying, 20 + 150 - spilled);
	assert_true(fx->stats.memory_held_bytes <= max);
	assert_identity(&a);
	assert_identity(&b);

	/* b drains too: each record once, from memory and from the spool. */
	b.accept = true;
	ctd_output_ready(&b.base);
	for (int i = 0; i < 50 && b.base.stats.delivered < 170; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	for (uint32_t id = 0; id < 170; id++)
		assert_int_equal(b.got[id], 1);
	assert_int_equal(b.base.stats.held, 0);
	assert_identity(&b);
	ctd_deliver_free(d);
	unlink_spool(fx, "a");
	unlink_spool(fx, "b");
}

/* Without a spool, records past the budget are lost and counted, as
 * past dying-max: failed_spool and spilled_memory. */
static void test_memory_budget_no_spool(void **state)
{
	struct fixture *fx = *state;
	struct ctd_deliver_cfg cfg = cfg_for(fx, 1000, NULL);
	struct ctd_deliver *d = NULL;
	struct logcap lc;

	cfg.memory_max = 8u << 10;
	init_fake(&fx->out, "fake", &fx->freed);
	assert_int_equal(ctd_deliver_new(fx->loop, &cfg, &fx->stats, &d), 0);
	assert_int_equal(ctd_deliver_add(d, &fx->out.base, 1u << CTD_EV_DESTROY), 0);
	logcap_begin(&lc);
	send_ids(d, 0, 100);
	logcap_end(&lc);
	ctd_deliver_commit(d);
	assert_true(fx->out.base.stats.dying > 0);
	assert_true(fx->stats.memory_held_bytes <= 8u << 10);
	assert_int_equal(fx->out.base.stats.failed_spool,
			 100 - fx->out.base.stats.dying);
	assert_int_equal(fx->out.base.stats.spilled_memory,
			 fx->out.base.stats.failed_spool);
	assert_identity(&fx->out);
	ctd_deliver_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_direct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_until_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resend_schedule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stuck_output_polled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_spool_and_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missed_event_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_spool_counts_losses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_budget_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_budget_no_spool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_loses_nothing_committed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_final_before_commit_not_logged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_log_recovery, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
