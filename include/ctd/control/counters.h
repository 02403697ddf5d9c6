/* counters: ctd's counters as ctd -s prints them, as JSON and as the
 * Prometheus exposition. Owns the one table that gives each counter its
 * public names (the ctd -s and JSON key, the Prometheus family with its
 * type and help); the struct itself is base/stats.h. */
#ifndef CTD_COUNTERS_H
#define CTD_COUNTERS_H

#include <stdbool.h>
#include <stdio.h>

struct ctd_stats;

/* One "name value" line per counter. */
void ctd_counters_print(const struct ctd_stats *st, FILE *f);
/* For a person (ctd -s): the same lines and names, indented under a
 * title per group (kernel events, flows, records, ...; netns only when
 * used) and per output, leaving out an output's counters its kind never
 * moves (an IPFIX acknowledgement for the JSON file) unless nonzero. */
void ctd_counters_print_grouped(const struct ctd_stats *st, FILE *f);
/* The same as one JSON object; per-output counters under "outputs". */
void ctd_counters_print_json(const struct ctd_stats *st, FILE *f);
/* The Prometheus text exposition: a family per counter with HELP and
 * TYPE, counters ending in _total and units in the names (ctd_events_total
 * {type="new"}, ctd_netlink_rcvbuf_bytes), and ctd_output_<counter>
 * {output="name"} per output. */
void ctd_counters_print_prometheus(const struct ctd_stats *st, FILE *f);
/* The HELP and TYPE lines of one family, for the report's own families. */
void ctd_counters_prometheus_family(FILE *f, const char *name, bool gauge,
				    const char *help);

#endif
