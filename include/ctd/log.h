/* log: one line per message to stderr (journald picks it up under
 * systemd). Adapters log; pure modules return errors instead. */
#ifndef CTD_LOG_H
#define CTD_LOG_H

enum ctd_log_level { CTD_LOG_ERR, CTD_LOG_WARN, CTD_LOG_INFO, CTD_LOG_DEBUG };

void ctd_log_init(const char *progname, enum ctd_log_level max_level);
void ctd_log(enum ctd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   ctd_log(CTD_LOG_ERR, __VA_ARGS__)
#define log_warn(...)  ctd_log(CTD_LOG_WARN, __VA_ARGS__)
#define log_info(...)  ctd_log(CTD_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ctd_log(CTD_LOG_DEBUG, __VA_ARGS__)

#endif
