/* Tests for src/notify.c against a real datagram socket standing in for
 * the service manager: nothing is sent without NOTIFY_SOCKET; READY goes
 * with a STATUS line; a manager that stops reading costs ctd nothing but
 * a count: sends never block and what does not fit is dropped and
 * counted; but READY=1 is sent again every 0.1 s until the manager
 * takes it, and then with each status ping, never after RELOADING. */
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
#include "ctd/service/notify.h"
#include "tmpdir.h"

static void status(void *arg, char *buf, size_t cap)
{
	(void)arg;
	snprintf(buf, cap, "all good");
}

/* The service manager's socket, named by NOTIFY_SOCKET. */
struct manager {
	char dir[TMPDIR_MAX];
	char path[128];
	int fd;
	struct ctd_stats st;
};

static int manager_setup(void **state)
{
	struct manager *m = calloc(1, sizeof(*m));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_non_null(m);
	tmpdir_make(m->dir, "notify");
	snprintf(m->path, sizeof(m->path), "%s/notify", m->dir);
	strcpy(sa.sun_path, m->path);
	m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(m->fd >= 0);
	assert_int_equal(bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", m->path, 1);
	*state = m;
	return 0;
}

static int manager_teardown(void **state)
{
	struct manager *m = *state;

	close(m->fd);
	unsetenv("NOTIFY_SOCKET");
	tmpdir_remove(m->dir);
	free(m);
	return 0;
}

/* The next datagram, which must be there now. */
static void expect_msg(struct manager *m, const char *want)
{
	char buf[512];
	ssize_t len = recv(m->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(len > 0);
	buf[len] = '\0';
	assert_string_equal(buf, want);
}

static void test_no_manager(void **state)
{
	struct ctd_stats st = { 0 };
	struct ctd_notify *n;

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	n = ctd_notify_new(EV_DEFAULT, &st, status, NULL);
	assert_false(ctd_notify_active(n));
	assert_int_equal(ctd_notify_send(n, "READY=1", -1), 0);
	ctd_notify_free(n);
}

static void test_ready_and_full_queue(void **state)
{
	struct manager *m = *state;
	struct ctd_notify *n;
	int sent = 0, dropped = 0;

	n = ctd_notify_new(EV_DEFAULT, &m->st, status, NULL);
	assert_true(ctd_notify_active(n));
	ctd_notify_ready(n);
	expect_msg(m, "READY=1\nSTATUS=all good");
	/* Nobody reads: the queue fills, then sends are dropped, never wait. */
	for (int i = 0; i < 1000; i++) {
		int r = ctd_notify_send(n, "WATCHDOG=1", -1);

		sent += r == 1;
		dropped += r == -EAGAIN;
	}
	assert_true(sent > 0 && dropped > 0);
	assert_int_equal(m->st.notify_dropped, (uint64_t)dropped);
	ctd_notify_free(n);
}

/* Reads datagrams until one contains word (the loop turning meanwhile,
 * at most about 2 s); returns how many were read. */
static int read_until(struct ev_loop *loop, int mfd, const char *word)
{
	char buf[512];

	for (int i = 0, n = 0; i < 40; i++) {
		ssize_t len;

		while ((len = recv(mfd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
			buf[len] = '\0';
			n++;
			if (strstr(buf, word))
				return n;
		}
		ev_run(loop, EVRUN_ONCE);
	}
	fail_msg("never got %s", word);
	return -1;
}

/* READY=1 into a full queue: dropped and counted like any message, but
 * sent again (with STATUS) until taken; then the quick retries stop. */
static void test_ready_sent_again(void **state)
{
	struct manager *m = *state;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct ctd_notify *n;
	int queued = 0;
	char buf[64];

	n = ctd_notify_new(loop, &m->st, status, NULL);
	while (ctd_notify_send(n, "WATCHDOG=1", -1) == 1)
		queued++;
	ctd_notify_ready(n);
	assert_int_equal(m->st.notify_dropped, 2);
	/* The manager reads again: the queued pings, then READY. */
	assert_int_equal(read_until(loop, m->fd,
				    "READY=1\nWATCHDOG=1\nSTATUS=all good"),
			 queued + 1);
	ev_run(loop, EVRUN_NOWAIT);
	assert_int_equal(recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	ctd_notify_free(n);
	ev_loop_destroy(loop);
}

/* A re-exec says RELOADING=1, and a dump that ends while the old image
 * delivers what it holds does not make it say READY=1 after that. */
static void test_no_ready_once_stopping(void **state)
{
	struct manager *m = *state;
	struct ctd_notify *n;
	char buf[64];

	n = ctd_notify_new(EV_DEFAULT, &m->st, status, NULL);
	ctd_notify_stopping(n, 1);
	expect_msg(m, "RELOADING=1");
	ctd_notify_ready(n);
	assert_int_equal(recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	ctd_notify_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_manager),
#define M(fn) cmocka_unit_test_setup_teardown(fn, manager_setup, manager_teardown)
		M(test_ready_and_full_queue),
		M(test_ready_sent_again),
		M(test_no_ready_once_stopping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
