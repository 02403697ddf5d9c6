/* deliver: every record to every output, none lost between them.
 *
 * The kernel's reliable-event design, turned toward ctd's outputs: an
 * output that refuses a record (full disk, slow reader, collector down)
 * gets it again after random % grace, like the kernel's dying list; the
 * list is bounded, and what does not fit goes to that output's spool on
 * disk, as does everything still held at shutdown. Spooled data is read
 * back at start before new records can pile up behind it, and whenever
 * the dying list has room, and the file is emptied once all of it was
 * delivered. An output that says it is ready again is re-sent its held
 * records at once instead of at their random times.
 *
 * Time is integer monotonic microseconds from the injected clock; the
 * ev_timer only wakes the loop at the deadline computed from it, and
 * ctd_deliver_tick does the work, so a test can step the clock and call
 * it instead of waiting. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ev.h>

#include "ctd/ctevent.h"
#include "ctd/deliver.h"
#include "ctd/dying.h"
#include "ctd/log.h"
#include "ctd/output.h"
#include "ctd/record.h"
#include "ctd/safefile.h"
#include "ctd/spool.h"
#include "ctd/stats.h"
#include "ctd/timeutil.h"

#define RETRY_BUDGET 1024        /* held records re-sent per output per tick */
#define STUCK_RETRY_US 1000000   /* re-try a stuck output's writes */
#define FINISH_TICK_US 50000

struct dest {
	struct ctd_output *out;
	struct ctd_dying *dying;
	struct ctd_spool *spool;     /* NULL: none; losses are counted */
	struct ctd_out_stats *st;
	unsigned events;             /* 1 << CTD_EV_* it takes */
	size_t from_spool;           /* read back, not delivered yet */
	bool rush;                   /* ready again: re-send held ones now */
	bool raw_stuck;              /* spooled bytes refused: wait */
	struct ctd_log_rate losses;  /* the "lost records" line */
};

