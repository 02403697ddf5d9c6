/* report_pg: `ctd report` answered from the PostgreSQL database of the
 * postgresql output, every exporter's rows together.
 *
 * A report is a short command, so it uses libpq's blocking calls, each
 * statement read-only. The statements mirror report_sqlite.c's one for
 * one, so a flow gives the same answer from either store: top and
 * totals read the same rollup cells (the same stretches of the window,
 * report_query.c; the hour and day cells with the minute cells not yet
 * folded into them, rollup_pending, out_pg.c), flows and nat the same
 * rows in the same order (ties
 * broken by the flow's start and id). Addresses and rollup keys come
 * back as the bytes SQLite's blobs hold (inet_send's address part, a
 * bytea) and are printed by the same inet_ntop, and a bytea sorts as a
 * blob does, so equal sums are listed in the same order too. Values go
 * as parameters, never into the text. Errors name the database with its
 * password hidden. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctd/config/config.h"
#include "ctd/config/conninfo.h"
#include "ctd/control/report_pg.h"
#include "ctd/kernel/ctevent.h"

#define BYTEAOID 17              /* pg_type.h, stable since 1996 */
#define MAX_PARAMS 24
#define ADDR(col) "substr(inet_send(" col "), 5)"
#define PACKETS "coalesce(orig_packets, 0) + coalesce(reply_packets, 0)"
#define BYTES "coalesce(orig_bytes, 0) + coalesce(reply_bytes, 0)"

static const char *const order_col[CTD_ORDER__COUNT] = {
	"sum(bytes)", "sum(packets)", "sum(flows)",
};
static const char *const pair_order[CTD_ORDER__COUNT] = {
	"sum(" BYTES ")", "sum(" PACKETS ")", "count(*)",
};

#define FLOW_COLS "start_ms, end_ms, netns, proto, " ADDR("src") ", sport, " \
	ADDR("dst") ", dport, " ADDR("reply_src") ", reply_sport, " \
	ADDR("reply_dst") ", reply_dport, orig_packets, orig_bytes, " \
	"reply_packets, reply_bytes, end_reason"

/* nat: as report_sqlite.c's, $1 the address, $2 the port (-1 any). */
#define SNAT "reply_dst = $1::inet"
static const char nat_head[] =
	"SELECT start_ms, end_ms, proto,"
	" CASE WHEN " SNAT " THEN " ADDR("src") " ELSE " ADDR("reply_src") " END,"
	" CASE WHEN " SNAT " THEN sport ELSE reply_sport END,"
	" CASE WHEN " SNAT " THEN " ADDR("reply_dst") " ELSE " ADDR("dst") " END,"
	" CASE WHEN " SNAT " THEN reply_dport ELSE dport END,"
	" CASE WHEN " SNAT " THEN " ADDR("dst") " ELSE " ADDR("src") " END,"
	" CASE WHEN " SNAT " THEN dport ELSE sport END,"
	" " BYTES " FROM flows WHERE end_ms >= $3 AND end_ms < $4 AND"
	" start_ms < $5 AND ((" SNAT " AND src <> $1::inet AND"
	" ($2::int < 0 OR reply_dport = $2::int)) OR (dst = $1::inet AND"
	" reply_src <> $1::inet AND ($2::int < 0 OR dport = $2::int)))"
	" ORDER BY end_ms, kstart_ns, id";

struct pg {
	PGconn *conn;
	const char *target;
};

/* A statement's parameters, as text, numbered from $1. */
struct params {
	const char *v[MAX_PARAMS];
	char buf[MAX_PARAMS][INET6_ADDRSTRLEN + 8];
	int n;
};

bool ctd_report_pg_is_uri(const char *target)
{
	return strncmp(target, "postgresql://", 13) == 0 ||
	       strncmp(target, "postgres://", 11) == 0;
}

static void say(const struct pg *p, const char *msg, char *err, size_t errlen)
{
	char shown[CTD_CONFIG_PATH_MAX];

	ctd_conninfo_mask(p->target, shown, sizeof(shown));
	snprintf(err, errlen, "%s: %.*s", shown, (int)strcspn(msg, "\n"), msg);
}

