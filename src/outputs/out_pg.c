/* out_pg: finished flows into a central PostgreSQL database.
 *
 * out_store's rules over a network: submit encodes a flow record as a
 * COPY text row (pgcopy.c) into the batch being filled, a growing buffer
 * reused from batch to batch (no allocation per record); the flush sends
 * the batch when nothing else is in flight, and while it is in flight
 * the next one fills, so batches grow with the load. A batch goes in one
 * transaction: COPY into a temporary staging table, then one statement
 * inserts its rows into flows with ON CONFLICT DO NOTHING on the flow's
 * identity and adds the rows it did insert to the rollups, then COMMIT.
 * Only the COMMIT makes the batch's records final (settled); until then
 * they are in delivery's write-ahead log. A replay (a crash between
 * COMMIT and delivery hearing of it, a COMMIT whose answer was lost)
 * inserts nothing twice and adds nothing to the rollups.
 *
 * Nothing blocks: every step is sent with libpq's asynchronous calls and
 * advanced when pgconn says the socket had something. Any failure drops
 * the connection (the server rolls back), the batch in flight is kept
 * and sent again first once pgconn reconnected. While there is no
 * connection, and when the batch being filled is full, records are
 * refused (CTD_OUT_AGAIN): they wait on delivery's dying list and in
 * its spool, so a long outage costs the output no memory, and ready is
 * called once a connection is set up or a commit made room. */
#include <errno.h>
#include <ev.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/config/cfgcheck.h"
#include "ctd/config/config.h"
#include "ctd/config/conninfo.h"
#include "ctd/flows/record.h"
#include "ctd/format/pgcopy.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/out_pg.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "ctd/outputs/pgconn.h"

#define CHUNK (256u << 10)        /* COPY data handed to libpq at once */
#define BUF_START (256u << 10)
#define STEP_TIMEOUT 60.0         /* a batch or the setup, to COMMIT */
#define PRUNE_EVERY_US 60000000   /* a prune pass at most this often, */
#define PRUNE_AGAIN_US 1000000    /* ... but this after one that hit: */
#define PRUNE_ROWS 100000         /* rows one pass deletes at most */
#define LIT_MAX 520               /* a host name (255) as a literal */

/* Created only when missing, so a role with INSERT and UPDATE grants
 * alone (tables made by an administrator) works too. The flow's key
 * leads with its start time, so new rows go to the right edge of the
 * index (the conntrack id is a hash: first, it would scatter them over
 * an index larger than memory), and text compares bytewise (COLLATE
 * "C"): a locale's collation in index comparisons cost a third of the
 * insert rate. */
#define STAGE_COLUMNS \
	"id bigint, kstart_ns bigint, netns text, family smallint, " \
	"proto smallint, src inet, dst inet, sport integer, dport integer, " \
	"reply_src inet, reply_dst inet, reply_sport integer, " \
	"reply_dport integer, orig_packets bigint, orig_bytes bigint, " \
	"reply_packets bigint, reply_bytes bigint, start_ms bigint, " \
	"end_ms bigint, end_reason text, zone integer, mark bigint"

/* The store's flows table, with its NOT NULLs. */
#define FLOW_COLUMNS \
	"exporter text COLLATE \"C\" NOT NULL, id bigint NOT NULL, " \
	"kstart_ns bigint NOT NULL, netns text COLLATE \"C\" NOT NULL, " \
	"family smallint NOT NULL, proto smallint NOT NULL, " \
	"src inet NOT NULL, dst inet NOT NULL, sport integer NOT NULL, " \
	"dport integer NOT NULL, reply_src inet, reply_dst inet, " \
	"reply_sport integer, reply_dport integer, orig_packets bigint, " \
	"orig_bytes bigint, reply_packets bigint, reply_bytes bigint, " \
	"start_ms bigint, end_ms bigint NOT NULL, end_reason text, " \
	"zone integer, mark bigint"

/* The store's rollup table (out_store.h) with the exporter: the same
 * span, kind, bucket and key (the bytes the store's blob holds, so keys
 * sort alike), flows, packets and bytes. A batch adds to the minute
 * cells and appends the same cells to rollup_pending, which has no
 * index; once a minute the pass that prunes folds the pending cells
 * into the hour and day cells: an hour or day cell is then updated once
 * a minute, not once per batch, and appending a cell costs the server a
 * fraction of an upsert (docs/benchmarks.md). Reports add the pending
 * cells to the hour and day cells they read (report_pg.c). */