struct ctd_deliver {
	uint64_t rand_state;          /* own_random, when none is given */
	struct ev_loop *loop;
	ev_timer timer;
	int64_t armed_us;
	struct ctd_deliver_cfg cfg;
	struct ctd_stats *stats;
	struct dest dest[CTD_OUT_MAX];
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

/* xorshift64*: the dying lists' spread needs no more than that. */
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

static void log_losses(struct dest *t, int64_t now)
{
	uint64_t n = ctd_log_rate_due(&t->losses, t->st->failed, now);

	if (n)
		log_err("output %s: lost %llu records (%s)", t->out->name,
			(unsigned long long)n,
			t->spool ? "the spool could not take them" :
				   "no spool to hold them");
}

static bool spool_record(struct dest *t, const struct ctd_record *rec)
{
	if (!t->spool ||
	    ctd_spool_append(t->spool, CTD_SPOOL_RECORD, rec, sizeof(*rec)) < 0)
		return false;
	t->st->spooled++;
	t->st->spool_size = ctd_spool_size(t->spool);
	return true;
}

static void update_gauges(struct dest *t)
{
	t->st->dying = ctd_dying_count(t->dying);
	if (t->st->dying > t->st->dying_peak)
		t->st->dying_peak = t->st->dying;
	if (t->spool) {
		t->st->spool_size = ctd_spool_size(t->spool);
		t->st->spool_skipped = ctd_spool_stats(t->spool)->corrupt +
				       ctd_spool_stats(t->spool)->torn;
	}
}

/* A refused record: the dying list, else the spool, else it is lost. */
static void hold(struct ctd_deliver *d, struct dest *t,
		 const struct ctd_record *rec)
{
	int64_t now = mono_us(d);

	t->st->deferred++;
	if (ctd_dying_add(t->dying, rec, 0, now) == 0) {
		update_gauges(t);
		arm(d, ctd_dying_next_due(t->dying), now);
		return;
	}
	if (!spool_record(t, rec))
		t->st->failed++;
	log_losses(t, now);
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

void ctd_deliver_record(struct ctd_deliver *d, const struct ctd_record *rec)
{
	for (size_t i = 0; i < d->n; i++) {
		struct dest *t = &d->dest[i];

		if (!(t->events & 1u << CTD_EV_DESTROY))
			continue;
		t->st->events_merged +=
			(unsigned)__builtin_popcount(missed_of(rec->missed, i));
		switch (t->out->ops->submit(t->out, rec)) {
		case CTD_OUT_DELIVERED:
			t->st->delivered++;
			break;
		case CTD_OUT_AGAIN:
			hold(d, t, rec);
			break;
		case CTD_OUT_FAILED:
			t->st->failed++;
			log_losses(t, mono_us(d));
			break;
		}
	}
}

void ctd_deliver_event(struct ctd_deliver *d, const struct ctd_record *rec,
		       uint8_t *missed)
{
	struct ctd_record ev = *rec;

	for (size_t i = 0; i < d->n; i++) {
		struct dest *t = &d->dest[i];
		unsigned pending = missed_of(*missed, i);

		ev.events = (uint8_t)((rec->events & t->events) | pending);
		if (!(rec->events & t->events))
			continue;
		switch (t->out->ops->submit(t->out, &ev)) {
		case CTD_OUT_AGAIN:
			t->st->events_missed += (unsigned)__builtin_popcount(
				(unsigned)ev.events & ~pending);
			*missed |= (uint8_t)(ev.events << (2 * i));
			continue;
		case CTD_OUT_DELIVERED:
			t->st->events++;
			t->st->events_merged += (unsigned)__builtin_popcount(pending);
			break;
		case CTD_OUT_FAILED:
			t->st->failed++;
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

static void delivered_held(struct dest *t, uint32_t flags)
{
	t->st->delivered++;
	if (flags & CTD_DYING_FROM_SPOOL) {
		t->st->replayed++;
		t->from_spool--;
	} else {
		t->st->retried++;
	}
	ctd_dying_pop(t->dying);
}

/* Re-sends held records that are due (all of them in a rush). A refusal
 * reschedules that record at a new random time and, outside a rush,
 * the walk goes on, so every due record gets its own spread. */
static void retry(struct dest *t, int64_t now, bool *ret_budget_hit)
{
	const struct ctd_record *rec;
	uint32_t flags;
	unsigned budget = RETRY_BUDGET;

	while ((rec = ctd_dying_head(t->dying, &flags)) &&
	       (t->rush || ctd_dying_next_due(t->dying) <= now)) {
		if (!budget--) {
			*ret_budget_hit = true;
			return;
		}
		switch (t->out->ops->submit(t->out, rec)) {
		case CTD_OUT_DELIVERED:
			delivered_held(t, flags);
			break;
		case CTD_OUT_AGAIN:
			ctd_dying_defer(t->dying, now);
			if (t->rush) {
				t->rush = false;
				return;
			}
			break;
		case CTD_OUT_FAILED:
			t->st->failed++;
			if (flags & CTD_DYING_FROM_SPOOL)
				t->from_spool--;
			ctd_dying_pop(t->dying);
			break;
		}
	}
	t->rush = false;
}

static enum ctd_out_status replay_raw(struct dest *t, const void *data,
				      size_t len)
{
	enum ctd_out_status s;

	if (!t->out->ops->submit_raw)
		return CTD_OUT_FAILED;
	s = t->out->ops->submit_raw(t->out, data, len);
	if (s == CTD_OUT_DELIVERED)
		t->st->replayed++;
	return s;
}

/* Reads spooled entries back while the dying list is at most half full,
 * so fresh refusals still find room. */
static int refill(struct ctd_deliver *d, struct dest *t, int64_t now)
{
	enum ctd_spool_kind kind;
	size_t len;
	int r = 0;

	while (t->spool && !t->raw_stuck &&
	       ctd_dying_count(t->dying) < ctd_dying_max(t->dying) / 2 &&
	       (r = ctd_spool_peek(t->spool, d->scratch, CTD_SPOOL_MAX_ENTRY,
				   &kind, &len)) == 1) {
		if (kind == CTD_SPOOL_RAW) {
			enum ctd_out_status s = replay_raw(t, d->scratch, len);

			if (s == CTD_OUT_AGAIN) {
				t->raw_stuck = true;
				break;
			}
			if (s == CTD_OUT_FAILED)
				t->st->failed++;
		} else if (ctd_dying_add_now(t->dying, d->scratch,
					     CTD_DYING_FROM_SPOOL, now) == 0) {
			t->from_spool++;
		} else {
			break;
		}
		ctd_spool_consume(t->spool);
	}
	if (r < 0)
		return r;
	if (t->spool && !t->from_spool && ctd_spool_size(t->spool) &&
	    !ctd_spool_unread(t->spool))
		r = ctd_spool_reset(t->spool);
	return r;
}

/* When this output next needs the timer. */
static int64_t next_due(struct dest *t, int64_t now)
{
	int64_t due = ctd_dying_next_due(t->dying);
	const void *p;

	if (t->rush)
		return now;
	if ((t->spool && ctd_spool_unread(t->spool)) ||
	    (t->out->ops->unsent && t->out->ops->unsent(t->out, &p, 0))) {
		int64_t later = now + STUCK_RETRY_US;

		if (later < due)
			due = later;
	}
	return due;
}

static void service(struct ctd_deliver *d, struct dest *t, int64_t now,
		    bool *ret_budget_hit)
{
	int r;

	retry(t, now, ret_budget_hit);
	if (d->finishing)
		return;
	t->raw_stuck = false;
	r = refill(d, t, now);
	if (r < 0)
		log_err("spool %s: %s", ctd_spool_path(t->spool), ctd_log_errstr(-r));
	update_gauges(t);
	log_losses(t, now);
}

static bool all_delivered(struct ctd_deliver *d)
{
	const void *p;

	for (size_t i = 0; i < d->n; i++) {
		struct dest *t = &d->dest[i];

		if (ctd_dying_count(t->dying) ||
		    (t->out->ops->unsent && t->out->ops->unsent(t->out, &p, 0)))
			return false;
	}
	return true;
}

/* Services every output at now; returns when the next one is due (now
 * when one stopped at its re-send budget). */
static int64_t service_all(struct ctd_deliver *d, int64_t now,
			   bool *ret_budget_hit)
{
	int64_t next = INT64_MAX;
	bool budget_hit = false;

	for (size_t i = 0; i < d->n; i++) {
		struct dest *t = &d->dest[i];
		int64_t due;

		if (d->finishing)
			t->rush = true;
		service(d, t, now, &budget_hit);
		due = next_due(t, now);
		if (due < next)
			next = due;
	}
	*ret_budget_hit = budget_hit;
	return budget_hit ? now : next;
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
	ctd_deliver_flush(d);
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
		if (!ctd_dying_count(d->dest[i].dying))
			return;
		d->dest[i].rush = true;
		kick(d);
	}
}

static int open_spool(struct ctd_deliver *d, struct dest *t)
{
	char path[CTD_SPOOL_PATH_MAX];
	int r;

	if (!d->cfg.spool_dir)
		return 0;
	/* The directory is ctd's own: made for, and handed to, its user. */
	r = ctd_safefile_dir(d->cfg.spool_dir, true, 0700, d->cfg.owner);
	if (r < 0)
		return r;
	close(r);
	r = ctd_spool_build_path(d->cfg.spool_dir, t->out->name, path,
				 sizeof(path));
	if (r == 0)
		r = ctd_spool_open(path, d->cfg.owner, &t->spool);
	if (r < 0)
		return r;
	if (ctd_spool_size(t->spool))
		log_info("output %s: replaying %llu spooled bytes from %s",
			 t->out->name,
			 (unsigned long long)ctd_spool_size(t->spool), path);
	return 0;
}

int ctd_deliver_add(struct ctd_deliver *d, struct ctd_output *out,
		    unsigned events)
{
	struct ctd_dying_cfg dc = { d->cfg.grace_ms, d->cfg.dying_max,
				    d->cfg.random, d->cfg.random_arg };
	struct dest *t = &d->dest[d->n];
	int r;

	if (d->n >= CTD_OUT_MAX) {
		out->ops->free(out);
		return -ENOSPC;
	}
	if (d->n >= EVENT_OUTPUTS &&
	    events & (1u << CTD_EV_NEW | 1u << CTD_EV_UPDATE)) {
		out->ops->free(out);
		return -EINVAL;
	}
	if (!d->scratch && !(d->scratch = malloc(CTD_SPOOL_MAX_ENTRY))) {
		out->ops->free(out);
		return -ENOMEM;
	}
	memset(t, 0, sizeof(*t));
	t->out = out;
	t->events = events;
	t->st = &out->stats;
	d->stats->out[d->n] = &out->stats;
	d->stats->out_name[d->n] = out->name;
	out->ready = on_ready;
	out->ready_arg = d;
	d->n++;
	t->dying = ctd_dying_new(&dc);
	if (!t->dying)
		return -ENOMEM;
	r = open_spool(d, t);
	if (r < 0)
		log_warn("output %s: no spool in %s (%s): records it cannot "
			 "take in time will be lost", out->name,
			 d->cfg.spool_dir, ctd_safefile_strerror(r));
	kick(d);
	return 0;
}

size_t ctd_deliver_count(const struct ctd_deliver *d)
{
	return d->n;
}

void ctd_deliver_flush(struct ctd_deliver *d)
{
	for (size_t i = 0; i < d->n; i++)
		d->dest[i].out->ops->flush(d->dest[i].out);
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

void ctd_deliver_reload(struct ctd_deliver *d, const struct ctd_config *next)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->dest[i].out->ops->reload)
			d->dest[i].out->ops->reload(d->dest[i].out, next);
}

/* Shutdown: rendered bytes still unwritten, then every held record. The
 * part of the spool already read back is cut off first, since what of
 * it is not delivered is among the held records. */
static size_t spool_rest(struct dest *t)
{
	const struct ctd_record *rec;
	const void *data;
	size_t len, left = 0;
	uint32_t flags;

	if (t->out->ops->unsent &&
	    (len = t->out->ops->unsent(t->out, &data, 0)) > 0) {
		if (t->spool && ctd_spool_append(t->spool, CTD_SPOOL_RAW,
						 data, len) == 0) {
			t->st->spooled_bytes += len;
			t->out->ops->unsent(t->out, &data, 1);
		} else {
			log_err("output %s: %zu unwritten bytes lost",
				t->out->name, len);
		}
	}
	if (t->spool && ctd_spool_drop_read(t->spool) < 0)
		log_err("spool %s: cannot cut off the replayed part; "
			"its records may be delivered twice",
			ctd_spool_path(t->spool));
	while ((rec = ctd_dying_head(t->dying, &flags))) {
		if (!spool_record(t, rec))
			t->st->failed++;
		left++;
		ctd_dying_pop(t->dying);
	}
	update_gauges(t);
	return left;
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
		left += spool_rest(&d->dest[i]);
		log_losses(&d->dest[i], mono_us(d));
	}
	return left;
}

void ctd_deliver_free(struct ctd_deliver *d)
{
	if (!d)
		return;
	ev_timer_stop(d->loop, &d->timer);
	for (size_t i = 0; i < d->n; i++) {
		struct dest *t = &d->dest[i];

		t->out->ops->flush(t->out);
		d->stats->out_name[i] = NULL;
		d->stats->out[i] = NULL;
		t->out->ops->free(t->out);
		ctd_dying_free(t->dying);
		ctd_spool_free(t->spool);
	}
	free(d->scratch);
	free(d);
}
