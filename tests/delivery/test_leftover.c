/* Tests for src/delivery/leftover.c on real files: a non-empty spool or
 * write-ahead log of an output not in use is found with its size; the
 * files of outputs in use, empty ones (delivered), other files and a
 * symbolic link are not. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctd/delivery/leftover.h"
#include "tmpdir.h"

static void put(const char *dir, const char *name, size_t bytes)
{
	char path[TMPDIR_MAX + 64], buf[100] = { 0 };
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, bytes), (ssize_t)bytes);
	close(fd);
}

static const struct ctd_leftover *find(const struct ctd_leftover *l, int n,
				       const char *file)
{
	for (int i = 0; i < n; i++)
		if (strcmp(l[i].file, file) == 0)
			return &l[i];
	return NULL;
}

static void test_scan(void **state)
{
	static const char *const in_use[] = { "json", "store" };
	char dir[TMPDIR_MAX], link[TMPDIR_MAX + 32];
	struct ctd_leftover l[8];
	int n;

	(void)state;
	tmpdir_make(dir, "leftover");
	put(dir, "json.spool", 40);     /* in use */
	put(dir, "json.wal", 40);
	put(dir, "kafka.spool", 64);    /* kafka was turned off */
	put(dir, "kafka.wal", 16);
	put(dir, "kafka.wal.3", 24);    /* a segment of its log */
	put(dir, "json.wal.2", 24);
	put(dir, "kafka.wal.9", 24);    /* no segment of ctd's */
	put(dir, "ipfix.spool", 0);     /* delivered: empty */
	put(dir, "ctd.lock", 10);
	put(dir, "flows.db", 50);
	snprintf(link, sizeof(link), "%s/stream.spool", dir);
	assert_int_equal(symlink("kafka.spool", link), 0);
	n = ctd_leftover_scan(dir, in_use, 2, l, 8);
	assert_int_equal(n, 3);
	assert_non_null(find(l, n, "kafka.spool"));
	assert_int_equal(find(l, n, "kafka.spool")->bytes, 64);
	assert_int_equal(find(l, n, "kafka.wal")->bytes, 16);
	assert_int_equal(find(l, n, "kafka.wal.3")->bytes, 24);
	/* More than fit: counted, not written past cap. */
	assert_int_equal(ctd_leftover_scan(dir, in_use, 0, l, 1), 6);
	tmpdir_remove(dir);
	assert_true(ctd_leftover_scan(dir, in_use, 2, l, 8) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
