/* recording: loads a file written by `ctd --record` and walks its
 * netlink messages, so tests replay what the kernel really sent. */
#ifndef CTD_TEST_RECORDING_H
#define CTD_TEST_RECORDING_H

#include <stddef.h>

struct nlmsghdr;

struct recording {
	char *data;
	size_t len;
	const struct nlmsghdr *msgs[512];
	size_t count;
};

/* Loads CTD_TEST_DATA/name; aborts the test on failure. */
void recording_load(struct recording *rec, const char *name);
void recording_free(struct recording *rec);

#endif
