/* guard: the process that keeps a stopped, starved or dead ctd from
 * taking the firewall down. Forked by ctd (after privileges are
 * dropped) with a duplicate of the ctnetlink socket and the namespace's
 * nf_conntrack_count/max open; every tick it reads them and the socket's
 * queue, runs the pressure governor (pressure.h) and clears or sets
 * NETLINK_BROADCAST_ERROR on the shared socket. A separate process
 * because the case that matters most is the one where ctd cannot act:
 * SIGSTOPped, hung, or crashed with its socket still open. Owns the
 * child, a shared page ctd writes its progress to and reads the
 * governor's state from, and nothing else. */
#ifndef CTD_GUARD_H
#define CTD_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctd/kernel/pressure.h"

struct ctd_guard;

struct ctd_guard_cfg {
	struct ctd_pressure_cfg pressure;
	int sock_fd;            /* the ctnetlink socket (duplicated inside) */
	const char *procdir;    /* /proc/sys/net/netfilter of the namespace */
	int64_t tick_us;
};

/* What ctd shows of the governor. */
struct ctd_guard_view {
	struct ctd_pressure_state st;
	uint64_t count, max;    /* the last readings */
	uint64_t since_wall_s;  /* when the mode last changed; 0 never */
	bool running;           /* the guard process is alive */
};

/* Forks the guard. Returns 0 or -errno (nothing started). */
int ctd_guard_start(const struct ctd_guard_cfg *cfg, struct ctd_guard **ret);
/* Stops it (it leaves the flag as it is) and frees; accepts NULL. */
void ctd_guard_stop(struct ctd_guard *g);
pid_t ctd_guard_pid(const struct ctd_guard *g);
/* ctd's side, once per loop iteration: messages handled so far and the
 * age of the newest event. */
void ctd_guard_publish(struct ctd_guard *g, uint64_t progress, int64_t lag_us);
void ctd_guard_view(const struct ctd_guard *g, struct ctd_guard_view *ret);
/* The child was reaped (libev's SIGCHLD handler reaps for us). */
void ctd_guard_exited(struct ctd_guard *g);

#endif
