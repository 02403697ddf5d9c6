/* tmpdir: see tmpdir.h. Removal walks the tree itself (nftw), so no
 * shell sees the path. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "tmpdir.h"

void tmpdir_make(char *dir, const char *tag)
{
	int n = snprintf(dir, TMPDIR_MAX, "/tmp/ctd-%s-XXXXXX", tag);

	assert_true(n > 0 && n < TMPDIR_MAX);
	assert_non_null(mkdtemp(dir));
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

void tmpdir_remove(const char *dir)
{
	assert_int_equal(nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}
