/* deliver: every record to every output, none lost between them.
 *
 * The kernel's reliable-event design, turned toward ctd's outputs: an
 * output that refuses a record (full disk, slow reader, collector down)
 * gets it again after random % grace, like the kernel's dying list; the
 * list is bounded, and what does not fit goes to that output's spool on
 * disk, as does everything still held at shutdown. Spooled data is
 * replayed in its order whenever the output takes it, staying in the
 * spool until final, and the file is emptied once all of it was
 * delivered. An output that says it is ready again is re-sent its held
 * records at once instead of at their random times.
 *
 * Nothing is held only in memory past a batch of events: a record an
 * output took is final only when the output says so (settled: written,
 * acknowledged), and until then, like every record on the retry list,
 * it is in the output's write-ahead log (wal.c), which ctd_deliver_commit
 * writes after each batch, before the next is read. A crash loses at most
 * the batch being handled; what the log holds goes to the spool at the
 * next start. Each output's flow records obey records = delivered +
 * failed + held, failures counted by reason when they happen.
 *
 * Memory: one budget in bytes (membudget.h) covers what every output's
 * retry list and taken ring hold, shared, because the cgroup limits the
 * whole process: a record that would pass it goes to the spool, as one
 * over dying-max does, counted in spilled_memory. The taken rings are
 * charged first and never refused (see dest.c). The rest of what an
 * output buffers is fixed in size (its write buffer, the log's batch of
 * at most one event batch) and is what auto leaves room for.
 *
 * This file is the coordinator: it offers records and events, walks the
 * retry lists on its timer, commits after each batch and runs the
 * shutdown. One output's books are dest.c's, the spool read back is
 * replay.c's, the files' start and shutdown are lifecycle.c's.
 *
 * Time is integer monotonic microseconds from the injected clock; the
 * ev_timer only wakes the loop at the deadline computed from it, and
 * ctd_deliver_tick does the work, so a test can step the clock and call
 * it instead of waiting. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ev.h>

#include "ctd/base/log.h"
#include "ctd/base/membudget.h"
#include "ctd/base/safefile.h"
#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/delivery/deliver.h"
#include "ctd/delivery/dest.h"
#include "ctd/delivery/lifecycle.h"
#include "ctd/delivery/readback.h"
#include "ctd/delivery/replay.h"
#include "ctd/delivery/retry.h"
#include "ctd/delivery/spool.h"
#include "ctd/delivery/wal.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/output.h"

#define RETRY_BUDGET 1024        /* held records re-sent per output per tick */
#define STUCK_RETRY_US 1000000   /* re-try a stuck output's writes */
#define FINISH_TICK_US 50000

struct ctd_deliver {
	uint64_t rand_state;          /* own_random, when none is given */
	struct ev_loop *loop;
	ev_timer timer;
	int64_t armed_us;
	struct ctd_deliver_cfg cfg;
	struct ctd_stats *stats;
	struct ctd_membudget budget;
	struct ctd_dest dest[CTD_OUT_MAX];
	size_t n;
	bool finishing;
	int64_t finish_deadline_us;
	void *scratch;               /* one spool entry */
};

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);

static int64_t mono_us(const struct ctd_deliver *d)
{
	return ctd_clock_read(&d->cfg.clock).mono_us;
}

