/* daemon: talking to the service manager, and restarting in place.
 *
 * Why any of it: the kernel keeps undelivered conntrack events only for
 * a listener that still exists. When ctd exits, its socket closes and
 * the DESTROY events queued in it, or held by the kernel for it, are
 * gone. So a restart hands the socket over instead of closing it: to
 * systemd's file-descriptor store (FDSTORE=1, given back at the next
 * start through LISTEN_FDS), or across execve() to the new binary. The
 * protocol is small and documented (sd_listen_fds(3)); it is spoken
 * here directly to keep libsystemd out of ctd (notify.c speaks
 * sd_notify(3)). */
#include <errno.h>
#include <cap-ng.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctd/base/safefile.h"
#include "ctd/service/daemon.h"

#define LISTEN_FDS_START 3

static int parse_uint(const char *s, unsigned long *ret)
{
	char *end;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	*ret = strtoul(s, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

/* Index of name in the colon-separated list, or -1. */
static long name_index(const char *names, const char *name)
{
	size_t len = strlen(name);
	long i = 0;

	for (const char *p = names; p; i++) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);

		if (n == len && strncmp(p, name, len) == 0)
			return i;
		p = colon ? colon + 1 : NULL;
	}
	return -1;
}

static void unset_listen_env(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

int ctd_daemon_listen_fd(const char *name)
{
	const char *names = getenv("LISTEN_FDNAMES");
	unsigned long pid, count;
	long i = 0;
	int fd;

	if (!getenv("LISTEN_FDS"))
		return -ENOENT;
	if (parse_uint(getenv("LISTEN_PID"), &pid) < 0 ||
	    parse_uint(getenv("LISTEN_FDS"), &count) < 0) {
		unset_listen_env();
		return -EINVAL;
	}
	/* Meant for another process (inherited environment): not ours. */
	if (pid != (unsigned long)getpid() || count == 0) {
		unset_listen_env();
		return -ENOENT;
	}
	if (names)
		i = name_index(names, name);
	else if (count != 1)
		i = -1;
	unset_listen_env();
	if (i < 0 || (unsigned long)i >= count)
		return -ENOENT;
	fd = LISTEN_FDS_START + (int)i;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return fd;
}

/* K of a name "prefix-K"; -1 for any other name. */
static long numbered(const char *name, size_t len, const char *prefix)
{
	size_t plen = strlen(prefix);
	unsigned long k = 0;

	if (len <= plen + 1 || strncmp(name, prefix, plen) != 0 ||
	    name[plen] != '-')
		return -1;
	for (size_t i = plen + 1; i < len; i++) {
		if (name[i] < '0' || name[i] > '9' || k > 1000000)
			return -1;
		k = k * 10 + (unsigned long)(name[i] - '0');
	}
	return (long)k;
}

int ctd_daemon_listen_fds(const char *prefix, int *fds, size_t n)
{
	const char *names = getenv("LISTEN_FDNAMES");
	unsigned long pid, count;
	int found = 0;
	long i = 0;

	for (size_t k = 0; k < n; k++)
		fds[k] = -1;
	if (!getenv("LISTEN_FDS") || !names ||
	    parse_uint(getenv("LISTEN_PID"), &pid) < 0 ||
	    parse_uint(getenv("LISTEN_FDS"), &count) < 0 ||
	    pid != (unsigned long)getpid()) {
		unset_listen_env();
		return 0;
	}
	for (const char *p = names; p && (unsigned long)i < count; i++) {
		const char *colon = strchr(p, ':');
		long k = numbered(p, colon ? (size_t)(colon - p) : strlen(p),
				  prefix);
		int fd = LISTEN_FDS_START + (int)i;

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (k >= 0 && (size_t)k < n && fds[k] < 0) {
			fds[k] = fd;
			found++;
		} else {
			close(fd);
		}
		p = colon ? colon + 1 : NULL;
	}
	unset_listen_env();
	return found;
}

unsigned long long ctd_daemon_watchdog_usec(void)
{
	unsigned long v, pid;

	if (parse_uint(getenv("WATCHDOG_USEC"), &v) < 0 || !v)
		return 0;
	if (getenv("WATCHDOG_PID") &&
	    (parse_uint(getenv("WATCHDOG_PID"), &pid) < 0 ||
	     pid != (unsigned long)getpid()))
		return 0;
	return v;
}

int ctd_daemon_find_user(const char *name, struct ctd_owner *ret)
{
	struct passwd *pw;

	*ret = CTD_OWNER_NONE;
	if (!*name)
		return 0;
	errno = 0;
	pw = getpwnam(name);
	if (!pw)
		return errno ? -errno : -ESRCH;
	ret->uid = pw->pw_uid;
	ret->gid = pw->pw_gid;
	return 0;
}

int ctd_daemon_find_group(const char *name, gid_t *ret)
{
	struct group *gr;
	char *end;
	unsigned long n;

	*ret = (gid_t)-1;
	if (!*name)
		return 0;
	gr = getgrnam(name);
	if (gr) {
		*ret = gr->gr_gid;
		return 0;
	}
	n = strtoul(name, &end, 10);
	if (*end || end == name || n >= (gid_t)-1)
		return -ESRCH;
	*ret = (gid_t)n;
	return 0;
}

int ctd_daemon_drop_to(uid_t uid, gid_t gid)
{
	/* A re-exec after the drop: already that user, capabilities kept. */
	if (geteuid() == uid && uid != 0)
		return 0;
	if (geteuid() != 0)
		return -EPERM;
	capng_clear(CAPNG_SELECT_ALL);
	if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED |
			 CAPNG_INHERITABLE | CAPNG_BOUNDING_SET | CAPNG_AMBIENT,
			 CAP_NET_ADMIN) < 0)
		return -EINVAL;
	/* Sets the ids, drops supplementary groups, keeps the set above. */
	if (capng_change_id((int)uid, (int)gid,
			    CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING) < 0)
		return -EPERM;
	return 0;
}

static void handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
}

void ctd_daemon_hold_signals(void)
{
	sigset_t set;

	handled_signals(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

void ctd_daemon_release_signals(void)
{
	sigset_t set;

	handled_signals(&set);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int ctd_daemon_reexec(char *const argv[], int fd, const char *name)
{
	char pid[32];

	if (fd != LISTEN_FDS_START && dup2(fd, LISTEN_FDS_START) < 0)
		return -errno;
	/* dup2 clears FD_CLOEXEC on the copy; an fd already at 3 needs it. */
	if (fcntl(LISTEN_FDS_START, F_SETFD, 0) < 0)
		return -errno;
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	if (setenv("LISTEN_PID", pid, 1) < 0 ||
	    setenv("LISTEN_FDS", "1", 1) < 0 ||
	    setenv("LISTEN_FDNAMES", name, 1) < 0)
		return -errno;
	/* The signals ctd handles stay blocked across the exec (the mask is
	 * inherited): one that arrives meanwhile waits, pending, until the
	 * new ctd has its handlers, instead of killing a process that has
	 * none yet (SIGHUP's default). */
	ctd_daemon_hold_signals();
	execv("/proc/self/exe", argv);
	return -errno;
}
