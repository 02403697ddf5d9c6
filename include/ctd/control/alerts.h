/* alerts: the counters whose growth an admin must hear about (flows
 * evicted from a full table, malformed ctnetlink messages, refused or
 * stalled control clients, damaged spool stretches), logged at most once
 * per CTD_LOG_RATE_US each, with the count. Owns one rate gate per
 * counter; reads the counters it is given, never changes them. */
#ifndef CTD_ALERTS_H
#define CTD_ALERTS_H

#include <stddef.h>

struct ctd_alerts;
struct ctd_clock;
struct ctd_stats;

/* max_flows: the table's bound, named in the eviction line. */
struct ctd_alerts *ctd_alerts_new(const struct ctd_stats *st,
				  size_t max_flows);
void ctd_alerts_free(struct ctd_alerts *a);

/* Once per loop iteration: O(outputs); the clock is read only when a
 * counter moved. */
void ctd_alerts_check(struct ctd_alerts *a, const struct ctd_clock *clock);

#endif
