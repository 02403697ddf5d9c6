/* netnstab: the `netns` setting's names, nsid bookkeeping and the labels
 * records get. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/kernel/ctevent.h"
#include "ctd/sync/netnstab.h"

static void test_specs(void **state)
{
	struct ctd_netnstab *t;

	(void)state;
	assert_false(ctd_netnstab_enabled("self"));
	assert_false(ctd_netnstab_enabled(""));
	assert_true(ctd_netnstab_enabled("all"));
	assert_true(ctd_netnstab_enabled("a,b"));
	assert_null(ctd_netnstab_new("a,,b"));
	assert_null(ctd_netnstab_new("a,"));
	assert_null(ctd_netnstab_new("../x"));
	assert_null(ctd_netnstab_new(".."));
	t = ctd_netnstab_new("red,blue");
	assert_non_null(t);
	assert_true(ctd_netnstab_wants(t, "red"));
	assert_true(ctd_netnstab_wants(t, "blue"));
	assert_false(ctd_netnstab_wants(t, "re"));
	assert_false(ctd_netnstab_wants(t, "blue2"));
	assert_false(ctd_netnstab_all(t));
	ctd_netnstab_free(t);
	t = ctd_netnstab_new("all");
	assert_true(ctd_netnstab_wants(t, "anything"));
	assert_true(ctd_netnstab_all(t));
	ctd_netnstab_free(t);
}

static void test_add_find_remove(void **state)
{
	struct ctd_netnstab *t = ctd_netnstab_new("all");
	struct ctd_netns *e, *f;
	size_t pos = 0, n = 0;

	(void)state;
	assert_int_equal(ctd_netnstab_add(t, 5, "red", &e), 0);
	assert_int_equal(e->fd, -1);
	assert_int_equal(ctd_netnstab_add(t, 5, "x", &f), -EEXIST);
	assert_int_equal(ctd_netnstab_add(t, -1, "x", &f), -ERANGE);
	assert_int_equal(ctd_netnstab_add(t, CTD_NETNS_NSID_MAX, "x", &f), -ERANGE);
	assert_int_equal(ctd_netnstab_add(t, 1000, "blue", &f), 0);
	assert_ptr_equal(ctd_netnstab_get(t, 5), e);
	assert_ptr_equal(ctd_netnstab_find(t, "blue"), f);
	assert_null(ctd_netnstab_get(t, 6));
	assert_null(ctd_netnstab_get(t, 1 << 20));
	while (ctd_netnstab_next(t, &pos))
		n++;
	assert_int_equal(n, 2);
	assert_int_equal(ctd_netnstab_count(t), 2);
	ctd_netnstab_remove(t, 5);
	assert_null(ctd_netnstab_get(t, 5));
	assert_int_equal(ctd_netnstab_count(t), 1);
	ctd_netnstab_free(t);
}

static void test_labels_and_admission(void **state)
{
	struct ctd_netnstab *t = ctd_netnstab_new("red");
	char longname[100], buf[48];
	struct ctd_netns *e;

	(void)state;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(ctd_netnstab_add(t, 2, "red", &e), 0);
	assert_int_equal(ctd_netnstab_add(t, 3, longname, &e), 0);
	ctd_netnstab_label(t, 2, buf, sizeof(buf));
	assert_string_equal(buf, "red");
	ctd_netnstab_label(t, 3, buf, sizeof(buf));
	assert_string_equal(buf, "nsid:3");      /* too long for records */
	ctd_netnstab_label(t, 9, buf, sizeof(buf));
	assert_string_equal(buf, "nsid:9");
	ctd_netnstab_label(t, CTD_NSID_SELF, buf, sizeof(buf));
	assert_string_equal(buf, "");
	assert_true(ctd_netnstab_admits(t, CTD_NSID_SELF));
	assert_true(ctd_netnstab_admits(t, 2));
	assert_false(ctd_netnstab_admits(t, 9));     /* not in the list */
	ctd_netnstab_free(t);
	t = ctd_netnstab_new("all");
	assert_true(ctd_netnstab_admits(t, 9));      /* all: heard, unnamed */
	ctd_netnstab_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_specs),
		cmocka_unit_test(test_add_find_remove),
		cmocka_unit_test(test_labels_and_admission),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
