/* report_pg: top talkers from the PostgreSQL flows table.
 *
 * A report is a short command, so it uses libpq's blocking calls in a
 * read-only transaction. The server sums the window's rows (end_ms in
 * [from, to), the index the output keeps) grouped by the key, over every
 * exporter; both directions' packets and bytes count, as in the local
 * store's rollups. Errors name the database with its password hidden. */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/config/config.h"
#include "ctd/config/conninfo.h"
#include "ctd/control/report_pg.h"
#include "ctd/kernel/ctevent.h"

#define SUMS "count(*), sum(coalesce(orig_packets, 0) + " \
	"coalesce(reply_packets, 0)), sum(coalesce(orig_bytes, 0) + " \
	"coalesce(reply_bytes, 0))"

/* The key columns per --by, as report_query's columns name them. */
static const char *const keys[CTD_BY__COUNT] = {
	[CTD_BY_SRC] = "host(src)",
	[CTD_BY_DST] = "host(dst)",
	[CTD_BY_PORT] = "proto, dport",
	[CTD_BY_PAIR] = "host(src), host(dst)",
	[CTD_BY_NETNS] = "netns",
};
static const unsigned nkeys[CTD_BY__COUNT] = { 1, 1, 2, 2, 1 };

struct pg {
	PGconn *conn;
	const char *target;
};

bool ctd_report_pg_is_uri(const char *target)
{
	return strncmp(target, "postgresql://", 13) == 0 ||
	       strncmp(target, "postgres://", 11) == 0;
}

static void say(const struct pg *p, char *err, size_t errlen)
{
	char shown[CTD_CONFIG_PATH_MAX];
	const char *msg = p->conn ? PQerrorMessage(p->conn) : "out of memory";

	ctd_conninfo_mask(p->target, shown, sizeof(shown));
	snprintf(err, errlen, "%s: %.*s", shown, (int)strcspn(msg, "\n"), msg);
}

static int pg_open(const char *target, void **ret, char *err, size_t errlen)
{
	struct pg *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->target = target;
	p->conn = PQconnectdb(target);
	if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
		say(p, err, errlen);
		PQfinish(p->conn);
		free(p);
		return -EIO;
	}
	PQclear(PQexec(p->conn, "SET default_transaction_read_only = on"));
	*ret = p;
	return 0;
}

static void top_sql(const struct ctd_report_query *q, char *sql, size_t len)
{
	snprintf(sql, len, "SELECT %s, " SUMS " AS s FROM flows "
		 "WHERE end_ms >= $1 AND end_ms < $2 GROUP BY %s "
		 "ORDER BY %s DESC LIMIT %s", keys[q->by], keys[q->by],
		 q->order == CTD_ORDER_FLOWS ? "count(*)" :
		 q->order == CTD_ORDER_PACKETS ?
		 "sum(coalesce(orig_packets, 0) + coalesce(reply_packets, 0))" :
		 "sum(coalesce(orig_bytes, 0) + coalesce(reply_bytes, 0))",
		 q->limit ? "$3" : "ALL");
}

/* One result row as the sink's values: the keys (text; the port a
 * count), then flows, packets, bytes. */
static void emit(const PGresult *res, int row, const struct ctd_report_query *q,
		 const struct ctd_report_sink *sink)
{
	struct ctd_rval v[5];
	unsigned k = nkeys[q->by];
	const char *name;

	for (unsigned i = 0; i < k; i++) {
		v[i].s = PQgetvalue(res, row, (int)i);
		v[i].i = strtoll(v[i].s, NULL, 10);
	}
	/* The protocol by name where it has one, as the local store's. */
	if (q->by == CTD_BY_PORT &&
	    (name = ctd_proto_name((uint8_t)v[0].i)) != NULL)
		v[0].s = name;
	for (unsigned i = 0; i < 3; i++) {
		v[k + i].s = NULL;
		v[k + i].i = strtoll(PQgetvalue(res, row, (int)(k + i)), NULL, 10);
	}
	sink->row(sink->arg, v);
}

static int pg_run(void *h, const struct ctd_report_query *q,
		  const struct ctd_report_sink *sink, char *err, size_t errlen)
{
	struct pg *p = h;
	char sql[512], from[24], to[24], limit[24];
	const char *params[3] = { from, to, limit };
	PGresult *res;

	if (q->cmd != CTD_RQ_TOP) {
		snprintf(err, errlen, "%s answers top only; %s needs the local "
			 "store", "a PostgreSQL database", ctd_rq_cmd_name[q->cmd]);
		return -ENOTSUP;
	}
	top_sql(q, sql, sizeof(sql));
	snprintf(from, sizeof(from), "%" PRIu64, q->from_ms);
	snprintf(to, sizeof(to), "%" PRIu64, q->to_ms);
	snprintf(limit, sizeof(limit), "%" PRIu64, q->limit);
	res = PQexecParams(p->conn, sql, q->limit ? 3 : 2, NULL, params, NULL,
			   NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		say(p, err, errlen);
		PQclear(res);
		return -EIO;
	}
	for (int i = 0; i < PQntuples(res); i++)
		emit(res, i, q, sink);
	PQclear(res);
	return 0;
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
