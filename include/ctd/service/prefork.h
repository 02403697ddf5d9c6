/* prefork: the parent side of `shards`: N shard processes, each a fresh
 * ctd (fork, then exec of /proc/self/exe with the same arguments) told
 * its part by CTD_SHARD in its environment, with one end of a
 * SOCK_SEQPACKET pair as its link to the parent. A shard that dies is
 * started again (counted and logged; after a second when it lived less
 * than one, so a shard that cannot start does not spin). Signals are
 * passed on to every shard. Owns the shards' pids, the parent's ends of
 * the links and their watchers. */
#ifndef CTD_PREFORK_H
#define CTD_PREFORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_prefork;
struct ev_loop;

#define CTD_PREFORK_ENV "CTD_SHARD"
#define CTD_PREFORK_MSG_MAX 16384   /* the largest message on a link */

/* A message shard k sent on its link (one datagram). A descriptor sent
 * with one is shard k's ctnetlink socket: the parent keeps it and hands
 * it to the shard it starts after k died (LISTEN_FDS, as the service
 * manager's fd store does), so the events the kernel holds for it are
 * read, not lost. */
typedef void ctd_prefork_msg_fn(void *arg, unsigned k, const void *buf,
				size_t len);
/* Shard k handed its socket over (a new one, or again after a re-exec). */
typedef void ctd_prefork_sock_fn(void *arg, unsigned k, int fd);
/* Every shard has exited after ctd_prefork_stop. */
typedef void ctd_prefork_done_fn(void *arg);

struct ctd_prefork_cfg {
	unsigned n;
	char *const *argv;           /* the parent's, for the exec */
	ctd_prefork_msg_fn *msg;
	ctd_prefork_done_fn *done;
	ctd_prefork_sock_fn *sock;
	void *arg;
	/* Sockets for the first shards (the service manager's fd store
	 * kept them across a restart), -1 for none; taken over. */
	const int *socks;
};

/* Starts the n shards; -errno when not one could be started. */
int ctd_prefork_start(struct ev_loop *loop, const struct ctd_prefork_cfg *cfg,
		      struct ctd_prefork **ret);
/* Sends len bytes to shard k (non-blocking): 0, or -errno (-ESRCH: the
 * shard is not running now). */
int ctd_prefork_send(struct ctd_prefork *p, unsigned k, const void *buf,
		     size_t len);
/* Passes sig on to every running shard. */
void ctd_prefork_signal(struct ctd_prefork *p, int sig);
/* SIGTERM to every shard, none started again; done when all are gone. */
void ctd_prefork_stop(struct ctd_prefork *p);
/* Shards running now; shards started again after they died. */
unsigned ctd_prefork_running(const struct ctd_prefork *p);
uint64_t ctd_prefork_restarts(const struct ctd_prefork *p);
bool ctd_prefork_alive(const struct ctd_prefork *p, unsigned k);
void ctd_prefork_free(struct ctd_prefork *p);

/* The child side, pure: CTD_SHARD's value "k n fd" parsed; -EINVAL
 * unless k < n <= max and fd >= 0. */
int ctd_prefork_parse(const char *env, unsigned max, unsigned *k,
		      unsigned *n, int *fd);
/* A shard's own directory under base: "base/shard-k"; -ENAMETOOLONG. */
int ctd_prefork_dir(const char *base, unsigned k, char *buf, size_t cap);

#endif
