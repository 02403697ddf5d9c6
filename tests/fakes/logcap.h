/* logcap: captures what ctd logs (stderr) while a test runs a step, so
 * the test can assert the exact line an adapter wrote. */
#ifndef CTD_TEST_LOGCAP_H
#define CTD_TEST_LOGCAP_H

#include <stddef.h>

struct logcap {
	int saved_fd;              /* the real stderr, restored by end */
	int file_fd;               /* the temporary file lines go to */
	char text[4096];           /* what was logged, NUL-terminated */
};

/* Sends stderr to a temporary file; aborts the test on failure. */
void logcap_begin(struct logcap *lc);
/* Restores stderr and returns everything logged since begin. */
const char *logcap_end(struct logcap *lc);

#endif
