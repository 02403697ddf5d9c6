/* Tests for src/log.c: the line format and level filter, and the rate
 * gate for counter lines stepped through time by hand: the first growth
 * is logged at once with the whole count, later growth at most once per
 * CTD_LOG_RATE_US with everything since, a counter that went back
 * restarts, and nothing moves without growth.
 * Also the journal format: "<N>" priority prefixes exactly when stderr
 * is the stream JOURNAL_STREAM names, and the EROFS hint. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctd/base/log.h"
#include "logcap.h"

#define T0 INT64_C(1000000)      /* any monotonic time but 0 */
#define S INT64_C(1000000)      /* one second */

static void test_lines_and_levels(void **state)
{
	struct logcap lc;

	(void)state;
	ctd_log_init("ctd-test", CTD_LOG_WARN);
	logcap_begin(&lc);
	log_err("a %d", 1);
	log_warn("b");
	log_info("not shown");
	log_debug("nor this");
	assert_string_equal(logcap_end(&lc),
			    "ctd-test: error: a 1\nctd-test: warning: b\n");
	ctd_log_init("ctd", CTD_LOG_INFO);
}

static void test_rate_first_growth_at_once(void **state)
{
	struct ctd_log_rate r = { 0 };

	(void)state;
	assert_false(ctd_log_rate_moved(&r, 0));
	assert_int_equal(ctd_log_rate_due(&r, 0, T0), 0);
	assert_true(ctd_log_rate_moved(&r, 7));
	assert_int_equal(ctd_log_rate_due(&r, 7, T0), 7);
	assert_false(ctd_log_rate_moved(&r, 7));
	assert_int_equal(ctd_log_rate_due(&r, 7, T0 + 60 * S), 0);
}

static void test_rate_at_most_one_per_interval(void **state)
{
	struct ctd_log_rate r = { 0 };

	(void)state;
	assert_int_equal(ctd_log_rate_due(&r, 1, T0), 1);
	/* Growth within the interval waits and adds up. */
	assert_int_equal(ctd_log_rate_due(&r, 5, T0 + 1), 0);
	assert_true(ctd_log_rate_moved(&r, 5));
	assert_int_equal(ctd_log_rate_due(&r, 9, T0 + CTD_LOG_RATE_US - 1), 0);
	assert_int_equal(ctd_log_rate_due(&r, 12, T0 + CTD_LOG_RATE_US), 11);
	/* The interval runs from the last line, not from the first. */
	assert_int_equal(ctd_log_rate_due(&r, 13, T0 + 15 * S), 0);
	assert_int_equal(ctd_log_rate_due(&r, 14, T0 + 20 * S), 2);
	/* After a quiet spell the next growth is logged at once. */
	assert_int_equal(ctd_log_rate_due(&r, 15, T0 + 3600 * S), 1);
}

static void test_rate_counter_restarts(void **state)
{
	struct ctd_log_rate r = { 0 };

	(void)state;
	assert_int_equal(ctd_log_rate_due(&r, 100, T0), 100);
	/* The output reopened: its counter starts over, nothing to say. */
	assert_int_equal(ctd_log_rate_due(&r, 2, T0 + 20 * S), 0);
	assert_false(ctd_log_rate_moved(&r, 2));
	assert_int_equal(ctd_log_rate_due(&r, 5, T0 + 40 * S), 3);
}

static void test_growth_line(void **state)
{
	struct ctd_log_rate r = { 0 };
	struct logcap lc;

	(void)state;
	logcap_begin(&lc);
	ctd_log_growth(&r, 3, T0, "ctnetlink", "malformed messages ignored");
	ctd_log_growth(&r, 4, T0 + S, "ctnetlink", "malformed messages ignored");
	ctd_log_growth(&r, 4, T0 + 11 * S, "ctnetlink", "malformed messages ignored");
	ctd_log_growth(&r, 4, T0 + 12 * S, "ctnetlink", "malformed messages ignored");
	assert_string_equal(logcap_end(&lc),
			    "ctd: warning: ctnetlink: 3 malformed messages ignored\n"
			    "ctd: warning: ctnetlink: 1 malformed messages ignored\n");
}


/* "dev:ino" of fd, as systemd writes JOURNAL_STREAM. */
static void stream_id(int fd, char *buf, size_t len, long long ino_delta)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	snprintf(buf, len, "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + (unsigned long long)ino_delta);
}

static void test_is_journal(void **state)
{
	FILE *f = tmpfile();
	char id[64], junk[80];

	(void)state;
	assert_non_null(f);
	stream_id(fileno(f), id, sizeof(id), 0);
	assert_true(ctd_log_is_journal(id, fileno(f)));
	stream_id(fileno(f), id, sizeof(id), 1);
	assert_false(ctd_log_is_journal(id, fileno(f)));
	stream_id(fileno(f), id, sizeof(id), 0);
	snprintf(junk, sizeof(junk), "%sx", id);
	assert_false(ctd_log_is_journal(junk, fileno(f)));
	assert_false(ctd_log_is_journal(NULL, fileno(f)));
	assert_false(ctd_log_is_journal("", fileno(f)));
	assert_false(ctd_log_is_journal("12", fileno(f)));
	assert_false(ctd_log_is_journal(id, -1));
	fclose(f);
}

/* Logs one line per level with stderr on a temporary file and returns
 * what was written (journal: whether JOURNAL_STREAM names that file). */
static char *log_all_levels(bool journal, char *buf, size_t len)
{
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	char id[64];
	size_t n;

	assert_non_null(f);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fileno(f), STDERR_FILENO), STDERR_FILENO);
	stream_id(STDERR_FILENO, id, sizeof(id), journal ? 0 : 7);
	setenv("JOURNAL_STREAM", id, 1);
	ctd_log_init("ctd", CTD_LOG_INFO);
	log_err("e %d", 1);
	log_warn("w");
	log_info("i");
	log_debug("d");
	ctd_log_tool(CTD_LOG_ERR, "f:%d: bad", 3);
	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	rewind(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_journal_priorities(void **state)
{
	char buf[256];

	(void)state;
	assert_string_equal(log_all_levels(true, buf, sizeof(buf)),
			    "<3>e 1\n<4>w\n<6>i\n<3>f:3: bad\n");
}

static void test_plain_elsewhere(void **state)
{
	char buf[256];

	(void)state;
	assert_string_equal(log_all_levels(false, buf, sizeof(buf)),
			    "ctd: error: e 1\nctd: warning: w\nctd: i\n"
			    "ctd: f:3: bad\n");
	ctd_log_init("ctd", CTD_LOG_INFO);
}

static void test_erofs_hint(void **state)
{
	(void)state;
	assert_non_null(strstr(ctd_log_errstr(EROFS), "ReadWritePaths="));
	assert_non_null(strstr(ctd_log_errstr(EROFS), "read-only file system"));
	assert_string_equal(ctd_log_errstr(ENOENT), strerror(ENOENT));
	assert_string_equal(ctd_log_errstr(ENOSPC), strerror(ENOSPC));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_and_levels),
		cmocka_unit_test(test_rate_first_growth_at_once),
		cmocka_unit_test(test_rate_at_most_one_per_interval),
		cmocka_unit_test(test_rate_counter_restarts),
		cmocka_unit_test(test_growth_line),
		cmocka_unit_test(test_is_journal),
		cmocka_unit_test(test_journal_priorities),
		cmocka_unit_test(test_plain_elsewhere),
		cmocka_unit_test(test_erofs_hint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
