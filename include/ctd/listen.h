/* listen: listening sockets for ctd's local clients, non-blocking. The
 * caller owns the descriptor (and removes a Unix socket's path). */
#ifndef CTD_LISTEN_H
#define CTD_LISTEN_H

/* Returns the descriptor, -EADDRINUSE when a live ctd answers there,
 * -EEXIST when the path is not a socket, or another -errno. */
int ctd_listen_unix(const char *path);

/* A TCP socket on a loopback address, "127.0.0.1:9477" or "[::1]:9477";
 * -EADDRNOTAVAIL for anything not loopback. */
int ctd_listen_tcp_loopback(const char *addrport);
/* Whether addrport is such an address (for config checks). */
int ctd_listen_parse_loopback(const char *addrport, void *ret_sa,
			      unsigned *ret_len);

#endif