#define PENDING_COLUMNS \
	"exporter text COLLATE \"C\" NOT NULL, kind smallint NOT NULL, " \
	"bucket bigint NOT NULL, key bytea NOT NULL, flows bigint NOT NULL, " \
	"packets bigint NOT NULL, bytes bigint NOT NULL"

#define ROLLUP_COLUMNS \
	"exporter text COLLATE \"C\" NOT NULL, span integer NOT NULL, " \
	"kind smallint NOT NULL, bucket bigint NOT NULL, key bytea NOT NULL, " \
	"flows bigint NOT NULL, packets bigint NOT NULL, " \
	"bytes bigint NOT NULL, PRIMARY KEY(span, kind, bucket, key, exporter)"

/* The minute cells (m) of the rows of `rel` (exporter, end_ms, src,
 * dst, proto, dport, netns, packets, bytes), every kind in one
 * grouping-sets pass over the rows, each group's key then made as
 * store_rollup.c makes it (inet_send's address bytes, protocol and port
 * in 3 bytes, the label's first 48 bytes: per cell, not per row).
 * grouping() names the set: 7 src, 11 dst, 13 port, 14 netns. (mod(),
 * not %: the merge's text goes through snprintf.) */
#define MINUTE_CELLS(rel) \
	"g AS (SELECT exporter, end_ms - mod(end_ms, 60000) AS bucket, src, " \
	"dst, proto, dport, netns, grouping(src, dst, proto, netns) AS gr, " \
	"count(*) AS flows, sum(packets)::bigint AS packets, " \
	"sum(bytes)::bigint AS bytes FROM " rel " GROUP BY exporter, bucket, " \
	"GROUPING SETS ((src), (dst), (proto, dport), (netns))), " \
	"m AS (SELECT exporter, CASE gr WHEN 7 THEN 0::smallint " \
	"WHEN 11 THEN 1::smallint WHEN 13 THEN 2::smallint " \
	"ELSE 4::smallint END AS kind, bucket, CASE gr " \
	"WHEN 7 THEN substr(inet_send(src), 5) " \
	"WHEN 11 THEN substr(inet_send(dst), 5) " \
	"WHEN 13 THEN substr(int4send(proto * 65536 + dport), 2) " \
	"ELSE substr(convert_to(netns, 'UTF8'), 1, 48) END AS key, flows, " \
	"packets, bytes FROM g)"

/* The hour and day cells (h) of minute cells `rel` (exporter, kind,
 * bucket, key, flows, packets, bytes). */
#define FOLD(rel) \
	"h AS (SELECT exporter, s.span, kind, " \
	"bucket - mod(bucket, s.span * 1000) AS bucket, key, " \
	"sum(flows)::bigint AS flows, sum(packets)::bigint AS packets, " \
	"sum(bytes)::bigint AS bytes FROM " rel ", " \
	"(VALUES (3600), (86400)) AS s(span) GROUP BY 1, 2, 3, 4, 5)"

#define ADD_CELLS(rel) \
	"INSERT INTO rollup AS r SELECT * FROM " rel " " \
	"ON CONFLICT (span, kind, bucket, key, exporter) DO UPDATE SET " \
	"flows = r.flows + excluded.flows, " \
	"packets = r.packets + excluded.packets, " \
	"bytes = r.bytes + excluded.bytes"

#define MINUTES_OF(rel) \
	"SELECT exporter, 60, kind, bucket, key, flows, packets, bytes FROM " rel

#define ROW_SUMS(p) \
	"coalesce(" p "orig_packets, 0) + coalesce(" p "reply_packets, 0) " \
	"AS packets, coalesce(" p "orig_bytes, 0) + " \
	"coalesce(" p "reply_bytes, 0) AS bytes"

/* A database of an older ctd (rollup_src and rollup_dst, left alone)
 * gets its rollup from the rows it holds, once. */
