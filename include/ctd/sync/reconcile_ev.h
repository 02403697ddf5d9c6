/* reconcile_ev: the loop's side of reconcile. Owns the dump socket
 * (ctdump), the expiry timer armed at reconcile's deadline and the
 * periodic gauge and counter timers; carries out reconcile's actions on
 * the engine and the event socket, and logs them. */
#ifndef CTD_RECONCILE_EV_H
#define CTD_RECONCILE_EV_H

#include "ctd/base/timeutil.h"
#include "ctd/sync/reconcile.h"

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
	/* Optional: one namespace's part of a dump round ended (ctdump.h). */
	void (*part)(void *arg, enum ctd_dump_kind kind, int32_t nsid, int err,
		     size_t entries);
	void *part_arg;
};

/* Opens the dump socket; -errno when it cannot. */
int ctd_reconcile_ev_new(struct ev_loop *loop,
			 const struct ctd_reconcile_ev_cfg *cfg,
			 struct ctd_reconcile_ev **ret);
void ctd_reconcile_ev_free(struct ctd_reconcile_ev *r);
/* The dump socket set, for netns.c to add namespaces' sockets to. */
struct ctd_ctdump *ctd_reconcile_ev_dump(struct ctd_reconcile_ev *r);
/* Starts the timers and the start-up table dump. */
void ctd_reconcile_ev_start(struct ctd_reconcile_ev *r);
void ctd_reconcile_ev_stop(struct ctd_reconcile_ev *r);
/* From the loop's prepare watcher: re-arms or resyncs when due. O(1). */
void ctd_reconcile_ev_prepare(struct ctd_reconcile_ev *r);

#endif
