/* Tests for src/control/report_sqlite.c (through report_cli.c's parse
 * and run, and report_table.c's printing): a known store written by
 * out_store itself, six flows over two days (IPv4 and IPv6, a second
 * namespace, an SNAT and a DNAT flow), and each report's exact output as
 * a table, JSON and CSV. Windows that need minute, hour and day rollups
 * at once must give what the rows add up to; nat finds the inside host
 * of either NAT; flows filters by prefix, port, protocol and namespace.
 * Time is injected (NOW_MS) and tables use TZ=UTC. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "ctd/control/report_cli.h"
#include "ctd/control/report_sqlite.h"
#include "ctd/flows/record.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "tmpdir.h"

#define NOW_MS 1796486400000ull   /* 2026-12-05T16:00:00Z */
#define MIN 60000ull

static char dir[TMPDIR_MAX], path[TMPDIR_MAX + 16];

struct flow {
	const char *src, *dst, *rsrc, *rdst;
	int sport, dport, rsport, rdport, proto;
	uint64_t end_ago_min, len_min;
	uint64_t pk[2], by[2];
	const char *netns;
};

static const struct flow flows[] = {
	{ "10.0.0.1", "10.9.0.1", NULL, NULL, 40000, 443, 0, 0, IPPROTO_TCP,
	  10, 1, { 10, 20 }, { 1000, 5000 }, "" },
	{ "10.0.0.1", "10.9.0.2", NULL, NULL, 40001, 53, 0, 0, IPPROTO_UDP,
	  120, 1, { 1, 1 }, { 100, 200 }, "" },
	{ "10.0.0.2", "10.9.0.1", NULL, NULL, 40002, 443, 0, 0, IPPROTO_TCP,
	  1200, 1, { 5, 5 }, { 3000, 3000 }, "" },
	{ "fd00::2", "fd00::9", NULL, NULL, 40003, 80, 0, 0, IPPROTO_TCP,
	  30, 1, { 3, 3 }, { 700, 300 }, "blue" },
	/* SNAT: 10.0.0.3 leaves as 203.0.113.7:61000 */
	{ "10.0.0.3", "192.0.2.9", "192.0.2.9", "203.0.113.7", 5555, 80, 80,
	  61000, IPPROTO_TCP, 5, 1, { 2, 2 }, { 400, 600 }, "" },
	/* DNAT: 203.0.113.7:8080 is 10.0.0.50:80 inside */
	{ "198.51.100.20", "203.0.113.7", "10.0.0.50", "198.51.100.20", 7000,
	  8080, 80, 7000, IPPROTO_TCP, 1, 2, { 1, 1 }, { 50, 50 }, "" },
};

static void addr(const char *s, uint8_t *a, uint8_t *family)
{
	*family = strchr(s, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(*family, s, a), 1);
}

static struct ctd_record make(unsigned i)
{
	const struct flow *f = &flows[i];
	struct ctd_record r = { .proto = (uint8_t)f->proto, .id = 100 + i,
				.end_reason = CTD_END_DESTROY };
	struct ctd_tuple *o = &r.tuple[0], *re = &r.tuple[1];

	addr(f->src, o->src, &r.family);
	addr(f->dst, o->dst, &r.family);
	addr(f->rsrc ? f->rsrc : f->dst, re->src, &r.family);
	addr(f->rdst ? f->rdst : f->src, re->dst, &r.family);
	o->sport = (uint16_t)f->sport;
	o->dport = (uint16_t)f->dport;
	re->sport = (uint16_t)(f->rsrc ? f->rsport : f->dport);
	re->dport = (uint16_t)(f->rdst ? f->rdport : f->sport);
	for (int d = 0; d < 2; d++)
		r.cnt[d] = (struct ctd_counters){ f->pk[d], f->by[d] };
	r.end_ns = (NOW_MS - f->end_ago_min * MIN) * 1000000;
	r.start_ns = r.end_ns - f->len_min * MIN * 1000000;
	r.nsid = *f->netns ? 7 : CTD_NSID_SELF;
	snprintf(r.netns, sizeof(r.netns), "%s", f->netns);
	return r;
}