static const char setup_sql[] =
	"DO $$BEGIN "
	"IF to_regclass('flows') IS NULL THEN CREATE TABLE flows("
	FLOW_COLUMNS ", "
	"UNIQUE(kstart_ns, id, exporter, netns, proto, src, dst, sport, dport));"
	/* Rows come in about end_ms order: a BRIN index finds a time range
	 * (reports, pruning) at a fraction of a B-tree's upkeep. */
	" CREATE INDEX flows_end ON flows USING brin(end_ms); END IF; "
	"IF to_regclass('rollup') IS NULL THEN CREATE TABLE rollup("
	ROLLUP_COLUMNS "); "
	"WITH f AS (SELECT exporter, end_ms, src, dst, proto, dport, netns, "
	ROW_SUMS("") " FROM flows), " MINUTE_CELLS("f") ", " FOLD("m") ", "
	"c AS (" MINUTES_OF("m") " UNION ALL SELECT * FROM h) "
	ADD_CELLS("c") "; END IF; "
	"IF to_regclass('rollup_pending') IS NULL THEN "
	"CREATE TABLE rollup_pending(" PENDING_COLUMNS "); END IF; "
	"END$$; "
	"CREATE TEMP TABLE IF NOT EXISTS ctd_stage(" STAGE_COLUMNS ") "
	"ON COMMIT DELETE ROWS";

static const char copy_sql[] =
	"BEGIN; COPY ctd_stage (" CTD_PGCOPY_COLUMNS ") FROM STDIN";

/* %1$s: the exporter as a literal; %2$s: the conflict clause. The
 * rollups take only the rows the INSERT returned, i.e. those it did
 * insert. A batch goes in first without ON CONFLICT: the rows are new
 * but after a failure or a restart, and a plain INSERT costs the server
 * about two thirds of one that checks each row before inserting it; a
 * batch that does meet a row stored already (unique_violation) is
 * rolled back and sent again with ON CONFLICT DO NOTHING. */
static const char merge_fmt[] =
	"WITH ins AS (INSERT INTO flows (exporter, " CTD_PGCOPY_COLUMNS ") "
	"SELECT %1$s, " CTD_PGCOPY_COLUMNS " FROM ctd_stage "
	"%2$sRETURNING exporter, end_ms, src, dst, proto, dport, netns, "
	ROW_SUMS("") "), " MINUTE_CELLS("ins") ", "
	"c AS (" MINUTES_OF("m") "), r AS (" ADD_CELLS("c") "), "
	"p AS (INSERT INTO rollup_pending SELECT * FROM m) "
	"SELECT count(*) FROM ins; COMMIT";

/* One pass over this exporter's rows: the pending minute cells folded
 * into the hour and day cells, then, in a transaction of its own (a
 * refused prune keeps the fold), the prune.
 * %1$s the exporter's literal, %2$lld the rows' cut, %3$lld the hour
 * and day rollups', %4$d PRUNE_ROWS (-1 cuts: no retention). The
 * prune is bounded (PRUNE_ROWS), so the first pass over a long backlog
 * cannot hold the connection past STEP_TIMEOUT; the BRIN index finds
 * the old rows. A rollup bucket goes once it began before the cut, as
 * in the store. */
static const char prune_fmt[] =
	"BEGIN; WITH m AS (DELETE FROM rollup_pending WHERE exporter = %1$s "
	"RETURNING *), " FOLD("m") " " ADD_CELLS("h") "; COMMIT; "
	"BEGIN; WITH d AS (DELETE FROM flows WHERE ctid = ANY(ARRAY("
	"SELECT ctid FROM flows WHERE end_ms < %2$lld AND exporter = %1$s "
	"LIMIT %4$d)) RETURNING 1) SELECT count(*) FROM d; "
	"DELETE FROM rollup WHERE span = 60 AND kind IN (0, 1, 2, 3, 4) AND "
	"bucket < %2$lld AND exporter = %1$s; "
	"DELETE FROM rollup WHERE span IN (3600, 86400) AND "
	"kind IN (0, 1, 2, 3, 4) AND bucket < %3$lld AND exporter = %1$s; "
	"COMMIT";

static const char *const conflict_clause[2] = {
	"", "ON CONFLICT DO NOTHING ",
};

/* P_CONFLICT: the plain INSERT met a stored row, results drained
 * before the ROLLBACK; P_PRUNE_FAILED: the same for a refused prune. */
enum step { P_IDLE, P_SETUP, P_COPY_START, P_COPY_DATA, P_COPY_END, P_MERGE,
	    P_CONFLICT, P_ROLLBACK, P_PRUNE, P_PRUNE_FAILED };

struct batch {
	char *buf;
	size_t len, cap;
	size_t rows;
	uint64_t mark;            /* taken when it was cut: final at COMMIT */
};

/* What PostgreSQL counts beside delivery (ctd -s, metrics): the
 * connection's, and the rows as the store counts them (one family). */
