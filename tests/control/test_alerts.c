/* Tests for src/alerts.c with a fake clock and captured log lines: each
 * watched counter's growth is told once with its count, then at most
 * once per CTD_LOG_RATE_US; a quiet loop iteration reads no clock; a
 * damaged spool is named by its output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/control/alerts.h"
#include "ctd/flows/record.h"
#include "ctd/outputs/output.h"
#include "fake_clock.h"
#include "logcap.h"

struct fixture {
	struct ctd_stats st;
	struct ctd_out_stats out;
	struct fake_clock fc;
	struct ctd_clock clock;
	struct ctd_alerts *a;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	f.st.out[0] = &f.out;
	f.st.out_name[0] = "json";
	fake_clock_init(&f.fc);
	f.clock = fake_clock_of(&f.fc);
	f.a = ctd_alerts_new(&f.st, 1000);
	assert_non_null(f.a);
	ctd_log_init("ctd", CTD_LOG_INFO);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ctd_alerts_free(f->a);
	return 0;
}

static const char *check(struct fixture *f)
{
	static struct logcap lc;

	logcap_begin(&lc);
	ctd_alerts_check(f->a, &f->clock);
	return logcap_end(&lc);
}

static void test_quiet_reads_no_clock(void **state)
{
	struct fixture *f = *state;
	unsigned reads = f->fc.reads;

	assert_string_equal(check(f), "");
	assert_string_equal(check(f), "");
	assert_int_equal(f->fc.reads, reads);
}

static void test_evictions_rate_limited(void **state)
{
	struct fixture *f = *state;

	f->st.ends[CTD_END_EVICTED] = 7;
	assert_string_equal(check(f), "ctd: warning: flow table full "
			    "(--max-flows 1000): evicted 7 flows\n");
	f->st.ends[CTD_END_EVICTED] = 50;
	fake_clock_step(&f->fc, CTD_LOG_RATE_US - 1);
	assert_string_equal(check(f), "");
	fake_clock_step(&f->fc, 1);
	assert_string_equal(check(f), "ctd: warning: flow table full "
			    "(--max-flows 1000): evicted 43 flows\n");
}

static void test_each_source_named(void **state)
{
	struct fixture *f = *state;
	const char *text;

	f->st.parse_errors = 3;
	f->st.ctl_refused = 2;
	f->st.ctl_timeouts = 100;
	f->st.ctl_evicted = 5;
	f->out.spool_skipped = 1;
	text = check(f);
	assert_non_null(strstr(text, "ctnetlink: 3 malformed messages"));
	assert_non_null(strstr(text, "control socket: 2 connections or "
				     "requests refused"));
	assert_non_null(strstr(text, "control socket and metrics: 105 clients "
				     "dropped"));
	assert_non_null(strstr(text, "output json: 1 damaged spool entries"));
	/* Nothing new: nothing said, however much time passes. */
	fake_clock_step(&f->fc, 3 * CTD_LOG_RATE_US);
	assert_string_equal(check(f), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_quiet_reads_no_clock),
		T(test_evictions_rate_limited),
		T(test_each_source_named),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
