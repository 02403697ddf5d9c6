/* reconcile: the schedule of ctd's dumps of the kernel's tables.
 *
 * Events alone cannot be trusted forever: a flow made before ctd, or
 * whose DESTROY was lost (lossy mode) or never sent (no event extension),
 * would live here for ever. So the engine turns flows whose kernel
 * timeout passed into suspects, and a table dump decides them: listed
 * means alive. Dumps cost the kernel a walk of its table, so suspect
 * checks are at most one per check interval; a resync after lost events
 * and the counter dumps for interim records go at once, and each of them
 * is a check too. One dump runs at a time (one dump socket), so a start
 * that finds one running waits for the next poll or tick.
 *
 * The verdict on a dump waits for two things. In reliable mode the
 * kernel holds DESTROYs it could not deliver on its dying list: those
 * flows are gone from the table but not yet told, so the dying list is
 * read first, or a slow re-send would become a double. And an
 * inconsistent walk (-EINTR) decides nothing.
 *
 * The kernel walks its dying list from the head again for every batch
 * it returns, under its lock: the walk costs the square of what is held
 * (7 s for 27,000 measured). What a table dump did not list of the
 * namespace's nf_conntrack_count is about what the dying list holds, so
 * past dying_walk_max the walk is skipped and the dump decides nothing:
 * suspects wait for the next check, never a double. */
#include <errno.h>
#include <stdlib.h>

#include "ctd/base/stats.h"
#include "ctd/sync/reconcile.h"

struct ctd_reconcile {
	struct ctd_reconcile_cfg cfg;
	struct ctd_stats *stats;
	int64_t armed_us;          /* the deadline poll last returned */
	int64_t last_check_us;     /* the last table dump began */
	uint64_t enobufs_seen;     /* stats->nl_enobufs at the last prepare */
	uint64_t rearms_seen;      /* stats->kernel_rearms: a fail-open ended */
	uint64_t opens_seen;       /* stats->kernel_fail_opens */
	uint64_t netns_seen;       /* stats->netns_added */
	bool learn_pending;        /* failed open, new namespace: learn */
	bool running;              /* a dump runs (started, not done) */
	bool startup;              /* no table dump has ended yet */
	bool check_dying;          /* the running dying dump ends a check */
	bool resync_pending;       /* events were lost: resync at next chance */
	bool gauge_off;            /* the dying list could not be read */
};

struct ctd_reconcile *ctd_reconcile_new(const struct ctd_reconcile_cfg *cfg,
					struct ctd_stats *stats)
{
	struct ctd_reconcile *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return NULL;
	rc->cfg = *cfg;
	rc->stats = stats;
	rc->armed_us = INT64_MAX;
	return rc;
}

void ctd_reconcile_free(struct ctd_reconcile *rc)
{
	free(rc);
}

int64_t ctd_reconcile_period(const struct ctd_reconcile *rc,
			     enum ctd_reconcile_timer t)
{
	if (t == CTD_RECONCILE_GAUGE)
		return rc->cfg.reliable ? rc->cfg.pending_interval_us : 0;
	/* Half the active timeout, so a flow is reported at most that late. */
	return rc->cfg.active_timeout_us / 2;
}

static unsigned table_dump(const struct ctd_reconcile *rc)
{
	return CTD_RECONCILE_TABLE |
	       (rc->resync_pending ? CTD_RECONCILE_RESYNC : 0);
}

unsigned ctd_reconcile_startup(struct ctd_reconcile *rc)
{
	rc->startup = true;
	rc->netns_seen = rc->stats->netns_added;
	return table_dump(rc);
}

unsigned ctd_reconcile_tick(struct ctd_reconcile *rc, enum ctd_reconcile_timer t)
{
	if (rc->running)
		return 0;
	if (t == CTD_RECONCILE_GAUGE)
		return rc->gauge_off ? 0 : CTD_RECONCILE_DYING;
	return table_dump(rc);
}

/* A check's dying dump that cannot start leaves the table's word. */
unsigned ctd_reconcile_started(struct ctd_reconcile *rc, unsigned starts,
			       int err, int64_t now_us)
{
	if (err)
		return starts & CTD_RECONCILE_CHECK_DYING ?
		       CTD_RECONCILE_JUDGE | CTD_RECONCILE_JUDGE_OK : 0;
	rc->running = true;
	if (starts & CTD_RECONCILE_TABLE) {
		rc->last_check_us = now_us;
		rc->resync_pending = false;
		rc->learn_pending = false;
	}
	rc->check_dying = (starts & CTD_RECONCILE_CHECK_DYING) != 0;
	return 0;
}