struct pg_counters {
	struct ctd_pgconn_counters conn;
	uint64_t rows;            /* rows inserted */
	uint64_t repeats;         /* records stored already: ignored */
	uint64_t commits;         /* batches committed */
	uint64_t pruned;          /* rows past store-retention */
	uint64_t commit_us;       /* batches' time from send to COMMIT */
	uint64_t commit_last_us;  /* gauge: the last batch's */
	uint64_t prune_errors;    /* prune passes refused (rolled back) */
};

#define PC(name, field, gauge, prom, help) \
	{ name, offsetof(struct pg_counters, field), gauge, prom, help, false }
/* A gauge of the one database, which every shard sees alike. */
#define PS(name, field, prom, help) \
	{ name, offsetof(struct pg_counters, field), true, prom, help, true }

static const struct ctd_counter_def pg_counter_rows[] = {
	PC("store_rows", rows, false, "store_rows_total", "Flow store: rows inserted."),
	PC("store_repeats", repeats, false, "store_repeats_total", "Flow store: records stored already (replayed after a crash), ignored."),
	PC("store_commits", commits, false, "store_commits_total", "Flow store: transactions committed."),
	PC("store_pruned", pruned, false, "store_pruned_total", "Flow store: rows pruned past store-retention."),
	PC("pg_connect_errors", conn.connect_errors, false, "pg_connect_errors_total", "PostgreSQL: connection attempts that failed."),
	PC("pg_lost", conn.lost, false, "pg_lost_total", "PostgreSQL: connections that broke."),
	PC("pg_query_errors", conn.query_errors, false, "pg_query_errors_total", "PostgreSQL: statements the server refused."),
	PC("pg_timeouts", conn.timeouts, false, "pg_timeouts_total", "PostgreSQL: connects or batches not answered in time."),
	PC("pg_connected", conn.connected, true, "pg_connected", "PostgreSQL: 1 while connected."),
	PC("pg_commit_us", commit_us, false, "pg_commit_seconds_total", "PostgreSQL: time from a batch's send to its COMMIT, summed (store_commits_total counts the batches)."),
	PS("pg_commit_last_us", commit_last_us, "pg_commit_last_seconds", "PostgreSQL: the last batch's time from send to COMMIT."),
	PC("pg_prune_errors", prune_errors, false, "pg_prune_errors_total", "PostgreSQL: prunes past store-retention the server refused (rolled back, tried again in a minute)."),
};

static const struct ctd_counter_defs pg_counters = {
	pg_counter_rows,
	sizeof(pg_counter_rows) / sizeof(pg_counter_rows[0]),
	CTD_SHOWS_LINK,
};

struct out_pg {
	struct ctd_output base;
	struct pg_counters own;
	struct ctd_pgconn *pc;
	PGconn *conn;             /* while up */
	enum step step;
	struct batch fill, send;  /* filling; in flight (or to send again) */
	size_t off;               /* send's bytes handed to COPY */
	uint64_t inserted;        /* the merge's count */
	bool committed_ok;        /* its COMMIT answered COMMIT */
	bool careful;             /* send's rows may be stored: ON CONFLICT */
	bool open;                /* connected and set up */
	bool refusing, stopped;
	uint64_t taken, committed;
	int64_t sent_us;
	char *exporter;
	char *lit;                /* exporter as a literal, per connection */
	struct ev_loop *loop;
	ev_timer prune_timer;     /* an idle ctd prunes too */
	unsigned retention, rollup_retention;   /* seconds; 0: keep all */
	int64_t next_prune_us;    /* monotonic */
	uint64_t pruned;          /* the pass in flight's rows */
	bool prune_ok;            /* its COMMIT answered COMMIT */
	bool prune_logged;        /* a refused prune was logged */
	char *merge_sql[2];       /* per connection (the literal's escaping):
	                           * plain, careful */
};

