/* Tests for src/wbuf.c on a real pipe: bytes leave in order, a full pipe
 * gives -EAGAIN and keeps what it could not take, a stuck buffer refuses
 * more, and once the reader drains the pipe every committed byte arrives
 * exactly once. Lines carry their sequence number so a lost, doubled or
 * reordered byte shows. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctd/base/wbuf.h"

#define LINE_LEN 31   /* "%030zu\n" */

static void put(struct ctd_wbuf *wb, const char *s)
{
	size_t n = strlen(s);
	char *p = ctd_wbuf_reserve(wb, n);

	assert_non_null(p);
	memcpy(p, s, n);
	ctd_wbuf_commit(wb, n);
}

static size_t pipe_unread(int rfd)
{
	int n = -1;

	assert_int_equal(ioctl(rfd, FIONREAD, &n), 0);
	assert_true(n >= 0);
	return (size_t)n;
}

/* Reads whatever the non-blocking read end has, up to max bytes. */
static size_t drain(int rfd, char *to, size_t max)
{
	size_t total = 0;
	ssize_t n;

	while (total < max && (n = read(rfd, to + total, max - total)) > 0)
		total += (size_t)n;
	return total;
}

static void make_line(char *line, size_t seq)
{
	char tmp[LINE_LEN + 1];

	snprintf(tmp, sizeof(tmp), "%030zu\n", seq);
	memcpy(line, tmp, LINE_LEN);
}

static void assert_lines(const char *got, size_t len, size_t n_lines)
{
	char want[LINE_LEN];
	size_t i;

	assert_int_equal(len, n_lines * LINE_LEN);
	for (i = 0; i < n_lines; i++) {
		make_line(want, i);
		if (memcmp(got + i * LINE_LEN, want, LINE_LEN) != 0)
			fail_msg("line %zu: got %.30s", i, got + i * LINE_LEN);
	}
}

/* Non-blocking pipe shrunk to its minimum; returns the real size. */
static size_t small_pipe(int fds[2])
{
	int sz;

	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	sz = fcntl(fds[1], F_SETPIPE_SZ, 4096);
	assert_true(sz >= 4096);
	return (size_t)sz;
}

static void test_in_order(void **state)
{
	int fds[2];
	char buf[64];
	struct ctd_wbuf *wb;
	char *p;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	wb = ctd_wbuf_new(fds[1], 64);
	assert_non_null(wb);
	assert_int_equal(ctd_wbuf_flush(wb), 0);
	put(wb, "hello ");
	put(wb, "world\n");
	assert_int_equal(ctd_wbuf_pending(wb), 12);
	/* Callers reserve a maximum and commit what they formatted. */
	p = ctd_wbuf_reserve(wb, 40);
	assert_non_null(p);
	memcpy(p, "abcde", 5);
	ctd_wbuf_commit(wb, 5);
	assert_int_equal(ctd_wbuf_pending(wb), 17);
	assert_int_equal(pipe_unread(fds[0]), 0);

	assert_int_equal(ctd_wbuf_flush(wb), 0);
	assert_int_equal(ctd_wbuf_pending(wb), 0);
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 17);
	assert_memory_equal(buf, "hello world\nabcde", 17);

	put(wb, "again\n");
	assert_int_equal(ctd_wbuf_flush(wb), 0);
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "again\n", 6);
	assert_int_equal(pipe_unread(fds[0]), 0);
	ctd_wbuf_free(wb);
	ctd_wbuf_free(NULL);
	close(fds[0]);
	close(fds[1]);
}

static void test_reserve_beyond_capacity(void **state)
{
	int fds[2];
	struct ctd_wbuf *wb;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	wb = ctd_wbuf_new(fds[1], 64);
	assert_null(ctd_wbuf_reserve(wb, 65));
	assert_int_equal(ctd_wbuf_pending(wb), 0);
	assert_non_null(ctd_wbuf_reserve(wb, 64));
	ctd_wbuf_free(wb);
	close(fds[0]);
	close(fds[1]);
}

/* Commits numbered lines until reserve refuses; returns how many. A
 * buffer that never refuses is dropping bytes: fail rather than spin. */
static size_t fill(struct ctd_wbuf *wb, size_t limit)
{
	size_t seq = 0;
	char *p;

	while ((p = ctd_wbuf_reserve(wb, LINE_LEN)) != NULL) {
		make_line(p, seq++);
		ctd_wbuf_commit(wb, LINE_LEN);
		assert_true(seq < limit);
	}
	return seq;
}