/* A database without the rollup table is not (yet) ctd's. */
static int pg_open(const char *target, void **ret, char *err, size_t errlen)
{
	struct pg *p = calloc(1, sizeof(*p));
	PGresult *res;

	if (!p)
		return -ENOMEM;
	p->target = target;
	p->conn = PQconnectdb(target);
	if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
		say(p, p->conn ? PQerrorMessage(p->conn) : "out of memory", err,
		    errlen);
		PQfinish(p->conn);
		free(p);
		return -EIO;
	}
	PQclear(PQexec(p->conn, "SET default_transaction_read_only = on"));
	res = PQexec(p->conn, "SELECT 1 FROM flows, rollup, rollup_pending "
		     "LIMIT 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		say(p, PQresultErrorMessage(res), err, errlen);
		PQclear(res);
		PQfinish(p->conn);
		free(p);
		return -EIO;
	}
	PQclear(res);
	*ret = p;
	return 0;
}

/* The number ($n) of a new parameter with value v. */
static int arg_i(struct params *a, int64_t v)
{
	snprintf(a->buf[a->n], sizeof(a->buf[0]), "%" PRId64, v);
	a->v[a->n] = a->buf[a->n];
	return ++a->n;
}

static int arg_s(struct params *a, const char *s)
{
	a->v[a->n] = s;
	return ++a->n;
}

static int arg_addr(struct params *a, uint8_t family, const uint8_t *addr)
{
	inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, a->buf[a->n],
		  sizeof(a->buf[0]));
	a->v[a->n] = a->buf[a->n];
	return ++a->n;
}

/* " LIMIT $n", or nothing for all. */
static void limit(char *sql, size_t cap, struct params *a,
		  const struct ctd_report_query *q)
{
	size_t len = strlen(sql);

	if (q->limit)
		snprintf(sql + len, cap - len, " LIMIT $%d",
			 arg_i(a, (int64_t)q->limit));
}

/* A pending minute cell's bucket in the span of parameter $n. */
#define IN_SPAN "(bucket - mod(bucket, $%d * 1000))"

/* The pending minute cells (out_pg.c) of the hour and day stretches
 * whose parameters p names (span, a, b). */
static size_t pending_sql(const int (*p)[3], int kind, char *sql, size_t cap)
{
	size_t len = (size_t)snprintf(sql, cap, " UNION ALL SELECT key, flows, "
				      "packets, bytes FROM rollup_pending WHERE "
				      "kind = $%d AND (false", kind);

	for (int i = 0; i < CTD_RQ_STRETCHES && len < cap; i++)
		len += (size_t)snprintf(sql + len, cap - len, " OR ($%d > 60 AND "
					IN_SPAN " >= $%d AND " IN_SPAN " < $%d)",
					p[i][0], p[i][0], p[i][1], p[i][0],
					p[i][2]);
	return len < cap ? len : cap;
}

/* top but pairs: the rollup cells of the window's stretches, and the
 * pending minute cells of its hour and day stretches. */
static void top_sql(const struct ctd_report_query *q, struct params *a,
		    char *sql, size_t cap)
{
	struct ctd_rq_stretch s[CTD_RQ_STRETCHES];
	int p[CTD_RQ_STRETCHES][3];
	int kind = arg_i(a, q->by);
	size_t len;

	/* Every cell added, or pending (out_pg.c): no fold mark. */
	ctd_report_stretches(q, UINT64_MAX, s);
	len = (size_t)snprintf(sql, cap, "SELECT key, sum(flows)::bigint, "
			       "sum(packets)::bigint, sum(bytes)::bigint FROM ("
			       "SELECT key, flows, packets, bytes FROM rollup "
			       "WHERE kind = $%d AND (false", kind);
	for (int i = 0; i < CTD_RQ_STRETCHES && len < cap; i++) {
		p[i][0] = arg_i(a, (int64_t)(s[i].span_ms / 1000));
		p[i][1] = arg_i(a, (int64_t)s[i].a);
		p[i][2] = arg_i(a, (int64_t)s[i].b);
		len += (size_t)snprintf(sql + len, cap - len, " OR (span = $%d "
					"AND bucket >= $%d AND bucket < $%d)",
					p[i][0], p[i][1], p[i][2]);
	}
	len += (size_t)snprintf(sql + len, cap - len, ")");
	len += pending_sql((const int (*)[3])p, kind, sql + len, cap - len);
	snprintf(sql + len, cap - len, ")) AS x GROUP BY key ORDER BY %s DESC, "
		 "key", order_col[q->order]);
	limit(sql, cap, a, q);
}