/* Ready means listening with the table known, even if it could not be
 * read: events still flow. */
static unsigned table_done(struct ctd_reconcile *rc, int err, size_t entries)
{
	unsigned acts = rc->startup ? CTD_RECONCILE_READY : 0;
	uint64_t count = rc->stats->kernel_table_count;

	rc->startup = false;
	if (!err)
		rc->stats->kernel_held_est = count > entries ? count - entries : 0;
	if (!err && rc->cfg.reliable &&
	    rc->stats->kernel_held_est > rc->cfg.dying_walk_max) {
		rc->stats->dying_walks_skipped++;
		return acts | CTD_RECONCILE_JUDGE;
	}
	if (!err && rc->cfg.reliable)
		return acts | CTD_RECONCILE_CHECK_DYING;
	return acts | CTD_RECONCILE_JUDGE | (err ? 0 : CTD_RECONCILE_JUDGE_OK);
}

/* A kernel that cannot list its dying list turns the gauge off and
 * leaves a check to the table's word; an inconsistent walk decides
 * nothing. */
static unsigned dying_done(struct ctd_reconcile *rc, int err, size_t entries)
{
	unsigned acts = 0;

	if (err) {
		rc->gauge_off = true;
		acts = CTD_RECONCILE_GAUGE_OFF;
	} else {
		rc->stats->kernel_pending = entries;
		if (entries > rc->stats->kernel_pending_peak)
			rc->stats->kernel_pending_peak = entries;
	}
	if (rc->check_dying) {
		rc->check_dying = false;
		acts |= CTD_RECONCILE_JUDGE |
			(err != -EINTR ? CTD_RECONCILE_JUDGE_OK : 0);
	}
	return acts;
}

unsigned ctd_reconcile_done(struct ctd_reconcile *rc, enum ctd_dump_kind kind,
			    int err, size_t entries)
{
	rc->running = false;
	if (kind == CTD_DUMP_TABLE)
		return table_done(rc, err, entries);
	return dying_done(rc, err, entries);
}

bool ctd_reconcile_checking(const struct ctd_reconcile *rc)
{
	return rc->check_dying;
}

bool ctd_reconcile_prepare(struct ctd_reconcile *rc, int64_t engine_deadline)
{
	/* Events lost to an overrun in lossy mode, or while the kernel
	 * pressure governor had failed open. */
	if (rc->stats->nl_enobufs != rc->enobufs_seen ||
	    rc->stats->kernel_rearms != rc->rearms_seen) {
		rc->enobufs_seen = rc->stats->nl_enobufs;
		rc->rearms_seen = rc->stats->kernel_rearms;
		rc->resync_pending = rc->cfg.resync;
	}
	/* Failed open: DESTROYs may be dropped from now on. A table dump
	 * now teaches the engine the live flows, so the resync at the rearm
	 * can end those it did not hear end as lost, with their counters. */
	if (rc->stats->kernel_fail_opens != rc->opens_seen) {
		rc->opens_seen = rc->stats->kernel_fail_opens;
		rc->learn_pending |= rc->cfg.resync;
	}
	/* A namespace set up mid-run: the flows it already had. */
	if (rc->stats->netns_added != rc->netns_seen) {
		rc->netns_seen = rc->stats->netns_added;
		rc->learn_pending = true;
	}
	/* Events may have queued a flow with a deadline before the armed
	 * one (a class with a shorter timeout). */
	return rc->resync_pending || rc->learn_pending ||
	       engine_deadline < rc->armed_us;
}

unsigned ctd_reconcile_poll(struct ctd_reconcile *rc, int64_t now_us,
			    int64_t engine_deadline, bool wants_dump,
			    int64_t *ret_deadline)
{
	int64_t due = rc->last_check_us + rc->cfg.check_interval_us;
	unsigned acts = 0;

	*ret_deadline = engine_deadline;
	if (!rc->running) {
		if (rc->resync_pending || rc->learn_pending ||
		    (wants_dump && now_us >= due))
			acts = table_dump(rc);
		else if (wants_dump && due < engine_deadline)
			*ret_deadline = due;
	}
	rc->armed_us = *ret_deadline;
	return acts;
}
