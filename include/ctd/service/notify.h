/* notify: ctd's messages to its service manager (the sd_notify protocol,
 * without libsystemd): READY with the first STATUS, RELOADING across a
 * re-exec, STOPPING, STATUS with the watchdog ping on a timer, and
 * FDSTORE. Never blocks the loop: the socket is non-blocking, and a
 * datagram the manager does not take at once is dropped and counted
 * (notify_dropped), so a manager that stopped reading cannot freeze ctd.
 * Owns its datagram socket and the status timer. */
#ifndef CTD_NOTIFY_H
#define CTD_NOTIFY_H

#include <stddef.h>

struct ctd_notify;
struct ctd_stats;
struct ev_loop;

/* Writes a one-line STATUS summary into buf. */
typedef void ctd_notify_status_fn(void *arg, char *buf, size_t cap);

/* Without NOTIFY_SOCKET the object exists and sends nothing. */
struct ctd_notify *ctd_notify_new(struct ev_loop *loop, struct ctd_stats *st,
				  ctd_notify_status_fn *status, void *arg);
void ctd_notify_free(struct ctd_notify *n);

/* Whether a service manager listens. */
int ctd_notify_active(const struct ctd_notify *n);
/* Sends state (with fd passed along when >= 0): 1 sent, 0 no manager,
 * -EAGAIN dropped (counted), or -errno. */
int ctd_notify_send(struct ctd_notify *n, const char *state, int fd);
/* READY=1 with the current STATUS (again every 0.1 s until the manager
 * takes it), then READY=1, STATUS and WATCHDOG=1 every min(10 s, half
 * the watchdog interval). */
void ctd_notify_ready(struct ctd_notify *n);
/* RELOADING=1 (a re-exec follows) or STOPPING=1; READY is not said after
 * it (a start-up dump may end while a stopping ctd delivers). */
void ctd_notify_stopping(struct ctd_notify *n, int reexec);

#endif
