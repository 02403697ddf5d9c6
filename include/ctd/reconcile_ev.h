/* reconcile_ev: the loop's side of reconcile. Owns the dump socket
 * (ctdump), the expiry timer armed at reconcile's deadline and the
 * periodic gauge and counter timers; carries out reconcile's actions on
 * the engine and the event socket, and logs them. */
#ifndef CTD_RECONCILE_EV_H
#define CTD_RECONCILE_EV_H

#include "ctd/reconcile.h"
#include "ctd/timeutil.h"

struct ev_loop;
struct ctd_engine;
struct ctd_nlsrc;
struct ctd_reconcile_ev;
struct ctd_stats;

struct ctd_reconcile_ev_cfg {
	struct ctd_reconcile_cfg rc;
	struct ctd_engine *engine;   /* dumps feed it; swept at its deadlines */
	struct ctd_nlsrc *nlsrc;     /* drained before a verdict */
	struct ctd_stats *stats;
	void (*ready)(void *arg);    /* the start-up dump ended: READY=1 */
	void *arg;
	struct ctd_clock clock;      /* zeroed: the system clock */
};

/* Opens the dump socket; -errno when it cannot. */
int ctd_reconcile_ev_new(struct ev_loop *loop,
			 const struct ctd_reconcile_ev_cfg *cfg,
			 struct ctd_reconcile_ev **ret);
void ctd_reconcile_ev_free(struct ctd_reconcile_ev *r);
/* Starts the timers and the start-up table dump. */
void ctd_reconcile_ev_start(struct ctd_reconcile_ev *r);
void ctd_reconcile_ev_stop(struct ctd_reconcile_ev *r);
/* From the loop's prepare watcher: re-arms or resyncs when due. O(1). */
void ctd_reconcile_ev_prepare(struct ctd_reconcile_ev *r);

#endif
