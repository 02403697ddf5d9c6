/* out_syslog: each ended flow as one syslog message on a local datagram
 * socket (/dev/log), in RFC 3164 or RFC 5424 form. Owns the socket and a
 * buffer of rendered messages sent in batches once per loop iteration;
 * a syslog daemon that is down or slow makes records wait on the retry
 * list, never blocks ctd. */
#ifndef CTD_OUT_SYSLOG_H
#define CTD_OUT_SYSLOG_H

#include <stdbool.h>

struct ctd_output;
struct ctd_output_desc;
struct ctd_setting_group;
struct ev_loop;

struct ctd_out_syslog_cfg {
	const char *socket;     /* normally /dev/log */
	unsigned facility;      /* 0 kern .. 23 local7 */
	unsigned level;         /* 0 emerg .. 7 debug */
	bool rfc5424;
};

int ctd_out_syslog_new(struct ev_loop *loop, const struct ctd_out_syslog_cfg *cfg,
		       struct ctd_output **ret);

/* The table's row (outputs.h): `syslog` and the syslog-* settings. */
extern const struct ctd_output_desc ctd_out_syslog_desc;
extern const struct ctd_setting_group ctd_out_syslog_settings;

#endif
