/* log: leveled one-line messages on stderr. The level, program name and
 * whether stderr is the journal are the only file-scope state outside
 * main.c, as in the OpenBSD daemons' log.c: every adapter logs, and
 * threading a logger through each would add a parameter to every
 * function for no gain. The rate gate for counter lines keeps its state
 * in the caller's struct and is given the time, so it is tested without
 * a clock.
 *
 * Under systemd stderr is a stream to journald, which stores every line
 * at the unit's default priority unless the line starts with "<N>"
 * (sd-daemon(3)); the journal names the unit itself, so the program
 * prefix only repeats it. systemd sets JOURNAL_STREAM to the stream's
 * device and inode, so a child whose stderr was redirected elsewhere
 * (a terminal, a file) keeps the plain format. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctd/base/log.h"

static const char *log_prog = "ctd";
static enum ctd_log_level log_max = CTD_LOG_INFO;
static bool log_journal;
static const char *log_part = "";

bool ctd_log_is_journal(const char *journal_stream, int fd)
{
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (!journal_stream ||
	    sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(fd, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void ctd_log_init(const char *progname, enum ctd_log_level max_level)
{
	log_prog = progname;
	log_max = max_level;
	log_journal = ctd_log_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO);
}

void ctd_log_part(const char *part)
{
	log_part = part;
}

/* One line: "<priority>line" into the journal, else "prog: tag line". */
static void emit(enum ctd_log_level level, const char *tag, const char *line)
{
	/* syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
	static const int priority[] = { 3, 4, 6, 7 };

	if (log_journal)
		fprintf(stderr, "<%d>%s%s\n", priority[level], log_part, line);
	else
		fprintf(stderr, "%s: %s%s%s\n", log_prog, log_part, tag, line);
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
	emit(level, prefix[level], line);
}

/* No level word in a terminal: ctd -t's lines read "ctd: FILE:LINE: ...". */
void ctd_log_tool(enum ctd_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	emit(level, "", line);
}

const char *ctd_log_errstr(int err)
{
	/* The unit's ProtectSystem=strict makes everything outside its
	 * ReadWritePaths read-only: say where to widen it. */
	if (err == EROFS)
		return "read-only file system (under systemd: add the directory "
		       "to ReadWritePaths= in a drop-in, see ctd(8))";
	return strerror(err);
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