/* Full pipe: -EAGAIN, the rest kept, reserve refuses. After the reader
 * drains, flush reaches 0 and the reader has every line exactly once. */
static void test_full_pipe(void **state)
{
	int fds[2], r, rounds = 0;
	size_t psz = small_pipe(fds), cap = 4 * psz, lines, total;
	struct ctd_wbuf *wb = ctd_wbuf_new(fds[1], cap);
	char *got;

	(void)state;
	lines = fill(wb, 16 * cap / LINE_LEN);
	/* reserve flushed once on the way: the pipe took what it holds. */
	assert_true(lines * LINE_LEN > cap);
	assert_int_equal(ctd_wbuf_flush(wb), -EAGAIN);
	assert_true(ctd_wbuf_pending(wb) > 0);
	assert_true(ctd_wbuf_pending(wb) > cap - LINE_LEN);
	assert_int_equal(pipe_unread(fds[0]) + ctd_wbuf_pending(wb),
			 lines * LINE_LEN);
	assert_null(ctd_wbuf_reserve(wb, LINE_LEN));
	assert_int_equal(ctd_wbuf_flush(wb), -EAGAIN);

	got = malloc(lines * LINE_LEN + 1);
	assert_non_null(got);
	total = 0;
	do {
		total += drain(fds[0], got + total, lines * LINE_LEN + 1 - total);
		r = ctd_wbuf_flush(wb);
		assert_true(r == 0 || r == -EAGAIN);
		assert_true(++rounds < 1000);
	} while (r == -EAGAIN);
	assert_int_equal(ctd_wbuf_pending(wb), 0);
	total += drain(fds[0], got + total, lines * LINE_LEN + 1 - total);
	assert_lines(got, total, lines);
	free(got);
	ctd_wbuf_free(wb);
	close(fds[0]);
	close(fds[1]);
}

/* A producer racing a slow reader: reserve fails while the pipe is full,
 * the reader takes odd-sized bites, flushes land mid-line. The bytes a
 * partial write left behind must be moved, never lost or resent. */
static void test_backpressure_interleaved(void **state)
{
	const size_t n_lines = 20000, bite = 1000;
	int fds[2], r, rounds = 0;
	size_t psz = small_pipe(fds), seq = 0, total = 0, stuck = 0, eagain = 0;
	struct ctd_wbuf *wb = ctd_wbuf_new(fds[1], 2 * psz);
	char *got = malloc(n_lines * LINE_LEN + 1), *p;

	(void)state;
	assert_non_null(got);
	while (seq < n_lines) {
		p = ctd_wbuf_reserve(wb, LINE_LEN);
		if (!p) {
			assert_true(++stuck < 10 * n_lines);
			total += drain(fds[0], got + total,
				       bite < n_lines * LINE_LEN - total ?
				       bite : n_lines * LINE_LEN - total);
			continue;
		}
		make_line(p, seq++);
		ctd_wbuf_commit(wb, LINE_LEN);
		if (seq % 7 == 0 && ctd_wbuf_flush(wb) == -EAGAIN)
			eagain++;
	}
	do {
		total += drain(fds[0], got + total, n_lines * LINE_LEN + 1 - total);
		r = ctd_wbuf_flush(wb);
		assert_true(r == 0 || r == -EAGAIN);
		assert_true(++rounds < 1000);
	} while (r == -EAGAIN);
	total += drain(fds[0], got + total, n_lines * LINE_LEN + 1 - total);
	assert_true(stuck > 0);
	assert_true(eagain > 0);
	assert_lines(got, total, n_lines);
	free(got);
	ctd_wbuf_free(wb);
	close(fds[0]);
	close(fds[1]);
}

/* A reader that went away is an error other than -EAGAIN; the bytes
 * stay, in case the caller wants to count them as lost. */
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
	assert_int_equal(ctd_wbuf_flush(wb), -EPIPE);
	assert_int_equal(ctd_wbuf_pending(wb), 1);
	ctd_wbuf_free(wb);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_reserve_beyond_capacity),
		cmocka_unit_test(test_full_pipe),
		cmocka_unit_test(test_backpressure_interleaved),
		cmocka_unit_test(test_closed_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
