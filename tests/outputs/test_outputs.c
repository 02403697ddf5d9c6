/* Tests for src/outputs.c and the descriptors the out_*.c files export:
 * the table's shape (unique names, event outputs first, within
 * CTD_OUT_MAX), which outputs a configuration turns on, which events
 * each takes, and that each descriptor creates a working output under
 * its own name (the name its spool file and counters go by), or logs
 * the line it always logged when it cannot. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <ev.h>
#include <cmocka.h>

#include "ctd/base/stats.h"
#include "ctd/config/config.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/out_file.h"
#include "ctd/outputs/out_ipfix.h"
#include "ctd/outputs/out_kafka.h"
#include "ctd/outputs/out_pg.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/out_stream.h"
#include "ctd/outputs/out_syslog.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "logcap.h"

#define DESTROY (1u << CTD_EV_DESTROY)

static const struct ctd_output_desc *const all[] = {
	&ctd_out_json_desc, &ctd_out_stream_desc, &ctd_out_kafka_desc,
	&ctd_out_ipfix_desc, &ctd_out_ctlog_desc, &ctd_out_syslog_desc,
	&ctd_out_store_desc, &ctd_out_pg_desc,
};
#define N_ALL (sizeof(all) / sizeof(all[0]))

static void set(struct ctd_config *c, const char *key, const char *value)
{
	char err[CTD_CONFIG_ERR_MAX];

	if (ctd_config_set(c, key, value, err, sizeof(err)) < 0)
		fail_msg("%s %s: %s", key, value, err);
}

/* The names of the enabled outputs, space-separated, in table order. */
static const char *enabled(const struct ctd_config *c)
{
	static char names[128];

	names[0] = '\0';
	for (size_t i = 0; ctd_outputs[i]; i++)
		if (ctd_outputs[i]->enabled(c))
			snprintf(names + strlen(names), sizeof(names) - strlen(names),
				 "%s%s", names[0] ? " " : "", ctd_outputs[i]->name);
	return names;
}

static void test_table_shape(void **state)
{
	size_t n = 0;

	(void)state;
	for (; ctd_outputs[n]; n++) {
		const struct ctd_output_desc *d = ctd_outputs[n];

		assert_non_null(d->name);
		assert_non_null(d->enabled);
		assert_non_null(d->create);
		for (size_t j = 0; j < n; j++)
			assert_string_not_equal(ctd_outputs[j]->name, d->name);
		/* deliver.c keeps missed-event bits for the first four only. */
		if (n >= 4)
			assert_true(d->events_setting == CTD_OUTPUT_EVENTS_FIXED &&
				    !(d->events & ~DESTROY));
	}
	assert_true(n <= CTD_OUT_MAX);
	/* Every descriptor the out_*.c files export has its row. */
	assert_int_equal(n, N_ALL);
	for (size_t i = 0; i < N_ALL; i++)
		assert_ptr_equal(ctd_outputs[i], all[i]);
}

static void test_enabled_by_config(void **state)
{
	struct ctd_config c;

	(void)state;
	ctd_config_init(&c, ctd_output_settings);
	assert_string_equal(enabled(&c), "json store");
	set(&c, "store", "none");
	set(&c, "output", "none");
	assert_string_equal(enabled(&c), "");
	set(&c, "stream", "/run/ctd/flows.sock");
	assert_string_equal(enabled(&c), "stream");
	set(&c, "ipfix", "udp:192.0.2.1:4739");
	set(&c, "conntrackd-log", "/var/log/ctd/ct.log");
	assert_string_equal(enabled(&c), "stream ipfix ctlog");
	set(&c, "syslog", "yes");
	set(&c, "output", "-");
	set(&c, "kafka", "192.0.2.1:9092");
	assert_string_equal(enabled(&c), "json stream kafka ipfix ctlog syslog");
	set(&c, "kafka", "none");
	set(&c, "stream", "none");
	set(&c, "ipfix", "none");
	set(&c, "conntrackd-log", "none");
	set(&c, "syslog", "no");
	assert_string_equal(enabled(&c), "json");
	set(&c, "store", "/tmp/flows.db");
	assert_string_equal(enabled(&c), "json store");
	set(&c, "postgresql", "host=db dbname=flows");
	assert_string_equal(enabled(&c), "json store postgresql");
	set(&c, "postgresql", "none");
	/* Their other settings alone turn nothing on. */
	ctd_config_init(&c, ctd_output_settings);
	set(&c, "output", "none");
	set(&c, "store", "none");
	set(&c, "store-retention", "7d");
	set(&c, "ipfix-shape", "uniflow");
	set(&c, "syslog-format", "rfc5424");
	set(&c, "stream-events", "new");
	set(&c, "kafka-topic", "flows");
	set(&c, "kafka-option", "linger.ms=5");
	assert_string_equal(enabled(&c), "");
}

static void test_events(void **state)
{
	struct ctd_config c;

	(void)state;
	ctd_config_init(&c, ctd_output_settings);
	for (size_t i = 0; ctd_outputs[i]; i++)
		assert_int_equal(ctd_output_events(ctd_outputs[i], &c), DESTROY);
	set(&c, "json-events", "new,destroy");
	set(&c, "stream-events", "update");
	set(&c, "kafka-events", "new,update,destroy");
	assert_int_equal(ctd_output_events(&ctd_out_kafka_desc, &c),
			 1u << CTD_EV_NEW | 1u << CTD_EV_UPDATE | DESTROY);
	assert_int_equal(ctd_output_events(&ctd_out_json_desc, &c),
			 1u << CTD_EV_NEW | DESTROY);
	assert_int_equal(ctd_output_events(&ctd_out_stream_desc, &c),
			 1u << CTD_EV_UPDATE);
	assert_int_equal(ctd_output_events(&ctd_out_ipfix_desc, &c), DESTROY);
	assert_int_equal(ctd_output_events(&ctd_out_ctlog_desc, &c), DESTROY);
	assert_int_equal(ctd_output_events(&ctd_out_syslog_desc, &c), DESTROY);
}

