/* Tests for src/base/mountinfo.c on /proc/self/mountinfo text: the mount
 * with the longest mount point containing the path decides; a read-only
 * bind mount and a read-only file system are told apart; a mount point
 * that only shares a prefix ("/var/log2") does not count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/base/mountinfo.h"

#define MOUNTS \
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n" \
	"40 22 8:1 /var/log /var/log ro,nosuid master:1 - ext4 /dev/sda1 rw\n" \
	"41 22 8:2 / /var/log2 rw,relatime - ext4 /dev/sdb1 ro,errors=remount-ro\n" \
	"42 22 8:3 / /srv/data rw,relatime shared:9 - ext4 /dev/sdc1 ro\n" \
	"43 42 0:50 / /srv/data/tmp rw - tmpfs tmpfs rw,size=1024k\n" \
	"44 22 7:0 / /srv/e4 rw,relatime - ext4 /dev/loop0 rw,errors=remount-ro,emergency_ro\n"

static enum ctd_rofs why(const char *path)
{
	FILE *f = fmemopen((void *)MOUNTS, strlen(MOUNTS), "r");
	enum ctd_rofs r;

	assert_non_null(f);
	r = ctd_mountinfo_rofs(f, path);
	fclose(f);
	return r;
}

static void test_causes(void **unused)
{
	(void)unused;
	assert_int_equal(why("/var/log/ctd/flows.json"), CTD_ROFS_BIND);
	assert_int_equal(why("/var/log2/flows.json"), CTD_ROFS_FS);
	assert_int_equal(why("/srv/data/flows.json"), CTD_ROFS_FS);
	assert_int_equal(why("/srv/data/tmp/flows.json"), CTD_ROFS_UNKNOWN);
	assert_int_equal(why("/etc/ctd/ctd.conf"), CTD_ROFS_UNKNOWN);
	assert_int_equal(why("/srv/e4/flows.json"), CTD_ROFS_FS);
	assert_non_null(strstr(ctd_mountinfo_rofs_text(CTD_ROFS_BIND),
			       "ReadWritePaths"));
	assert_null(strstr(ctd_mountinfo_rofs_text(CTD_ROFS_FS),
			   "ReadWritePaths"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_causes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
