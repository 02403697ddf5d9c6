/* shardsum: the counters of one shard process as a flat snapshot the
 * parent reads over a socket, and the sum of every shard's that the
 * control socket and the metrics show (`shards`). Counters add up;
 * gauges add up where each shard has its own (flows tracked, held
 * records, its buffer), and take the largest where every shard sees the
 * same thing (the kernel's table, the governor's mode, the store's
 * size). Pure: the snapshot is plain memory, no pointers. */
#ifndef CTD_SHARDSUM_H
#define CTD_SHARDSUM_H

#include <stddef.h>

#include "ctd/base/stats.h"
#include "ctd/outputs/output.h"

#define CTD_SHARDSUM_NAME 24
/* Words of an output's own counters (its struct is uint64_t words). */
#define CTD_SHARDSUM_OWN 24

struct ctd_shardsnap {
	struct ctd_stats st;            /* out_name and out are NULL */
	char name[CTD_OUT_MAX][CTD_SHARDSUM_NAME];
	struct ctd_out_stats out[CTD_OUT_MAX];
	/* Each output's own counters, by word of its struct, and which
	 * words every shard reads alike (their largest is the sum). */
	uint64_t own[CTD_OUT_MAX][CTD_SHARDSUM_OWN];
	uint32_t own_same[CTD_OUT_MAX];
};

/* Copies st (and its outputs) into s. */
void ctd_shardsum_take(struct ctd_shardsnap *s, const struct ctd_stats *st);
/* Adds s into sum (zeroed before the first); outputs meet by name, an
 * output sum has not seen yet is added at the end. */
void ctd_shardsum_add(struct ctd_shardsnap *sum, const struct ctd_shardsnap *s);
/* Points s->st's out_name and out at s's own copies, and each output's
 * own counters at their rows (its descriptor's, found by name), so
 * s->st reads as any struct ctd_stats; valid while s lives. */
const struct ctd_stats *ctd_shardsum_view(struct ctd_shardsnap *s);

#endif