struct fixture {
	char dir[64];
	char path[N_ALL][128];
	int syslog_fd;            /* stands in for /dev/log */
	struct ev_loop *loop;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_non_null(f);
	strcpy(f->dir, "/tmp/ctd-test-outputs-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	for (size_t i = 0; i < N_ALL; i++)
		snprintf(f->path[i], sizeof(f->path[i]), "%s/%s", f->dir,
			 all[i]->name);
	f->syslog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(f->syslog_fd >= 0);
	strcpy(sa.sun_path, f->path[5]);
	assert_int_equal(bind(f->syslog_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ev_loop_destroy(f->loop);
	close(f->syslog_fd);
	for (size_t i = 0; i < N_ALL; i++)
		unlink(f->path[i]);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Each output on, pointed into the fixture's directory; the collector
 * port is a discard port nothing is sent to. */
static void config_all(const struct fixture *f, struct ctd_config *c)
{
	ctd_config_init(c, ctd_output_settings);
	set(c, "output", f->path[0]);
	set(c, "stream", f->path[1]);
	set(c, "ipfix", "udp:127.0.0.1:9");
	set(c, "conntrackd-log", f->path[4]);
	set(c, "syslog", "yes");
	set(c, "syslog-socket", f->path[5]);
	set(c, "kafka", "127.0.0.1:9");
	set(c, "store", f->path[6]);
	/* Connects only from the loop, which these tests do not run. */
	set(c, "postgresql", "host=/nonexistent dbname=x password=pw");
}

static void test_create_names_the_output(void **state)
{
	struct fixture *f = *state;
	struct ctd_config c;
	struct logcap lc;
	char host[256], want[512];

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	snprintf(want, sizeof(want), "ctd: publishing records to Kafka topic "
		 "ctd-flows at 127.0.0.1:9\n"
		 "ctd: exporting IPFIX (biflow records) to udp:127.0.0.1:9\n"
		 "ctd: storing flows in postgresql host=/nonexistent dbname=x "
		 "password=(hidden) as exporter %s\n", host);
	config_all(f, &c);
	logcap_begin(&lc);
	for (size_t i = 0; ctd_outputs[i]; i++) {
		struct ctd_output *out = NULL;

		assert_true(ctd_outputs[i]->enabled(&c));
		assert_int_equal(ctd_outputs[i]->create(f->loop, &c, NULL, &out), 0);
		assert_non_null(out);
		assert_string_equal(out->name, ctd_outputs[i]->name);
		out->ops->free(out);
	}
	assert_string_equal(logcap_end(&lc), want);
	/* The files are where the config said. */
	assert_int_equal(access(f->path[0], F_OK), 0);
	assert_int_equal(access(f->path[4], F_OK), 0);
}

/* A file a crash or a full disk left inside a line: opening it ends
 * that line on its own, counted, so the next record starts a line. */
static void test_torn_tail_ended(void **state)
{
	struct fixture *f = *state;
	static const char torn[] = "{\"v\":1}\n{\"v\":1,\"ty";
	struct ctd_output *out = NULL;
	struct logcap lc;
	char buf[64] = "";
	FILE *fp = fopen(f->path[0], "w");

	assert_non_null(fp);
	fputs(torn, fp);
	fclose(fp);
	logcap_begin(&lc);
	assert_int_equal(ctd_out_json_new(f->path[0], 0, NULL, &out), 0);
	assert_non_null(strstr(logcap_end(&lc), "the last line was cut short"));
	assert_int_equal(ctd_output_counter(out, "torn_lines"), 1);
	out->ops->free(out);
	fp = fopen(f->path[0], "r");
	assert_non_null(fp);
	assert_int_equal(fread(buf, 1, sizeof(buf) - 1, fp), strlen(torn) + 1);
	fclose(fp);
	assert_string_equal(buf, "{\"v\":1}\n{\"v\":1,\"ty\n");
}

/* What cannot open says so in the words it always used, and fails. */
static void test_create_failure_logged(void **state)
{
	struct fixture *f = *state;
	static const char *const want[] = {
		"ctd: error: cannot open output /nonexistent/x: No such file or directory\n",
		"ctd: error: cannot listen on /nonexistent/x: No such file or directory\n",
		NULL,
		NULL,
		"ctd: error: cannot open conntrackd log /nonexistent/x: No such file or directory\n",
		"ctd: error: cannot send records to syslog at /nonexistent/x: No such file or directory\n",
		"ctd: error: cannot open store /nonexistent/x: No such file or directory\n",
		NULL,
	};
	struct ctd_config c;
	struct logcap lc;

	config_all(f, &c);
	set(&c, "output", "/nonexistent/x");
	set(&c, "stream", "/nonexistent/x");
	set(&c, "conntrackd-log", "/nonexistent/x");
	set(&c, "syslog-socket", "/nonexistent/x");
	set(&c, "store", "/nonexistent/x");
	for (size_t i = 0; i < N_ALL; i++) {
		struct ctd_output *out = NULL;

		if (!want[i])
			continue;
		logcap_begin(&lc);
		assert_int_equal(all[i]->create(f->loop, &c, NULL, &out), -ENOENT);
		assert_string_equal(logcap_end(&lc), want[i]);
		assert_null(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_shape),
		cmocka_unit_test(test_enabled_by_config),
		cmocka_unit_test(test_events),
		cmocka_unit_test_setup_teardown(test_create_names_the_output,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_failure_logged,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_ended,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