static int setup(void **state)
{
	struct ctd_out_store_cfg cfg = { path, 3650u * 86400, 3650u * 86400,
					 1ULL << 30, false };
	struct ctd_output *out;

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	tmpdir_make(dir, "report");
	snprintf(path, sizeof(path), "%s/flows.db", dir);
	assert_int_equal(ctd_out_store_new(&cfg, NULL, &out), 0);
	for (unsigned i = 0; i < sizeof(flows) / sizeof(flows[0]); i++) {
		struct ctd_record r = make(i);

		assert_int_equal(out->ops->submit(out, &r), CTD_OUT_DELIVERED);
	}
	out->ops->flush(out);
	assert_int_equal(ctd_output_counter(out, "store_rows"), 6);
	out->ops->free(out);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tmpdir_remove(dir);
	return 0;
}

/* `ctd report ARGS --store path` at NOW_MS, as text. */
static char *report(const char *args)
{
	char buf[512], *argv[32], *text = NULL, err[256];
	struct ctd_report_args a;
	size_t len = 0;
	int argc = 0;
	FILE *mem;

	snprintf(buf, sizeof(buf), "report %s", args);
	for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	assert_int_equal(ctd_report_parse(argc, argv, NOW_MS, &a, err,
					  sizeof(err)), 0);
	mem = open_memstream(&text, &len);
	assert_int_equal(ctd_report_run(&ctd_report_sqlite, path, &a, mem, err,
					sizeof(err)), 0);
	fclose(mem);
	return text;
}

static void expect(const char *args, const char *want)
{
	char *got = report(args);

	if (strcmp(got, want) != 0)
		fail_msg("ctd report %s:\n%s\nwanted:\n%s", args, got, want);
	free(got);
}

/* A day of hour rollups; ties go by key (10.0.0.3 before fd00::2). */
static void expect_top_src(void)
{
	expect("top --since 1d --json",
	       "{\"report\":\"top\",\"by\":\"src\",\"order\":\"bytes\","
	       "\"from\":\"2026-12-04T16:00:00.000Z\",\"to\":"
	       "\"2026-12-05T16:00:00.000Z\",\"rows\":["
	       "{\"addr\":\"10.0.0.1\",\"flows\":2,\"packets\":32,\"bytes\":6300},"
	       "{\"addr\":\"10.0.0.2\",\"flows\":1,\"packets\":10,\"bytes\":6000},"
	       "{\"addr\":\"10.0.0.3\",\"flows\":1,\"packets\":4,\"bytes\":1000},"
	       "{\"addr\":\"fd00::2\",\"flows\":1,\"packets\":6,\"bytes\":1000},"
	       "{\"addr\":\"198.51.100.20\",\"flows\":1,\"packets\":2,"
	       "\"bytes\":100}]}\n");
}

static void test_top_src_json(void **state)
{
	(void)state;
	expect_top_src();
}

/* Minutes, hours, minutes: F (15:59) is after --to. */
static void expect_top_windows(void)
{
	expect("top --from 2026-12-05T13:30Z --to 2026-12-05T15:57Z --csv",
	       "addr,flows,packets,bytes\n10.0.0.1,2,32,6300\n"
	       "10.0.0.3,1,4,1000\nfd00::2,1,6,1000\n");
	/* A day or more: whole hours, so F (15:59) is in. */
	expect("top --from 2026-12-04T15:30Z --to 2026-12-05T15:57Z --csv",
	       "addr,flows,packets,bytes\n10.0.0.1,2,32,6300\n"
	       "10.0.0.2,1,10,6000\n10.0.0.3,1,4,1000\nfd00::2,1,6,1000\n"
	       "198.51.100.20,1,2,100\n");
	expect("top --from 2026-12-05T15:51Z --order flows --csv",
	       "addr,flows,packets,bytes\n10.0.0.3,1,4,1000\n"
	       "198.51.100.20,1,2,100\n");
	/* Days between: the same sums as the rows. */
	expect("top --since 3d --by dst --csv --order packets",
	       "addr,flows,packets,bytes\n10.9.0.1,2,40,12000\n"
	       "fd00::9,1,6,1000\n192.0.2.9,1,4,1000\n10.9.0.2,1,2,300\n"
	       "203.0.113.7,1,2,100\n");
}

