/* ctlogfmt: a record as the line conntrackd's stats mode writes to its
 * LogFile, so parsers written for conntrackd keep working. The text
 * after the time is libnetfilter_conntrack's own plain rendering (the
 * one conntrackd uses), so the two cannot differ. Owns one reusable
 * conntrack object: no allocation per record. */
#ifndef CTD_CTLOGFMT_H
#define CTD_CTLOGFMT_H

#include <stddef.h>

struct ctd_ctlog;
struct ctd_record;

#define CTD_CTLOG_MAX 1024

struct ctd_ctlog *ctd_ctlog_new(void);
void ctd_ctlog_free(void *ctlog);

/* Only flows that ended get a line, as in conntrackd: 0 for interim and
 * event records. The time is the flow's end, in local time. */
size_t ctd_ctlog_line(void *ctlog, const struct ctd_record *rec, char *buf,
		      size_t cap);
/* The same without the time and newline: the syslog message. */
size_t ctd_ctlog_text(struct ctd_ctlog *c, const struct ctd_record *rec,
		      char *buf, size_t cap);

#endif