static struct out_pg *to_pg(struct ctd_output *out)
{
	return (struct out_pg *)out;
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool stored(const struct ctd_record *rec)
{
	return !rec->events && rec->end_reason != CTD_END_ACTIVE;
}

/* Records taken after the last row of any batch are final at once. */
static void settle_idle(struct out_pg *p)
{
	if (!p->fill.rows && !p->send.rows)
		p->committed = p->taken;
}

static int reserve(struct batch *b)
{
	size_t cap = b->cap ? b->cap : BUF_START;
	char *buf;

	while (cap - b->len < CTD_PGCOPY_ROW_MAX)
		cap *= 2;
	if (cap == b->cap)
		return 0;
	buf = realloc(b->buf, cap);
	if (!buf)
		return -ENOMEM;
	b->buf = buf;
	b->cap = cap;
	return 0;
}

static enum ctd_out_status pg_submit(struct ctd_output *out,
				     const struct ctd_record *rec)
{
	struct out_pg *p = to_pg(out);

	if (!stored(rec) && !p->stopped) {
		out->stats.skipped++;
		p->taken++;
		settle_idle(p);
		return CTD_OUT_DELIVERED;
	}
	if (!p->open || p->fill.rows == CTD_OUT_PG_BATCH_MAX ||
	    reserve(&p->fill) < 0) {
		p->refusing = true;
		return CTD_OUT_AGAIN;
	}
	p->fill.len += ctd_pgcopy_row(rec, p->fill.buf + p->fill.len);
	p->fill.rows++;
	p->taken++;
	return CTD_OUT_DELIVERED;
}

static void swap_batches(struct out_pg *p)
{
	struct batch t = p->send;

	p->send = p->fill;
	p->send.mark = p->taken;
	t.len = t.rows = 0;
	p->fill = t;
}

static bool send_query(struct out_pg *p, const char *sql, enum step next)
{
	if (!PQsendQuery(p->conn, sql)) {
		ctd_pgconn_fail(p->pc, CTD_PG_FAIL_LOST, PQerrorMessage(p->conn));
		return false;
	}
	p->step = next;
	return ctd_pgconn_flush(p->pc) >= 0;
}

static bool prune_due(const struct out_pg *p)
{
	return p->open && mono_us() >= p->next_prune_us;
}

/* The cut for rows kept `secs`, from the wall clock the rows' times
 * come from. */
static long long cut_ms(unsigned secs)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
	       (long long)secs * 1000;
}

static void start_prune(struct out_pg *p)
{
	char sql[sizeof(prune_fmt) + 3 * LIT_MAX + 64];
	unsigned rollup = p->rollup_retention > p->retention ?
			  p->rollup_retention : p->retention;

	p->next_prune_us = mono_us() + PRUNE_EVERY_US;
	if (strlen(p->lit) > LIT_MAX)
		return;
	snprintf(sql, sizeof(sql), prune_fmt, p->lit,
		 p->retention ? cut_ms(p->retention) : -1,
		 p->retention ? cut_ms(rollup) : -1, PRUNE_ROWS);
	p->pruned = 0;
	p->prune_ok = false;
	ctd_pgconn_deadline(p->pc, STEP_TIMEOUT);
	send_query(p, sql, P_PRUNE);
}

/* A prune when one is due, else the batch in flight again (after a
 * reconnect), else the filled one. */
static void start_batch(struct out_pg *p)
{
	if (!p->conn || p->step != P_IDLE)
		return;
	if (prune_due(p)) {
		start_prune(p);
		return;
	}
	if (!p->send.rows && p->fill.rows)
		swap_batches(p);
	if (!p->send.rows)
		return;
	p->off = 0;
	p->inserted = 0;
	p->committed_ok = false;
	p->sent_us = mono_us();
	ctd_pgconn_deadline(p->pc, STEP_TIMEOUT);
	send_query(p, copy_sql, P_COPY_START);
}

/* Said AGAIN: delivery re-sends what it holds at once. */
static void call_ready(struct out_pg *p)
{
	if (!p->refusing)
		return;
	p->refusing = false;
	ctd_output_ready(&p->base);
}

static void note_commit(struct out_pg *p)
{
	struct pg_counters *st = &p->own;
	int64_t took = mono_us() - p->sent_us;

	ctd_pgconn_deadline(p->pc, 0);
	st->commits++;
	st->rows += p->inserted;
	st->repeats += p->send.rows - p->inserted;
	st->commit_last_us = (uint64_t)took;
	st->commit_us += (uint64_t)took;
	p->careful = false;
	p->committed = p->send.mark;
	p->send.len = p->send.rows = 0;
	settle_idle(p);
	call_ready(p);
}

static void lost(struct out_pg *p)
{
	ctd_pgconn_fail(p->pc, CTD_PG_FAIL_LOST, PQerrorMessage(p->conn));
}

/* Hands send's rows to COPY while libpq and the socket take them:
 * true when the step moved on, false to wait for the socket (or the
 * connection failed: then p->conn is NULL). */
