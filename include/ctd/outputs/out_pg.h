/* out_pg: finished flows into a central PostgreSQL database, the flow
 * store's rows and per-minute rollups with an exporter column naming
 * the host, so a fleet of ctds shares one database. Owns the encoded
 * rows of the batch being filled and of the batch in flight; a batch is
 * final (settled) only when its transaction commits. The connection
 * itself is pgconn.h's. */
#ifndef CTD_OUT_PG_H
#define CTD_OUT_PG_H

#include <stddef.h>

struct ctd_output;
struct ctd_output_desc;
struct ctd_setting_group;
struct ev_loop;

/* Tables, created when missing (names and meaning as out_store.h's,
 * addresses as inet):
 *   flows(exporter, id, kstart_ns, netns, family, proto, src, dst,
 *         sport, dport, reply_*, orig_packets, orig_bytes, reply_packets,
 *         reply_bytes, start_ms, end_ms, end_reason, zone, mark),
 *         unique on (exporter, the store's identity);
 *   rollup(exporter, span, kind, bucket, key, flows, packets, bytes):
 *         the store's rollup, keyed by (span, kind, bucket, key,
 *         exporter), key a bytea with the bytes of the store's blob;
 *   rollup_pending(exporter, kind, bucket, key, flows, packets, bytes):
 *         minute cells not yet added to the hour and day cells (folded
 *         once a minute), no index.
 * Once a minute, in a transaction of its own, the pending cells are
 * folded; then rows and minute rollups older than retention, and hour and day
 * rollups older than rollup_retention, are pruned: this exporter's
 * only, in a transaction of their own, at most once a minute
 * (store_pruned counts the rows). */

/* Rows in one batch at most; past it submit refuses until a commit. */
#define CTD_OUT_PG_BATCH_MAX 16384

struct ctd_out_pg_cfg {
	const char *conninfo;     /* libpq's */
	const char *exporter;     /* this host, in every row */
	unsigned retention;       /* seconds rows are kept; 0: forever */
	unsigned rollup_retention; /* ... hour and day rollups */
};

/* Starts connecting (a server that is down only delays the rows).
 * -EINVAL when libpq cannot parse conninfo (logged), -ENOMEM. */
int ctd_out_pg_new(struct ev_loop *loop, const struct ctd_out_pg_cfg *cfg,
		   struct ctd_output **ret);

/* The table's row (outputs.h): `postgresql`. */
extern const struct ctd_output_desc ctd_out_pg_desc;
extern const struct ctd_setting_group ctd_out_pg_settings;

#endif
