/* report_sqlite: the flow store's answers to `ctd report`.
 *
 * The database is opened read-only: WAL lets a reader take a snapshot
 * while ctd commits, and a reader never holds the write lock, so a
 * report cannot delay a batch (a long read only keeps the WAL from
 * being checkpointed past its snapshot until it ends).
 *
 * top and totals read the rollups alone, so they cost what the window
 * has hosts and buckets, not flows: the window is cut into at most six
 * stretches (report_query.c), each read from the coarsest rollup that
 * covers it exactly; sources and destinations have hour and day cells
 * only for the hours the store folded, so past its mark (rollup_state)
 * they are read in minutes, in the same snapshot. Pairs have no
 * rollups (out_store.c): top by pair sums the window's rows. totals reads the namespace rollups: one
 * cell per bucket and namespace, and every flow in exactly one. flows and nat read raw rows through the end_ms, (src, end_ms)
 * or (dst, end_ms) index; a filter only narrows what one of them gives. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctd/control/report_sqlite.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/store_rollup.h"

#define MINUTE_MS 60000ULL

/* One stretch of rollup buckets; ?N numbers follow the order. */
#define STRETCH(n) "SELECT key, flows, packets, bytes FROM rollup WHERE " \
	"span = :s" #n " AND kind = :kind AND bucket >= :a" #n \
	" AND bucket < :b" #n

static const char top_sql[] =
	"SELECT key, SUM(flows), SUM(packets), SUM(bytes) FROM ("
	STRETCH(0) " UNION ALL " STRETCH(1) " UNION ALL " STRETCH(2)
	" UNION ALL " STRETCH(3) " UNION ALL " STRETCH(4) " UNION ALL "
	STRETCH(5) ") GROUP BY key "
	"ORDER BY CASE :order WHEN 0 THEN SUM(bytes) WHEN 1 THEN SUM(packets) "
	"ELSE SUM(flows) END DESC, key LIMIT :limit";

static const char pair_sql[] =
	"SELECT src, dst, COUNT(*), SUM(orig_packets + reply_packets), "
	"SUM(orig_bytes + reply_bytes) FROM flows INDEXED BY flows_end "
	"WHERE end_ms >= :from AND end_ms < :to GROUP BY src, dst ORDER BY "
	"CASE :order WHEN 0 THEN SUM(orig_bytes + reply_bytes) WHEN 1 THEN "
	"SUM(orig_packets + reply_packets) ELSE COUNT(*) END DESC, src, dst "
	"LIMIT :limit";

static const char totals_sql[] =
	"SELECT bucket - bucket % :every AS t, SUM(flows), SUM(packets), "
	"SUM(bytes) FROM rollup WHERE span = :span AND kind = 4 AND "
	"bucket >= :from AND bucket < :to GROUP BY t ORDER BY t";

#define FLOW_COLS "start_ms, end_ms, netns, proto, src, sport, dst, dport, " \
	"reply_src, reply_sport, reply_dst, reply_dport, orig_packets, " \
	"orig_bytes, reply_packets, reply_bytes, end_reason"

/* flows: the head by the index the filters allow, then each filter.
 * By address, the statement is run once per minute of the window,
 * newest first: each run is one seek into (minute, address). */
static const char *const flows_head[3] = {
	"SELECT " FLOW_COLS " FROM flows INDEXED BY flows_end WHERE ",
	"SELECT " FLOW_COLS " FROM flows INDEXED BY flows_src_minute WHERE "
	"end_ms / 60000 = :minute AND family = :sfam AND "
	"src BETWEEN :slo AND :shi AND ",
	"SELECT " FLOW_COLS " FROM flows INDEXED BY flows_dst_minute WHERE "
	"end_ms / 60000 = :minute AND family = :dfam AND "
	"dst BETWEEN :dlo AND :dhi AND ",
};
static const char flows_window[] = "end_ms >= :from AND end_ms < :to";
static const char flows_dst[] =
	" AND family = :dfam AND dst BETWEEN :dlo AND :dhi";
static const char flows_port[] = " AND (sport = :port OR dport = :port)";
static const char flows_proto[] = " AND proto = :proto";
static const char flows_netns[] = " AND netns = :netns";
/* Flows that ended in the same millisecond (a flush ends many) in the
 * order of their start: the same order from every backend. */
static const char flows_tail[] =
	" ORDER BY end_ms DESC, kstart_ns DESC, id DESC LIMIT :limit";

