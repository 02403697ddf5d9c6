/* logcap: stderr redirected to an unlinked temporary file and read back.
 * A file rather than a pipe, so a long burst of lines cannot block the
 * test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "logcap.h"

void logcap_begin(struct logcap *lc)
{
	char path[] = "/tmp/ctd-logcap-XXXXXX";

	fflush(stderr);
	lc->file_fd = mkstemp(path);
	assert_true(lc->file_fd >= 0);
	unlink(path);
	lc->saved_fd = dup(STDERR_FILENO);
	assert_true(lc->saved_fd >= 0);
	assert_true(dup2(lc->file_fd, STDERR_FILENO) >= 0);
}

const char *logcap_end(struct logcap *lc)
{
	ssize_t n;

	fflush(stderr);
	assert_true(dup2(lc->saved_fd, STDERR_FILENO) >= 0);
	close(lc->saved_fd);
	n = pread(lc->file_fd, lc->text, sizeof(lc->text) - 1, 0);
	close(lc->file_fd);
	assert_true(n >= 0);
	lc->text[n] = '\0';
	return lc->text;
}
