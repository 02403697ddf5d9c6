/* Tests for src/report.c: the Prometheus page has HELP and TYPE before
 * every family's samples, counters end in _total, build info and start
 * time are there, and each health check is a ctd_health_problem series
 * that is 1 exactly when `ctd -s` lists the problem (sysctls read from a
 * fake /proc/sys). promtool itself runs on a real scrape in
 * tests/integration/test_ctl.py. */
#include <errno.h>
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

#include "ctd/outputs/outputs.h"
#include "ctd/base/stats.h"
#include "ctd/config/config.h"
#include "ctd/control/report.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/kernel/pressure.h"
#include "ctd/outputs/output.h"
#include "ctd/sync/netnstab.h"

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
	ctd_config_init(&f->cfg, ctd_output_settings);
	f->st.events[CTD_EV_NEW] = 42;
	f->st.latency[0] = 3;                 /* <= 1 ms */
	f->st.latency[2] = 2;                 /* <= 5 ms */
	f->st.latency[CTD_LAT__COUNT - 1] = 1; /* > 1 s */
	f->st.latency_sum_us = 2500000;
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
			else if (strcmp(kind, "histogram") != 0)
				assert_string_equal(kind, "gauge");
		} else if (strcmp(kind, "histogram") == 0) {
			assert_memory_equal(line, family, strlen(family));
			assert_true(strncmp(line + strlen(family), "_bucket{le=", 11) == 0 ||
				    strncmp(line + strlen(family), "_sum ", 5) == 0 ||
				    strncmp(line + strlen(family), "_count ", 7) == 0);
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
	/* Cumulative buckets, +Inf, sum in seconds, count. */
	assert_non_null(strstr(page, "\nctd_destroy_latency_seconds_bucket{le=\"0.001\"} 3\n"
			       "ctd_destroy_latency_seconds_bucket{le=\"0.002\"} 3\n"
			       "ctd_destroy_latency_seconds_bucket{le=\"0.005\"} 5\n"));
	assert_non_null(strstr(page, "\nctd_destroy_latency_seconds_bucket{le=\"1\"} 5\n"
			       "ctd_destroy_latency_seconds_bucket{le=\"+Inf\"} 6\n"
			       "ctd_destroy_latency_seconds_sum 2.500000\n"
			       "ctd_destroy_latency_seconds_count 6\n"));
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

/* Firewall first: failed open, the health line says since when, why
 * and how much was lost; the table's size is not blamed. */
static void test_health_failed_open(void **state)
{
	struct fixture *f = *state;
	char *text, *page;

	put(f, "net/netfilter/nf_conntrack_count", 900);
	f->st.kernel_failed_open = 1;
	f->st.kernel_open_since_us = 1800000000ULL * 1000000;
	f->st.kernel_table_peak_pct = 86;
	f->st.kernel_lost = 4321;
	f->st.kernel_cause = CTD_PRESSURE_SLOW;
	text = answer(f, "stats");
	page = answer(f, "metrics");
	assert_non_null(strstr(text, "failed open since 1800000000 (unix time): "
			       "the conntrack table reached 86% full because ctd "
			       "reads slower than flows end: give it more CPU"));
	assert_non_null(strstr(text, "4321 were lost so far (kernel_lost)"));
	assert_null(strstr(text, "raise net.netfilter.nf_conntrack_max"));
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"kernel_pressure\"} 1\n"));
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"table_full\"} 0\n"));
	assert_non_null(strstr(page, "\nctd_kernel_lost_total 4321\n"));
	free(text);
	free(page);
}

/* kernel-pressure hold: the risk is named while ctd is behind. */
static void test_health_hold(void **state)
{
	struct fixture *f = *state;
	char *text;

	f->cfg.kernel_pressure = 1;
	f->st.kernel_cause = CTD_PRESSURE_STALLED;
	text = answer(f, "stats");
	assert_non_null(strstr(text, "kernel-pressure hold: the conntrack table "
			       "is past 85% full and ctd read nothing"));
	free(text);
}