static bool put_data(struct out_pg *p)
{
	int r;

	while (p->off < p->send.len) {
		size_t n = p->send.len - p->off;

		n = n < CHUNK ? n : CHUNK;
		r = PQputCopyData(p->conn, p->send.buf + p->off, (int)n);
		if (r < 0)
			return lost(p), false;
		p->off += r == 1 ? n : 0;
		if (ctd_pgconn_flush(p->pc) != 0 || r == 0)
			return false;
	}
	r = PQputCopyEnd(p->conn, NULL);
	if (r < 0)
		return lost(p), false;
	if (r == 0)
		return ctd_pgconn_flush(p->pc), false;
	p->step = P_COPY_END;
	return ctd_pgconn_flush(p->pc) >= 0;
}

/* Errors of the connection (class 08) or of the server going away
 * (57: admin shutdown, crash) are a lost connection, the rest the
 * statement's. */
static enum ctd_pg_fail failure(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (!state || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57", 2) == 0)
		return CTD_PG_FAIL_LOST;
	return CTD_PG_FAIL_QUERY;
}

static void merge_done(struct out_pg *p)
{
	p->step = P_IDLE;
	if (!p->committed_ok) {
		ctd_pgconn_fail(p->pc, CTD_PG_FAIL_QUERY,
				"the batch's COMMIT did not commit");
		return;
	}
	note_commit(p);
	start_batch(p);
}

/* The plain INSERT met a row stored already: the batch again, careful. */
static bool conflict(struct out_pg *p, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (p->step != P_MERGE || p->careful || !state ||
	    strcmp(state, "23505") != 0)
		return false;
	p->careful = true;
	p->step = P_CONFLICT;
	return true;
}

/* A prune pass committed (or, never seen, did not): the next in a
 * minute, or in a second while a backlog is pruned PRUNE_ROWS at a
 * time with batches in between. */
static void prune_done(struct out_pg *p)
{
	ctd_pgconn_deadline(p->pc, 0);
	p->step = P_IDLE;
	if (!p->prune_ok) {
		p->own.prune_errors++;
	} else {
		p->own.pruned += p->pruned;
		p->prune_logged = false;
		if (p->pruned >= PRUNE_ROWS)
			p->next_prune_us = mono_us() + PRUNE_AGAIN_US;
	}
	start_batch(p);
}

/* The server refused the prune (a role without DELETE, a lock
 * timeout): counted, logged once until one works, rolled back; the
 * batches go on over the same connection. */
static bool prune_refused(struct out_pg *p, const PGresult *res)
{
	const char *msg = PQresultErrorMessage(res);

	if (p->step != P_PRUNE || failure(res) != CTD_PG_FAIL_QUERY)
		return false;
	p->own.prune_errors++;
	if (!p->prune_logged)
		log_err("postgresql: folding the rollups or pruning rows past "
			"store-retention failed (tried again in a minute): %.*s",
			(int)strcspn(msg, "\n"), msg);
	p->prune_logged = true;
	p->step = P_PRUNE_FAILED;
	return true;
}

/* The end of a query's results: the next step. */
static void step_done(struct out_pg *p)
{
	switch (p->step) {
	case P_SETUP:
		ctd_pgconn_deadline(p->pc, 0);
		ctd_pgconn_working(p->pc);
		p->step = P_IDLE;
		p->open = true;
		start_batch(p);
		call_ready(p);
		break;
	case P_COPY_END:
		send_query(p, p->merge_sql[p->careful], P_MERGE);
		break;
	case P_MERGE:
		merge_done(p);
		break;
	case P_CONFLICT:
		send_query(p, "ROLLBACK", P_ROLLBACK);
		break;
	case P_ROLLBACK:
		ctd_pgconn_deadline(p->pc, 0);
		p->step = P_IDLE;
		start_batch(p);
		break;
	case P_PRUNE:
		prune_done(p);
		break;
	case P_PRUNE_FAILED:
		send_query(p, "ROLLBACK", P_ROLLBACK);
		break;
	default:
		ctd_pgconn_fail(p->pc, CTD_PG_FAIL_QUERY, "COPY did not start");
		break;
	}
}

/* One result of the step in flight; false when the connection failed. */
static bool take_result(struct out_pg *p, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COPY_IN && p->step == P_COPY_START)
		p->step = P_COPY_DATA;
	else if (st == PGRES_TUPLES_OK && p->step == P_MERGE)
		p->inserted = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	else if (st == PGRES_COMMAND_OK && p->step == P_MERGE)
		p->committed_ok = strcmp(PQcmdStatus(res), "COMMIT") == 0;
	else if (st == PGRES_TUPLES_OK && p->step == P_PRUNE)
		p->pruned = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	else if (st == PGRES_COMMAND_OK && p->step == P_PRUNE)
		p->prune_ok = strcmp(PQcmdStatus(res), "COMMIT") == 0;
	else if (st != PGRES_COMMAND_OK && p->step != P_PRUNE_FAILED &&
		 !conflict(p, res) && !prune_refused(p, res)) {
		ctd_pgconn_fail(p->pc, failure(res), PQresultErrorMessage(res));
		PQclear(res);
		return false;
	}
	PQclear(res);
	return true;
}

