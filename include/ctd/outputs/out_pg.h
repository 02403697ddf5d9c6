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
 *   rollup_src(exporter, minute, addr, flows, bytes), rollup_dst(...). */

/* Rows in one batch at most; past it submit refuses until a commit. */
#define CTD_OUT_PG_BATCH_MAX 16384

struct ctd_out_pg_cfg {
	const char *conninfo;     /* libpq's */
	const char *exporter;     /* this host, in every row */
};

/* Starts connecting (a server that is down only delays the rows).
 * -EINVAL when libpq cannot parse conninfo (logged), -ENOMEM. */
int ctd_out_pg_new(struct ev_loop *loop, const struct ctd_out_pg_cfg *cfg,
		   struct ctd_output **ret);

/* The table's row (outputs.h): `postgresql`. */
extern const struct ctd_output_desc ctd_out_pg_desc;
extern const struct ctd_setting_group ctd_out_pg_settings;

#endif
