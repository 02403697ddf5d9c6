/* pressure: the kernel-pressure governor's decisions.
 *
 * Firewall first, records second. The kernel re-sends a held DESTROY
 * after 1 s, then every 10 ms while our socket is full, and never gives
 * up; nothing bounds the conntracks it holds for us but
 * nf_conntrack_max, and at that bound the firewall drops every new
 * connection. So past a high mark of table fill, if ctd is the reader
 * holding it up (its socket full or overrunning, or the events it reads
 * old), we fail open: the kernel's next retry overruns the socket
 * without a delivery failure and frees the conntrack; each such drop is
 * a record lost, counted here. Back under a low mark, with the socket
 * drained and the events fresh again, reliable mode returns. A table
 * filled by live flows or by another stuck listener is not ours to
 * free: the cause says so and the mode stays.
 *
 * The drop count is read just before clearing the flag and just after
 * setting it again, so a drop at either edge is counted lost: at most an
 * over-count by what the kernel drops during one setsockopt, never a
 * silent loss. */
#include <stdlib.h>

#include "ctd/kernel/pressure.h"

struct ctd_pressure {
	struct ctd_pressure_cfg cfg;
	struct ctd_pressure_state st;
	struct ctd_pressure_gauges last;
	bool have_last;
	bool measure_release;      /* the first tick after failing open */
	uint64_t count_at_open;
	int64_t moved_us;          /* when the reader's progress last moved */
};

struct ctd_pressure *ctd_pressure_new(const struct ctd_pressure_cfg *cfg)
{
	struct ctd_pressure *p = calloc(1, sizeof(*p));

	if (p)
		p->cfg = *cfg;
	return p;
}

void ctd_pressure_free(struct ctd_pressure *p)
{
	free(p);
}

static bool overran(const struct ctd_pressure *p,
		    const struct ctd_pressure_gauges *g)
{
	return p->have_last && g->drops != p->last.drops;
}

static bool moved(const struct ctd_pressure *p,
		  const struct ctd_pressure_gauges *g)
{
	return !p->have_last || g->progress != p->last.progress;
}

/* The lag counts only when ctd read something since the last tick: an
 * idle reader keeps the age of its last event. */
static bool late(const struct ctd_pressure *p,
		 const struct ctd_pressure_gauges *g)
{
	return moved(p, g) && g->lag_us >= p->cfg.lag_us;
}

static bool behind(const struct ctd_pressure *p,
		   const struct ctd_pressure_gauges *g)
{
	return overran(p, g) || (uint64_t)g->rmem * 2 >= g->rcvbuf ||
	       late(p, g);
}

/* Stalled: events wait and nothing was read for as long as the lag
 * bound. A reader starved by a CPU quota runs in slices a tick apart,
 * so one quiet tick alone says nothing. */
static enum ctd_pressure_cause classify(const struct ctd_pressure *p,
					const struct ctd_pressure_gauges *g,
					int64_t now_us)
{
	if (!g->max || g->count * 100 < g->max * p->cfg.high_pct)
		return CTD_PRESSURE_NONE;
	if (g->rmem > 0 && now_us - p->moved_us >= p->cfg.lag_us)
		return CTD_PRESSURE_STALLED;
	return behind(p, g) ? CTD_PRESSURE_SLOW : CTD_PRESSURE_OTHER;
}

static bool may_rearm(const struct ctd_pressure *p,
		      const struct ctd_pressure_gauges *g, int64_t now_us)
{
	return g->max && g->count * 100 < g->max * p->cfg.low_pct &&
	       (uint64_t)g->rmem * 4 < g->rcvbuf && !overran(p, g) &&
	       !late(p, g) && now_us - p->st.since_us >= p->cfg.min_open_us;
}

static enum ctd_pressure_action fail_open(struct ctd_pressure *p,
					  uint64_t count, int64_t now_us)
{
	p->st.open = true;
	p->st.since_us = now_us;
	p->st.fail_opens++;
	p->count_at_open = count;
	p->measure_release = true;
	return CTD_PRESSURE_FAIL_OPEN;
}

/* While open: every drop is an event gone for good. */
static enum ctd_pressure_action while_open(struct ctd_pressure *p,
					   const struct ctd_pressure_gauges *g,
					   int64_t now_us)
{
	p->st.lost += (uint32_t)(g->drops - p->last.drops);
	if (p->measure_release) {
		p->measure_release = false;
		p->st.released = p->count_at_open > g->count ?
				 p->count_at_open - g->count : 0;
	}
	if (!may_rearm(p, g, now_us))
		return CTD_PRESSURE_KEEP;
	p->st.open = false;
	p->st.since_us = now_us;
	p->st.rearms++;
	return CTD_PRESSURE_REARM;
}

enum ctd_pressure_action ctd_pressure_step(struct ctd_pressure *p,
					   const struct ctd_pressure_gauges *g,
					   int64_t now_us)
{
	enum ctd_pressure_action act = CTD_PRESSURE_KEEP;

	if (moved(p, g))
		p->moved_us = now_us;
	p->st.cause = classify(p, g, now_us);
	p->st.fill_pct = g->max ? g->count * 100 / g->max : 0;
	if (p->st.fill_pct > p->st.peak_pct)
		p->st.peak_pct = p->st.fill_pct;
	if (p->st.open)
		act = while_open(p, g, now_us);
	else if (!p->cfg.hold && (p->st.cause == CTD_PRESSURE_SLOW ||
				  p->st.cause == CTD_PRESSURE_STALLED))
		act = fail_open(p, g->count, now_us);
	p->last = *g;
	p->have_last = true;
	return act;
}

void ctd_pressure_opening(struct ctd_pressure *p, uint32_t drops)
{
	p->last.drops = drops;
}

void ctd_pressure_rearmed(struct ctd_pressure *p, uint32_t drops)
{
	p->st.lost += (uint32_t)(drops - p->last.drops);
	p->last.drops = drops;
}

/* A restart after a crash keeps reliable mode (the next ctd takes the
 * socket from the fd store, with what queued in it) unless the table
 * is already past the low mark: then nobody may watch it fill until the
 * next ctd's guard runs. */
enum ctd_pressure_action ctd_pressure_orphaned(struct ctd_pressure *p,
					       int64_t now_us)
{
	if (p->st.open || p->cfg.hold || !p->have_last ||
	    p->last.count * 100 < p->last.max * p->cfg.low_pct)
		return CTD_PRESSURE_KEEP;
	p->st.cause = CTD_PRESSURE_STALLED;
	return fail_open(p, p->last.count, now_us);
}

const struct ctd_pressure_state *ctd_pressure_state(const struct ctd_pressure *p)
{
	return &p->st;
}

const char *ctd_pressure_cause_name(enum ctd_pressure_cause cause)
{
	static const char *const names[CTD_PRESSURE_CAUSE__COUNT] = {
		"none", "ctd too slow", "ctd stalled", "not ctd",
	};

	return (unsigned)cause < CTD_PRESSURE_CAUSE__COUNT ? names[cause] : "?";
}
