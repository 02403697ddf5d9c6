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
 * charged first and never refused (see taken_grow). The rest of what an
 * output buffers is fixed in size (its write buffer, the log's batch of
 * at most one event batch) and is what auto leaves room for.
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

#include "ctd/base/log.h"
#include "ctd/base/membudget.h"
#include "ctd/base/ring.h"
#include "ctd/base/safefile.h"
#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/delivery/deliver.h"
#include "ctd/delivery/retry.h"
#include "ctd/delivery/readback.h"
#include "ctd/delivery/spool.h"
#include "ctd/delivery/wal.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/output.h"

#define RETRY_BUDGET 1024        /* held records re-sent per output per tick */
#define STUCK_RETRY_US 1000000   /* re-try a stuck output's writes */
#define FINISH_TICK_US 50000
#define TAKEN_MAX 65536          /* records taken, not final, per output */
#define TAKEN_KEEP 4096          /* a ring this small is kept when empty */

/* A record the output took, not final yet: its log sequence (0: not
 * logged) and how it came (TAKEN_*). */
struct taken {
	uint64_t seq;
	uint32_t flags;
};

enum {
	TAKEN_RETRIED = 1u << 0,     /* from the retry list */
	TAKEN_REPLAYED = 1u << 1,    /* from the spool */
	TAKEN_EVENT = 1u << 2,       /* an event record: not a flow record */
};

struct dest {
	struct ctd_output *out;
	struct ctd_retry *retry;
	struct ctd_spool *spool;     /* NULL: none; losses are counted */
	struct ctd_wal *wal;         /* NULL without a spool */
	struct ctd_out_stats *st;
	unsigned events;             /* 1 << CTD_EV_* it takes */
	struct ctd_readback *rb;     /* read back from the spool, not final */
	uint64_t spool_records;      /* in the spool, not read back yet */
	uint64_t wal_kept;           /* at exit: left in the log alone */
	struct taken *taken;         /* a ring, in the order taken */
	size_t taken_cap, taken_head, taken_n;
	struct ctd_membudget *budget; /* shared by all outputs */
	uint64_t settled_seen, given_up_seen;
	bool rush;                   /* ready again: re-send held ones now */
	bool replay_stuck;           /* a spooled entry refused: wait */
	struct ctd_log_rate losses;  /* the "lost records" line */
	struct ctd_log_rate wal_fails;
};

