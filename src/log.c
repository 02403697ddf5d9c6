/* log: leveled one-line messages on stderr. The level and program name
 * are the only file-scope state outside main.c, as in the OpenBSD
 * daemons' log.c: every adapter logs, and threading a logger through
 * each would add a parameter to every function for no gain. The rate
 * gate for counter lines keeps its state in the caller's struct and is
 * given the time, so it is tested without a clock. */
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

uint64_t ctd_log_rate_due(struct ctd_log_rate *r, uint64_t n, int64_t now_us)
{
	uint64_t grew;

	if (n <= r->logged) {
		r->logged = n;
		return 0;
	}
	if (r->at_us && now_us - r->at_us < CTD_LOG_RATE_US)
		return 0;
	grew = n - r->logged;
	r->logged = n;
	r->at_us = now_us;
	return grew;
}

void ctd_log_growth(struct ctd_log_rate *r, uint64_t n, int64_t now_us,
		    const char *source, const char *what)
{
	n = ctd_log_rate_due(r, n, now_us);
	if (n)
		ctd_log(CTD_LOG_WARN, "%s: %llu %s", source,
			(unsigned long long)n, what);
}
