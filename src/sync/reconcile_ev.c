/* reconcile_ev: reconcile's decisions carried out on the loop.
 *
 * reconcile decides; this file starts the dumps it asks for on the dump
 * socket, feeds what they list to the engine, reports starts and ends
 * back, sweeps the engine at the deadline reconcile returns, and logs
 * each outcome once. Before a verdict it drains the event socket: a flow
 * the dump did not list was destroyed before the dump ended, so its
 * DESTROY, unless lost, is already queued there and must be read first,
 * or "gone" would double it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <ev.h>

#include "ctd/base/log.h"
#include "ctd/base/timeutil.h"
#include "ctd/flows/engine.h"
#include "ctd/kernel/ctdump.h"
#include "ctd/kernel/nlsrc.h"
#include "ctd/sync/reconcile_ev.h"

#define SWEEP_BUDGET 10000
#define JUDGE_DRAIN_MAX 1000000

struct ctd_reconcile_ev {
	ev_timer expiry;           /* armed at reconcile's deadline */
	ev_timer timers[CTD_RECONCILE_TIMER__COUNT];   /* gauge, counters */
	struct ev_loop *loop;
	struct ctd_reconcile *rc;
	struct ctd_ctdump *dump;
	struct ctd_reconcile_ev_cfg cfg;
};

static void on_dump_entry(void *arg, enum ctd_dump_kind kind,
			  const struct ctd_event *ev, const struct ctd_now *now);
static void on_dump_done(void *arg, enum ctd_dump_kind kind, int err,
			 size_t entries, const struct ctd_now *now);
static void on_dump_part(void *arg, enum ctd_dump_kind kind, int32_t nsid,
			 int err, size_t entries);

int ctd_reconcile_ev_new(struct ev_loop *loop,
			 const struct ctd_reconcile_ev_cfg *cfg,
			 struct ctd_reconcile_ev **ret)
{
	struct ctd_reconcile_ev *r = calloc(1, sizeof(*r));
	struct ctd_ctdump_ops ops = { on_dump_entry, on_dump_done, on_dump_part, r };
	int err;

	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->cfg = *cfg;
	r->rc = ctd_reconcile_new(&cfg->rc, cfg->stats);
	if (!r->rc) {
		free(r);
		return -ENOMEM;
	}
	err = ctd_ctdump_new(loop, &cfg->clock, cfg->stats, &ops, &r->dump);
	if (err < 0) {
		ctd_reconcile_ev_free(r);
		return err;
	}
	*ret = r;
	return 0;
}

struct ctd_ctdump *ctd_reconcile_ev_dump(struct ctd_reconcile_ev *r)
{
	return r->dump;
}

void ctd_reconcile_ev_free(struct ctd_reconcile_ev *r)
{
	if (!r)
		return;
	ctd_ctdump_free(r->dump);
	ctd_reconcile_free(r->rc);
	free(r);
}

/* Tries the one start in acts; returns what reconcile makes of it. */
static unsigned start_dump(struct ctd_reconcile_ev *r, unsigned acts,
			   const struct ctd_now *now)
{
	unsigned starts = acts & CTD_RECONCILE_STARTS;
	bool table = starts & CTD_RECONCILE_TABLE;
	bool resync = starts & CTD_RECONCILE_RESYNC;
	int err = ctd_ctdump_start(r->dump, table ? CTD_DUMP_TABLE :
						    CTD_DUMP_DYING);

	if (err == 0 && table) {
		if (resync)
			log_info("resyncing with the kernel table after lost events");
		ctd_engine_dump_begin(r->cfg.engine, resync);
	} else if (err < 0 && err != -EBUSY &&
		   !(starts & CTD_RECONCILE_CHECK_DYING)) {
		log_warn("cannot start a conntrack dump: %s", strerror(-err));
	}
	return ctd_reconcile_started(r->rc, starts, err, now->mono_us);
}

static void apply(struct ctd_reconcile_ev *r, unsigned acts,
		  const struct ctd_now *now)
{
	if (acts & CTD_RECONCILE_READY)
		r->cfg.ready(r->cfg.arg);
	if (acts & CTD_RECONCILE_GAUGE_OFF)
		ev_timer_stop(r->loop, &r->timers[CTD_RECONCILE_GAUGE]);
	if (acts & CTD_RECONCILE_STARTS)
		acts |= start_dump(r, acts, now);
	if (acts & CTD_RECONCILE_JUDGE) {
		ctd_nlsrc_drain(r->cfg.nlsrc, JUDGE_DRAIN_MAX);
		ctd_engine_dump_end(r->cfg.engine,
				    acts & CTD_RECONCILE_JUDGE_OK, now);
	}
}

