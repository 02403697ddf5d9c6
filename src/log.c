/* log: leveled one-line messages on stderr. The level and program name
 * are the only file-scope state outside main.c, as in the OpenBSD
 * daemons' log.c: every adapter logs, and threading a logger through
 * each would add a parameter to every function for no gain. */
#include <stdarg.h>
#include <stdio.h>

#include "ctd/log.h"

static const char *log_prog = "ctd";
static enum ctd_log_level log_max = CTD_LOG_INFO;

void ctd_log_init(const char *progname, enum ctd_log_level max_level)
{
	log_prog = progname;
	log_max = max_level;
}

void ctd_log(enum ctd_log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	char line[1024];
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s%s\n", log_prog, prefix[level], line);
}
