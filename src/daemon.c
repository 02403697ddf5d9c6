/* daemon: talking to the service manager, and restarting in place.
 *
 * Why any of it: the kernel keeps undelivered conntrack events only for
 * a listener that still exists. When ctd exits, its socket closes and
 * the DESTROY events queued in it, or held by the kernel for it, are
 * gone. So a restart hands the socket over instead of closing it: to
 * systemd's file-descriptor store (FDSTORE=1, given back at the next
 * start through LISTEN_FDS), or across execve() to the new binary. The
 * protocols are small and documented (sd_notify(3), sd_listen_fds(3));
 * they are spoken here directly to keep libsystemd out of ctd. */
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

#include "ctd/daemon.h"
#include "ctd/safefile.h"

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

static int notify_addr(struct sockaddr_un *sa, socklen_t *ret_len)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa->sun_path))
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len);
	if (path[0] == '@')
		sa->sun_path[0] = '\0';   /* abstract namespace */
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	return 1;
}

int ctd_daemon_notify(const char *state, int fd)
{
	struct sockaddr_un sa;
	socklen_t salen = 0;
	struct iovec iov = { (void *)state, strlen(state) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = { .msg_name = &sa, .msg_iov = &iov, .msg_iovlen = 1 };
	int r = notify_addr(&sa, &salen), s;

	if (r <= 0)
		return r;
	msg.msg_namelen = salen;
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		ctl.h.cmsg_level = SOL_SOCKET;
		ctl.h.cmsg_type = SCM_RIGHTS;
		ctl.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&ctl.h), &fd, sizeof(int));
	}
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	r = sendmsg(s, &msg, MSG_NOSIGNAL) < 0 ? -errno : 1;
	close(s);
	return r;
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

int ctd_daemon_reexec(char *const argv[], int fd, const char *name)
{
	char pid[32];
	sigset_t none;

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
	/* The loop blocked the signals it watches; the new ctd starts clean. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv("/proc/self/exe", argv);
	return -errno;
}