/* Moves the steps in flight as far as the input allows. */
static void advance(struct out_pg *p)
{
	while (p->conn && p->step != P_IDLE) {
		PGresult *res;

		if (p->step == P_COPY_DATA) {
			if (!put_data(p))
				return;
			continue;
		}
		if (PQisBusy(p->conn))
			return;
		res = PQgetResult(p->conn);
		if (!res)
			step_done(p);
		else if (!take_result(p, res))
			return;
	}
}

static void on_io(void *arg, PGconn *conn)
{
	(void)conn;
	advance(arg);
}

/* Connected: tables, the staging table, then what waits. */
static void on_up(void *arg, PGconn *conn)
{
	struct out_pg *p = arg;
	char *lit = PQescapeLiteral(conn, p->exporter, strlen(p->exporter));
	size_t n = lit ? sizeof(merge_fmt) + 3 * strlen(lit) + 32 : 0;

	p->conn = conn;
	free(p->lit);
	p->lit = lit ? strdup(lit) : NULL;
	for (int i = 0; i < 2; i++) {
		free(p->merge_sql[i]);
		p->merge_sql[i] = n ? malloc(n) : NULL;
		if (p->merge_sql[i])
			snprintf(p->merge_sql[i], n, merge_fmt, lit,
				 conflict_clause[i]);
	}
	PQfreemem(lit);
	if (!p->merge_sql[0] || !p->merge_sql[1] || !p->lit) {
		ctd_pgconn_fail(p->pc, CTD_PG_FAIL_QUERY, "out of memory");
		return;
	}
	ctd_pgconn_deadline(p->pc, STEP_TIMEOUT);
	send_query(p, setup_sql, P_SETUP);
}

/* The batch in flight stays, to be sent again on the next connection. */
static void on_down(void *arg)
{
	struct out_pg *p = arg;

	p->conn = NULL;
	p->open = false;
	p->step = P_IDLE;
	/* Its COMMIT may have gone through before the connection broke. */
	p->careful = p->send.rows > 0;
}

static const struct ctd_pgconn_ops conn_ops = {
	.up = on_up,
	.io = on_io,
	.down = on_down,
};

static void pg_flush(struct ctd_output *out)
{
	struct out_pg *p = to_pg(out);

	settle_idle(p);
	start_batch(p);
}

static uint64_t pg_settled(struct ctd_output *out)
{
	return to_pg(out)->committed;
}

/* Shutdown: the connection is closed (an open transaction rolls back;
 * one that committed is harmless, its rows ignored when the spool is
 * replayed) and both batches forgotten: delivery spools its copies. */
static void pg_abandon(struct ctd_output *out)
{
	struct out_pg *p = to_pg(out);

	ctd_pgconn_stop(p->pc);
	ev_timer_stop(p->loop, &p->prune_timer);
	p->conn = NULL;
	p->open = false;
	p->step = P_IDLE;
	p->stopped = true;
	p->fill.len = p->fill.rows = p->send.len = p->send.rows = 0;
	p->committed = p->taken;
}

static void pg_free(struct ctd_output *out)
{
	struct out_pg *p = to_pg(out);

	if (!p)
		return;
	ev_timer_stop(p->loop, &p->prune_timer);
	ctd_pgconn_free(p->pc);
	free(p->lit);
	free(p->fill.buf);
	free(p->send.buf);
	free(p->exporter);
	free(p->merge_sql[0]);
	free(p->merge_sql[1]);
	free(p);
}

static const struct ctd_output_ops pg_ops = {
	.submit = pg_submit,
	.flush = pg_flush,
	.settled = pg_settled,
	.abandon = pg_abandon,
	.free = pg_free,
};

/* libpq's own parser says whether conninfo can ever work; its message
 * names the bad part, never a password's value. */
static int check_conninfo(const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse(conninfo, &err);

	if (o) {
		PQconninfoFree(o);
		return 0;
	}
	log_err("postgresql: %.*s", err ? (int)strcspn(err, "\n") : 13,
		err ? err : "out of memory");
	PQfreemem(err);
	return err ? -EINVAL : -ENOMEM;
}

