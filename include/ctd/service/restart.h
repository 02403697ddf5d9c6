/* restart: what makes ctd's restarts lossless. Owns the run lock (one
 * ctd per spool directory, and the trace a crash leaves, runlock.c) and
 * decides where the ctnetlink socket goes: a socket handed in (LISTEN_FDS:
 * the fd store or our own re-exec) is taken, a new one is put in the
 * service manager's fd store at once, and a SIGUSR2 passes it across
 * exec. A predecessor that died is reported once the socket is known,
 * since whether the socket came back decides what the death cost. */
#ifndef CTD_RESTART_H
#define CTD_RESTART_H

#include <stdbool.h>

struct ctd_notify;
struct ctd_nlsrc;
struct ctd_owner;
struct ctd_restart;
struct ctd_stats;

/* Takes the lock in spool_dir (none when ""); -EBUSY (logged) when
 * another ctd runs there. A directory that cannot hold the lock (read
 * only, missing, not ctd's) is a degraded start: 0, logged, and
 * ctd_restart_spool_ok says no. */
int ctd_restart_begin(const char *spool_dir, const struct ctd_owner *owner,
		      struct ctd_stats *st, struct ctd_restart **ret);
/* Whether the spool directory may be used (its lock is ours). */
bool ctd_restart_spool_ok(const struct ctd_restart *r);
/* The ctnetlink socket handed in, or -1. */
int ctd_restart_socket(struct ctd_restart *r);
/* The socket is open: a new one goes to the fd store; a death is told. */
/* What became of the events a predecessor that died left in the kernel,
 * given whether its socket came back and whether a service manager (so an
 * fd store) runs ctd: advice to use an fd store only where none was. */
const char *ctd_restart_unclean_note(bool kept, bool managed);
void ctd_restart_opened(struct ctd_restart *r, struct ctd_nlsrc *nl,
			struct ctd_notify *notify);
/* Marks how ctd ends; for a re-exec returns the socket to pass, else -1. */
int ctd_restart_end(struct ctd_restart *r, struct ctd_nlsrc *nl,
		    bool reexec);
void ctd_restart_free(struct ctd_restart *r);

#endif
