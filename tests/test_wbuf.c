/* Tests for src/wbuf.c on a real pipe: bytes in order, a full pipe keeps
 * what it could not take, nothing lost or doubled after it drains. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctd/wbuf.h"

static void put(struct ctd_wbuf *wb, const char *s)
{
	char *p = ctd_wbuf_reserve(wb, strlen(s));

	assert_non_null(p);
	memcpy(p, s, strlen(s));
	ctd_wbuf_commit(wb, strlen(s));
}

static void test_in_order(void **state)
{
	int fds[2];
	char buf[32];
	struct ctd_wbuf *wb;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	wb = ctd_wbuf_new(fds[1], 64);
	put(wb, "hello ");
	put(wb, "world\n");
	assert_int_equal(ctd_wbuf_pending(wb), 12);
	assert_int_equal(ctd_wbuf_flush(wb), 0);
	assert_int_equal(ctd_wbuf_pending(wb), 0);
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 12);
	assert_memory_equal(buf, "hello world\n", 12);
	ctd_wbuf_free(wb);
	ctd_wbuf_free(NULL);
	close(fds[0]);
	close(fds[1]);
}

/* 4 KiB pipe, 16 KiB buffer: flush takes what fits and keeps the rest;
 * a full buffer refuses more; after draining, every byte arrives once. */
static void test_full_pipe(void **state)
{
	int fds[2];
	struct ctd_wbuf *wb;
	char line[64], got[32768];
	size_t total = 0, i, n_lines = 0;
	ssize_t n;

	(void)state;
	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	assert_true(fcntl(fds[1], F_SETPIPE_SZ, 4096) >= 4096);
	wb = ctd_wbuf_new(fds[1], 16384);
	for (;;) {
		char *p = ctd_wbuf_reserve(wb, 32);

		if (!p)
			break;
		snprintf(line, sizeof(line), "%030zu\n", n_lines++);
		memcpy(p, line, 31);
		ctd_wbuf_commit(wb, 31);
	}
	assert_true(n_lines > 16384 / 31);
	assert_int_equal(ctd_wbuf_flush(wb), -EAGAIN);
	assert_true(ctd_wbuf_pending(wb) > 0);
	while (ctd_wbuf_pending(wb)) {
		while ((n = read(fds[0], got + total, sizeof(got) - total)) > 0)
			total += (size_t)n;
		ctd_wbuf_flush(wb);
	}
	while ((n = read(fds[0], got + total, sizeof(got) - total)) > 0)
		total += (size_t)n;
	assert_int_equal(total, n_lines * 31);
	for (i = 0; i < n_lines; i++) {
		snprintf(line, sizeof(line), "%030zu\n", i);
		assert_memory_equal(got + i * 31, line, 31);
	}
	ctd_wbuf_free(wb);
	close(fds[0]);
	close(fds[1]);
}

static void test_closed_reader(void **state)
{
	int fds[2];
	struct ctd_wbuf *wb;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pipe(fds), 0);
	close(fds[0]);
	wb = ctd_wbuf_new(fds[1], 64);
	put(wb, "x");
	assert_int_equal(ctd_wbuf_flush(wb), -EPIPE);
	assert_int_equal(ctd_wbuf_pending(wb), 1);
	ctd_wbuf_free(wb);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_full_pipe),
		cmocka_unit_test(test_closed_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