static void test_top_window_stretches(void **state)
{
	(void)state;
	expect_top_windows();
}

/* The store as it is before its last two hours are folded (out_store.c):
 * their sources and destinations in minute cells alone, the fold mark at
 * 14:00. The same answers, read past the mark in minutes. */
static void test_top_before_fold(void **state)
{
	sqlite3 *db;
	char sql[640];

	(void)state;
	snprintf(sql, sizeof(sql), "UPDATE rollup_state SET folded = %llu; "
		 "DELETE FROM rollup WHERE kind IN (0, 1) AND ((span = 3600 AND "
		 "bucket >= %llu) OR span = 86400); INSERT INTO rollup SELECT "
		 "86400, kind, bucket - bucket %% 86400000, key, SUM(flows), "
		 "SUM(packets), SUM(bytes) FROM rollup WHERE kind IN (0, 1) AND "
		 "span = 3600 GROUP BY 1, 2, 3, 4",
		 NOW_MS - 120 * MIN, NOW_MS - 120 * MIN);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_top_src();
	expect_top_windows();
}

static void test_top_table(void **state)
{
	(void)state;
	expect("top --since 3d --by dst --limit 2",
	       "addr                                        flows     packets"
	       "      bytes\n"
	       "10.9.0.1                                        2          40"
	       "     12 KiB\n"
	       "192.0.2.9                                       1           4"
	       "     1000 B\n");
}

static void test_top_port_pair_netns(void **state)
{
	(void)state;
	expect("top --by port --since 1d --csv",
	       "proto,port,flows,packets,bytes\ntcp,443,2,40,12000\n"
	       "tcp,80,2,10,2000\nudp,53,1,2,300\ntcp,8080,1,2,100\n");
	expect("top --by pair --since 1d --limit 2 --csv",
	       "src,dst,flows,packets,bytes\n10.0.0.1,10.9.0.1,1,30,6000\n"
	       "10.0.0.2,10.9.0.1,1,10,6000\n");
	expect("top --by netns --since 1d --csv",
	       "netns,flows,packets,bytes\n,5,48,13400\nblue,1,6,1000\n");
}

static void test_flows_filters(void **state)
{
	(void)state;
	expect("flows --src 10.0.0.0/24 --proto tcp --since 1d --csv",
	       "start,end,netns,proto,src,sport,dst,dport,reply_src,reply_sport,"
	       "reply_dst,reply_dport,orig_packets,orig_bytes,reply_packets,"
	       "reply_bytes,end_reason\n"
	       "2026-12-05T15:54:00.000Z,2026-12-05T15:55:00.000Z,,tcp,10.0.0.3,"
	       "5555,192.0.2.9,80,192.0.2.9,80,203.0.113.7,61000,2,400,2,600,"
	       "destroy\n"
	       "2026-12-05T15:49:00.000Z,2026-12-05T15:50:00.000Z,,tcp,10.0.0.1,"
	       "40000,10.9.0.1,443,10.9.0.1,443,10.0.0.1,40000,10,1000,20,5000,"
	       "destroy\n"
	       "2026-12-04T19:59:00.000Z,2026-12-04T20:00:00.000Z,,tcp,10.0.0.2,"
	       "40002,10.9.0.1,443,10.9.0.1,443,10.0.0.2,40002,5,3000,5,3000,"
	       "destroy\n");
	expect("flows --dst fd00::/8 --netns blue --port 80 --json",
	       "{\"report\":\"flows\",\"from\":\"2026-12-05T15:00:00.000Z\","
	       "\"to\":\"2026-12-05T16:00:00.000Z\",\"rows\":[{\"start\":"
	       "\"2026-12-05T15:29:00.000Z\",\"end\":\"2026-12-05T15:30:00.000Z\","
	       "\"netns\":\"blue\",\"proto\":\"tcp\",\"src\":\"fd00::2\","
	       "\"sport\":40003,\"dst\":\"fd00::9\",\"dport\":80,\"reply_src\":"
	       "\"fd00::9\",\"reply_sport\":80,\"reply_dst\":\"fd00::2\","
	       "\"reply_dport\":40003,\"orig_packets\":3,\"orig_bytes\":700,"
	       "\"reply_packets\":3,\"reply_bytes\":300,\"end_reason\":"
	       "\"destroy\"}]}\n");
	/* 10.0.0.10 is not in 10.0.0.1/32; UDP port 53 only once. */
	expect("flows --src 10.0.0.10 --since 1d --csv --limit 1",
	       "start,end,netns,proto,src,sport,dst,dport,reply_src,reply_sport,"
	       "reply_dst,reply_dport,orig_packets,orig_bytes,reply_packets,"
	       "reply_bytes,end_reason\n");
}

