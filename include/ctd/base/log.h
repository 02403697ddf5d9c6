/* log: one line per message to stderr (journald picks it up under
 * systemd, with each line's priority), and a rate gate for lines that
 * report a counter's growth. Adapters log; pure modules return errors
 * instead. */
#ifndef CTD_LOG_H
#define CTD_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum ctd_log_level { CTD_LOG_ERR, CTD_LOG_WARN, CTD_LOG_INFO, CTD_LOG_DEBUG };

/* Also checks whether stderr is the journal (JOURNAL_STREAM): then each
 * line is "<priority>message" instead of "progname: level: message". */
void ctd_log_init(const char *progname, enum ctd_log_level max_level);
/* Every line starts with part from now on ("shard 2: "; "" none): the
 * shards of one ctd share its stderr and its journal stream. part must
 * outlive the logging. */
void ctd_log_part(const char *part);
/* True when journal_stream ("dev:inode", systemd's JOURNAL_STREAM) names
 * the file fd is open on. */
bool ctd_log_is_journal(const char *journal_stream, int fd);
/* strerror(err), with how to fix it where the fix is ctd's unit (EROFS:
 * ReadWritePaths). For messages about files ctd opens or writes. */
const char *ctd_log_errstr(int err);
void ctd_log(enum ctd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A line of a one-shot command (ctd -t, a refused configuration):
 * "progname: message" as admins and scripts read it in a terminal, and
 * "<priority>message" when stderr is the journal, so the check systemd
 * runs before a reload fails at priority err, not at the unit's info. */
void ctd_log_tool(enum ctd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   ctd_log(CTD_LOG_ERR, __VA_ARGS__)
#define log_warn(...)  ctd_log(CTD_LOG_WARN, __VA_ARGS__)
#define log_info(...)  ctd_log(CTD_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ctd_log(CTD_LOG_DEBUG, __VA_ARGS__)

/* A counter whose growth is logged at most once per CTD_LOG_RATE_US, so
 * a burst or a hostile peer cannot flood the log; the counter itself
 * keeps the whole count. Starts zeroed; times are monotonic
 * microseconds, never 0. */
struct ctd_log_rate {
	uint64_t logged;           /* the counter when last logged */
	int64_t at_us;             /* and when; 0 never */
};

#define CTD_LOG_RATE_US 10000000

/* Whether counter n moved since it was last seen: a caller that runs
 * often reads the clock for ctd_log_rate_due only then. */
static inline bool ctd_log_rate_moved(const struct ctd_log_rate *r, uint64_t n)
{
	return n != r->logged;
}
/* How much n grew since it was last logged, when a line is due at
 * now_us; else 0. A counter that went back (its output reopened)
 * restarts from there. */
uint64_t ctd_log_rate_due(struct ctd_log_rate *r, uint64_t n, int64_t now_us);
/* The warning "source: GROWTH what", when a line is due. */
void ctd_log_growth(struct ctd_log_rate *r, uint64_t n, int64_t now_us,
		    const char *source, const char *what);

#endif
