/* daemon: the process side of running as a service, without
 * libsystemd: sockets passed in with LISTEN_FDS, the user and groups,
 * dropping privileges, and re-executing ctd with its ctnetlink socket
 * kept open and its signals held. Owns nothing between calls. */
#ifndef CTD_DAEMON_H
#define CTD_DAEMON_H

#include <sys/types.h>

/* The descriptor passed in under this name (LISTEN_FDNAMES), or the only
 * one passed when names are absent; -ENOENT when none; -EINVAL when the
 * variables are malformed. Unsets the LISTEN_* variables. */
int ctd_daemon_listen_fd(const char *name);

/* The descriptors passed in named prefix-K (K < n) into fds[K] (-1
 * when absent; close-on-exec), every other one closed; the number
 * found. Unsets the LISTEN_* variables. For the shards' sockets. */
int ctd_daemon_listen_fds(const char *prefix, int *fds, size_t n);

/* The service manager's watchdog interval in µs (WATCHDOG_USEC, when
 * WATCHDOG_PID is ours or unset), or 0 when there is none. */
unsigned long long ctd_daemon_watchdog_usec(void);

struct ctd_owner;

/* The user called name (`user`): its ids in *ret, or CTD_OWNER_NONE for
 * "". -ESRCH when there is no such user. */
int ctd_daemon_find_user(const char *name, struct ctd_owner *ret);
/* A group by name or number ("" is none: (gid_t)-1); -ESRCH. */
int ctd_daemon_find_group(const char *name, gid_t *ret);

/* Becomes uid/gid, keeping CAP_NET_ADMIN alone, also across a re-exec
 * (ambient). Must be root. The files the user needs later were handed
 * to it, by descriptor, when they were opened (safefile.c); nothing is
 * changed by path here. Returns 0 or -errno. */
int ctd_daemon_drop_to(uid_t uid, gid_t gid);

/* Blocks the signals ctd handles (HUP, USR1, USR2, TERM, INT): they
 * stay pending until the loop's handlers take them, also across a
 * re-exec. */
void ctd_daemon_hold_signals(void);
/* Unblocks them once the loop's handlers are in place (libev leaves the
 * mask alone): one held across a re-exec is handled now. */
void ctd_daemon_release_signals(void);

/* Replaces the process with a fresh ctd from /proc/self/exe, handing it
 * fd as a LISTEN_FDS socket named name. Returns -errno only on failure. */
int ctd_daemon_reexec(char *const argv[], int fd, const char *name);

#endif
