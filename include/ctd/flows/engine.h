/* engine: the hot path after parsing. Applies each event to the flow
 * table, keeps every tracked flow on its expiry list, and hands records
 * and per-event notices to the sinks main() wired in. Flows that time
 * out here become suspects, decided by the next table dump (one dump for
 * all of them, never a request per flow). Owns the flow table and the
 * expiry lists. Pure: time comes in as a parameter, output goes out
 * through callbacks, dumps are driven by the caller (reconcile_ev). */
#ifndef CTD_ENGINE_H
#define CTD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/flows/expiry.h"

struct ctd_engine;
struct ctd_event;
struct ctd_record;
struct ctd_stats;
struct ctd_flowtable;
struct nlmsghdr;
struct ctd_now;

struct ctd_engine_sinks {
	/* A flow completed: the record is valid only during the call. */
	void (*record)(void *arg, const struct ctd_record *rec);
	/* Every event, with the record when the event completed a flow. */
	void (*event)(void *arg, const struct ctd_event *ev,
		      const struct ctd_record *rec, const struct ctd_now *now);
	/* A NEW or UPDATE as an event record (only with want_events).
	 * missed is the flow's missed-event cache, kept by the sink. */
	void (*flow_event)(void *arg, const struct ctd_record *rec,
			   uint8_t *missed);
	void *arg;
};

struct ctd_engine_cfg {
	size_t max_flows;                    /* 0: no bound */
	uint32_t timeout_s[CTD_TMO__COUNT];  /* the kernel's, per class */
	uint32_t slack_s;                    /* added to every timeout */
	uint64_t started_ns;                 /* wall clock ctd began listening */
	uint32_t active_timeout_s;           /* interim records; 0: none */
	bool want_events;                    /* some output takes NEW/UPDATE */
	/* Ended flows remembered to drop repeated DESTROYs (0: only while
	 * a dump runs). */
	size_t remember_ends;
	/* shards > 1: dumps list every conntrack, the events only shard's
	 * (shardfilter.h); dump entries of other shards are not ours. */
	unsigned shard, shards;
};

struct ctd_engine *ctd_engine_new(const struct ctd_engine_cfg *cfg,
				  struct ctd_stats *stats,
				  const struct ctd_engine_sinks *sinks);
void ctd_engine_free(struct ctd_engine *eng);

void ctd_engine_event(struct ctd_engine *eng, const struct ctd_event *ev,
		      const struct ctd_now *now);
/* Parses one ctnetlink message and applies it; messages that are not
 * conntrack events and malformed ones are only counted. */
void ctd_engine_message(struct ctd_engine *eng, const struct nlmsghdr *nlh,
			const struct ctd_now *now);
/* The same for a batch of messages: parsed first, their flows fetched
 * into the cache ahead of use (a storm's DESTROYs come in the kernel's
 * hash order, so each one finds its flow cold), then applied in order. */
void ctd_engine_messages(struct ctd_engine *eng,
			 const struct nlmsghdr *const *msgs, size_t n,
			 const struct ctd_now *now);
/* The same with the namespace each message came from (nsids[i]; NULL:
 * all from ctd's own). */
void ctd_engine_messages_ns(struct ctd_engine *eng,
			    const struct nlmsghdr *const *msgs,
			    const int32_t *nsids, size_t n,
			    const struct ctd_now *now);

/* A watched namespace is going: DESTROYs from it (the flush ctd makes
 * before letting go) end as "netns_gone". -ENOSPC when
 * CTD_ENGINE_GOING_MAX namespaces are already going. */
#define CTD_ENGINE_GOING_MAX 16
int ctd_engine_netns_going(struct ctd_engine *eng, int32_t nsid);
/* The namespace is gone: every flow of it still tracked ends as
 * "netns_gone" with the last counters a dump gave (CTD_REC_DUMP_COUNTERS),
 * and its going mark is cleared. O(flows): once per namespace. Returns
 * the number of such records. */
size_t ctd_engine_netns_gone(struct ctd_engine *eng, int32_t nsid,
			     const struct ctd_now *now);

/* Moves up to budget timed-out flows to the suspect queue. Returns the
 * next deadline (monotonic µs; now when the budget ran out). */
int64_t ctd_engine_sweep(struct ctd_engine *eng, const struct ctd_now *now,
			 size_t budget);
int64_t ctd_engine_next_deadline(const struct ctd_engine *eng);
/* True when suspects wait for a dump to decide them. */
bool ctd_engine_wants_dump(const struct ctd_engine *eng);

/* A table dump: begin, one entry per conntrack listed, end. Flows the
 * dump lists are alive; suspects it does not list are completed as
 * expired when it ends with ok. Unknown flows are added (start unseen).
 * A resync dump (after events were lost) also completes, as "lost",
 * every flow neither listed nor heard of since the dump began. */
void ctd_engine_dump_begin(struct ctd_engine *eng, bool resync);
void ctd_engine_dump_entry(struct ctd_engine *eng, const struct ctd_event *ev,
			   const struct ctd_now *now);
/* During a dump: a conntrack on the kernel's dying list, whose DESTROY
 * the kernel holds for us. Its flow is alive for this dump's verdict. */
void ctd_engine_dump_pending(struct ctd_engine *eng, const struct ctd_event *ev);
void ctd_engine_dump_end(struct ctd_engine *eng, bool ok,
			 const struct ctd_now *now);

const struct ctd_flowtable *ctd_engine_flows(const struct ctd_engine *eng);

#endif
