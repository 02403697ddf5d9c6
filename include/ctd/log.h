/* log: one line per message to stderr (journald picks it up under
 * systemd, with each line's priority). Adapters log; pure modules return
 * errors instead. */
#ifndef CTD_LOG_H
#define CTD_LOG_H

#include <stdbool.h>

enum ctd_log_level { CTD_LOG_ERR, CTD_LOG_WARN, CTD_LOG_INFO, CTD_LOG_DEBUG };

/* Also checks whether stderr is the journal (JOURNAL_STREAM): then each
 * line is "<priority>message" instead of "progname: level: message". */
void ctd_log_init(const char *progname, enum ctd_log_level max_level);
/* True when journal_stream ("dev:inode", systemd's JOURNAL_STREAM) names
 * the file fd is open on. */
bool ctd_log_is_journal(const char *journal_stream, int fd);
/* strerror(err), with how to fix it where the fix is ctd's unit (EROFS:
 * ReadWritePaths). For messages about files ctd opens or writes. */
const char *ctd_log_errstr(int err);
void ctd_log(enum ctd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   ctd_log(CTD_LOG_ERR, __VA_ARGS__)
#define log_warn(...)  ctd_log(CTD_LOG_WARN, __VA_ARGS__)
#define log_info(...)  ctd_log(CTD_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ctd_log(CTD_LOG_DEBUG, __VA_ARGS__)

#endif
