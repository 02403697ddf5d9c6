/* textfmt: the human-readable event line of `ctd -f`, like conntrack -E
 * but with duration and counters when a flow ends. Pure. */
#ifndef CTD_TEXTFMT_H
#define CTD_TEXTFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_event;
struct ctd_record;

#define CTD_TEXT_MAX 512

/* How a line gives the time of day: UTC ("16:00:00.123Z"), or local time
 * off_s seconds east of UTC ("17:00:00.123"; the caller reads the zone,
 * so this stays pure). NULL means UTC. */
struct ctd_textfmt_tz {
	bool utc;
	int32_t off_s;
};

/* rec is NULL unless the event completed a flow; netns names the
 * event's namespace when it is not ctd's own (NULL or "": "nsid:N").
 * Returns the length
 * written (newline included), or 0 when cap is too small; the line is
 * built with a trailing NUL, so cap must exceed the length by one.
 * CTD_TEXT_MAX always suffices. */
size_t ctd_textfmt_event(const struct ctd_event *ev,
			 const struct ctd_record *rec, const char *netns,
			 uint64_t now_ns, const struct ctd_textfmt_tz *tz,
			 char *buf, size_t cap);

/* The END line of a flow whose end no event told (rec->end_reason:
 * expired, lost, evicted, netns_gone), at rec->end_ns. */
size_t ctd_textfmt_end(const struct ctd_record *rec,
		       const struct ctd_textfmt_tz *tz, char *buf, size_t cap);

/* A tracked flow for `ctd -l`: the same tuple syntax, its age so far
 * (rec->end_ns is now) and the counters last known. */
size_t ctd_textfmt_flow(const struct ctd_record *rec, char *buf, size_t cap);

#endif
