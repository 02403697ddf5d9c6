/* listen: listening sockets for ctd's local clients. Unix sockets (the
 * stream output, the control socket) are root only (or root and one
 * group) from the moment they exist, live in a directory only root can
 * change, and admit a peer only after its credentials say root or a
 * member of the group (a socket's mode is not honoured everywhere). A
 * stale socket file from a ctd that died is replaced, while one that
 * still answers is left to its owner. TCP (the metrics
 * endpoint) is bound to a loopback address: counters are not for the
 * network; any other address only for HTTPS with client certificates,
 * which ctd -t checks before ctl.c asks for it. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "ctd/base/listen.h"
#include "ctd/base/safefile.h"

/* Where ctd binds a Unix socket, only root (or the unprivileged ctd
 * itself) may change the directory: bind, the stale-socket unlink and
 * the group's chown all go by name, and in a directory others can write
 * a local user could swap the name for a link in between. */
static int socket_dir(const char *path, const char **ret_name)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	int dfd, r = ctd_safefile_split(path, dir, sizeof(dir), ret_name);

	if (r < 0)
		return r;
	dfd = ctd_safefile_dir(dir, false, 0, NULL);
	if (dfd == -EPERM)
		return -EACCES;
	if (dfd < 0)
		return dfd;
	if (fstat(dfd, &st) < 0 || (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		close(dfd);
		return -EACCES;
	}
	return dfd;
}

/* A socket file left by a ctd that died is removed; one that still
 * answers belongs to a running ctd and is left alone. */
static int clear_stale(int dfd, const char *name,
		       const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
}

/* Root only from the first moment, or root and group: no window before
 * a chmod. The group is set on the name, in a directory only root can
 * change (socket_dir), without following a link. */
static int bind_socket(int fd, int dfd, const char *name,
		       const struct sockaddr_un *sa, gid_t group)
{
	bool grp = group != (gid_t)-1;
	mode_t old = umask(grp ? 0117 : 0177);
	int r = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));

	umask(old);
	if (r < 0)
		return -errno;
	if (grp && fchownat(dfd, name, (uid_t)-1, group,
			    AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		unlinkat(dfd, name, 0);
		return r;
	}
	return 0;
}

static int listen_in(int dfd, const char *name, const struct sockaddr_un *sa,
		     gid_t group)
{
	int fd, r = clear_stale(dfd, name, sa);

	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = bind_socket(fd, dfd, name, sa, group);
	if (r == 0 && listen(fd, 128) < 0) {
		r = -errno;
		unlinkat(dfd, name, 0);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int ctd_listen_unix(const char *path, gid_t group)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *name;
	int dfd, fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	dfd = socket_dir(path, &name);
	if (dfd < 0)
		return dfd;
	fd = listen_in(dfd, name, &sa, group);
	close(dfd);
	return fd;
}

/* Supplementary groups are not in SO_PEERCRED; the peer's /proc entry
 * has them (a read of a small virtual file, on connect only). */
static bool pid_in_group(pid_t pid, gid_t group)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char *p = line + 7, *end;

		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		for (;;) {
			unsigned long g = strtoul(p, &end, 10);

			if (end == p)
				break;
			if (g == group)
				found = true;
			p = end;
		}
		break;
	}
	free(line);
	fclose(f);
	return found;
}

bool ctd_listen_peer_allowed(int fd, gid_t group)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid == 0)
		return true;
	return group != (gid_t)-1 &&
	       (cred.gid == group || pid_in_group(cred.pid, group));
}

int ctd_listen_parse_loopback(const char *addrport, void *ret_sa,
			      unsigned *ret_len)
{
	char host[64];
	const char *colon = strrchr(addrport, ':');
	size_t hlen = colon ? (size_t)(colon - addrport) : 0;
	char *end;
	long port;

	if (!colon || hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 1 || port > 65535)
		return -EINVAL;
	memcpy(host, addrport, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *sa6 = ret_sa;

		host[hlen - 1] = '\0';
		memset(sa6, 0, sizeof(*sa6));
		sa6->sin6_family = AF_INET6;
		sa6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &sa6->sin6_addr) != 1)
			return -EINVAL;
		*ret_len = sizeof(*sa6);
		return IN6_IS_ADDR_LOOPBACK(&sa6->sin6_addr) ? 0 : -EADDRNOTAVAIL;
	}
	struct sockaddr_in *sa4 = ret_sa;

	memset(sa4, 0, sizeof(*sa4));
	sa4->sin_family = AF_INET;
	sa4->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa4->sin_addr) != 1)
		return -EINVAL;
	*ret_len = sizeof(*sa4);
	return (ntohl(sa4->sin_addr.s_addr) >> 24) == 127 ? 0 : -EADDRNOTAVAIL;
}

static int listen_tcp(const char *addrport, bool any)
{
	struct sockaddr_in6 sa;     /* large enough for either family */
	unsigned len;
	int fd, one = 1, r = ctd_listen_parse_loopback(addrport, &sa, &len);

	if (r == -EADDRNOTAVAIL && any)
		r = 0;
	if (r < 0)
		return r;
	fd = socket(((struct sockaddr *)&sa)->sa_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int ctd_listen_tcp_loopback(const char *addrport)
{
	return listen_tcp(addrport, false);
}

int ctd_listen_tcp_any(const char *addrport)
{
	return listen_tcp(addrport, true);
}

/* Who listens at path: the peer credentials of a connection carry
 * the pid of the process that called listen(). 0 when nobody answers. */
static long holder(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		cred.pid = 0;
	close(fd);
	return cred.pid;
}

const char *ctd_listen_refusal(int err, const char *path, char *buf,
			       size_t cap)
{
	long pid = err == -EADDRINUSE ? holder(path) : 0;

	if (err == -EADDRINUSE && pid)
		snprintf(buf, cap, "another ctd (pid %ld) is listening on %s",
			 pid, path);
	else if (err == -EADDRINUSE)
		snprintf(buf, cap, "another ctd is listening on %s", path);
	else
		snprintf(buf, cap, "cannot listen on %s: %s", path,
			 ctd_listen_strerror(err));
	return buf;
}

const char *ctd_listen_strerror(int err)
{
	if (err == -EACCES)
		return "its directory may be changed by users other than root";
	if (err == -EEXIST)
		return "something other than a socket is there; refusing to "
		       "touch it";
	return ctd_safefile_strerror(err);
}
