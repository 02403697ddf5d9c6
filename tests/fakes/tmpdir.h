/* tmpdir: a throw-away directory for a test that works on real files,
 * made under /tmp and removed with everything in it. */
#ifndef CTD_TEST_TMPDIR_H
#define CTD_TEST_TMPDIR_H

#include <stddef.h>

#define TMPDIR_MAX 64

/* Makes /tmp/ctd-<tag>-XXXXXX into dir (TMPDIR_MAX bytes); aborts the
 * test on failure. */
void tmpdir_make(char *dir, const char *tag);
/* Removes dir and everything below it; aborts the test on failure. */
void tmpdir_remove(const char *dir);

#endif