struct ctd_deliver {
	uint64_t rand_state;          /* own_random, when none is given */
	struct ev_loop *loop;
	ev_timer timer;
	int64_t armed_us;
	struct ctd_deliver_cfg cfg;
	struct ctd_stats *stats;
	struct ctd_membudget budget;
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

static void log_losses(struct dest *t, int64_t now)
{
	uint64_t n = ctd_log_rate_due(&t->losses, t->st->failed, now);

	if (n)
		log_err("output %s: lost %llu records (%s)", t->out->name,
			(unsigned long long)n,
			t->spool ? "the spool could not take them" :
				   "no spool to hold them");
}

/* A record given up, counted by reason (output.h). */
static void fail(struct dest *t, uint64_t *reason, uint64_t n)
{
	*reason += n;
	t->st->failed += n;
}

static bool spool_record(struct dest *t, const struct ctd_record *rec)
{
	if (!t->spool ||
	    ctd_spool_append(t->spool, CTD_SPOOL_RECORD, rec, sizeof(*rec)) < 0)
		return false;
	t->st->spooled++;
	t->spool_records++;
	t->st->spool_size = ctd_spool_size(t->spool);
	return true;
}

static void update_gauges(struct dest *t)
{
	t->st->dying = ctd_retry_count(t->retry);
	if (t->st->dying > t->st->dying_peak)
		t->st->dying_peak = t->st->dying;
	t->st->held = t->taken_n + t->st->dying + t->spool_records +
		      t->wal_kept;
	if (t->spool) {
		t->st->spool_size = ctd_spool_size(t->spool);
		t->st->spool_skipped = ctd_spool_stats(t->spool)->corrupt +
				       ctd_spool_stats(t->spool)->torn;
	}
	if (t->wal)
		t->st->wal_bytes = ctd_wal_size(t->wal);
	t->st->memory_bytes = ctd_retry_bytes(t->retry) +
			      t->taken_cap * sizeof(*t->taken);
}

static uint64_t log_add(struct dest *t, const struct ctd_record *rec)
{
	return t->wal ? ctd_wal_add(t->wal, rec) : 0;
}

/* A held record is final (delivered or given up). One read back from
 * the spool is tagged with its read-back token: the spool's mark may
 * pass it now. Any other is tagged with its log sequence (0: none). */
static void release(struct dest *t, bool replayed, uint64_t tag)
{
	if (replayed)
		ctd_readback_final(t->rb, tag);
	else if (tag)
		ctd_wal_done(t->wal, tag);
}

/* A refused record: the retry list (and the log), else the spool, else
 * it is lost. */
static void hold(struct ctd_deliver *d, struct dest *t,
		 const struct ctd_record *rec)
{
	int64_t now = mono_us(d);
	uint64_t seq = log_add(t, rec);
	int r = ctd_retry_add(t->retry, rec, seq, now);

	if (r == 0) {
		update_gauges(t);
		arm(d, ctd_retry_next_due(t->retry), now);
		return;
	}
	if (r == -ENOBUFS)
		t->st->spilled_memory++;
	release(t, false, seq);
	if (!spool_record(t, rec))
		fail(t, &t->st->failed_spool, 1);
	log_losses(t, now);
}

/* A larger ring, charged to the budget even past it: refusing it
 * would keep a full retry list from ever draining into the output. It
 * is small (16 bytes a record, TAKEN_MAX at most) and given back when
 * empty; the retry lists get what it leaves. */
static int taken_grow(struct dest *t)
{
	size_t old = t->taken_cap;
	int r = ctd_ring_grow((void **)&t->taken, sizeof(*t->taken),
			      &t->taken_cap, &t->taken_head, t->taken_n);

	if (r == 0)
		ctd_membudget_charge(t->budget,
				     (t->taken_cap - old) * sizeof(*t->taken));
	return r;
}

/* An empty ring goes back to the budget, for the other outputs; a small
 * one stays (a file output empties it at every commit). */
static void taken_shrink(struct dest *t)
{
	if (t->taken_n || t->taken_cap <= TAKEN_KEEP)
		return;
	ctd_membudget_give(t->budget, t->taken_cap * sizeof(*t->taken));
	free(t->taken);
	t->taken = NULL;
	t->taken_cap = t->taken_head = 0;
}

/* Whether the output may be offered a record: one it takes must fit in
 * the ring until it is final; else it is held like one it refused. */
static bool taken_full(struct dest *t)
{
	if (!t->out->ops->settled)
		return false;
	if (t->taken_n >= TAKEN_MAX)
		return true;
	if (t->taken_n < t->taken_cap)
		return false;
	return taken_grow(t) < 0;
}

/* Counts a record final: by how it came. */
static void count_final(struct dest *t, uint32_t flags)
{
	if (flags & TAKEN_EVENT) {
		t->st->events++;
		return;
	}
	t->st->delivered++;
	if (flags & TAKEN_REPLAYED)
		t->st->replayed++;
	else if (flags & TAKEN_RETRIED)
		t->st->retried++;
}

/* The output took rec: final at once, or when settled says so; until
 * then in the log, unless it is an event record (never held). */
static void took(struct dest *t, const struct ctd_record *rec,
		 uint32_t flags, uint64_t seq)
{
	if (!t->out->ops->settled) {
		count_final(t, flags);
		release(t, flags & TAKEN_REPLAYED, seq);
		return;
	}
	if (t->taken_n == t->taken_cap) {
		/* Every caller asked taken_full first, which made room;
		 * should one not, final at once, as without a log. */
		count_final(t, flags);
		release(t, flags & TAKEN_REPLAYED, seq);
		return;
	}
	if (!seq && !(flags & TAKEN_EVENT))
		seq = log_add(t, rec);
	t->taken[(t->taken_head + t->taken_n) % t->taken_cap] =
		(struct taken){ seq, flags };
	t->taken_n++;
}

/* Pops what the output made final since the last look. */
static void settle(struct dest *t)
{
	uint64_t n, given;

	if (!t->out->ops->settled)
		return;
	n = t->out->ops->settled(t->out) - t->settled_seen;
	given = t->out->given_up - t->given_up_seen;
	t->settled_seen += n;
	t->given_up_seen += given;
	for (; n && t->taken_n; n--, t->taken_n--) {
		struct taken *k = &t->taken[t->taken_head];

		release(t, k->flags & TAKEN_REPLAYED, k->seq);
		count_final(t, k->flags);
		t->taken_head = (t->taken_head + 1) % t->taken_cap;
	}
	/* Taken, then given up by the output (counted in failed_output). */
	t->st->delivered -= given;
	t->st->failed += given;
	taken_shrink(t);
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

static void offer(struct ctd_deliver *d, struct dest *t,
		  const struct ctd_record *rec)
{
	if (taken_full(t)) {
		hold(d, t, rec);
		return;
	}
	switch (t->out->ops->submit(t->out, rec)) {
	case CTD_OUT_DELIVERED:
		took(t, rec, 0, 0);
		break;
	case CTD_OUT_AGAIN:
		t->st->deferred++;
		hold(d, t, rec);
		break;
	case CTD_OUT_FAILED:
		fail(t, &t->st->failed_render, 1);
		log_losses(t, mono_us(d));
		break;
	}
}

void ctd_deliver_record(struct ctd_deliver *d, const struct ctd_record *rec)
{
	for (size_t i = 0; i < d->n; i++) {
		struct dest *t = &d->dest[i];

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
		struct dest *t = &d->dest[i];
		unsigned pending = missed_of(*missed, i);

		ev.events = (uint8_t)((rec->events & t->events) | pending);
		if (!(rec->events & t->events))
			continue;
		switch (taken_full(t) ? CTD_OUT_AGAIN :
			t->out->ops->submit(t->out, &ev)) {
		case CTD_OUT_AGAIN:
			t->st->events_missed += (unsigned)__builtin_popcount(
				(unsigned)ev.events & ~pending);
			*missed |= (uint8_t)(ev.events << (2 * i));
			continue;
		case CTD_OUT_DELIVERED:
			took(t, &ev, TAKEN_EVENT, 0);
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
static void took_held(struct dest *t, const struct ctd_record *rec)
{
	uint64_t seq = ctd_retry_head_tag(t->retry);

	took(t, rec, TAKEN_RETRIED, seq);
	ctd_retry_pop(t->retry);
}

static void failed_held(struct dest *t)
{
	fail(t, &t->st->failed_render, 1);
	release(t, false, ctd_retry_head_tag(t->retry));
	ctd_retry_pop(t->retry);
}

/* Re-sends held records that are due (all of them in a rush). A refusal
 * reschedules that record at a new random time and, outside a rush,
 * the walk goes on, so every due record gets its own spread. */
static void retry(struct dest *t, int64_t now, bool *ret_budget_hit)
{
	const struct ctd_record *rec;
	unsigned budget = RETRY_BUDGET;

	while ((rec = ctd_retry_head(t->retry)) &&
	       (t->rush || ctd_retry_next_due(t->retry) <= now)) {
		if (!budget--) {
			*ret_budget_hit = true;
			return;
		}
		switch (taken_full(t) ? CTD_OUT_AGAIN :
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

/* Spooled rendered bytes back to the output: final once it took them
 * (or never can). false: stop reading for now. */
static bool refill_raw(struct ctd_deliver *d, struct dest *t, size_t len)
{
	enum ctd_out_status s = replay_raw(t, d->scratch, len);

	if (s == CTD_OUT_AGAIN) {
		t->replay_stuck = true;
		return false;
	}
	if (s == CTD_OUT_FAILED)
		fail(t, &t->st->failed_render, 1);
	/* Without a slot, the next entry's end covers this one's. */
	ctd_readback_final(t->rb, ctd_readback_add(t->rb,
					ctd_spool_peeked_end(t->spool)));
	return true;
}

/* One spooled record back to the output, in the spool's order, so it
 * becomes final in that order too (taken records settle first in, first
 * out) and the spool's mark follows close behind: a crash repeats at
 * most what became final since the last commit. It stays in the spool
 * until final, never in the log too. false: refused; stop for now. */
static bool refill_record(struct ctd_deliver *d, struct dest *t)
{
	const struct ctd_record *rec = d->scratch;
	uint64_t token = ctd_readback_add(t->rb,
					  ctd_spool_peeked_end(t->spool));

	if (!token)
		return false;
	switch (taken_full(t) ? CTD_OUT_AGAIN : t->out->ops->submit(t->out, rec)) {
	case CTD_OUT_AGAIN:
		ctd_readback_cancel_last(t->rb);
		t->replay_stuck = true;
		return false;
	case CTD_OUT_FAILED:
		fail(t, &t->st->failed_render, 1);
		ctd_readback_final(t->rb, token);
		break;
	case CTD_OUT_DELIVERED:
		took(t, rec, TAKEN_REPLAYED, token);
		break;
	}
	t->spool_records--;
	return true;
}

/* Replays spooled entries while the output takes them, up to the
 * budget per tick. */
static int refill(struct ctd_deliver *d, struct dest *t,
		  bool *ret_budget_hit)
{
	enum ctd_spool_kind kind;
	unsigned budget = RETRY_BUDGET;
	size_t len;
	int r = 0;

	while (t->spool && !t->replay_stuck &&
	       (r = ctd_spool_peek(t->spool, d->scratch, CTD_SPOOL_MAX_ENTRY,
				   &kind, &len)) == 1) {
		if (!budget--) {
			*ret_budget_hit = true;
			break;
		}
		if (!(kind == CTD_SPOOL_RAW ? refill_raw(d, t, len) :
					      refill_record(d, t)))
			break;
		ctd_spool_consume(t->spool);
	}
	return r < 0 ? r : 0;
}

/* When this output next needs the timer. */
static int64_t next_due(struct dest *t, int64_t now)
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

static void service(struct ctd_deliver *d, struct dest *t, int64_t now,
		    bool *ret_budget_hit)
{
	int r;

	retry(t, now, ret_budget_hit);
	if (d->finishing)
		return;
	t->replay_stuck = false;
	r = refill(d, t, ret_budget_hit);
	if (r < 0)
		log_err("spool %s: %s", ctd_spool_path(t->spool), strerror(-r));
	update_gauges(t);
	log_losses(t, now);
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

/* The spool's mark moves over the read-back records that are final
 * (a failed write is tried again at the next commit); the file is
 * emptied once all of it was read back and is final. */
static void commit_spool(struct dest *t)
{
	if (!t->spool || !ctd_spool_size(t->spool))
		return;
	if (!ctd_spool_unread(t->spool) && !ctd_readback_pending(t->rb)) {
		if (ctd_spool_truncate(t->spool) == 0)
			ctd_readback_restart(t->rb, 0);
		return;
	}
	ctd_spool_mark_consumed(t->spool, ctd_readback_final_end(t->rb));
}

static void commit_log(struct dest *t, int64_t now)
{
	int r;

	if (!t->wal)
		return;
	r = ctd_wal_commit(t->wal);
	if (r == 0)
		return;
	t->st->wal_errors++;
	if (ctd_log_rate_due(&t->wal_fails, t->st->wal_errors, now))
		log_err("output %s: cannot write its write-ahead log: %s; "
			"records it holds would not survive a crash",
			t->out->name, ctd_log_errstr(-r));
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
		struct dest *t = &d->dest[i];

		t->out->ops->flush(t->out);
		settle(t);
		if (t->wal && !now)
			now = mono_us(d);
		commit_log(t, now);
		commit_spool(t);
		update_gauges(t);
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

/* Records already in the spool (held at the last stop) are this run's
 * too: records = delivered + failed + held counts them. */
static uint64_t count_records(struct ctd_deliver *d, struct dest *t)
{
	enum ctd_spool_kind kind;
	uint64_t n = 0;
	size_t len;

	while (ctd_spool_peek(t->spool, d->scratch, CTD_SPOOL_MAX_ENTRY, &kind,
			      &len) == 1) {
		n += kind == CTD_SPOOL_RECORD;
		ctd_spool_consume(t->spool);
	}
	return n;
}

/* Reading starts at the last CONSUMED mark: what lies before it was
 * read back and made final by an earlier run. */
static void count_spooled(struct ctd_deliver *d, struct dest *t)
{
	count_records(d, t);
	ctd_spool_seek(t->spool, ctd_spool_consumed_mark(t->spool));
	t->spool_records = count_records(d, t);
	ctd_spool_seek(t->spool, ctd_spool_consumed_mark(t->spool));
}

static int recovered(void *arg, const struct ctd_record *rec)
{
	struct dest *t = arg;

	if (ctd_spool_append(t->spool, CTD_SPOOL_RECORD, rec, sizeof(*rec)) < 0)
		return -EIO;
	t->spool_records++;
	return 0;
}

/* A move of the log into the spool that a crash (or a full disk) cut
 * short left part of it appended to the spool: that part goes, the log
 * still has all of it. */
static int undo_recovery(struct dest *t)
{
	uint64_t token;
	int r = ctd_wal_interrupted(t->wal, &token);

	if (r <= 0 || token >= ctd_spool_size(t->spool))
		return r;
	log_warn("output %s: moving its write-ahead log to the spool was cut "
		 "short; the %llu bytes it had moved are moved again",
		 t->out->name,
		 (unsigned long long)(ctd_spool_size(t->spool) - token));
	return ctd_spool_cut(t->spool, token);
}

/* Returns 0 with the log open, or < 0 without it (and without the
 * spool when a cut-short move cannot be undone: what this run spooled
 * would be cut off with it). */
static int open_log(struct ctd_deliver *d, struct dest *t)
{
	char path[CTD_SPOOL_PATH_MAX + 8];
	int r;

	snprintf(path, sizeof(path), "%s", ctd_spool_path(t->spool));
	memcpy(path + strlen(path) - strlen(".spool"), ".wal", 5);
	r = ctd_wal_open(path, d->cfg.owner, &t->wal);
	if (r < 0) {
		log_err("output %s: no write-ahead log at %s (%s): records it "
			"holds would not survive a crash", t->out->name, path,
			ctd_safefile_strerror(r));
		return r;
	}
	r = undo_recovery(t);
	if (r >= 0)
		return 0;
	log_err("output %s: cannot undo a cut-short move of %s to the spool "
		"(%s); no spool this run", t->out->name, path,
		ctd_log_errstr(-r));
	ctd_wal_free(t->wal);
	t->wal = NULL;
	ctd_spool_free(t->spool);
	t->spool = NULL;
	return r;
}

/* The log of a ctd that died: what it held goes to the spool, once. If
 * that fails, the log keeps it for the next start, which cuts off what
 * the spool got: this run then spools nothing (it would be cut off too). */
static void recover_log(struct dest *t)
{
	uint64_t size = ctd_spool_size(t->spool), before = t->spool_records;
	int r = ctd_wal_recover(t->wal, size, recovered, t);

	if (r > 0)
		log_warn("output %s: %d records a ctd that died held were in "
			 "its write-ahead log; they follow from the spool",
			 t->out->name, r);
	if (r >= 0)
		return;
	log_err("output %s: cannot move its write-ahead log to the spool (%s); "
		"it keeps them for the next start, and records this run "
		"cannot deliver in time will be lost", t->out->name,
		ctd_log_errstr(-r));
	if (ctd_spool_cut(t->spool, size) == 0)
		t->spool_records = before;
	ctd_wal_free(t->wal);
	t->wal = NULL;
	ctd_spool_free(t->spool);
	t->spool = NULL;
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
	r = open_log(d, t);
	if (!t->spool)
		return 0;
	count_spooled(d, t);
	t->rb = ctd_readback_new(ctd_spool_consumed_mark(t->spool));
	if (!t->rb)
		return -ENOMEM;
	if (r == 0)
		recover_log(t);
	t->st->carried = t->spool_records;
	t->st->records += t->spool_records;
	if (t->spool && ctd_spool_size(t->spool))
		log_info("output %s: replaying %llu spooled bytes (%llu records) "
			 "from %s", t->out->name,
			 (unsigned long long)ctd_spool_size(t->spool),
			 (unsigned long long)t->spool_records, path);
	return 0;
}

int ctd_deliver_add(struct ctd_deliver *d, struct ctd_output *out,
		    unsigned events)
{
	struct ctd_retry_cfg dc = { d->cfg.grace_ms, d->cfg.retry_max,
				    d->cfg.random, d->cfg.random_arg,
				    &d->budget };
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
	t->budget = &d->budget;
	d->stats->out[d->n] = &out->stats;
	d->stats->out_name[d->n] = out->name;
	out->ready = on_ready;
	out->ready_arg = d;
	d->n++;
	t->retry = ctd_retry_new(&dc);
	if (!t->retry)
		return -ENOMEM;
	r = open_spool(d, t);
	if (r < 0)
		log_warn("output %s: no spool in %s (%s): records it cannot "
			 "take in time will be lost", out->name,
			 d->cfg.spool_dir, ctd_safefile_strerror(r));
	update_gauges(t);
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

static int to_spool(void *arg, const struct ctd_record *rec)
{
	return spool_record(arg, rec) ? 0 : -EIO;
}

/* The log's records join the spool, all or none: a spool that fills up
 * part-way is cut back and the log keeps them for the next start (which
 * cuts again, should this cut fail: a record in both would come twice).
 * Returns the records kept in the log alone. */
static uint64_t wal_to_spool(struct dest *t)
{
	uint64_t size = ctd_spool_size(t->spool);
	uint64_t before = t->spool_records;

	if (ctd_wal_recover(t->wal, size, to_spool, t) >= 0)
		return 0;
	ctd_spool_cut(t->spool, size);
	t->spool_records = before;
	log_err("output %s: its write-ahead log keeps %llu records; "
		"they follow at the next start", t->out->name,
		(unsigned long long)ctd_wal_live(t->wal));
	return ctd_wal_live(t->wal);
}

/* Shutdown, for a record an output took but did not make final (it is
 * abandoned): one read back stays in the spool past the mark, one in
 * the log goes there with the log; the rest is lost. */
static uint64_t leave_taken(struct dest *t, const struct taken *k)
{
	if (k->flags & TAKEN_REPLAYED)
		t->spool_records++;
	return !k->seq && !(k->flags & TAKEN_EVENT);
}

/* The same for a record on the retry list, which the spool may take. */
static uint64_t leave_held(struct dest *t, const struct ctd_record *rec)
{
	if (!ctd_retry_head_tag(t->retry))
		return !spool_record(t, rec);
	return 0;
}

/* Shutdown: what the output took but did not make final is abandoned,
 * and what the log and the retry list hold goes to the spool. Counts
 * what not even that could keep: records never logged, and those of a
 * log batch the disk refused. */
static size_t spool_rest(struct dest *t)
{
	const struct ctd_record *rec;
	size_t left = t->taken_n + ctd_retry_count(t->retry);
	uint64_t unlogged = 0;

	settle(t);
	if (t->out->ops->abandon) {
		t->out->ops->abandon(t->out);
		/* Abandoned, not final: the count moves on, nothing counted. */
		t->settled_seen = t->out->ops->settled(t->out);
	}
	for (; t->taken_n; t->taken_n--) {
		unlogged += leave_taken(t, &t->taken[t->taken_head]);
		t->taken_head = (t->taken_head + 1) % t->taken_cap;
	}
	while ((rec = ctd_retry_head(t->retry))) {
		unlogged += leave_held(t, rec);
		ctd_retry_pop(t->retry);
	}
	if (t->wal && ctd_wal_commit(t->wal) < 0)
		unlogged += ctd_wal_pending(t->wal);
	commit_spool(t);
	if (t->wal)
		t->wal_kept = wal_to_spool(t);
	fail(t, &t->st->failed_shutdown, unlogged);
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
		ctd_retry_free(t->retry);
		ctd_spool_free(t->spool);
		ctd_wal_free(t->wal);
		ctd_readback_free(t->rb);
		free(t->taken);
	}
	free(d->scratch);
	free(d);
}
