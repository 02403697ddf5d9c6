/* store_top: `ctd report top` over the flow store.
 *
 * Top talkers come from the rollup tables alone (one row per address and
 * minute), so the question costs what the window has addresses, not what
 * it has flows. The database is opened read-only: WAL lets it read while
 * ctd commits, and a report can never change what ctd stored. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ctd/config/config.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/pg_top.h"
#include "ctd/outputs/store_top.h"

static const char *const top_sql[2] = {
	"SELECT key, SUM(flows), SUM(bytes) FROM rollup WHERE span = 60 AND"
	" kind = 0 AND bucket >= ?1 GROUP BY key ORDER BY 3 DESC, 2 DESC LIMIT ?2",
	"SELECT key, SUM(flows), SUM(bytes) FROM rollup WHERE span = 60 AND"
	" kind = 1 AND bucket >= ?1 GROUP BY key ORDER BY 3 DESC, 2 DESC LIMIT ?2",
};

static void addr_text(sqlite3_stmt *st, char *buf, size_t cap)
{
	int n = sqlite3_column_bytes(st, 0);
	const void *a = sqlite3_column_blob(st, 0);

	if (!a || !inet_ntop(n == 16 ? AF_INET6 : AF_INET, a, buf,
			     (socklen_t)cap))
		snprintf(buf, cap, "?");
}

static void print_row(const struct ctd_store_top_query *q, sqlite3_stmt *st,
		      unsigned i, FILE *f)
{
	char addr[INET6_ADDRSTRLEN];

	addr_text(st, addr, sizeof(addr));
	if (q->json)
		fprintf(f, "%s{\"addr\":\"%s\",\"flows\":%lld,\"bytes\":%lld}",
			i ? "," : "", addr, sqlite3_column_int64(st, 1),
			sqlite3_column_int64(st, 2));
	else
		fprintf(f, "%-40s %12lld %16lld\n", addr,
			sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
}

static int print_rows(const struct ctd_store_top_query *q, sqlite3_stmt *st,
		      FILE *f)
{
	unsigned i = 0;
	int r;

	if (q->json)
		fprintf(f, "{\"by\":\"%s\",\"since_ms\":%llu,\"top\":[",
			q->by_dst ? "dst" : "src", (unsigned long long)q->since_ms);
	else
		fprintf(f, "%-40s %12s %16s\n", q->by_dst ? "destination" :
			"source", "flows", "bytes");
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		print_row(q, st, i++, f);
	if (q->json)
		fprintf(f, "]}\n");
	return r == SQLITE_DONE ? 0 : -EIO;
}

int ctd_store_top(const struct ctd_store_top_query *q, uint64_t now_ms,
		  FILE *f, char *err, size_t errlen)
{
	uint64_t from = now_ms > q->since_ms ? now_ms - q->since_ms : 0;
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	int r = -EIO;

	if (ctd_pg_top_is_uri(q->path))
		return ctd_pg_top(q, now_ms, f, err, errlen);
	if (sqlite3_open_v2(q->path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, top_sql[q->by_dst], -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(from - from % 60000));
		sqlite3_bind_int64(st, 2, q->limit);
		r = print_rows(q, st, f);
	}
	if (r < 0)
		snprintf(err, errlen, "%s: %s", q->path,
			 db ? sqlite3_errmsg(db) : "cannot open");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

/* "1h", "30m", "2d", "90s" or plain seconds, into milliseconds. */
static int parse_since(const char *s, uint64_t *ret_ms)
{
	static const char units[] = "smhd";
	static const uint64_t secs[] = { 1, 60, 3600, 86400 };
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	const char *u = *end ? strchr(units, *end) : units;

	if (end == s || !u || !*u || (*end && end[1]) || v > 100000000ULL)
		return -EINVAL;
	*ret_ms = v * secs[u - units] * 1000;
	return 0;
}

static int usage_error(const char *what)
{
	fprintf(stderr, "ctd report: %s\nUsage: ctd report top [--by src|dst] "
		"[--since 1h] [--limit 10] [--store PATH] [--json]\n", what);
	return 2;
}

static int parse_option(struct ctd_store_top_query *q, int c)
{
	char *end;

	switch (c) {
	case 'b':
		if (strcmp(optarg, "src") && strcmp(optarg, "dst"))
			return -EINVAL;
		q->by_dst = strcmp(optarg, "dst") == 0;
		return 0;
	case 's':
		return parse_since(optarg, &q->since_ms);
	case 'n':
		q->limit = (unsigned)strtoul(optarg, &end, 10);
		return *end || !q->limit || q->limit > 100000 ? -EINVAL : 0;
	case 'p': q->path = optarg; return 0;
	case 'j': q->json = true; return 0;
	default: return -EINVAL;
	}
}

/* Without --store: the store the installed configuration names, so a
 * moved store needs no option. */
static int default_store(const char **ret_path)
{
	static struct ctd_config cfg;
	char err[CTD_CONFIG_ERR_MAX];

	ctd_config_defaults(&cfg);
	if (ctd_config_load(&cfg, CTD_CONFIG_FILE, false, err, sizeof(err)) < 0) {
		fprintf(stderr, "ctd report: %s\n", err);
		return -EINVAL;
	}
	if (!*cfg.store) {
		fprintf(stderr, "ctd report: %s says store none; name one with "
			"--store PATH\n", CTD_CONFIG_FILE);
		return -ENOENT;
	}
	*ret_path = cfg.store;
	return 0;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int ctd_store_report_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "by", required_argument, NULL, 'b' },
		{ "since", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'n' },
		{ "store", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctd_store_top_query q = { NULL, false, 3600000, 10, false };
	char err[CTD_CONFIG_ERR_MAX];
	int c;

	if (argc < 2 || strcmp(argv[1], "top") != 0)
		return usage_error("what to report: top");
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (parse_option(&q, c) < 0)
			return usage_error("bad option or value");
	if (optind < argc)
		return usage_error("unexpected argument");
	if (!q.path && default_store(&q.path) < 0)
		return 1;
	if (ctd_store_top(&q, wall_ms(), stdout, err, sizeof(err)) < 0) {
		fprintf(stderr, "ctd report: %s\n", err);
		return 1;
	}
	return 0;
}
