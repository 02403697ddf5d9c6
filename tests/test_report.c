/* Tests for src/report.c: the Prometheus page has HELP and TYPE before
 * every family's samples, counters end in _total, build info and start
 * time are there, and each health check is a ctd_health_problem series
 * that is 1 exactly when `ctd -s` lists the problem (sysctls read from a
 * fake /proc/sys). promtool itself runs on a real scrape in
 * tests/kernel/test_ctl.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tmpdir.h"

#include "ctd/config.h"
#include "ctd/report.h"
#include "ctd/output.h"
#include "ctd/stats.h"

struct fixture {
	char dir[64];
	struct ctd_config cfg;
	struct ctd_stats st;
	struct ctd_out_stats json;
	struct ctd_report_src src;
};

static void put(struct fixture *f, const char *name, long v)
{
	char path[160];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "%ld\n", v);
	fclose(fp);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char sub[96];

	assert_non_null(f);
	tmpdir_make(f->dir, "report");
	snprintf(sub, sizeof(sub), "%s/net", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/net/netfilter", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	put(f, "net/netfilter/nf_conntrack_events", 1);
	put(f, "net/netfilter/nf_conntrack_acct", 0);
	put(f, "net/netfilter/nf_conntrack_timestamp", 1);
	put(f, "net/netfilter/nf_conntrack_count", 10);
	put(f, "net/netfilter/nf_conntrack_max", 1000);
	ctd_config_defaults(&f->cfg);
	f->st.events[CTD_EV_NEW] = 42;
	f->st.rcvbuf = 2 * f->cfg.rcvbuf;
	f->json.bytes = 1234;
	f->st.out_name[0] = "json";
	f->st.out[0] = &f->json;
	f->src = (struct ctd_report_src){
		.stats = &f->st, .cfg = &f->cfg, .proc_sys = f->dir,
		.now_ns = 1800000000ULL * 1000000000ULL + 5, .uptime_s = 100,
		.reliable = true,
	};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static char *answer(struct fixture *f, const char *request)
{
	char *buf = NULL;
	size_t len = 0, cursor = 0;
	FILE *out = open_memstream(&buf, &len);

	assert_non_null(out);
	assert_false(ctd_report_answer(&f->src, request, out, &cursor));
	fclose(out);
	return buf;
}

/* Every sample's family was announced with HELP then TYPE; counters end
 * in _total. Returns the number of families. */
static unsigned check_families(char *page)
{
	char family[128] = "", kind[16];
	unsigned families = 0;

	for (char *line = strtok(page, "\n"); line; line = strtok(NULL, "\n")) {
		size_t n = strcspn(line, "{ ");

		if (strncmp(line, "# HELP ", 7) == 0) {
			assert_int_equal(sscanf(line, "# HELP %127s", family), 1);
			assert_true(strlen(line) > 8 + strlen(family));
			families++;
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[128];

			assert_int_equal(sscanf(line, "# TYPE %127s %15s", name, kind), 2);
			assert_string_equal(name, family);
			if (strcmp(kind, "counter") == 0)
				assert_string_equal(family + strlen(family) - 6, "_total");
			else
				assert_string_equal(kind, "gauge");
		} else {
			assert_int_equal(n, strlen(family));
			assert_memory_equal(line, family, n);
		}
	}
	return families;
}

static void test_metrics_families(void **state)
{
	struct fixture *f = *state;
	char *page = answer(f, "metrics");

	assert_non_null(strstr(page, "\nctd_events_total{type=\"new\"} 42\n"));
	assert_non_null(strstr(page, "\nctd_output_written_bytes_total{output=\"json\"} 1234\n"));
	assert_non_null(strstr(page, "# TYPE ctd_netlink_rcvbuf_bytes gauge\n"));
	assert_non_null(strstr(page, "\nctd_build_info{version=\"" CTD_VERSION "\"} 1\n"));
	assert_non_null(strstr(page, "\nprocess_start_time_seconds 1799999900\n"));
	assert_true(check_families(page) > 60);
	free(page);
}

static void test_health_series(void **state)
{
	struct fixture *f = *state;
	char *page, *text;

	f->src.reliable = false;
	put(f, "net/netfilter/nf_conntrack_count", 900);
	page = answer(f, "metrics");
	text = answer(f, "stats");
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"nf_conntrack_acct\"} 1\n"));
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"table_full\"} 1\n"));
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"lossy_mode\"} 1\n"));
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"nf_conntrack_events\"} 0\n"));
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"rcvbuf\"} 0\n"));
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"kernel_pending\"} 0\n"));
	assert_non_null(strstr(text, "net.netfilter.nf_conntrack_acct is 0"));
	assert_non_null(strstr(text, "90% full"));
	assert_non_null(strstr(text, "lossy mode"));
	assert_null(strstr(text, "nf_conntrack_events is"));
	free(page);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metrics_families, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_series, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
