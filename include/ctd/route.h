/* route: where what the engine makes goes. A record or event record is
 * named (its namespace, when ctd watches others), filtered (counted in
 * records_filtered when left out) and handed to delivery; an event, to
 * the -f lines. Owns nothing: it points at the running modules, which
 * main sets up (the filter through a pointer a reload replaces). */
#ifndef CTD_ROUTE_H
#define CTD_ROUTE_H

#include <stdint.h>

struct ctd_deliver;
struct ctd_event;
struct ctd_filter;
struct ctd_netns_watch;
struct ctd_now;
struct ctd_out_text;
struct ctd_record;
struct ctd_stats;

struct ctd_route {
	struct ctd_filter **filter;
	struct ctd_deliver *deliver;
	struct ctd_out_text *text;       /* NULL without -f */
	struct ctd_netns_watch *netns;   /* NULL: ctd's own namespace only */
	struct ctd_stats *stats;
};

/* The engine's sinks (struct ctd_engine_sinks), arg a struct ctd_route. */
void ctd_route_record(void *arg, const struct ctd_record *rec);
void ctd_route_event(void *arg, const struct ctd_event *ev,
		     const struct ctd_record *rec, const struct ctd_now *now);
void ctd_route_flow_event(void *arg, const struct ctd_record *rec,
			  uint8_t *missed);

#endif