/* nat: SNAT shows the address as the reply's destination (the inside
 * host is the original source), DNAT as the original destination (the
 * inside host answers as the reply's source). */
static const char nat_sql[] =
	"SELECT start_ms, end_ms, proto,"
	" CASE WHEN reply_dst = :addr THEN src ELSE reply_src END,"
	" CASE WHEN reply_dst = :addr THEN sport ELSE reply_sport END,"
	" CASE WHEN reply_dst = :addr THEN reply_dst ELSE dst END,"
	" CASE WHEN reply_dst = :addr THEN reply_dport ELSE dport END,"
	" CASE WHEN reply_dst = :addr THEN dst ELSE src END,"
	" CASE WHEN reply_dst = :addr THEN dport ELSE sport END,"
	" orig_bytes + reply_bytes FROM flows INDEXED BY flows_end"
	" WHERE end_ms >= :from AND end_ms < :last AND start_ms < :to AND ("
	"(reply_dst = :addr AND src != :addr AND"
	" (:port < 0 OR reply_dport = :port)) OR"
	" (dst = :addr AND reply_src != :addr AND (:port < 0 OR dport = :port)))"
	" ORDER BY end_ms, kstart_ns, id LIMIT :limit";

static int param(sqlite3_stmt *st, const char *name)
{
	return sqlite3_bind_parameter_index(st, name);
}

static void bind_i(sqlite3_stmt *st, const char *name, int64_t v)
{
	int i = param(st, name);

	if (i)
		sqlite3_bind_int64(st, i, v);
}

static size_t addr_len(uint8_t family)
{
	return family == AF_INET6 ? 16 : 4;
}

static void bind_blob(sqlite3_stmt *st, const char *name, const uint8_t *a,
		      uint8_t family)
{
	int i = param(st, name);

	if (i)
		sqlite3_bind_blob(st, i, a, (int)addr_len(family), SQLITE_STATIC);
}

static void addr_text(sqlite3_stmt *st, int col, char *buf, size_t cap)
{
	ctd_report_addr_text(sqlite3_column_blob(st, col),
			     (size_t)sqlite3_column_bytes(st, col), buf, cap);
}

/* A top row's key in its columns: address, pair, proto+port, netns. */
static int key_values(sqlite3_stmt *st, enum ctd_rq_by by, char (*txt)[64],
		      struct ctd_rval *v)
{
	const uint8_t *k = sqlite3_column_blob(st, 0);
	int n = sqlite3_column_bytes(st, 0);

	if (by == CTD_BY_PAIR) {
		addr_text(st, 0, txt[0], 64);
		addr_text(st, 1, txt[1], 64);
		v[0].s = txt[0];
		v[1].s = txt[1];
		return 2;
	}
	if (by == CTD_BY_PORT) {
		if (!k || n != 3)
			return -EIO;
		ctd_report_proto_text(k[0], txt[0], 64);
		v[0].s = txt[0];
		v[1].i = k[1] << 8 | k[2];
		return 2;
	}
	if (by == CTD_BY_NETNS)
		snprintf(txt[0], 64, "%.*s", n, k ? (const char *)k : "");
	else
		addr_text(st, 0, txt[0], 64);
	v[0].s = txt[0];
	return 1;
}

static int emit_top(sqlite3_stmt *st, const struct ctd_report_query *q,
		    const struct ctd_report_sink *sink)
{
	char txt[2][64];
	struct ctd_rval v[5];
	int n = key_values(st, q->by, txt, v);

	if (n < 0)
		return n;
	for (int i = 0; i < 3; i++)
		v[n + i].i = sqlite3_column_int64(st, i + 1 + (q->by == CTD_BY_PAIR));
	sink->row(sink->arg, v);
	return 0;
}

/* The hours before it have their sources' and destinations' hour and
 * day cells (out_store.c); none in an older ctd's store: UINT64_MAX. */
static uint64_t fold_mark(sqlite3 *db)
{
	sqlite3_stmt *st;
	uint64_t mark = UINT64_MAX;

	if (sqlite3_prepare_v2(db, "SELECT folded FROM rollup_state", -1, &st,
			       NULL) != SQLITE_OK)
		return mark;
	if (sqlite3_step(st) == SQLITE_ROW)
		mark = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return mark;
}

