/* pg_top: top talkers from the PostgreSQL rollups.
 *
 * The question store_top.c asks SQLite, asked of the central database:
 * rollup rows of the window summed by address over every exporter, so
 * one report covers the fleet. A report is a short command, so it uses
 * libpq's blocking calls and a read-only transaction; the output is
 * store_top's, line for line and key for key, so scripts read both. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/config/config.h"
#include "ctd/config/conninfo.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/pg_top.h"
#include "ctd/outputs/store_top.h"

static const char *const top_sql[2] = {
	"SELECT host(addr), sum(flows), sum(bytes) FROM rollup_src "
	"WHERE minute >= $1 GROUP BY addr ORDER BY 3 DESC, 2 DESC LIMIT $2",
	"SELECT host(addr), sum(flows), sum(bytes) FROM rollup_dst "
	"WHERE minute >= $1 GROUP BY addr ORDER BY 3 DESC, 2 DESC LIMIT $2",
};

bool ctd_pg_top_is_uri(const char *store)
{
	return strncmp(store, "postgresql://", 13) == 0 ||
	       strncmp(store, "postgres://", 11) == 0;
}

static void print_rows(const struct ctd_store_top_query *q,
		       const PGresult *res, FILE *f)
{
	if (q->json)
		fprintf(f, "{\"by\":\"%s\",\"since_ms\":%llu,\"top\":[",
			q->by_dst ? "dst" : "src", (unsigned long long)q->since_ms);
	else
		fprintf(f, "%-40s %12s %16s\n", q->by_dst ? "destination" :
			"source", "flows", "bytes");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *a = PQgetvalue(res, i, 0);
		long long n = atoll(PQgetvalue(res, i, 1));
		long long b = atoll(PQgetvalue(res, i, 2));

		if (q->json)
			fprintf(f, "%s{\"addr\":\"%s\",\"flows\":%lld,"
				"\"bytes\":%lld}", i ? "," : "", a, n, b);
		else
			fprintf(f, "%-40s %12lld %16lld\n", a, n, b);
	}
	if (q->json)
		fprintf(f, "]}\n");
}

static PGresult *query(PGconn *conn, const struct ctd_store_top_query *q,
		       uint64_t now_ms)
{
	uint64_t from = now_ms > q->since_ms ? now_ms - q->since_ms : 0;
	char minute[24], limit[16];
	const char *params[2] = { minute, limit };

	snprintf(minute, sizeof(minute), "%llu",
		 (unsigned long long)(from / CTD_STORE_MINUTE_MS));
	snprintf(limit, sizeof(limit), "%u", q->limit);
	PQclear(PQexec(conn, "SET default_transaction_read_only = on"));
	return PQexecParams(conn, top_sql[q->by_dst], 2, NULL, params, NULL,
			    NULL, 0);
}

int ctd_pg_top(const struct ctd_store_top_query *q, uint64_t now_ms, FILE *f,
	       char *err, size_t errlen)
{
	char shown[CTD_CONFIG_PATH_MAX];
	PGconn *conn = PQconnectdb(q->path);
	PGresult *res = NULL;
	int r = -EIO;

	if (conn && PQstatus(conn) == CONNECTION_OK)
		res = query(conn, q, now_ms);
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
		print_rows(q, res, f);
		r = 0;
	} else {
		ctd_conninfo_mask(q->path, shown, sizeof(shown));
		snprintf(err, errlen, "%s: %.*s", shown,
			 conn ? (int)strcspn(PQerrorMessage(conn), "\n") : 13,
			 conn ? PQerrorMessage(conn) : "out of memory");
	}
	PQclear(res);
	PQfinish(conn);
	return r;
}