/* xorshift64*: the retry lists' spread needs no more than that. */
static uint32_t own_random(void *arg)
{
	struct ctd_deliver *d = arg;
	uint64_t x = d->rand_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	d->rand_state = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

static void seed_random(struct ctd_deliver *d)
{
	struct ctd_now now = ctd_clock_read(&d->cfg.clock);

	d->rand_state = now.wall_ns ^ ((uint64_t)getpid() << 32) ^
			(uint64_t)now.mono_us;
	if (!d->rand_state)
		d->rand_state = 1;
	d->cfg.random = own_random;
	d->cfg.random_arg = d;
}

int ctd_deliver_new(struct ev_loop *loop, const struct ctd_deliver_cfg *cfg,
		    struct ctd_stats *stats, struct ctd_deliver **ret)
{
	struct ctd_deliver *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->loop = loop;
	d->cfg = *cfg;
	if (!d->cfg.random)
		seed_random(d);
	d->stats = stats;
	d->budget.max = cfg->memory_max;
	stats->memory_max_bytes = cfg->memory_max;
	d->armed_us = INT64_MAX;
	ev_init(&d->timer, on_timer);
	d->timer.data = d;
	*ret = d;
	return 0;
}

/* Arms the timer for due, unless it already fires earlier. */
static void arm(struct ctd_deliver *d, int64_t due, int64_t now)
{
	double after;

	if (due >= d->armed_us && ev_is_active(&d->timer))
		return;
	if (due == INT64_MAX)
		return;
	after = due > now ? (double)(due - now) / 1e6 : 0;
	ev_timer_stop(d->loop, &d->timer);
	ev_timer_set(&d->timer, after, 0);
	ev_timer_start(d->loop, &d->timer);
	d->armed_us = due;
}

/* A refused record: the retry list (and the log), else the spool, else
 * it is lost. */
static void hold(struct ctd_deliver *d, struct ctd_dest *t,
		 const struct ctd_record *rec)
{
	int64_t now = mono_us(d);
	uint64_t seq = ctd_dest_log_add(t, rec);
	int r = ctd_retry_add(t->retry, rec, seq, now);

	if (r == 0) {
		ctd_dest_update_gauges(t);
		arm(d, ctd_retry_next_due(t->retry), now);
		return;
	}
	if (r == -ENOBUFS)
		t->st->spilled_memory++;
	ctd_dest_release(t, false, seq);
	if (!ctd_dest_spool_record(t, rec))
		ctd_dest_fail(t, &t->st->failed_spool, 1);
	ctd_dest_log_losses(t, now);
}

_Static_assert(CTD_EV_NEW == 0 && CTD_EV_UPDATE == 1,
	       "event bits double as missed-event bits");
/* Only the first four outputs can take event records: their missed-event
 * bits fill the flow's byte. */
#define EVENT_OUTPUTS 4

/* Two missed-event bits per output: NEW and UPDATE. */
static unsigned missed_of(uint8_t missed, size_t i)
{
	return (missed >> (2 * i)) & 3u;
}

static void offer(struct ctd_deliver *d, struct ctd_dest *t,
		  const struct ctd_record *rec)
{
	if (ctd_dest_taken_full(t)) {
		hold(d, t, rec);
		return;
	}
	switch (t->out->ops->submit(t->out, rec)) {
	case CTD_OUT_DELIVERED:
		ctd_dest_took(t, rec, 0, 0);
		break;
	case CTD_OUT_AGAIN:
		t->st->deferred++;
		hold(d, t, rec);
		break;
	case CTD_OUT_FAILED:
		ctd_dest_fail(t, &t->st->failed_render, 1);
		ctd_dest_log_losses(t, mono_us(d));
		break;
	}
}

void ctd_deliver_record(struct ctd_deliver *d, const struct ctd_record *rec)
{
	for (size_t i = 0; i < d->n; i++) {
		struct ctd_dest *t = &d->dest[i];

		if (!(t->events & 1u << CTD_EV_DESTROY))
			continue;
		t->st->records++;
		t->st->events_merged +=
			(unsigned)__builtin_popcount(missed_of(rec->missed, i));
		offer(d, t, rec);
	}
}

void ctd_deliver_event(struct ctd_deliver *d, const struct ctd_record *rec,
		       uint8_t *missed)
{
	struct ctd_record ev = *rec;

	for (size_t i = 0; i < d->n; i++) {
		struct ctd_dest *t = &d->dest[i];
		unsigned pending = missed_of(*missed, i);

		ev.events = (uint8_t)((rec->events & t->events) | pending);
		if (!(rec->events & t->events))
			continue;
		switch (ctd_dest_taken_full(t) ? CTD_OUT_AGAIN :
			t->out->ops->submit(t->out, &ev)) {
		case CTD_OUT_AGAIN:
			t->st->events_missed += (unsigned)__builtin_popcount(
				(unsigned)ev.events & ~pending);
			*missed |= (uint8_t)(ev.events << (2 * i));
			continue;
		case CTD_OUT_DELIVERED:
			ctd_dest_took(t, &ev, CTD_TAKEN_EVENT, 0);
			t->st->events_merged += (unsigned)__builtin_popcount(pending);
			break;
		case CTD_OUT_FAILED:
			break;
		}
		*missed &= (uint8_t)~(3u << (2 * i));
	}
}

bool ctd_deliver_wants_events(const struct ctd_deliver *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->dest[i].events & (1u << CTD_EV_NEW | 1u << CTD_EV_UPDATE))
			return true;
	return false;
}

/* The retry list's head was taken. */
static void took_held(struct ctd_dest *t, const struct ctd_record *rec)
{
	uint64_t seq = ctd_retry_head_tag(t->retry);

	ctd_dest_took(t, rec, CTD_TAKEN_RETRIED, seq);
	ctd_retry_pop(t->retry);
}

static void failed_held(struct ctd_dest *t)
{
	ctd_dest_fail(t, &t->st->failed_render, 1);
	ctd_dest_release(t, false, ctd_retry_head_tag(t->retry));
	ctd_retry_pop(t->retry);
}

/* Re-sends held records that are due (all of them in a rush). A refusal
 * reschedules that record at a new random time and, outside a rush,
 * the walk goes on, so every due record gets its own spread. */
