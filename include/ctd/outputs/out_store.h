/* out_store: the local flow store, an SQLite database of finished flows
 * (one row each) with minute, hour and day rollups.
 * Owns the database connection (used by its writer thread,
 * store_writer.h) and the records of the current batch: the loop's flush
 * hands them to the thread, which writes them in one transaction; they
 * are final (settled) only once it commits. The schema is described here because
 * `ctd report` (control/report_sqlite.c) and people with sqlite3 read it
 * too. */
#ifndef CTD_OUT_STORE_H
#define CTD_OUT_STORE_H

#include <stdint.h>

struct ctd_config;
struct ctd_output;
struct ctd_output_desc;
struct ctd_setting_group;
struct ctd_owner;

/* Tables (addresses are blobs, 4 or 16 bytes in network order, so they
 * sort as numbers; times in wall-clock milliseconds):
 *   flows(id, kstart_ns, netns, family, proto, src, dst, sport, dport,
 *         reply_src, reply_dst, reply_sport, reply_dport, orig_packets,
 *         orig_bytes, reply_packets, reply_bytes, start_ms, end_ms,
 *         end_reason, zone, mark), unique on the flow's identity;
 *         indexed by end_ms, (end_ms / 60000, src) and
 *         (end_ms / 60000, dst): a query by address seeks each minute;
 *   rollup(span, kind, bucket, key, flows, packets, bytes): the flows
 *         that ended in the bucket [bucket, bucket + span * 1000) ms,
 *         span 60, 3600 or 86400 (UTC days), and their packets and bytes
 *         both directions together; kind (store_rollup.h) 0 by source
 *         address, 1 destination, 2 protocol and destination port
 *         (3 bytes), 4 namespace label (3, pairs, is not kept). */

struct ctd_out_store_cfg {
	const char *path;
	unsigned retention;       /* seconds rows (and minute rollups) are kept */
	unsigned rollup_retention; /* ... hour and day rollups */
	uint64_t max_size;        /* bytes of pages in use before trimming */
	/* One of the shards' writers (`shards`): the file's lock is shared
	 * with them; SQLite serialises the commits (SQLITE_BUSY: the batch
	 * is written again at the next flush, counted in store_err_busy). */
	bool shared;
};

/* Opens (creating) the database at cfg->path, handed to owner. -errno,
 * or -EIO when SQLite refuses it (logged). */
int ctd_out_store_new(const struct ctd_out_store_cfg *cfg,
		      const struct ctd_owner *owner, struct ctd_output **ret);

/* Folds the hours over by now_ms into their hour and day cells, then
 * prunes rows ended before now_ms - retention, whatever the time since
 * the last prune (the writer thread does both at most once a minute).
 * Returns the rows pruned or -EIO. For tests: waits for the batch being
 * written, then runs on the caller's thread. */
int64_t ctd_out_store_prune(struct ctd_output *out, uint64_t now_ms);

/* Prunes the oldest rows while the pages in use pass max_size, and sets
 * the size gauges. Returns the rows pruned or -EIO. As prune. */
int64_t ctd_out_store_trim(struct ctd_output *out);

/* store-max-size auto for a store at path: the smaller of 2 GiB and a
 * tenth of its directory's file system. */
uint64_t ctd_out_store_auto_size(const char *path);

/* The table's row (outputs.h): `store` and `store-retention`. */
extern const struct ctd_output_desc ctd_out_store_desc;
extern const struct ctd_setting_group ctd_out_store_settings;

/* The store a configuration names ("" none) and its retentions in
 * seconds (rows, hour and day rollups): `ctd report` reads the one,
 * the PostgreSQL output prunes by the others. */
const char *ctd_out_store_path(const struct ctd_config *cfg);
void ctd_out_store_retention(const struct ctd_config *cfg, unsigned *rows,
			     unsigned *rollups);

#endif