static void pair_sql(const struct ctd_report_query *q, struct params *a,
		     char *sql, size_t cap)
{
	int from = arg_i(a, (int64_t)q->from_ms);

	snprintf(sql, cap, "SELECT " ADDR("src") ", " ADDR("dst") ", count(*), "
		 "sum(" PACKETS ")::bigint, sum(" BYTES ")::bigint FROM flows "
		 "WHERE end_ms >= $%d AND end_ms < $%d GROUP BY 1, 2 "
		 "ORDER BY %s DESC, 1, 2", from, arg_i(a, (int64_t)q->to_ms),
		 pair_order[q->order]);
	limit(sql, cap, a, q);
}

static void totals_sql(const struct ctd_report_query *q, struct params *a,
		       char *sql, size_t cap)
{
	uint64_t from, to;
	int every = arg_i(a, (int64_t)q->every_ms);
	int span = arg_i(a, (int64_t)(ctd_report_totals_span(q->every_ms) / 1000));
	int f;

	int t;

	ctd_report_totals_window(q, &from, &to);
	f = arg_i(a, (int64_t)from);
	t = arg_i(a, (int64_t)to);
	snprintf(sql, cap, "SELECT bucket - mod(bucket, $%d) AS t, "
		 "sum(flows)::bigint, sum(packets)::bigint, sum(bytes)::bigint "
		 "FROM (SELECT bucket, flows, packets, bytes FROM rollup WHERE "
		 "span = $%d AND kind = 4 AND bucket >= $%d AND bucket < $%d "
		 "UNION ALL SELECT bucket, flows, packets, bytes FROM "
		 "rollup_pending WHERE $%d > 60 AND kind = 4 AND " IN_SPAN
		 " >= $%d AND " IN_SPAN " < $%d) AS x GROUP BY t ORDER BY t",
		 every, span, f, t, span, span, f, span, t);
}

/* " AND family = $f AND col BETWEEN $lo AND $hi" for a given prefix. */
static size_t prefix(char *sql, size_t cap, struct params *a, const char *col,
		     const struct ctd_rq_prefix *p)
{
	int fam, lo;

	if (!p->family)
		return 0;
	fam = arg_i(a, p->family);
	lo = arg_addr(a, p->family, p->lo);
	return (size_t)snprintf(sql, cap, " AND family = $%d AND %s BETWEEN "
				"$%d::inet AND $%d::inet", fam, col, lo,
				arg_addr(a, p->family, p->hi));
}

static void flows_sql(const struct ctd_report_query *q, struct params *a,
		      char *sql, size_t cap)
{
	int from = arg_i(a, (int64_t)q->from_ms);
	size_t len = (size_t)snprintf(sql, cap, "SELECT " FLOW_COLS " FROM "
				      "flows WHERE end_ms >= $%d AND end_ms < $%d",
				      from, arg_i(a, (int64_t)q->to_ms));

	len += prefix(sql + len, cap - len, a, "src", &q->src);
	len += prefix(sql + len, cap - len, a, "dst", &q->dst);
	if (q->port >= 0) {
		int port = arg_i(a, q->port);

		len += (size_t)snprintf(sql + len, cap - len, " AND (sport = $%d "
					"OR dport = $%d)", port, port);
	}
	if (q->proto >= 0)
		len += (size_t)snprintf(sql + len, cap - len, " AND proto = $%d",
					arg_i(a, q->proto));
	if (q->netns)
		len += (size_t)snprintf(sql + len, cap - len, " AND netns = $%d",
					arg_s(a, q->netns));
	snprintf(sql + len, cap - len, " ORDER BY end_ms DESC, kstart_ns DESC, "
		 "id DESC");
	limit(sql, cap, a, q);
}

static void nat_sql(const struct ctd_report_query *q, struct params *a,
		    char *sql, size_t cap)
{
	arg_addr(a, q->nat.family, q->nat.lo);
	arg_i(a, q->nat_port);
	arg_i(a, (int64_t)q->from_ms);
	arg_i(a, (int64_t)(q->to_ms + CTD_RQ_NAT_LONGEST_MS));
	arg_i(a, (int64_t)q->to_ms);
	snprintf(sql, cap, "%s", nat_head);
	limit(sql, cap, a, q);
}

