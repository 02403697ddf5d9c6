/* listen: listening sockets for ctd's local clients. Unix sockets (the
 * stream output, the control socket) are root only from the moment they
 * exist, and a stale socket file from a ctd that died is replaced, while
 * one that still answers is left to its owner. TCP (the metrics
 * endpoint) is only ever bound to a loopback address: counters are not
 * for the network. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "ctd/listen.h"

/* A socket file left by a ctd that died is removed; one that still
 * answers belongs to a running ctd and is left alone. */
static int clear_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(sa->sun_path, &st) < 0)
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
	return unlink(sa->sun_path) < 0 ? -errno : 0;
}

int ctd_listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	r = clear_stale(&sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Root only from the first moment: no window before a chmod. */
	old = umask(0177);
	r = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
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

int ctd_listen_tcp_loopback(const char *addrport)
{
	struct sockaddr_in6 sa;     /* large enough for either family */
	unsigned len;
	int fd, one = 1, r = ctd_listen_parse_loopback(addrport, &sa, &len);

	if (r < 0)
		return r;
	fd = socket(((struct sockaddr *)&sa)->sa_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}
