/* out_store: the local flow store, an SQLite database of finished flows
 * (one row each) with per-minute rollups by source and destination host.
 * Owns the database connection and the records of the current batch:
 * they are written in one transaction at the loop's flush and are final
 * (settled) only once it commits. The schema is described here because
 * `ctd report top` (store_top.c) and people with sqlite3 read it too. */
#ifndef CTD_OUT_STORE_H
#define CTD_OUT_STORE_H

#include <stdint.h>

struct ctd_output;
struct ctd_output_desc;
struct ctd_owner;

/* Tables (addresses are blobs, 4 or 16 bytes in network order, so they
 * sort as numbers; times in wall-clock milliseconds):
 *   flows(id, kstart_ns, netns, family, proto, src, dst, sport, dport,
 *         reply_src, reply_dst, reply_sport, reply_dport, orig_packets,
 *         orig_bytes, reply_packets, reply_bytes, start_ms, end_ms,
 *         end_reason, zone, mark), unique on the flow's identity;
 *   rollup_src(minute, addr, flows, bytes), rollup_dst(...): flows that
 *         ended in that minute (end_ms / 60000) and their bytes, both
 *         directions together. */
#define CTD_STORE_MINUTE_MS 60000

struct ctd_out_store_cfg {
	const char *path;
	unsigned retention;       /* seconds rows are kept */
};

/* Opens (creating) the database at cfg->path, handed to owner. -errno,
 * or -EIO when SQLite refuses it (logged). */
int ctd_out_store_new(const struct ctd_out_store_cfg *cfg,
		      const struct ctd_owner *owner, struct ctd_output **ret);

/* Prunes rows ended before now_ms - retention, whatever the time since
 * the last prune (the flush does it at most once a minute). Returns
 * the rows pruned or -EIO. For tests and the flush. */
int64_t ctd_out_store_prune(struct ctd_output *out, uint64_t now_ms);

/* The table's row (outputs.h): `store` and `store-retention`. */
extern const struct ctd_output_desc ctd_out_store_desc;

#endif
