/* Tests for src/log.c: with stderr the stream JOURNAL_STREAM names, each
 * line starts with its syslog priority and carries no program prefix;
 * otherwise (no variable, or another stream) the plain format; the EROFS
 * hint names ReadWritePaths. */
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

#include "ctd/log.h"

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
			    "<3>e 1\n<4>w\n<6>i\n");
}

static void test_plain_elsewhere(void **state)
{
	char buf[256];

	(void)state;
	assert_string_equal(log_all_levels(false, buf, sizeof(buf)),
			    "ctd: error: e 1\nctd: warning: w\nctd: i\n");
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
		cmocka_unit_test(test_is_journal),
		cmocka_unit_test(test_journal_priorities),
		cmocka_unit_test(test_plain_elsewhere),
		cmocka_unit_test(test_erofs_hint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
