/* Tests for src/reload.c: a new filter replaces the running one only
 * when it differs, settings that need a restart are named in the log,
 * the file outputs' paths are taken over, a path that cannot be opened
 * leaves the whole running configuration in force, and the groups a
 * configuration needs follow lossy mode and subscribe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ev.h>
#include <cmocka.h>

#include "ctd/outputs/outputs.h"
#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/config/config.h"
#include "ctd/delivery/deliver.h"
#include "ctd/flows/filter.h"
#include "ctd/kernel/nlsrc.h"
#include "ctd/outputs/out_file.h"
#include "ctd/outputs/output.h"
#include "ctd/reload.h"
#include "logcap.h"
#include "tmpdir.h"

struct fixture {
	struct ev_loop *loop;
	struct ctd_stats st;
	struct ctd_deliver *d;
	struct ctd_config cfg;
	struct ctd_filter *filter;
	struct ctd_reload_target t;
};

static int setup(void **state)
{
	static struct fixture f;
	struct ctd_deliver_cfg dc = { .grace_ms = 1000, .retry_max = 10 };

	memset(&f, 0, sizeof(f));
	f.loop = ev_loop_new(EVFLAG_AUTO);
	assert_int_equal(ctd_deliver_new(f.loop, &dc, &f.st, &f.d), 0);
	ctd_config_init(&f.cfg, ctd_output_settings);
	f.filter = ctd_config_filter(&f.cfg);
	f.t = (struct ctd_reload_target){ &f.cfg, &f.filter, f.d, NULL, false };
	ctd_log_init("ctd", CTD_LOG_INFO);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ctd_deliver_free(f->d);
	ctd_filter_free(f->filter);
	ev_loop_destroy(f->loop);
	return 0;
}

/* A setting's value as the file says it. */
static const char *value(const struct ctd_config *cfg, const char *key)
{
	static char buf[CTD_CONFIG_PATH_MAX];

	assert_int_equal(ctd_config_get(cfg, key, buf, sizeof(buf)), 0);
	return buf;
}

static void set(struct ctd_config *c, const char *key, const char *value)
{
	char err[256];

	assert_int_equal(ctd_config_set(c, key, value, err, sizeof(err)), 0);
}

static void test_filter_and_restart_needed(void **state)
{
	struct fixture *f = *state;
	struct ctd_filter *before = f->filter;
	struct ctd_config next = f->cfg;
	struct logcap lc;
	const char *text;

	/* The same settings: nothing changes, nothing is said but the line. */
	logcap_begin(&lc);
	ctd_reload_apply(&f->t, &next);
	assert_string_equal(logcap_end(&lc), "ctd: SIGHUP: configuration "
			    "reloaded, reopening output files\n");
	assert_ptr_equal(f->filter, before);

	set(&next, "filter-proto", "tcp");
	set(&next, "grace", "30");
	set(&next, "output", "/tmp/elsewhere.json");
	logcap_begin(&lc);
	ctd_reload_apply(&f->t, &next);
	text = logcap_end(&lc);
	assert_non_null(strstr(text, "reload: 'grace                   30' "
				     "needs a restart"));
	assert_non_null(strstr(text, "reload: new filter in effect"));
	assert_null(strstr(text, "'output"));
	assert_null(strstr(text, "turning output"));
	assert_ptr_not_equal(f->filter, before);
	assert_string_equal(f->cfg.filter[0], "tcp");
	assert_string_equal(value(&f->cfg, "output"), "/tmp/elsewhere.json");
	assert_int_equal(f->cfg.grace, 15);      /* not live: unchanged */
}

/* A new output path that cannot be opened: the new filter does not
 * take effect either, the file stays, the log says so. */
static void test_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	struct ctd_filter *before = f->filter;
	struct ctd_config next = f->cfg;
	struct ctd_output *out;
	struct logcap lc;
	char dir[64], path[96];
	const char *text;

	tmpdir_make(dir, "reload");
	snprintf(path, sizeof(path), "%s/flows.json", dir);
	assert_int_equal(ctd_out_json_new(path, 0, NULL, &out), 0);
	assert_int_equal(ctd_deliver_add(f->d, out, 0), 0);
	set(&f->cfg, "output", path);
	next = f->cfg;
	set(&next, "filter-proto", "tcp");
	set(&next, "output", "/nonexistent-ctd-dir/flows.json");
	logcap_begin(&lc);
	assert_true(ctd_reload_apply(&f->t, &next) < 0);
	text = logcap_end(&lc);
	assert_non_null(strstr(text, "cannot open /nonexistent-ctd-dir/flows.json"));
	assert_non_null(strstr(text, "the new configuration is not applied"));
	assert_null(strstr(text, "configuration reloaded"));
	assert_ptr_equal(f->filter, before);
	assert_string_equal(f->cfg.filter[0], "any");
	assert_string_equal(value(&f->cfg, "output"), path);
	ctd_deliver_free(f->d);
	f->d = NULL;
	tmpdir_remove(dir);
}

/* An output the new configuration turns on or off is named. */
static void test_output_switched_named(void **state)
{
	struct fixture *f = *state;
	struct ctd_config next = f->cfg;
	struct logcap lc;
	const char *text;

	set(&next, "conntrackd-log", "/tmp/ctd-stats.log");
	set(&next, "output", "none");
	logcap_begin(&lc);
	assert_int_equal(ctd_reload_apply(&f->t, &next), 0);
	text = logcap_end(&lc);
	assert_non_null(strstr(text, "turning output ctlog on needs a restart"));
	assert_non_null(strstr(text, "turning output json off needs a restart"));
}

static void test_groups(void **state)
{
	struct fixture *f = *state;
	struct ctd_config c = f->cfg;

	assert_int_equal(ctd_reload_groups(&f->t, &c), CTD_NLSRC_DESTROY);
	set(&c, "subscribe", "all");
	assert_int_not_equal(ctd_reload_groups(&f->t, &c), CTD_NLSRC_DESTROY);
	c = f->cfg;
	set(&c, "broadcast-error", "no");
	assert_int_not_equal(ctd_reload_groups(&f->t, &c), CTD_NLSRC_DESTROY);
	f->t.text = true;
	assert_int_not_equal(ctd_reload_groups(&f->t, &f->cfg),
			     CTD_NLSRC_DESTROY);
}

/* Labels come with NEW and UPDATE only: record-labels joins them, and
 * a reload that turns it on or off changes the running configuration
 * (the socket's groups follow it: nlsrc NULL here, kernel_subscribe). */
static void test_labels_need_events(void **state)
{
	struct fixture *f = *state;
	struct ctd_config next = f->cfg;
	struct logcap lc;

	set(&next, "record-labels", "yes");
	assert_int_equal(ctd_reload_groups(&f->t, &next), CTD_NLSRC_ALL);
	logcap_begin(&lc);
	ctd_reload_apply(&f->t, &next);
	assert_non_null(strstr(logcap_end(&lc), "record-labels: "));
	assert_true(f->cfg.record_labels);
	assert_int_equal(ctd_reload_groups(&f->t, f->t.cfg), CTD_NLSRC_ALL);
	set(&next, "record-labels", "no");
	logcap_begin(&lc);
	ctd_reload_apply(&f->t, &next);
	assert_null(strstr(logcap_end(&lc), "record-labels"));
	assert_false(f->cfg.record_labels);
	assert_int_equal(ctd_reload_groups(&f->t, f->t.cfg), CTD_NLSRC_DESTROY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_filter_and_restart_needed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_or_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_output_switched_named,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_labels_need_events, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
