/* Tests for src/notify.c against a real datagram socket standing in for
 * the service manager: nothing is sent without NOTIFY_SOCKET; READY goes
 * with a STATUS line; and a manager that stops reading costs ctd nothing but a count: sends never
 * block and what does not fit is dropped and counted. */
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

#include "ctd/notify.h"
#include "ctd/stats.h"
#include "tmpdir.h"

static void status(void *arg, char *buf, size_t cap)
{
	(void)arg;
	snprintf(buf, cap, "all good");
}

static int manager(const char *dir, char *path, size_t cap)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(path, cap, "%s/notify", dir);
	strcpy(sa.sun_path, path);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
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
	char dir[TMPDIR_MAX], path[128], buf[512];
	struct ctd_stats st = { 0 };
	struct ctd_notify *n;
	int mfd, sent = 0, dropped = 0;
	ssize_t len;

	(void)state;
	tmpdir_make(dir, "notify");
	mfd = manager(dir, path, sizeof(path));
	setenv("NOTIFY_SOCKET", path, 1);
	n = ctd_notify_new(EV_DEFAULT, &st, status, NULL);
	assert_true(ctd_notify_active(n));
	ctd_notify_ready(n);
	len = recv(mfd, buf, sizeof(buf) - 1, 0);
	assert_true(len > 0);
	buf[len] = '\0';
	assert_string_equal(buf, "READY=1\nSTATUS=all good");
	/* Nobody reads: the queue fills, then sends are dropped, never wait. */
	for (int i = 0; i < 1000; i++) {
		int r = ctd_notify_send(n, "WATCHDOG=1", -1);

		sent += r == 1;
		dropped += r == -EAGAIN;
	}
	assert_true(sent > 0 && dropped > 0);
	assert_int_equal(st.notify_dropped, (uint64_t)dropped);
	ctd_notify_free(n);
	close(mfd);
	unsetenv("NOTIFY_SOCKET");
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_manager),
		cmocka_unit_test(test_ready_and_full_queue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