static void make_sql(const struct ctd_report_query *q, struct params *a,
		     char *sql, size_t cap)
{
	switch (q->cmd) {
	case CTD_RQ_TOP:
		if (q->by == CTD_BY_PAIR)
			pair_sql(q, a, sql, cap);
		else
			top_sql(q, a, sql, cap);
		break;
	case CTD_RQ_FLOWS:
		flows_sql(q, a, sql, cap);
		break;
	case CTD_RQ_NAT:
		nat_sql(q, a, sql, cap);
		break;
	default:
		totals_sql(q, a, sql, cap);
		break;
	}
}

/* A bytea column's bytes (the text form "\x..." decoded) in out. */
static size_t bytes_of(const PGresult *res, int row, int col, uint8_t *out,
		       size_t cap)
{
	size_t n = 0;
	unsigned char *b = PQunescapeBytea((const unsigned char *)
					   PQgetvalue(res, row, col), &n);

	if (!b)
		return 0;
	n = n < cap ? n : cap;
	memcpy(out, b, n);
	PQfreemem(b);
	return n;
}

/* A rollup key in its columns: address, proto+port, netns. */
static int key_values(const PGresult *res, int row, enum ctd_rq_by by,
		      char (*txt)[64], struct ctd_rval *v)
{
	uint8_t k[64];
	size_t n = bytes_of(res, row, 0, k, sizeof(k));

	v[0].s = txt[0];
	if (by == CTD_BY_PORT) {
		if (n != 3)
			return -EIO;
		ctd_report_proto_text(k[0], txt[0], 64);
		v[1].i = k[1] << 8 | k[2];
		return 2;
	}
	if (by == CTD_BY_NETNS)
		snprintf(txt[0], 64, "%.*s", (int)n, (const char *)k);
	else
		ctd_report_addr_text(k, n, txt[0], 64);
	return 1;
}

/* Columns by type: bytea an address, "proto" by name, the rest as the
 * server wrote them (NULL as "" and 0, as SQLite gives it). */
static void raw_values(const PGresult *res, int row,
		       const struct ctd_report_query *q, char (*txt)[64],
		       struct ctd_rval *v)
{
	size_t n;
	const struct ctd_rcol *cols = ctd_report_columns(q, &n);

	for (size_t i = 0; i < n; i++) {
		const char *s = PQgetvalue(res, row, (int)i);
		uint8_t a[16];

		v[i].s = txt[i];
		v[i].i = strtoll(s, NULL, 10);
		if (strcmp(cols[i].name, "proto") == 0)
			ctd_report_proto_text((int)v[i].i, txt[i], 64);
		else if (PQftype(res, (int)i) == BYTEAOID)
			ctd_report_addr_text(a, bytes_of(res, row, (int)i, a, sizeof(a)),
				  txt[i], 64);
		else
			snprintf(txt[i], 64, "%s", s);
	}
}

static int emit(const PGresult *res, int row, const struct ctd_report_query *q,
		const struct ctd_report_sink *sink)
{
	char txt[17][64];
	struct ctd_rval v[17];
	int k = 0;

	if (q->cmd == CTD_RQ_TOP && q->by == CTD_BY_PAIR) {
		raw_values(res, row, q, txt, v);
	} else if (q->cmd == CTD_RQ_TOP) {
		if ((k = key_values(res, row, q->by, txt, v)) < 0)
			return k;
		for (int i = 0; i < 3; i++)
			v[k + i].i = strtoll(PQgetvalue(res, row, i + 1), NULL, 10);
	} else {
		raw_values(res, row, q, txt, v);
	}
	sink->row(sink->arg, v);
	return 0;
}

static int pg_run(void *h, const struct ctd_report_query *q,
		  const struct ctd_report_sink *sink, char *err, size_t errlen)
{
	struct pg *p = h;
	struct params a = { .n = 0 };
	char sql[4096];
	PGresult *res;
	int r = 0;

	make_sql(q, &a, sql, sizeof(sql));
	res = PQexecParams(p->conn, sql, a.n, NULL, a.v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		say(p, PQresultErrorMessage(res), err, errlen);
		PQclear(res);
		return -EIO;
	}
	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		r = emit(res, i, q, sink);
	if (r < 0)
		snprintf(err, errlen, "a rollup key of an unknown shape");
	PQclear(res);
	return r;
}

static void pg_close(void *h)
{
	struct pg *p = h;

	PQfinish(p->conn);
	free(p);
}

const struct ctd_report_backend ctd_report_pg = {
	.name = "postgresql",
	.open = pg_open,
	.run = pg_run,
	.close = pg_close,
};