static void retry(struct ctd_dest *t, int64_t now, bool *ret_budget_hit)
{
	const struct ctd_record *rec;
	unsigned budget = RETRY_BUDGET;

	while ((rec = ctd_retry_head(t->retry)) &&
	       (t->rush || ctd_retry_next_due(t->retry) <= now)) {
		if (!budget--) {
			*ret_budget_hit = true;
			return;
		}
		switch (ctd_dest_taken_full(t) ? CTD_OUT_AGAIN :
			t->out->ops->submit(t->out, rec)) {
		case CTD_OUT_DELIVERED:
			took_held(t, rec);
			break;
		case CTD_OUT_AGAIN:
			ctd_retry_defer(t->retry, now);
			if (t->rush) {
				t->rush = false;
				return;
			}
			break;
		case CTD_OUT_FAILED:
			failed_held(t);
			break;
		}
	}
	t->rush = false;
}

/* When this output next needs the timer. */
static int64_t next_due(struct ctd_dest *t, int64_t now)
{
	int64_t due = ctd_retry_next_due(t->retry);

	if (t->rush)
		return now;
	/* Taken but not final (a write that failed, acks to come), or
	 * spooled bytes waiting: look again soon. */
	if ((t->spool && ctd_spool_unread(t->spool)) || t->taken_n) {
		int64_t later = now + STUCK_RETRY_US;

		if (later < due)
			due = later;
	}
	return due;
}

static void service(struct ctd_deliver *d, struct ctd_dest *t, int64_t now,
		    bool *ret_budget_hit)
{
	int r;

	retry(t, now, ret_budget_hit);
	if (d->finishing)
		return;
	t->replay_stuck = false;
	r = ctd_replay_refill(t, d->scratch, ret_budget_hit);
	if (r < 0)
		log_err("spool %s: %s", ctd_spool_path(t->spool), strerror(-r));
	ctd_dest_update_gauges(t);
	ctd_dest_log_losses(t, now);
}

static bool all_delivered(struct ctd_deliver *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (ctd_retry_count(d->dest[i].retry) || d->dest[i].taken_n)
			return false;
	return true;
}

/* Services every output at now, then commits; returns when the next
 * one is due (now when one stopped at its re-send budget). */
static int64_t service_all(struct ctd_deliver *d, int64_t now,
			   bool *ret_budget_hit)
{
	int64_t next = INT64_MAX;
	bool budget_hit = false;

	for (size_t i = 0; i < d->n; i++) {
		if (d->finishing)
			d->dest[i].rush = true;
		service(d, &d->dest[i], now, &budget_hit);
	}
	ctd_deliver_commit(d);
	for (size_t i = 0; i < d->n; i++) {
		int64_t due = next_due(&d->dest[i], now);

		if (due < next)
			next = due;
	}
	*ret_budget_hit = budget_hit;
	return budget_hit ? now : next;
}

/* Records taken and not final (a write that failed, acks to come) are
 * looked at again soon even when no event comes to flush them: a file
 * whose disk was replaced is found only by a flush. */
static void arm_stuck(struct ctd_deliver *d)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->dest[i].taken_n) {
			int64_t now = mono_us(d);

			arm(d, now + STUCK_RETRY_US, now);
			return;
		}
	}
}

void ctd_deliver_commit(struct ctd_deliver *d)
{
	int64_t now = 0;

	for (size_t i = 0; i < d->n; i++) {
		struct ctd_dest *t = &d->dest[i];

		t->out->ops->flush(t->out);
		ctd_dest_settle(t);
		if (t->wal && !now)
			now = mono_us(d);
		ctd_dest_commit_log(t, now);
		ctd_dest_commit_spool(t);
		ctd_dest_update_gauges(t);
	}
	d->stats->memory_held_bytes = d->budget.held;
	arm_stuck(d);
}

int64_t ctd_deliver_tick(struct ctd_deliver *d)
{
	bool budget_hit;
	int64_t now = mono_us(d), next = service_all(d, now, &budget_hit);

	arm(d, next, now);
	return next;
}

/* Shutdown: everything held is re-sent every tick until all of it is
 * delivered or the deadline passed; then the loop stops. */
static void finish_tick(struct ctd_deliver *d, struct ev_loop *loop)
{
	int64_t now = mono_us(d);
	bool budget_hit;

	service_all(d, now, &budget_hit);
	if (all_delivered(d) || now >= d->finish_deadline_us) {
		ev_break(loop, EVBREAK_ONE);
		return;
	}
	arm(d, budget_hit ? now : now + FINISH_TICK_US, now);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctd_deliver *d = w->data;

	(void)revents;
	d->armed_us = INT64_MAX;
	if (d->finishing)
		finish_tick(d, loop);
	else
		ctd_deliver_tick(d);
}

static void kick(struct ctd_deliver *d)
{
	int64_t now = mono_us(d);

	arm(d, now, now);
}

