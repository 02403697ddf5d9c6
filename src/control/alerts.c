/* alerts: growth of the counters that mean something is wrong, told in
 * the log with a rate limit (log.c's gate), so a burst or a hostile peer
 * cannot flood the journal while the counter keeps the whole count. */
#include <stdio.h>
#include <stdlib.h>

#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/control/alerts.h"
#include "ctd/flows/record.h"
#include "ctd/outputs/output.h"

struct ctd_alerts {
	const struct ctd_stats *st;
	size_t max_flows;
	struct ctd_log_rate evictions, bad_netlink, bad_ctl, slow_ctl, resent;
	struct ctd_log_rate bad_spool[CTD_OUT_MAX];
};

struct ctd_alerts *ctd_alerts_new(const struct ctd_stats *st,
				  size_t max_flows)
{
	struct ctd_alerts *a = calloc(1, sizeof(*a));

	if (a) {
		a->st = st;
		a->max_flows = max_flows;
	}
	return a;
}

void ctd_alerts_free(struct ctd_alerts *a)
{
	free(a);
}

static void growth(struct ctd_log_rate *r, uint64_t n,
		   const struct ctd_clock *clock, const char *source,
		   const char *what)
{
	if (ctd_log_rate_moved(r, n))
		ctd_log_growth(r, n, ctd_clock_read(clock).mono_us, source, what);
}

/* Evictions mean max-flows is too small for the traffic. */
static void evictions(struct ctd_alerts *a, const struct ctd_clock *clock)
{
	uint64_t n = a->st->ends[CTD_END_EVICTED];

	if (!ctd_log_rate_moved(&a->evictions, n))
		return;
	n = ctd_log_rate_due(&a->evictions, n, ctd_clock_read(clock).mono_us);
	if (n)
		log_warn("flow table full (--max-flows %zu): evicted %llu flows",
			 a->max_flows, (unsigned long long)n);
}

static void spools(struct ctd_alerts *a, const struct ctd_clock *clock)
{
	const struct ctd_stats *st = a->st;

	for (size_t i = 0; i < CTD_OUT_MAX && st->out[i]; i++) {
		char source[64];

		if (!ctd_log_rate_moved(&a->bad_spool[i],
					st->out[i]->spool_skipped))
			continue;
		snprintf(source, sizeof(source), "output %s", st->out_name[i]);
		growth(&a->bad_spool[i], st->out[i]->spool_skipped, clock,
		       source, "damaged spool entries skipped (spool_skipped)");
	}
}

void ctd_alerts_check(struct ctd_alerts *a, const struct ctd_clock *clock)
{
	const struct ctd_stats *st = a->st;

	evictions(a, clock);
	growth(&a->bad_netlink, st->parse_errors, clock, "ctnetlink",
	       "malformed messages ignored (parse_errors)");
	growth(&a->bad_ctl, st->ctl_refused, clock, "control socket",
	       "connections or requests refused: not allowed, too long or "
	       "not text (ctl_refused)");
	growth(&a->slow_ctl, st->ctl_timeouts + st->ctl_evicted, clock,
	       "control socket and metrics",
	       "clients dropped: no whole request in time, or idle while "
	       "others waited (ctl_timeouts, ctl_evicted)");
	/* With one reliable listener the kernel never sends a DESTROY twice
	 * (measured): repeats mean another one is full, and while it stays
	 * full the kernel holds those conntracks in the table. */
	growth(&a->resent, st->destroy_duplicates, clock, "ctnetlink",
	       "DESTROY events received again (destroy_duplicates): another "
	       "reliable listener does not read, so the kernel re-sends them "
	       "and keeps their conntracks in the table; ctd -s names it");
	spools(a, clock);
}