/* Starts what is due and arms the expiry timer at the next deadline. */
static void poll_and_arm(struct ctd_reconcile_ev *r, const struct ctd_now *now)
{
	int64_t next;
	unsigned acts = ctd_reconcile_poll(r->rc, now->mono_us,
			ctd_engine_next_deadline(r->cfg.engine),
			ctd_engine_wants_dump(r->cfg.engine), &next);
	double after;

	apply(r, acts, now);
	ev_timer_stop(r->loop, &r->expiry);
	if (next == INT64_MAX)
		return;
	after = (double)(next - now->mono_us) / 1e6;
	ev_timer_set(&r->expiry, after < 0.001 ? 0.001 : after > 3600 ? 3600 : after, 0);
	ev_timer_start(r->loop, &r->expiry);
}

static void on_expiry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctd_reconcile_ev *r = w->data;
	struct ctd_now now = ctd_clock_read(&r->cfg.clock);

	(void)loop;
	(void)revents;
	ctd_engine_sweep(r->cfg.engine, &now, SWEEP_BUDGET);
	poll_and_arm(r, &now);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctd_reconcile_ev *r = w->data;
	struct ctd_now now = ctd_clock_read(&r->cfg.clock);
	enum ctd_reconcile_timer t = (enum ctd_reconcile_timer)(w - r->timers);

	(void)loop;
	(void)revents;
	apply(r, ctd_reconcile_tick(r->rc, t), &now);
}

static void on_dump_entry(void *arg, enum ctd_dump_kind kind,
			  const struct ctd_event *ev, const struct ctd_now *now)
{
	struct ctd_reconcile_ev *r = arg;

	if (kind == CTD_DUMP_TABLE)
		ctd_engine_dump_entry(r->cfg.engine, ev, now);
	else if (ctd_reconcile_checking(r->rc))
		ctd_engine_dump_pending(r->cfg.engine, ev);
}

static void on_dump_part(void *arg, enum ctd_dump_kind kind, int32_t nsid,
			 int err, size_t entries)
{
	struct ctd_reconcile_ev *r = arg;

	if (r->cfg.part)
		r->cfg.part(r->cfg.part_arg, kind, nsid, err, entries);
}

static void log_done(enum ctd_dump_kind kind, int err, size_t entries,
		     unsigned acts)
{
	if (kind == CTD_DUMP_TABLE && err)
		log_warn("conntrack table dump failed: %s", strerror(-err));
	else if (acts & CTD_RECONCILE_READY)
		log_info("loaded %zu conntracks from the kernel table", entries);
	if (acts & CTD_RECONCILE_GAUGE_OFF)
		log_warn("cannot read the kernel's pending DESTROYs: %s; "
			 "gauge off", strerror(-err));
}

static void on_dump_done(void *arg, enum ctd_dump_kind kind, int err,
			 size_t entries, const struct ctd_now *now)
{
	struct ctd_reconcile_ev *r = arg;
	unsigned acts = ctd_reconcile_done(r->rc, kind, err, entries);

	log_done(kind, err, entries, acts);
	apply(r, acts, now);
	poll_and_arm(r, now);
}

void ctd_reconcile_ev_start(struct ctd_reconcile_ev *r)
{
	struct ctd_now now = ctd_clock_read(&r->cfg.clock);

	ev_init(&r->expiry, on_expiry);
	r->expiry.data = r;
	for (int t = 0; t < CTD_RECONCILE_TIMER__COUNT; t++) {
		double every = (double)ctd_reconcile_period(r->rc, t) / 1e6;

		ev_timer_init(&r->timers[t], on_timer, every, every);
		r->timers[t].data = r;
		if (every > 0)
			ev_timer_start(r->loop, &r->timers[t]);
	}
	apply(r, ctd_reconcile_startup(r->rc), &now);
	poll_and_arm(r, &now);
}

void ctd_reconcile_ev_stop(struct ctd_reconcile_ev *r)
{
	ev_timer_stop(r->loop, &r->expiry);
	for (int t = 0; t < CTD_RECONCILE_TIMER__COUNT; t++)
		ev_timer_stop(r->loop, &r->timers[t]);
}

void ctd_reconcile_ev_prepare(struct ctd_reconcile_ev *r)
{
	if (ctd_reconcile_prepare(r->rc,
				  ctd_engine_next_deadline(r->cfg.engine))) {
		struct ctd_now now = ctd_clock_read(&r->cfg.clock);

		poll_and_arm(r, &now);
	}
}
