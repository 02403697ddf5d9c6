/* Tests for src/nlpeers.c on /proc/net/netlink text as the kernel writes
 * it: the DESTROY listener with bytes queued and the most drops is
 * named; ctd's own socket, other protocols, other groups and listeners
 * that keep up are not; a file in another format is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/kernel/nlpeers.h"

#define HEAD "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n"
/* proto 12, DESTROY (bit 2), queued and dropping: the suspects. */
#define STUCK_A "000000002a1b3c4d 12  4242       00000004 212992   0        0     2        840      31337   \n"
#define STUCK_B "000000002a1b3c4e 12  777        00000007 4096     0        0     2        9000     31338   \n"
#define OWN     "000000002a1b3c4f 12  100        00000004 999999   0        0     2        99999    31339   \n"
#define KEEPS_UP "000000002a1b3c50 12  555       00000004 0        0        0     2        12       31340   \n"
#define NEW_ONLY "000000002a1b3c51 12  556       00000001 5000     0        0     2        50000    31341   \n"
#define ROUTE   "00000000fde9a216 0   557        00000004 5000     0        0     2        70000    4       \n"

static int run(const char *text, uint32_t own, struct ctd_nlpeer *ret)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int r;

	assert_non_null(f);
	r = ctd_nlpeers_stuck(f, own, ret);
	fclose(f);
	return r;
}

static void test_names_the_worst_other_listener(void **unused)
{
	struct ctd_nlpeer p;

	(void)unused;
	assert_int_equal(run(HEAD STUCK_A OWN STUCK_B KEEPS_UP, 100, &p), 1);
	assert_int_equal(p.portid, 777);
	assert_int_equal(p.drops, 9000);
	assert_int_equal(p.rmem, 4096);
	assert_int_equal(p.inode, 31338);
}

static void test_ignores_own_other_groups_and_protocols(void **unused)
{
	struct ctd_nlpeer p;

	(void)unused;
	assert_int_equal(run(HEAD OWN KEEPS_UP NEW_ONLY ROUTE, 100, &p), 0);
	assert_int_equal(run(HEAD, 100, &p), 0);
}

static void test_refuses_other_formats(void **unused)
{
	struct ctd_nlpeer p;

	(void)unused;
	assert_int_equal(run("hello\n", 100, &p), -EBADMSG);
	assert_int_equal(run(HEAD "garbage line\n", 100, &p), -EBADMSG);
	assert_int_equal(run("", 100, &p), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_the_worst_other_listener),
		cmocka_unit_test(test_ignores_own_other_groups_and_protocols),
		cmocka_unit_test(test_refuses_other_formats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
