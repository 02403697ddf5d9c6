/* Tests for src/control/report_cli.c's parsing: each subcommand's
 * defaults (window, limit), --since against --from/--to, prefixes into
 * address ranges, nat's ADDR[:PORT] forms and --at window, --store and
 * --db, and the refusals: options of another subcommand, bad values,
 * unknown subcommands, a window that ends before it starts. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/control/report_cli.h"

#define NOW_MS 1796486400000ull   /* 2026-12-05T16:00:00Z */

static int parse(const char *args, struct ctd_report_args *a, char *err)
{
	static char buf[512];
	char *argv[32];
	int argc = 0;

	snprintf(buf, sizeof(buf), "report %s", args);
	for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	return ctd_report_parse(argc, argv, NOW_MS, a, err, 256);
}

static void ok(const char *args, struct ctd_report_args *a)
{
	char err[256] = "";

	if (parse(args, a, err) != 0)
		fail_msg("%s: %s", args, err);
}

static void test_defaults(void **state)
{
	struct ctd_report_args a;

	(void)state;
	ok("top", &a);
	assert_int_equal(a.q.cmd, CTD_RQ_TOP);
	assert_int_equal(a.q.by, CTD_BY_SRC);
	assert_int_equal(a.q.limit, 10);
	assert_int_equal(a.q.to_ms, NOW_MS);
	assert_int_equal(a.q.from_ms, NOW_MS - 3600000);
	assert_int_equal(a.fmt, CTD_RFMT_TABLE);
	assert_null(a.store);
	ok("totals", &a);
	assert_int_equal(a.q.from_ms, NOW_MS - 86400000);
	assert_int_equal(a.q.every_ms, 3600000);
	ok("flows", &a);
	assert_int_equal(a.q.limit, 1000);
	assert_int_equal(a.q.port, -1);
	assert_int_equal(a.q.proto, -1);
	assert_null(a.q.netns);
	assert_int_equal(a.q.src.family, 0);
}

static void test_options(void **state)
{
	struct ctd_report_args a;

	(void)state;
	ok("top --by pair --order packets --limit 0 --json --db /x.db", &a);
	assert_int_equal(a.q.by, CTD_BY_PAIR);
	assert_int_equal(a.q.order, CTD_ORDER_PACKETS);
	assert_int_equal(a.q.limit, 0);
	assert_int_equal(a.fmt, CTD_RFMT_JSON);
	assert_string_equal(a.store, "/x.db");
	ok("totals --every 5m --from 2026-12-05T08:00Z --to 2026-12-05T10:00Z "
	   "--csv --store /y.db", &a);
	assert_int_equal(a.q.every_ms, 300000);
	assert_int_equal(a.q.from_ms, NOW_MS - 8 * 3600000);
	assert_int_equal(a.q.to_ms, NOW_MS - 6 * 3600000);
	assert_int_equal(a.fmt, CTD_RFMT_CSV);
	assert_string_equal(a.store, "/y.db");
	ok("flows --proto udp --port 53 --netns self", &a);
	assert_int_equal(a.q.proto, IPPROTO_UDP);
	assert_int_equal(a.q.port, 53);
	assert_string_equal(a.q.netns, "");
	ok("flows --proto 47 --from -2h", &a);
	assert_int_equal(a.q.proto, 47);
	assert_int_equal(a.q.from_ms, NOW_MS - 7200000);
}

static void test_prefixes(void **state)
{
	struct ctd_report_args a;
	uint8_t lo[16], hi[16];

	(void)state;
	ok("flows --src 10.1.2.3/20 --dst 2001:db8::1", &a);
	assert_int_equal(a.q.src.family, AF_INET);
	inet_pton(AF_INET, "10.1.0.0", lo);
	inet_pton(AF_INET, "10.1.15.255", hi);
	assert_memory_equal(a.q.src.lo, lo, 4);
	assert_memory_equal(a.q.src.hi, hi, 4);
	assert_int_equal(a.q.dst.family, AF_INET6);
	inet_pton(AF_INET6, "2001:db8::1", lo);
	assert_memory_equal(a.q.dst.lo, lo, 16);
	assert_memory_equal(a.q.dst.hi, lo, 16);
	ok("flows --src fd00::/7", &a);
	inet_pton(AF_INET6, "fc00::", lo);
	inet_pton(AF_INET6, "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", hi);
	assert_memory_equal(a.q.src.lo, lo, 16);
	assert_memory_equal(a.q.src.hi, hi, 16);
}

static void test_nat_forms(void **state)
{
	struct ctd_report_args a;
	uint8_t want[16];

	(void)state;
	ok("nat 203.0.113.7:61000 --at 2026-12-05T15:00Z", &a);
	inet_pton(AF_INET, "203.0.113.7", want);
	assert_int_equal(a.q.nat.family, AF_INET);
	assert_memory_equal(a.q.nat.lo, want, 4);
	assert_int_equal(a.q.nat_port, 61000);
	assert_int_equal(a.q.from_ms, NOW_MS - 3600000 - 60000);
	assert_int_equal(a.q.to_ms, NOW_MS - 3600000 + 60000);
	ok("nat 2001:db8::7", &a);
	assert_int_equal(a.q.nat.family, AF_INET6);
	assert_int_equal(a.q.nat_port, -1);
	ok("nat [2001:db8::7]:443 --since 1d", &a);
	inet_pton(AF_INET6, "2001:db8::7", want);
	assert_memory_equal(a.q.nat.lo, want, 16);
	assert_int_equal(a.q.nat_port, 443);
	assert_int_equal(a.q.from_ms, NOW_MS - 86400000);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		"", "bogus", "top --src 10.0.0.1", "flows --by src", "top --at now",
		"totals --limit 3", "top --by host", "top --order size",
		"top --since 1h --from -2h", "top --from -1h --to -2h",
		"flows --src 10.0.0.0/33", "flows --src host", "flows --port 70000",
		"flows --proto nope", "totals --every 30s", "totals --every 90s",
		"nat", "nat 1.2.3.4 5.6.7.8", "nat 1.2.3.4:x", "nat 10.0.0.0/8",
		"top extra", "top --limit", "top --json --nope",
	};
	struct ctd_report_args a;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse(bad[i], &a, err) != -EINVAL || !err[0])
			fail_msg("accepted: ctd report %s", bad[i]);
	}
	parse("flows --by src", &a, err);
	assert_string_equal(err, "--by is not an option of flows");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_nat_forms),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
