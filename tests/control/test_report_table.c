/* Tests for src/control/report_table.c and report_query.c's columns:
 * human byte units at each step, a table's padding and local times
 * (TZ set here), JSON escaping and the query head, CSV quoting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "ctd/control/report_table.h"

#define NOW_MS 1796486400000ull   /* 2026-12-05T16:00:00Z */

static void test_human_bytes(void **state)
{
	static const struct { uint64_t v; const char *s; } cases[] = {
		{ 0, "0 B" }, { 1023, "1023 B" }, { 1024, "1.0 KiB" },
		{ 1536, "1.5 KiB" }, { 10189, "10 KiB" }, { 1288490189, "1.2 GiB" },
		{ 5ull << 40, "5.0 TiB" }, { UINT64_MAX, "16 EiB" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ctd_report_human_bytes(cases[i].v, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].s);
	}
}

/* Prints one netns-top row and one totals row in fmt. */
static char *print(enum ctd_rfmt fmt, enum ctd_rq_cmd cmd, const char *name)
{
	struct ctd_report_query q = { .cmd = cmd, .by = CTD_BY_NETNS,
				      .from_ms = NOW_MS - 3600000,
				      .to_ms = NOW_MS, .every_ms = 300000 };
	struct ctd_rval v[4] = { { name, 0 }, { NULL, 3 }, { NULL, 70 },
				 { NULL, 1536 } };
	struct ctd_report_printer p;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (cmd == CTD_RQ_TOTALS)
		v[0] = (struct ctd_rval){ NULL, (int64_t)NOW_MS };
	ctd_report_print_begin(&p, f, fmt, &q);
	ctd_report_print_row(&p, v);
	ctd_report_print_end(&p);
	fclose(f);
	return text;
}

static void check(enum ctd_rfmt fmt, enum ctd_rq_cmd cmd, const char *name,
		  const char *want)
{
	char *got = print(fmt, cmd, name);

	assert_string_equal(got, want);
	free(got);
}

static void test_formats(void **state)
{
	(void)state;
	check(CTD_RFMT_TABLE, CTD_RQ_TOP, "blue",
	      "netns                flows     packets      bytes\n"
	      "blue                     3          70    1.5 KiB\n");
	check(CTD_RFMT_JSON, CTD_RQ_TOP, "a\"b",
	      "{\"report\":\"top\",\"by\":\"netns\",\"order\":\"bytes\",\"from\":"
	      "\"2026-12-05T15:00:00.000Z\",\"to\":\"2026-12-05T16:00:00.000Z\","
	      "\"rows\":[{\"netns\":\"a\\\"b\",\"flows\":3,\"packets\":70,"
	      "\"bytes\":1536}]}\n");
	check(CTD_RFMT_CSV, CTD_RQ_TOP, "x,\"y\"",
	      "netns,flows,packets,bytes\n\"x,\"\"y\"\"\",3,70,1536\n");
	check(CTD_RFMT_CSV, CTD_RQ_TOTALS, NULL,
	      "time,flows,packets,bytes\n2026-12-05T16:00:00.000Z,3,70,1536\n");
	check(CTD_RFMT_JSON, CTD_RQ_TOTALS, NULL,
	      "{\"report\":\"totals\",\"every_s\":300,\"from\":"
	      "\"2026-12-05T15:00:00.000Z\",\"to\":\"2026-12-05T16:00:00.000Z\","
	      "\"rows\":[{\"time\":\"2026-12-05T16:00:00.000Z\",\"flows\":3,"
	      "\"packets\":70,\"bytes\":1536}]}\n");
}

/* Tables show local time. */
static void test_local_time(void **state)
{
	(void)state;
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	check(CTD_RFMT_TABLE, CTD_RQ_TOTALS, NULL,
	      "time                    flows     packets      bytes\n"
	      "2026-12-05 17:00:00         3          70    1.5 KiB\n");
	unsetenv("TZ");
	tzset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_human_bytes),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_local_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
