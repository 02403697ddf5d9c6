/* listen: listening sockets for ctd's local clients, non-blocking. The
 * caller owns the descriptor (and removes a Unix socket's path). */
#ifndef CTD_LISTEN_H
#define CTD_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Mode 0600, or 0660 with group unless it is (gid_t)-1. Returns the
 * descriptor, -EADDRINUSE when a live ctd answers there, -EEXIST when
 * the path is not a socket, -EACCES when others than root (or the
 * running user) may write its directory, or another -errno. */
int ctd_listen_unix(const char *path, gid_t group);
/* Why ctd_listen_unix refused a path, as a phrase. */
const char *ctd_listen_strerror(int err);
/* The same as one line in buf, naming the ctd that listens there for
 * -EADDRINUSE ("another ctd (pid 42) is listening on PATH"). */
const char *ctd_listen_refusal(int err, const char *path, char *buf,
			       size_t cap);
/* Whether the peer on a Unix socket is root or (group unless
 * (gid_t)-1) in group, primary or supplementary. */
bool ctd_listen_peer_allowed(int fd, gid_t group);

/* A TCP socket on a loopback address, "127.0.0.1:9477" or "[::1]:9477";
 * -EADDRNOTAVAIL for anything not loopback. */
int ctd_listen_tcp_loopback(const char *addrport);
/* The same on any address: for the metrics endpoint over TLS with
 * client certificates only (ctl.c, cfgcheck.c). */
int ctd_listen_tcp_any(const char *addrport);
/* Whether addrport is such an address (for config checks). */
int ctd_listen_parse_loopback(const char *addrport, void *ret_sa,
			      unsigned *ret_len);

#endif
