/* unixsock: a listening Unix stream socket, mode 0600, non-blocking.
 * The caller owns the descriptor and removes the path when done. */
#ifndef CTD_UNIXSOCK_H
#define CTD_UNIXSOCK_H

/* Returns the descriptor, -EADDRINUSE when a live ctd answers there,
 * -EEXIST when the path is not a socket, or another -errno. */
int ctd_unixsock_listen(const char *path);

#endif