static void on_ready(void *arg, struct ctd_output *out)
{
	struct ctd_deliver *d = arg;

	for (size_t i = 0; i < d->n; i++) {
		if (d->dest[i].out != out)
			continue;
		if (!ctd_retry_count(d->dest[i].retry) &&
		    !(d->dest[i].spool && ctd_spool_unread(d->dest[i].spool)))
			return;
		d->dest[i].rush = true;
		kick(d);
	}
}

/* Whether out may be added: room in the table, event records only for
 * the first EVENT_OUTPUTS, the scratch entry allocated. */
static int can_add(struct ctd_deliver *d, unsigned events)
{
	if (d->n >= CTD_OUT_MAX)
		return -ENOSPC;
	if (d->n >= EVENT_OUTPUTS &&
	    events & (1u << CTD_EV_NEW | 1u << CTD_EV_UPDATE))
		return -EINVAL;
	if (!d->scratch && !(d->scratch = malloc(CTD_SPOOL_MAX_ENTRY)))
		return -ENOMEM;
	return 0;
}

int ctd_deliver_add(struct ctd_deliver *d, struct ctd_output *out,
		    unsigned events)
{
	struct ctd_retry_cfg dc = { d->cfg.grace_ms, d->cfg.retry_max,
				    d->cfg.random, d->cfg.random_arg,
				    &d->budget };
	struct ctd_dest *t = &d->dest[d->n];
	int r = can_add(d, events);

	if (r < 0) {
		out->ops->free(out);
		return r;
	}
	*t = (struct ctd_dest){ .out = out, .events = events,
				.st = &out->stats, .budget = &d->budget };
	d->stats->out[d->n] = &out->stats;
	d->stats->out_name[d->n] = out->name;
	d->stats->out_defs[d->n] = out->counters;
	d->stats->out_own[d->n] = out->own;
	out->ready = on_ready;
	out->budget = &d->budget;
	out->ready_arg = d;
	d->n++;
	t->retry = ctd_retry_new(&dc);
	if (!t->retry)
		return -ENOMEM;
	r = ctd_lifecycle_open(t, d->cfg.spool_dir, d->cfg.owner, d->scratch);
	if (r < 0)
		log_warn("output %s: no spool in %s (%s): records it cannot "
			 "take in time will be lost", out->name,
			 d->cfg.spool_dir, ctd_safefile_strerror(r));
	ctd_dest_update_gauges(t);
	kick(d);
	return 0;
}

size_t ctd_deliver_count(const struct ctd_deliver *d)
{
	return d->n;
}

void ctd_deliver_flush(struct ctd_deliver *d)
{
	ctd_deliver_commit(d);
}

void ctd_deliver_reopen(struct ctd_deliver *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct ctd_output *out = d->dest[i].out;
		int r;

		if (!out->ops->reopen)
			continue;
		r = out->ops->reopen(out);
		if (r < 0)
			log_err("output %s: cannot reopen: %s; still writing "
				"to the old file", out->name, ctd_log_errstr(-r));
	}
}

int ctd_deliver_reload(struct ctd_deliver *d, const struct ctd_config *next)
{
	int r = 0;

	for (size_t i = 0; i < d->n && r == 0; i++)
		if (d->dest[i].out->ops->reload)
			r = d->dest[i].out->ops->reload(d->dest[i].out, next);
	return r;
}

size_t ctd_deliver_finish(struct ctd_deliver *d, unsigned timeout_s)
{
	size_t left = 0;

	d->finishing = true;
	d->finish_deadline_us = mono_us(d) + (int64_t)timeout_s * 1000000;
	/* The loop's idea of now may be a long callback old: the timer's
	 * relative wait must start from the real one. */
	ev_now_update(d->loop);
	kick(d);
	if (!all_delivered(d))
		ev_run(d->loop, 0);
	ev_timer_stop(d->loop, &d->timer);
	for (size_t i = 0; i < d->n; i++) {
		left += ctd_lifecycle_close(&d->dest[i]);
		ctd_dest_log_losses(&d->dest[i], mono_us(d));
	}
	return left;
}

void ctd_deliver_free(struct ctd_deliver *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		struct ctd_dest *t = &d->dest[i];

		/* A flush that makes room calls ready, which arms the timer:
		 * it must not stay on the loop, which may run on. */
		t->out->ops->flush(t->out);
		d->stats->out_name[i] = NULL;
		d->stats->out[i] = NULL;
		d->stats->out_defs[i] = NULL;
		d->stats->out_own[i] = NULL;
		t->out->ops->free(t->out);
		ctd_retry_free(t->retry);
		ctd_spool_free(t->spool);
		ctd_wal_free(t->wal);
		ctd_readback_free(t->rb);
		free(t->taken);
	}
	ev_timer_stop(d->loop, &d->timer);
	free(d->scratch);
	free(d);
}