static void bind_top(sqlite3 *db, sqlite3_stmt *st,
		     const struct ctd_report_query *q)
{
	struct ctd_rq_stretch s[CTD_RQ_STRETCHES];
	bool folded = ctd_rollup_folded[q->by];
	char name[8];

	ctd_report_stretches(q, folded ? fold_mark(db) : UINT64_MAX, s);
	for (int i = 0; i < CTD_RQ_STRETCHES; i++) {
		snprintf(name, sizeof(name), ":s%d", i);
		bind_i(st, name, (int64_t)(s[i].span_ms / 1000));
		snprintf(name, sizeof(name), ":a%d", i);
		bind_i(st, name, (int64_t)s[i].a);
		snprintf(name, sizeof(name), ":b%d", i);
		bind_i(st, name, (int64_t)s[i].b);
	}
	bind_i(st, ":kind", q->by);
}

static void bind_totals(sqlite3_stmt *st, const struct ctd_report_query *q)
{
	uint64_t from, to;

	ctd_report_totals_window(q, &from, &to);
	bind_i(st, ":every", (int64_t)q->every_ms);
	bind_i(st, ":span", (int64_t)(ctd_report_totals_span(q->every_ms) / 1000));
	bind_i(st, ":from", (int64_t)from);
	bind_i(st, ":to", (int64_t)to);
}

static int emit_totals(sqlite3_stmt *st, const struct ctd_report_sink *sink)
{
	struct ctd_rval v[4];

	for (int i = 0; i < 4; i++)
		v[i].i = sqlite3_column_int64(st, i);
	sink->row(sink->arg, v);
	return 0;
}

/* The flows query for q's filters, in buf. */
static void flows_text(const struct ctd_report_query *q, char *buf, size_t cap)
{
	int head = q->src.family ? 1 : q->dst.family ? 2 : 0;

	snprintf(buf, cap, "%s%s%s%s%s%s%s", flows_head[head], flows_window,
		 q->dst.family && head != 2 ? flows_dst : "",
		 q->port >= 0 ? flows_port : "", q->proto >= 0 ? flows_proto : "",
		 q->netns ? flows_netns : "", flows_tail);
}

static void bind_flows(sqlite3_stmt *st, const struct ctd_report_query *q)
{
	int i = param(st, ":netns");

	bind_i(st, ":from", (int64_t)q->from_ms);
	bind_i(st, ":to", (int64_t)q->to_ms);
	bind_i(st, ":sfam", q->src.family);
	bind_blob(st, ":slo", q->src.lo, q->src.family);
	bind_blob(st, ":shi", q->src.hi, q->src.family);
	bind_i(st, ":dfam", q->dst.family);
	bind_blob(st, ":dlo", q->dst.lo, q->dst.family);
	bind_blob(st, ":dhi", q->dst.hi, q->dst.family);
	bind_i(st, ":port", q->port);
	bind_i(st, ":proto", q->proto);
	if (i)
		sqlite3_bind_text(st, i, q->netns, -1, SQLITE_STATIC);
}

/* Columns of a flows or nat row, by type: addresses at addr[], protocol
 * at proto_col, times and numbers as they are. */
static int emit_raw(sqlite3_stmt *st, const struct ctd_report_query *q,
		    const struct ctd_report_sink *sink)
{
	char txt[17][64];
	struct ctd_rval v[17];
	size_t n;
	const struct ctd_rcol *cols = ctd_report_columns(q, &n);

	for (size_t i = 0; i < n; i++) {
		int type = sqlite3_column_type(st, (int)i);

		v[i].s = txt[i];
		v[i].i = sqlite3_column_int64(st, (int)i);
		if (strcmp(cols[i].name, "proto") == 0)
			ctd_report_proto_text((int)v[i].i, txt[i], sizeof(txt[i]));
		else if (type == SQLITE_BLOB)
			addr_text(st, (int)i, txt[i], sizeof(txt[i]));
		else
			snprintf(txt[i], sizeof(txt[i]), "%s", type == SQLITE_NULL ?
				 "" : (const char *)sqlite3_column_text(st, (int)i));
	}
	sink->row(sink->arg, v);
	return 0;
}

static void bind_nat(sqlite3_stmt *st, const struct ctd_report_query *q)
{
	bind_blob(st, ":addr", q->nat.lo, q->nat.family);
	bind_i(st, ":port", q->nat_port);
	bind_i(st, ":from", (int64_t)q->from_ms);
	bind_i(st, ":to", (int64_t)q->to_ms);
	bind_i(st, ":last", (int64_t)(q->to_ms + CTD_RQ_NAT_LONGEST_MS));
}

