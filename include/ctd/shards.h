/* shards: ctd as N processes (`shards` > 1). The parent holds the run
 * lock, the control socket and the metrics endpoint, starts the shards
 * (prefork.c) and answers for the whole box with the sum of their
 * counters (shardsum.c), which it asks each shard for over its link; it
 * says READY once every shard is. A shard is a whole ctd on its part of
 * the events; its side of the link answers the parent. */
#ifndef CTD_SHARDS_H
#define CTD_SHARDS_H

#include <stdbool.h>
#include <stddef.h>

struct ctd_cli;
struct ctd_config;
struct ctd_shardlink;
struct ctd_stats;
struct ev_loop;

/* `shards` resolved: auto is the online CPUs, at most CTD_SHARDS_MAX. */
unsigned ctd_shards_count(const struct ctd_config *cfg);

/* The parent: runs until SIGTERM and every shard has exited; the exit
 * status for main. */
int ctd_shards_run(char *const argv[], struct ctd_config *cfg,
		   const struct ctd_cli *cli);

/* A shard: 1 when CTD_SHARD says this process is one (cfg then holds
 * its part and its own paths, *ret_fd its link), 0 when not, -errno
 * when the variable is malformed or its directory cannot be made. */
int ctd_shards_child(struct ctd_config *cfg, int *ret_fd);

/* Brings stats up to date before a snapshot. */
typedef void ctd_shardlink_refresh(void *arg);
/* The shard's end of the link: answers the parent's requests for its
 * counters with a snapshot of stats. */
struct ctd_shardlink *ctd_shardlink_new(struct ev_loop *loop, int fd,
					const struct ctd_stats *stats,
					ctd_shardlink_refresh *refresh,
					void *arg);
/* Hands a duplicate of the shard's ctnetlink socket to the parent, which
 * gives it to the shard it starts should this one die. */
void ctd_shardlink_keep(struct ctd_shardlink *l, int sock);
/* Tells the parent this shard is ready (listening, its table known). */
void ctd_shardlink_ready(struct ctd_shardlink *l);
/* keep_fd: the link stays open for the image a re-exec starts. */
void ctd_shardlink_free(struct ctd_shardlink *l, bool keep_fd);

#endif