/* A full table ctd does not hold up: the listener that does is named. */
static void test_health_names_stuck_listener(void **state)
{
	struct fixture *f = *state;
	char path[160], *text;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/netlink", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n"
	      "000000002a1b3c4d 12  4242       00000004 212992   0        0     2        840      31337   \n"
	      "000000002a1b3c4f 12  100        00000004 0        0        0     2        0        31339   \n", fp);
	fclose(fp);
	f->src.proc_netlink = path;
	f->src.nl_portid = 100;
	put(f, "net/netfilter/nf_conntrack_count", 950);
	f->st.kernel_cause = CTD_PRESSURE_OTHER;
	text = answer(f, "stats");
	assert_non_null(strstr(text, "95% full (950 of 1000) while ctd keeps up: "
			       "the ctnetlink listener on netlink port 4242"));
	assert_non_null(strstr(text, "212992 bytes unread and 840 drops"));
	assert_null(strstr(text, "another ctnetlink DESTROY listener"));
	free(text);
	/* The DESTROYs it makes the kernel send again point at it too. */
	f->st.destroy_duplicates = 63;
	text = answer(f, "stats");
	assert_non_null(strstr(text, "another ctnetlink DESTROY listener does not "
			       "read: netlink port 4242 (socket inode 31337"));
	assert_non_null(strstr(text, "(destroy_duplicates 63)"));
	free(text);
}

/* Watched namespaces: a line each in ctd -s, an object each in its
 * JSON, samples labelled netns="NAME" in the metrics, and their
 * problems in the health check. */
static void test_netns(void **state)
{
	struct fixture *f = *state;
	struct ctd_netnstab *t = ctd_netnstab_new("all");
	struct ctd_netns *red, *anon;
	char *text, *json, *page;

	assert_non_null(t);
	assert_int_equal(ctd_netnstab_add(t, 0, "red", &red), 0);
	assert_int_equal(ctd_netnstab_add(t, 5, "", &anon), 0);
	red->records = 17;
	red->pending = 20000;
	anon->state = CTD_NETNS_GOING;
	anon->dump_err = -EPERM;
	anon->records = 3;
	f->src.netns = t;
	text = answer(f, "stats");
	json = answer(f, "stats json");
	page = answer(f, "metrics");
	assert_non_null(strstr(text, "\nnamespaces:\n  red                      "
			       "nsid 0     watched records 17 pending 20000\n"));
	assert_non_null(strstr(text, "\n  nsid:5                   nsid 5     "
			       "going   records 3 pending 0 dump_error "));
	assert_non_null(strstr(text, "network namespace red (nsid 0): the kernel "
			       "holds 20000 DESTROY events"));
	assert_non_null(strstr(text, "network namespace nsid:5 (nsid 5): its last "
			       "table dump failed"));
	assert_non_null(strstr(json, ",\"namespaces\":[{\"name\":\"red\",\"nsid\":0,"
			       "\"state\":\"watched\",\"records\":17,\"pending\":20000,"
			       "\"dump_error\":null},{\"name\":\"nsid:5\",\"nsid\":5,"
			       "\"state\":\"going\",\"records\":3,\"pending\":0,"
			       "\"dump_error\":\"Operation not permitted\"}]}\n"));
	assert_non_null(strstr(page, "\nctd_netns_records_total{netns=\"red\"} 17\n"));
	assert_non_null(strstr(page, "\nctd_netns_records_total{netns=\"nsid:5\"} 3\n"));
	assert_non_null(strstr(page, "\nctd_netns_pending_destroys{netns=\"red\"} 20000\n"));
	assert_non_null(strstr(page, "\nctd_netns_going{netns=\"nsid:5\"} 1\n"));
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"netns_pending\","
			       "netns=\"red\"} 1\n"));
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"netns_dump\","
			       "netns=\"nsid:5\"} 1\n"));
	assert_non_null(strstr(page, "\nctd_health_problem{check=\"netns_dump\","
			       "netns=\"red\"} 0\n"));
	check_families(page);
	free(text);
	free(json);
	free(page);
	/* Without namespaces nothing of this shows. */
	f->src.netns = NULL;
	text = answer(f, "stats");
	assert_null(strstr(text, "namespaces:"));
	free(text);
	ctd_netnstab_free(t);
}

/* A quote, backslash or newline in a name cannot break the exposition. */
static void test_netns_label_escaped(void **state)
{
	struct fixture *f = *state;
	struct ctd_netnstab *t = ctd_netnstab_new("all");
	struct ctd_netns *e;
	char *page;

	assert_int_equal(ctd_netnstab_add(t, 1, "a\"b\\c\nd", &e), 0);
	f->src.netns = t;
	page = answer(f, "metrics");
	assert_non_null(strstr(page, "\nctd_netns_records_total{netns=\"a\\\"b\\\\c\\nd\"} 0\n"));
	free(page);
	ctd_netnstab_free(t);
}