static int prepare(sqlite3 *db, const struct ctd_report_query *q,
		   sqlite3_stmt **ret)
{
	char text[2048];
	const char *sql = q->cmd == CTD_RQ_TOP && q->by == CTD_BY_PAIR ? pair_sql :
			  q->cmd == CTD_RQ_TOP ? top_sql :
			  q->cmd == CTD_RQ_TOTALS ? totals_sql :
			  q->cmd == CTD_RQ_NAT ? nat_sql : text;

	if (q->cmd == CTD_RQ_FLOWS)
		flows_text(q, text, sizeof(text));
	if (sqlite3_prepare_v2(db, sql, -1, ret, NULL) != SQLITE_OK)
		return -EIO;
	bind_i(*ret, ":limit", q->limit ? (int64_t)q->limit : -1);
	bind_i(*ret, ":order", q->order);
	if (q->cmd == CTD_RQ_TOP && q->by == CTD_BY_PAIR)
		bind_flows(*ret, q);
	else if (q->cmd == CTD_RQ_TOP)
		bind_top(db, *ret, q);
	else if (q->cmd == CTD_RQ_TOTALS)
		bind_totals(*ret, q);
	else if (q->cmd == CTD_RQ_NAT)
		bind_nat(*ret, q);
	else
		bind_flows(*ret, q);
	return 0;
}

static int emit(sqlite3_stmt *st, const struct ctd_report_query *q,
		const struct ctd_report_sink *sink)
{
	switch (q->cmd) {
	case CTD_RQ_TOP:
		return emit_top(st, q, sink);
	case CTD_RQ_TOTALS:
		return emit_totals(st, sink);
	default:
		return emit_raw(st, q, sink);
	}
}

/* Every row of st; *n counts them. */
static int step_all(sqlite3_stmt *st, const struct ctd_report_query *q,
		    const struct ctd_report_sink *sink, uint64_t *n)
{
	int r = 0, s;

	while (r == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
		r = emit(st, q, sink);
		++*n;
	}
	return r < 0 ? r : s == SQLITE_DONE ? 0 : -EIO;
}

/* A flows query by address: minute by minute, newest first, until the
 * window or the limit ends. */
static int by_minute(sqlite3_stmt *st, const struct ctd_report_query *q,
		     const struct ctd_report_sink *sink)
{
	uint64_t n = 0, m = (q->to_ms - 1) / MINUTE_MS;
	int r = 0;

	for (; r == 0 && m >= q->from_ms / MINUTE_MS &&
	     (!q->limit || n < q->limit); m--) {
		sqlite3_reset(st);
		bind_i(st, ":minute", (int64_t)m);
		bind_i(st, ":limit", q->limit ? (int64_t)(q->limit - n) : -1);
		r = step_all(st, q, sink, &n);
		if (m == 0)
			break;
	}
	return r;
}

static int sqlite_run(void *h, const struct ctd_report_query *q,
		      const struct ctd_report_sink *sink, char *err,
		      size_t errlen)
{
	sqlite3 *db = h;
	sqlite3_stmt *st = NULL;
	uint64_t n = 0;
	/* One snapshot for the fold mark and the cells: a fold committed
	 * between them would have an hour read twice. */
	int r = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ?
		prepare(db, q, &st) : -EIO;

	if (r == 0 && q->cmd == CTD_RQ_FLOWS && (q->src.family || q->dst.family))
		r = by_minute(st, q, sink);
	else if (r == 0)
		r = step_all(st, q, sink, &n);
	if (r < 0)
		snprintf(err, errlen, "%s", r == -EIO ? sqlite3_errmsg(db) :
			 "a rollup key of an unknown shape");
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return r;
}

/* Read-only and without creating anything: a wrong path is an error,
 * not a new empty store. A checkpointing ctd holds its lock briefly. */
static int sqlite_open(const char *path, void **ret, char *err, size_t errlen)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, 2000) != SQLITE_OK ||
	    sqlite3_exec(db, "SELECT 1 FROM rollup LIMIT 1", NULL, NULL,
			 NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
			 db ? sqlite3_errmsg(db) : "cannot open");
		sqlite3_close(db);
		return -EIO;
	}
	*ret = db;
	return 0;
}

static void sqlite_close(void *h)
{
	sqlite3_close(h);
}

const struct ctd_report_backend ctd_report_sqlite = {
	.name = "sqlite",
	.open = sqlite_open,
	.run = sqlite_run,
	.close = sqlite_close,
};
