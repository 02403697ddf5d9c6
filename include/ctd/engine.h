/* engine: the hot path after parsing. Applies each event to the flow
 * table and hands completed-flow records and per-event notices to the
 * sinks main() wired in. Owns the flow table. Pure: time comes in as a
 * parameter, output goes out through callbacks. */
#ifndef CTD_ENGINE_H
#define CTD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

struct ctd_engine;
struct ctd_event;
struct ctd_record;
struct ctd_stats;
struct ctd_flowtable;
struct nlmsghdr;

struct ctd_engine_sinks {
	/* A flow completed: the record is valid only during the call. */
	void (*record)(void *arg, const struct ctd_record *rec);
	/* Every event, with the record when the event completed a flow. */
	void (*event)(void *arg, const struct ctd_event *ev,
		      const struct ctd_record *rec, uint64_t now_ns);
	void *arg;
};

struct ctd_engine *ctd_engine_new(size_t max_flows, struct ctd_stats *stats,
				  const struct ctd_engine_sinks *sinks);
void ctd_engine_free(struct ctd_engine *eng);

/* now_ns: wall-clock arrival time of the event. */
void ctd_engine_event(struct ctd_engine *eng, const struct ctd_event *ev,
		      uint64_t now_ns);

/* Parses one ctnetlink message and applies it; messages that are not
 * conntrack events and malformed ones are only counted. */
void ctd_engine_message(struct ctd_engine *eng, const struct nlmsghdr *nlh,
			uint64_t now_ns);

const struct ctd_flowtable *ctd_engine_flows(const struct ctd_engine *eng);

#endif