/* ctd -s for a person: counters under group titles, each output under
 * its own with only what its kind can move (or what is nonzero); netns
 * only when used. ctd -s all: every counter flat, as scripts read it. */
static void test_stats_grouped(void **state)
{
	struct fixture *f = *state;
	/* An output with a counter of its own, as out_kafka.c has. */
	static const struct ctd_counter_def row = { "brokers", 0, true,
		"kafka_brokers", "Kafka brokers known.", true };
	static const struct ctd_counter_defs defs = { &row, 1, CTD_SHOWS_ACKS };
	struct ctd_out_stats kafka = { 0 };
	uint64_t brokers = 3;
	char *text, *page;

	f->st.out_name[1] = "kafka";
	f->st.out[1] = &kafka;
	f->st.out_defs[1] = &defs;
	f->st.out_own[1] = &brokers;
	text = answer(f, "stats");
	assert_non_null(strstr(text, "\nkernel events:\n  events_new                   42\n"));
	assert_non_null(strstr(text, "\nrecords:\n  records "));
	/* Each group's first counter is in the table (a rename would merge
	 * two groups without a word). */
	assert_non_null(strstr(text, "\nflows:\n  flows_created "));
	assert_non_null(strstr(text, "\ntable checks:\n  resyncs "));
	assert_non_null(strstr(text, "\nctd -f lines:\n  text_dropped "));
	assert_non_null(strstr(text, "\nsocket and table:\n  rcvbuf "));
	assert_non_null(strstr(text, "\nkernel pressure:\n  kernel_pending "));
	assert_non_null(strstr(text, "\nmemory:\n  table_bytes "));
	assert_non_null(strstr(text, "\ncontrol:\n  ctl_requests "));
	assert_non_null(strstr(text, "\nservice:\n  spool_degraded "));
	assert_non_null(strstr(text, "\nDESTROY latency (kernel stamp to read):\n"
			       "  latency_le_1ms "));
	assert_null(strstr(text, "\nother:\n"));
	assert_non_null(strstr(text, "\noutput json:\n  out_json_records "));
	assert_non_null(strstr(text, "\n  out_json_bytes               1234\n"));
	assert_null(strstr(text, "out_json_brokers"));
	assert_null(strstr(text, "out_json_templates"));
	assert_null(strstr(text, "out_json_store_rows"));
	assert_non_null(strstr(text, "\noutput kafka:\n"));
	assert_non_null(strstr(text, "\n  out_kafka_brokers            3\n"));
	assert_non_null(strstr(text, "\n  out_kafka_acked              0\n"));
	assert_null(strstr(text, "out_json_acked"));
	assert_null(strstr(text, "\nnetns:\n"));
	assert_null(strstr(text, "\ncounters:\n"));
	assert_non_null(strstr(text, "\ncounters by group (ctd -s all: every one, "
			       "flat):\nkernel events:\n"));
	assert_non_null(strstr(text, "# end\n"));
	free(text);
	/* A counter its kind never moves still shows once it is not 0. */
	f->json.acked = 5;
	f->st.netns_watched = 1;
	text = answer(f, "stats");
	assert_non_null(strstr(text, "\n  out_json_acked               5\n"));
	assert_non_null(strstr(text, "\nnetns:\n  netns_watched                1\n"));
	free(text);
	text = answer(f, "all");
	assert_non_null(strstr(text, "\ncounters:\nevents_new             42\n"));
	assert_null(strstr(text, "out_json_brokers"));
	assert_non_null(strstr(text, "\nout_kafka_brokers      3\n"));
	assert_non_null(strstr(text, "\nout_json_acked         5\n"));
	assert_null(strstr(text, "kernel events:"));
	assert_non_null(strstr(text, "# end\n"));
	free(text);
	page = answer(f, "metrics");
	assert_non_null(strstr(page, "\n# TYPE ctd_output_kafka_brokers gauge\n"
			       "ctd_output_kafka_brokers{output=\"kafka\"} 3\n"));
	free(page);
	f->st.out_name[1] = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metrics_families, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_series, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_failed_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_names_stuck_listener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_netns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_netns_label_escaped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_grouped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
