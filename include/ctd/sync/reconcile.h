/* reconcile: when ctd compares what it believes with the kernel's table.
 * Decides the table dumps (at start-up, to resync after lost events, to
 * decide suspects at most every check interval, to feed interim records),
 * the dying-list dumps (the pending-DESTROY gauge, and before a verdict in
 * reliable mode) and when a finished dump may be judged; returns each
 * decision as actions for the caller, and the next deadline to arm. Owns
 * that schedule's state and the kernel_pending gauge in stats. Pure: `now`
 * comes in, nothing is started here. */
#ifndef CTD_RECONCILE_H
#define CTD_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/kernel/ctdump.h"

struct ctd_reconcile;
struct ctd_stats;

struct ctd_reconcile_cfg {
	int64_t check_interval_us;   /* at least this between suspect checks */
	int64_t pending_interval_us; /* dying-list gauge period; 0: no gauge */
	int64_t active_timeout_us;   /* interim records; 0: none */
	bool reliable;               /* the kernel holds DESTROYs for us */
	bool resync;                 /* a table dump after lost events */
	/* No dying-list walk before a verdict when about this many are held
	 * (nf_conntrack_count, in stats, minus what the table dump listed):
	 * the walk is quadratic. */
	uint64_t dying_walk_max;
};

/* Actions, a bitmask: at most one dump start per answer. The caller does
 * READY, GAUGE_OFF, then the start (and reports it with _started), then
 * JUDGE. */
enum {
	CTD_RECONCILE_TABLE = 1u << 0,       /* start a table dump ... */
	CTD_RECONCILE_RESYNC = 1u << 1,      /* ... that resyncs after losses */
	CTD_RECONCILE_DYING = 1u << 2,       /* start a dying-list dump: gauge */
	CTD_RECONCILE_CHECK_DYING = 1u << 3, /* ... that ends a table check */
	CTD_RECONCILE_READY = 1u << 4,       /* the start-up dump ended */
	CTD_RECONCILE_GAUGE_OFF = 1u << 5,   /* the dying list cannot be read */
	CTD_RECONCILE_JUDGE = 1u << 6,       /* read queued events, end the dump */
	CTD_RECONCILE_JUDGE_OK = 1u << 7,    /* ... trusting what it listed */
};
#define CTD_RECONCILE_STARTS (CTD_RECONCILE_TABLE | CTD_RECONCILE_RESYNC | \
			      CTD_RECONCILE_DYING | CTD_RECONCILE_CHECK_DYING)

/* The periodic ticks the caller keeps timers for. */
enum ctd_reconcile_timer {
	CTD_RECONCILE_GAUGE,         /* read the dying list's length */
	CTD_RECONCILE_COUNTERS,      /* read counters for interim records */
	CTD_RECONCILE_TIMER__COUNT
};

/* stats: kernel_pending and its peak, kernel_held_est and
 * dying_walks_skipped are written here; nl_enobufs, kernel_rearms and
 * kernel_table_count read. */
struct ctd_reconcile *ctd_reconcile_new(const struct ctd_reconcile_cfg *cfg,
					struct ctd_stats *stats);
void ctd_reconcile_free(struct ctd_reconcile *rc);

/* A timer's period in µs; 0 when it is off. */
int64_t ctd_reconcile_period(const struct ctd_reconcile *rc,
			     enum ctd_reconcile_timer t);

/* Flows that began before ctd are accounted from the table: the first
 * table dump, whose end is READY. */
unsigned ctd_reconcile_startup(struct ctd_reconcile *rc);
/* A periodic timer fired: its dump, unless one runs. */
unsigned ctd_reconcile_tick(struct ctd_reconcile *rc, enum ctd_reconcile_timer t);
/* The caller tried the start in starts (err 0, -EBUSY or -errno). */
unsigned ctd_reconcile_started(struct ctd_reconcile *rc, unsigned starts,
			       int err, int64_t now_us);
/* A dump ended: err 0, or -errno (-EINTR: the list changed under it). */
unsigned ctd_reconcile_done(struct ctd_reconcile *rc, enum ctd_dump_kind kind,
			    int err, size_t entries);
/* True while a dying-list dump ends a check: its entries are alive for
 * the verdict. */
bool ctd_reconcile_checking(const struct ctd_reconcile *rc);

/* Before the loop blocks: true when poll is due now, because events were
 * lost (stats->nl_enobufs or kernel_rearms grew), may be lost from now
 * on (kernel_fail_opens grew: a dump learns the live flows), or the
 * engine's next deadline moved before the armed one. */
bool ctd_reconcile_prepare(struct ctd_reconcile *rc, int64_t engine_deadline);
/* Given the engine's next deadline and whether suspects wait for a dump:
 * the table dump due now, if any, and in ret_deadline the earliest of the
 * engine's deadline and the next permitted check (INT64_MAX: none). */
unsigned ctd_reconcile_poll(struct ctd_reconcile *rc, int64_t now_us,
			    int64_t engine_deadline, bool wants_dump,
			    int64_t *ret_deadline);

#endif
