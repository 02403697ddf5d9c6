/* recording: test helper that indexes the messages of a recorded file. */
#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <libmnl/libmnl.h>

#include "recording.h"

void recording_load(struct recording *rec, const char *name)
{
	char path[512];
	const struct nlmsghdr *nlh;
	FILE *f;
	long size;
	int left;

	snprintf(path, sizeof(path), "%s/%s", CTD_TEST_DATA, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	rec->data = malloc((size_t)size);
	assert_non_null(rec->data);
	assert_int_equal(fread(rec->data, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	rec->len = (size_t)size;
	rec->count = 0;
	left = (int)size;
	for (nlh = (const struct nlmsghdr *)rec->data; mnl_nlmsg_ok(nlh, left);
	     nlh = mnl_nlmsg_next(nlh, &left)) {
		assert_true(rec->count < sizeof(rec->msgs) / sizeof(rec->msgs[0]));
		rec->msgs[rec->count++] = nlh;
	}
	/* The whole file must be messages: a torn recording is a test bug. */
	assert_int_equal(left, 0);
}

void recording_free(struct recording *rec)
{
	free(rec->data);
	rec->data = NULL;
	rec->count = 0;
}
