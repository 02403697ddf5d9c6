/* out_text: the human-readable event stream of `ctd -f` on a file
 * descriptor (normally stdout), filtered as the records are. Owns its
 * write buffer, not the fd. */
#ifndef CTD_OUT_TEXT_H
#define CTD_OUT_TEXT_H

#include <stdbool.h>
#include <stdint.h>

struct ctd_out_text;
struct ctd_event;
struct ctd_filter;
struct ctd_record;
struct ctd_stats;

/* Lines in local time, or in UTC with utc (--utc). */
struct ctd_out_text *ctd_out_text_new(int fd, struct ctd_stats *stats,
				      bool utc);
void ctd_out_text_free(struct ctd_out_text *out);
/* One line for ev (rec: the record a DESTROY completed, or NULL; netns:
 * the name of ev's namespace, or NULL), unless filter (the filter-*
 * settings) leaves the flow out. */
void ctd_out_text_event(struct ctd_out_text *out,
			const struct ctd_filter *filter,
			const struct ctd_event *ev,
			const struct ctd_record *rec, const char *netns,
			uint64_t now_ns);
/* The END line of a flow that ended without a DESTROY event (expired,
 * lost, evicted, its namespace gone), which the records filter passed. */
void ctd_out_text_end(struct ctd_out_text *out, const struct ctd_record *rec);
int ctd_out_text_flush(struct ctd_out_text *out);

#endif