/* Without records there is no flush: the timer starts what is due. */
static void on_prune_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	start_batch(w->data);
}

int ctd_out_pg_new(struct ev_loop *loop, const struct ctd_out_pg_cfg *cfg,
		   struct ctd_output **ret)
{
	struct out_pg *p;
	int r = check_conninfo(cfg->conninfo);

	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->base.ops = &pg_ops;
	p->base.name = ctd_out_pg_desc.name;
	p->base.counters = &pg_counters;
	p->base.own = &p->own;
	p->loop = loop;
	p->retention = cfg->retention;
	p->rollup_retention = cfg->rollup_retention;
	ev_timer_init(&p->prune_timer, on_prune_timer, PRUNE_EVERY_US / 1e6,
		      PRUNE_EVERY_US / 1e6);
	p->prune_timer.data = p;
	p->exporter = strdup(cfg->exporter);
	if (!p->exporter || reserve(&p->fill) < 0 || reserve(&p->send) < 0 ||
	    !(p->pc = ctd_pgconn_new(loop, cfg->conninfo, &conn_ops, p,
				      &p->base.stats, &p->own.conn))) {
		pg_free(&p->base);
		return -ENOMEM;
	}
	ev_timer_start(loop, &p->prune_timer);
	*ret = &p->base;
	return 0;
}

/* The postgresql setting: a libpq conninfo that may hold a password,
 * so it is shown (ctd -t -v, a reload's line, errors) masked. */
struct pg_settings {
	char conninfo[CTD_SETTING_TEXT_MAX];   /* "" none */
};

static const struct ctd_setting pg_rows[] = {
	CTD_SETTING("postgresql", CTD_SET_CONNINFO,
		    offsetof(struct pg_settings, conninfo), 0, 0, true, false),
};

/* libpq's own parser: its message names the bad keyword or syntax,
 * never a password's value. A server down is no problem: the output
 * holds records until it is up. */
static void pg_check(const void *conf, struct ctd_check *c)
{
	const struct pg_settings *set = conf;
	char *err = NULL;
	PQconninfoOption *o;

	if (!*set->conninfo)
		return;
	o = PQconninfoParse(set->conninfo, &err);
	if (o)
		PQconninfoFree(o);
	else
		ctd_check_problem(c, "postgresql", "", err ? strtok(err, "\n") :
				  "out of memory");
	PQfreemem(err);
}

const struct ctd_setting_group ctd_out_pg_settings = {
	.name = "postgresql",
	.rows = pg_rows,
	.n_rows = 1,
	.size = sizeof(struct pg_settings),
	.off_key = "postgresql", .off_value = "none",
	.check = pg_check,
	.help =
"      --postgresql CONNINFO  also keep finished flows in a PostgreSQL\n"
"                           database (libpq conninfo; default none)\n",
};

static const struct pg_settings *settings_of(const struct ctd_config *cfg)
{
	return ctd_config_group_get(cfg, &ctd_out_pg_settings);
}

static bool pg_enabled(const struct ctd_config *cfg)
{
	return *settings_of(cfg)->conninfo;
}

static int pg_create(struct ev_loop *loop, const struct ctd_config *cfg,
		     const struct ctd_owner *owner, struct ctd_output **ret)
{
	char host[256], shown[CTD_CONFIG_PATH_MAX];
	const char *conninfo = settings_of(cfg)->conninfo;
	struct ctd_out_pg_cfg pc = { conninfo, host, 0, 0 };
	int r;

	(void)owner;    /* no files */
	ctd_out_store_retention(cfg, &pc.retention, &pc.rollup_retention);
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	ctd_conninfo_mask(conninfo, shown, sizeof(shown));
	r = ctd_out_pg_new(loop, &pc, ret);
	if (r == -ENOMEM)
		log_err("cannot store flows in postgresql %s: %s", shown,
			strerror(-r));
	if (r == 0)
		log_info("storing flows in postgresql %s as exporter %s", shown,
			 host);
	return r;
}

/* One row per ended flow; interim and event records are skipped. */
const struct ctd_output_desc ctd_out_pg_desc = {
	.name = "postgresql",
	.settings = &ctd_out_pg_settings,
	.counters = &pg_counters,
	.enabled = pg_enabled,
	.create = pg_create,
	.events = 1u << CTD_EV_DESTROY,
	.events_setting = CTD_OUTPUT_EVENTS_FIXED,
};