static void test_nat(void **state)
{
	(void)state;
	expect("nat 203.0.113.7:61000 --at 2026-12-05T15:55Z --csv",
	       "start,end,proto,inside,inside_port,nat,nat_port,peer,peer_port,"
	       "bytes\n2026-12-05T15:54:00.000Z,2026-12-05T15:55:00.000Z,tcp,"
	       "10.0.0.3,5555,203.0.113.7,61000,192.0.2.9,80,1000\n");
	expect("nat 203.0.113.7 --since 1h --csv",
	       "start,end,proto,inside,inside_port,nat,nat_port,peer,peer_port,"
	       "bytes\n2026-12-05T15:54:00.000Z,2026-12-05T15:55:00.000Z,tcp,"
	       "10.0.0.3,5555,203.0.113.7,61000,192.0.2.9,80,1000\n"
	       "2026-12-05T15:57:00.000Z,2026-12-05T15:59:00.000Z,tcp,"
	       "10.0.0.50,80,203.0.113.7,8080,198.51.100.20,7000,100\n");
	expect("nat 203.0.113.7:8080 --at 2026-12-05T15:58Z",
	       "start               end                 proto inside          "
	       "inside_port nat             nat_port peer            peer_port"
	       "      bytes\n2026-12-05 15:57:00 2026-12-05 15:59:00 tcp   "
	       "10.0.0.50          80 203.0.113.7      8080 198.51.100.20    7000"
	       "      100 B\n");
}

static void test_totals(void **state)
{
	(void)state;
	expect("totals --since 1d --every 1h --csv",
	       "time,flows,packets,bytes\n2026-12-04T20:00:00.000Z,1,10,6000\n"
	       "2026-12-05T14:00:00.000Z,1,2,300\n"
	       "2026-12-05T15:00:00.000Z,4,42,8100\n");
	expect("totals --since 2d --every 1d --csv",
	       "time,flows,packets,bytes\n2026-12-04T00:00:00.000Z,1,10,6000\n"
	       "2026-12-05T00:00:00.000Z,5,44,8400\n");
	expect("totals --since 1h --every 5m --csv",
	       "time,flows,packets,bytes\n2026-12-05T15:30:00.000Z,1,6,1000\n"
	       "2026-12-05T15:50:00.000Z,1,30,6000\n"
	       "2026-12-05T15:55:00.000Z,2,6,1100\n");
}

/* A missing store is an error, never a new empty database. */
static void test_missing_store(void **state)
{
	char err[256];
	void *h;

	(void)state;
	assert_int_equal(ctd_report_sqlite.open("/nonexistent/flows.db", &h, err,
						sizeof(err)), -EIO);
	assert_non_null(strstr(err, "/nonexistent/flows.db"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_top_src_json),
		cmocka_unit_test(test_top_window_stretches),
		cmocka_unit_test(test_top_table),
		cmocka_unit_test(test_top_port_pair_netns),
		cmocka_unit_test(test_flows_filters),
		cmocka_unit_test(test_nat),
		cmocka_unit_test(test_totals),
		cmocka_unit_test(test_top_before_fold),
		cmocka_unit_test(test_missing_store),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
