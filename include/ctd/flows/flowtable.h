/* flowtable: the flows ctd currently tracks, keyed by conntrack id,
 * original tuple, zone and network namespace (ids and tuples repeat
 * across namespaces). Owns every struct ctd_flow and the hash links
 * between them (private to flowtable.c; others walk the table with
 * ctd_flowtable_next); flows come from a slab pool so the event path
 * never calls malloc once the pool is warm. Pure: no clock, no I/O. */
#ifndef CTD_FLOWTABLE_H
#define CTD_FLOWTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "ctd/flows/expiry.h"
#include "ctd/kernel/ctevent.h"

struct ctd_flowtable;
struct ctd_flow_slot;

struct ctd_flow_key {
	struct ctd_tuple orig;
	uint32_t id;
	uint16_t zone;
	uint8_t family;
	uint8_t proto;
	int32_t nsid;                  /* CTD_NSID_SELF: ctd's namespace */
};

enum {
	CTD_FLOW_NEW_SEEN     = 1u << 0,  /* a NEW or UPDATE arrived before the end */
	CTD_FLOW_LABELS       = 1u << 1,  /* labels[] is valid */
	CTD_FLOW_FROM_DUMP    = 1u << 2,  /* first known from a table dump */
	CTD_FLOW_COUNTERS     = 1u << 3,  /* cnt[] holds the kernel's counters */
	CTD_FLOW_KERNEL_START = 1u << 4,  /* first_ns is the kernel's start time */
	CTD_FLOW_SUSPECT      = 1u << 5,  /* expired here: waiting for a dump */
	CTD_FLOW_TOMBSTONE    = 1u << 6,  /* ended during a dump: no record left */
	CTD_FLOW_REPORTED     = 1u << 7,  /* an interim record went out */
};

/* What few flows need, in a pool of its own so that a tracked flow
 * (with its hash link) stays at 128 bytes: counters from table dumps, the state of interim
 * reports, and labels. */
struct ctd_flow_cold {
	struct ctd_counters cnt[CTD_DIR__COUNT];  /* last known, from a dump */
	struct ctd_counters reported[CTD_DIR__COUNT]; /* at the last interim */
	uint64_t report_ns;            /* wall clock of the last interim, or 0 */
	uint8_t labels[16];
};

enum {
	CTD_FLOW_REPLY_KNOWN  = 1u << 0,  /* the reply tuple is known */
	CTD_FLOW_EVICTED      = 1u << 1,  /* a tombstone of a flow evicted
	                                   * alive: its DESTROY is to come */
};

/* A suspect's expiry deadline has passed and is not read again: its
 * exp.deadline_us holds the generation of the dump that decides it
 * (ctd_flow_suspect_gen), which keeps the flow at 128 bytes with the
 * namespace in its key. */
struct ctd_flow {
	struct ctd_expiry_node exp;    /* expiry list, or the suspect queue */
	struct ctd_flow_key key;
	uint32_t status;
	uint32_t mark;
	uint32_t gen;                  /* the last dump that listed the flow */
	uint8_t tcp_state;
	uint8_t flags;                 /* CTD_FLOW_* */
	uint8_t missed;                /* events outputs could not take yet */
	uint8_t more;                  /* CTD_FLOW_REPLY_KNOWN */
	uint64_t first_ns;             /* wall clock: start, or first event seen */
	/* The reply tuple when it is not the original one reversed (NAT,
	 * ICMP); NULL otherwise. Set with ctd_flow_set_reply. */
	struct ctd_tuple *reply;
	struct ctd_flow_cold *cold;    /* NULL until needed: ctd_flow_cold() */
};

/* The reply tuple: stored apart only when it is not the original
 * reversed. -ENOMEM leaves the flow's reply unknown. */
int ctd_flow_set_reply(struct ctd_flowtable *ft, struct ctd_flow *f,
		       const struct ctd_tuple *reply);
/* The reply tuple, all zero when it was never known. */
void ctd_flow_reply(const struct ctd_flow *f, struct ctd_tuple *ret);
/* The flow's cold part, zeroed when new; NULL when out of memory. */
struct ctd_flow_cold *ctd_flow_cold(struct ctd_flowtable *ft,
				    struct ctd_flow *f);
/* Gives back the reply and cold parts (a flow that becomes a tombstone). */
void ctd_flow_strip(struct ctd_flowtable *ft, struct ctd_flow *f);

/* max_flows bounds the pool; 0 means no bound. */
struct ctd_flowtable *ctd_flowtable_new(size_t max_flows);
void ctd_flowtable_free(struct ctd_flowtable *ft);

void ctd_flow_key_from_event(const struct ctd_event *ev,
			     struct ctd_flow_key *ret_key);
struct ctd_flow *ctd_flowtable_lookup(struct ctd_flowtable *ft,
				      const struct ctd_flow_key *key);
/* The key's hash, computed once per message for the calls below. */
uint64_t ctd_flowtable_hash(const struct ctd_flow_key *key);
struct ctd_flow *ctd_flowtable_lookup_hashed(struct ctd_flowtable *ft,
					     const struct ctd_flow_key *key,
					     uint64_t hash);
/* Inserts a zeroed flow with the given key. -ENOSPC at the bound,
 * -ENOMEM when the pool cannot grow, -EEXIST if the key is present. */
int ctd_flowtable_insert(struct ctd_flowtable *ft,
			 const struct ctd_flow_key *key,
			 struct ctd_flow **ret_flow);
/* Unlinks the flow and returns it to the pool; the pointer dies here. */
void ctd_flowtable_remove(struct ctd_flowtable *ft, struct ctd_flow *flow);

/* Starts loading what a lookup of the key with this hash will read: its
 * bucket (stage 0), then the first flow on it (stage 1, once the bucket
 * has arrived). */
void ctd_flowtable_prefetch(const struct ctd_flowtable *ft, uint64_t hash,
			    int stage);

size_t ctd_flowtable_count(const struct ctd_flowtable *ft);

/* A walk over every flow, a bucket at a time. Start it zeroed, or with
 * bucket set to resume a walk; end (0: none) stops it before that
 * bucket. ctd_flowtable_next returns NULL only between buckets, and
 * bucket is then a plain index: the table may change before the walk
 * resumes from it (a growth in between may show a flow twice or not at
 * all, as with any listing of a live table). Within a bucket, between
 * two calls that return flows, the table must not change. */
struct ctd_flowtable_iter {
	size_t bucket;                 /* the next bucket to enter */
	size_t end;
	const struct ctd_flow_slot *chain;   /* flowtable.c's: rest of one */
};
/* The next flow, or NULL at end or past the last bucket. */
const struct ctd_flow *ctd_flowtable_next(const struct ctd_flowtable *ft,
					  struct ctd_flowtable_iter *it);
size_t ctd_flowtable_buckets(const struct ctd_flowtable *ft);
/* Bytes held by the pool and the bucket array. */
size_t ctd_flowtable_memory(const struct ctd_flowtable *ft);

#endif
