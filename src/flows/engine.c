/* engine: applies events to the flow table.
 *
 * NEW inserts, UPDATE refreshes (inserting when the NEW was lost: the
 * kernel folds an undelivered NEW into the flow's next event), DESTROY
 * completes the flow, emits its record and frees the slot. A DESTROY for
 * a flow ctd never saw is normal under load and still yields a complete
 * record, because DESTROY carries tuples, counters and timestamps.
 *
 * Every tracked flow sits on the expiry list of its timeout class. A
 * flow that outlives its kernel timeout (plus slack) here most likely
 * lost its DESTROY: a conntrack without the event extension, a lossy
 * socket. It becomes a suspect and waits for the next table dump, which
 * the caller runs once for all suspects: listed means alive (re-queued),
 * not listed means gone (record with end_reason "expired"). In reliable
 * mode the caller also lists the kernel's dying list, whose DESTROYs are
 * still to come to us: a suspect found there is alive too. Suspects
 * that arrive during a dump wait for the following one, because the
 * running dump may already have walked past them.
 *
 * Every event stamps its flow with the current dump generation, so at
 * the end of a resync dump "not stamped" means neither listed by the
 * kernel nor heard of since the dump began: gone, its DESTROY lost.
 *
 * The kernel fills a dump's next datagram at the end of our previous
 * read, so an entry can be older than events already handled. While a
 * dump runs, a flow that ends leaves a tombstone in the table: a stale
 * entry for it is skipped instead of resurrecting it (which would give a
 * second record later), and a repeated DESTROY is dropped. Tombstones
 * also outlive dumps, up to remember_ends of them, oldest freed first:
 * when another listener with NETLINK_BROADCAST_ERROR misses a DESTROY,
 * the kernel re-sends it to every listener, and ctd must not write a
 * second record. A tombstone keeps the kernel's start time of the flow
 * it stands for, so a new conntrack that reuses id and tuple (the same
 * slab object for the same tuple gets the same id) is told apart from a
 * repeat; without kernel timestamps only a tombstone of the running
 * dump counts, since a lost record is worse than a double. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include "ctd/base/fifo.h"
#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/flows/endfilter.h"
#include "ctd/flows/engine.h"
#include "ctd/kernel/shardfilter.h"
#include "ctd/flows/flowtable.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"

_Static_assert(CTD_EV__COUNT == CTD_STATS_EVTYPES &&
	       CTD_END__COUNT == CTD_STATS_END_REASONS,
	       "stats.h counts events and records by these enums");

struct ctd_engine {
	struct ctd_flowtable *flows;
	struct ctd_expiry *expiry;
	struct ctd_fifo suspects;      /* ordered by the deciding dump */
	struct ctd_fifo tombstones;    /* ended flows, oldest first */
	size_t remember_ends;          /* tombstones kept outside dumps */
	unsigned shard, shards;        /* our part of a dump (shards > 1) */
	struct ctd_endfilter *forgotten; /* ends no longer remembered */
	struct ctd_endfilter *evicted;   /* flows evicted alive */
	struct ctd_stats *stats;
	struct ctd_engine_sinks sinks;
	uint64_t started_ns;
	bool want_events;
	uint64_t active_ns;            /* interim record period; 0: none */
	int64_t slack_us;              /* added to every expiry deadline */
	uint32_t gen;                  /* the dump running or last run */
	bool dumping;
	bool resync;                   /* the running dump is a resync */
	size_t ngoing;                 /* namespaces being flushed */
	int32_t going[CTD_ENGINE_GOING_MAX];
};

#define flow_of(node) \
	((struct ctd_flow *)(void *)((char *)(node) - offsetof(struct ctd_flow, exp)))

struct ctd_engine *ctd_engine_new(const struct ctd_engine_cfg *cfg,
				  struct ctd_stats *stats,
				  const struct ctd_engine_sinks *sinks)
{
	struct ctd_engine *eng = calloc(1, sizeof(*eng));

	if (!eng)
		return NULL;
	eng->flows = ctd_flowtable_new(cfg->max_flows);
	eng->expiry = ctd_expiry_new(cfg->timeout_s, cfg->slack_s);
	eng->slack_us = (int64_t)cfg->slack_s * 1000000;
	if (!eng->flows || !eng->expiry) {
		ctd_engine_free(eng);
		return NULL;
	}
	eng->stats = stats;
	eng->sinks = *sinks;
	eng->started_ns = cfg->started_ns;
	eng->want_events = cfg->want_events;
	eng->remember_ends = cfg->remember_ends;
	eng->shard = cfg->shard;
	eng->shards = cfg->shards;
	/* Covers the ends forgotten since the last remember_ends or more. */
	eng->forgotten = ctd_endfilter_new(cfg->remember_ends > 65536 ?
					   cfg->remember_ends : 65536);
	eng->evicted = ctd_endfilter_new(cfg->max_flows > 65536 ?
					 cfg->max_flows : 65536);
	eng->active_ns = (uint64_t)cfg->active_timeout_s * 1000000000ULL;
	return eng;
}

void ctd_engine_free(struct ctd_engine *eng)
{
	if (!eng)
		return;
	ctd_expiry_free(eng->expiry);
	ctd_flowtable_free(eng->flows);
	ctd_endfilter_free(eng->forgotten);
	ctd_endfilter_free(eng->evicted);
	free(eng);
}

const struct ctd_flowtable *ctd_engine_flows(const struct ctd_engine *eng)
{
	return eng->flows;
}

static void update_gauges(struct ctd_engine *eng)
{
	eng->stats->flows_tracked = ctd_flowtable_count(eng->flows) -
				    eng->tombstones.count;
	eng->stats->ends_remembered = eng->tombstones.count;
	eng->stats->flows_suspect = eng->suspects.count;
}

/* Takes the flow off whichever queue holds it. */
static void dequeue(struct ctd_engine *eng, struct ctd_flow *f)
{
	if (f->flags & CTD_FLOW_SUSPECT)
		ctd_fifo_unlink(&eng->suspects, &f->exp.link);
	else if (f->flags & CTD_FLOW_TOMBSTONE)
		ctd_fifo_unlink(&eng->tombstones, &f->exp.link);
	else
		ctd_expiry_remove(eng->expiry, &f->exp);
	f->flags &= (uint8_t)~(CTD_FLOW_SUSPECT | CTD_FLOW_TOMBSTONE);
}

/* A flow's end leaves ctd's memory: a repeated DESTROY for it will be
 * a possible duplicate. An evicted flow's DESTROY is still to come, and
 * is its final record, not a repeat. */
static void forget_key(struct ctd_engine *eng, const struct ctd_flow_key *key)
{
	if (eng->forgotten)
		ctd_endfilter_add(eng->forgotten, ctd_flowtable_hash(key));
}

static void forget(struct ctd_engine *eng, struct ctd_flow *f)
{
	if (!(f->more & CTD_FLOW_EVICTED))
		forget_key(eng, &f->key);
	ctd_flowtable_remove(eng->flows, f);
}

/* Frees the oldest tombstones beyond keep; those of a running dump stay
 * until it ends (its stale entries may still come). */
static void forget_ends(struct ctd_engine *eng, size_t keep)
{
	struct ctd_expiry_node *n;

	while (eng->tombstones.count > keep &&
	       (n = ctd_expiry_node_of(eng->tombstones.head))) {
		if (eng->dumping && flow_of(n)->gen == eng->gen)
			return;
		ctd_fifo_unlink(&eng->tombstones, &n->link);
		forget(eng, flow_of(n));
	}
}

/* The flow's record is out: keep only its key and kernel start time
 * (0: unknown) as a tombstone, or forget it. f may be NULL (the flow was
 * never tracked). */
static void bury(struct ctd_engine *eng, const struct ctd_flow_key *key,
		 struct ctd_flow *f, uint64_t kstart_ns, bool evicted)
{
	if (f)
		dequeue(eng, f);
	if (!eng->dumping && !eng->remember_ends && !evicted) {
		if (f)
			forget(eng, f);
		else
			forget_key(eng, key);
		return;
	}
	if (!f && ctd_flowtable_insert(eng->flows, key, &f) < 0) {
		eng->stats->tombstone_failures++;
		forget_key(eng, key);
		return;
	}
	ctd_flow_strip(eng->flows, f);
	if (evicted)
		f->more |= CTD_FLOW_EVICTED;
	f->flags = CTD_FLOW_TOMBSTONE;
	f->gen = eng->gen;
	f->first_ns = kstart_ns;
	ctd_fifo_append(&eng->tombstones, &f->exp.link);
	forget_ends(eng, eng->remember_ends);
}

/* Whether an event for a tombstone's key is about the flow it stands
 * for (a repeat, or a stale dump entry) rather than a new conntrack
 * that reuses id and tuple. */
static bool same_as_buried(const struct ctd_engine *eng,
			   const struct ctd_flow *tomb, const struct ctd_event *ev)
{
	if (tomb->first_ns && ev->have & CTD_HAVE_TSTART)
		return ev->tstart_ns == tomb->first_ns;
	return eng->dumping && tomb->gen == eng->gen;
}

static uint64_t kernel_start(const struct ctd_record *rec)
{
	return rec->flags & CTD_REC_KERNEL_TIME ? rec->start_ns : 0;
}

static void requeue(struct ctd_engine *eng, struct ctd_flow *f,
		    const struct ctd_now *now)
{
	dequeue(eng, f);
	ctd_expiry_touch(eng->expiry, &f->exp,
			 ctd_expiry_class(f->key.proto, f->tcp_state, f->status),
			 now->mono_us);
}

static void start_seen(const struct ctd_engine *eng, struct ctd_record *rec,
		       const struct ctd_flow *f)
{
	bool seen = rec->flags & CTD_REC_KERNEL_TIME ?
		    rec->start_ns >= eng->started_ns :
		    !(f && f->flags & CTD_FLOW_FROM_DUMP);

	if (seen)
		rec->flags |= CTD_REC_START_SEEN;
}

static void emit(struct ctd_engine *eng, struct ctd_record *rec,
		 const struct ctd_flow *f)
{
	start_seen(eng, rec, f);
	if (f)
		rec->missed = f->missed;
	eng->stats->records++;
	eng->stats->ends[rec->end_reason]++;
	if (eng->sinks.record)
		eng->sinks.record(eng->sinks.arg, rec);
}

/* Completes a flow that had no DESTROY and frees it. */
static void finish(struct ctd_engine *eng, struct ctd_flow *f,
		   enum ctd_end_reason reason, const struct ctd_now *now)
{
	struct ctd_record rec;

	ctd_record_from_flow(f, reason, now->wall_ns, &rec);
	emit(eng, &rec, f);
	/* Remembered apart from the table: a full table keeps no tombstone
	 * long, and the kernel's flow goes on. */
	if (reason == CTD_END_EVICTED && eng->evicted)
		ctd_endfilter_add(eng->evicted, ctd_flowtable_hash(&f->key));
	bury(eng, &f->key, f,
	     f->flags & CTD_FLOW_KERNEL_START ? f->first_ns : 0,
	     reason == CTD_END_EVICTED);
}

/* At the bound the flow closest to expiry makes room, so the table
 * keeps following live traffic instead of refusing it. */
static int make_room(struct ctd_engine *eng, const struct ctd_now *now)
{
	size_t before = ctd_flowtable_count(eng->flows);
	struct ctd_expiry_node *n;

	/* A remembered end goes first: it costs a possible double, an
	 * eviction costs an early record. */
	if (eng->tombstones.count)
		forget_ends(eng, eng->tombstones.count - 1);
	if (ctd_flowtable_count(eng->flows) < before)
		return 0;
	n = ctd_expiry_oldest(eng->expiry);
	if (!n)
		n = ctd_expiry_node_of(eng->suspects.head);
	if (!n)
		return -ENOSPC;
	finish(eng, flow_of(n), CTD_END_EVICTED, now);
	if (eng->tombstones.count)
		forget_ends(eng, eng->tombstones.count - 1);
	return ctd_flowtable_count(eng->flows) < before ? 0 : -ENOSPC;
}

/* A tombstone's key came back: the kernel reused id and tuple for a new
 * flow. Everything but the key starts over (the table's hash link is
 * not part of the flow). */
static void revive(struct ctd_engine *eng, struct ctd_flow *f)
{
	struct ctd_flow_key key = f->key;

	dequeue(eng, f);
	ctd_flow_strip(eng->flows, f);
	memset(f, 0, sizeof(*f));
	f->key = key;
}

static struct ctd_flow *insert(struct ctd_engine *eng,
			       const struct ctd_flow_key *key,
			       const struct ctd_now *now)
{
	struct ctd_flow *f;
	int r = ctd_flowtable_insert(eng->flows, key, &f);

	if (r == -ENOSPC && make_room(eng, now) == 0)
		r = ctd_flowtable_insert(eng->flows, key, &f);
	if (r == -ENOSPC)
		eng->stats->flows_table_full++;
	else if (r < 0)
		eng->stats->flows_nomem++;
	return r < 0 ? NULL : f;
}

static struct ctd_flow *track(struct ctd_engine *eng,
			      const struct ctd_flow_key *key, uint64_t hash,
			      const struct ctd_now *now)
{
	struct ctd_flow *f = ctd_flowtable_lookup_hashed(eng->flows, key, hash);

	if (f && !(f->flags & CTD_FLOW_TOMBSTONE))
		return f;
	/* Evicted alive: the kernel's flow goes on until its DESTROY, and
	 * ctd does not track it again (its record would be made up). */
	if ((f && f->more & CTD_FLOW_EVICTED) ||
	    (!f && eng->evicted &&
	     ctd_endfilter_maybe(eng->evicted, hash))) {
		eng->stats->events_after_evict++;
		return NULL;
	}
	if (f)
		revive(eng, f);
	else if (!(f = insert(eng, key, now)))
		return NULL;
	f->first_ns = now->wall_ns;
	eng->stats->flows_created++;
	return f;
}

/* Labels and dump counters, in the flow's cold part. */
static void refresh_cold(struct ctd_engine *eng, struct ctd_flow *f,
			 const struct ctd_event *ev)
{
	struct ctd_flow_cold *cold = ctd_flow_cold(eng->flows, f);

	if (!cold) {
		eng->stats->flows_nomem++;
		return;
	}
	if (ev->have & CTD_HAVE_LABELS) {
		memcpy(cold->labels, ev->labels, sizeof(cold->labels));
		f->flags |= CTD_FLOW_LABELS;
	}
	if (ev->have & CTD_HAVE_COUNTERS) {
		memcpy(cold->cnt, ev->cnt, sizeof(cold->cnt));
		f->flags |= CTD_FLOW_COUNTERS;
	}
}

/* What the event says of the flow. The reply tuple, labels and dump
 * counters live outside the flow when it has them; without memory for
 * them they stay unknown and are counted (the final DESTROY still
 * carries them). */
static void refresh(struct ctd_engine *eng, struct ctd_flow *f,
		    const struct ctd_event *ev)
{
	if (ev->have & CTD_HAVE_REPLY &&
	    ctd_flow_set_reply(eng->flows, f, &ev->tuple[CTD_DIR_REPLY]) < 0)
		eng->stats->flows_nomem++;
	if (ev->have & CTD_HAVE_STATUS)
		f->status = ev->status;
	if (ev->have & CTD_HAVE_MARK)
		f->mark = ev->mark;
	if (ev->have & CTD_HAVE_TCPSTATE)
		f->tcp_state = ev->tcp_state;
	if (ev->have & (CTD_HAVE_LABELS | CTD_HAVE_COUNTERS))
		refresh_cold(eng, f, ev);
	if (ev->have & CTD_HAVE_TSTART) {
		f->first_ns = ev->tstart_ns;
		f->flags |= CTD_FLOW_KERNEL_START;
	}
}

/* Outputs that take NEW/UPDATE get the flow as it is now; one that
 * cannot take it leaves the event pending on the flow (missed), and the
 * flow's next event carries it, as the kernel's missed-event cache does. */
static void flow_event(struct ctd_engine *eng, struct ctd_flow *f,
		       enum ctd_evtype type, const struct ctd_now *now)
{
	struct ctd_record rec;

	if (!eng->sinks.flow_event)
		return;
	ctd_record_from_flow(f, CTD_END_ACTIVE, now->wall_ns, &rec);
	rec.events = (uint8_t)(1u << type);
	start_seen(eng, &rec, f);
	eng->sinks.flow_event(eng->sinks.arg, &rec, &f->missed);
}

/* A DESTROY before the flow's timeout ran out: deleted or flushed
 * (conntrack -D/-F), not timed out. The kernel says so itself: a DESTROY
 * carries the seconds left (CTA_TIMEOUT) and leaves the attribute out at
 * 0 (6.18: present after `conntrack -F`, absent after an expiry), which
 * also covers the flows ctd never tracked (DESTROY-only subscription).
 * Without it, the flow's deadline here tells, when ctd tracked it: a
 * flow whose packets refreshed its timeout without an event then looks
 * timed out, never the other way. */
static bool ended_early(const struct ctd_engine *eng, const struct ctd_flow *f,
			const struct ctd_event *ev, const struct ctd_now *now)
{
	if (ev->have & CTD_HAVE_TIMEOUT)
		return ev->timeout > 0;
	return f && (f->flags & CTD_FLOW_TOMBSTONE ||
		     ctd_expiry_linked(eng->expiry, &f->exp)) &&
	       now->mono_us + 1000000 < f->exp.deadline_us - eng->slack_us;
}

static bool is_going(const struct ctd_engine *eng, int32_t nsid)
{
	for (size_t i = 0; i < eng->ngoing; i++)
		if (eng->going[i] == nsid)
			return true;
	return false;
}

/* How long the kernel's DESTROY took to become a record: its event
 * stamp against the time of the read that brought it (the record is
 * written before the loop waits again). */
static void count_latency(struct ctd_engine *eng, const struct ctd_event *ev,
			  const struct ctd_now *now)
{
	static const uint32_t bound_ms[] = CTD_LAT_BOUNDS_MS;
	uint64_t ms;
	size_t i;

	if (!(ev->have & CTD_HAVE_TEVENT))
		return;
	ms = now->wall_ns > ev->tevent_ns ?
	     (now->wall_ns - ev->tevent_ns + 999999) / 1000000 : 0;
	for (i = 0; i < CTD_LAT__COUNT - 1 && ms > bound_ms[i]; i++)
		;
	eng->stats->latency[i]++;
	eng->stats->kernel_lag_us = now->wall_ns > ev->tevent_ns ?
				    (now->wall_ns - ev->tevent_ns) / 1000 : 0;
	eng->stats->latency_sum_us += eng->stats->kernel_lag_us;
}

static void complete(struct ctd_engine *eng, const struct ctd_flow_key *key,
		     uint64_t hash, const struct ctd_event *ev,
		     const struct ctd_now *now)
{
	struct ctd_flow *f = ctd_flowtable_lookup_hashed(eng->flows, key, hash);
	struct ctd_record rec;
	bool unknown;

	if (f && f->flags & CTD_FLOW_TOMBSTONE) {
		if (!(f->more & CTD_FLOW_EVICTED) && same_as_buried(eng, f, ev)) {
			eng->stats->destroy_duplicates++;
			return;
		}
		/* An evicted flow's end, or a new conntrack with a buried
		 * one's id and tuple: the DESTROY alone makes the record. */
		dequeue(eng, f);
		ctd_flowtable_remove(eng->flows, f);
		f = NULL;
	}
	unknown = !f;
	if (unknown)
		eng->stats->flows_unseen_destroy++;
	count_latency(eng, ev, now);
	ctd_record_from_destroy(f, ev, now->wall_ns, &rec);
	if (ended_early(eng, f, ev, now))
		rec.flags |= CTD_REC_FORCED;
	if (unknown && eng->forgotten &&
	    ctd_endfilter_maybe(eng->forgotten, hash)) {
		/* Its end may have been recorded and forgotten since. */
		rec.flags |= CTD_REC_DUP_UNCHECKED;
		eng->stats->possible_duplicates++;
	}
	if (eng->ngoing && is_going(eng, ev->nsid))
		rec.end_reason = CTD_END_NETNS_GONE;
	emit(eng, &rec, f);
	bury(eng, key, f, ev->have & CTD_HAVE_TSTART ? ev->tstart_ns :
			  kernel_start(&rec), false);
	if (eng->sinks.event)
		eng->sinks.event(eng->sinks.arg, ev, &rec, now);
}

/* One event whose key and hash the caller made. */
static void apply(struct ctd_engine *eng, const struct ctd_event *ev,
		  const struct ctd_flow_key *key, uint64_t hash,
		  const struct ctd_now *now)
{
	struct ctd_flow *f;

	eng->stats->events[ev->type]++;
	if (ev->type == CTD_EV_DESTROY) {
		complete(eng, key, hash, ev, now);
	} else {
		f = track(eng, key, hash, now);
		if (f) {
			refresh(eng, f, ev);
			f->gen = eng->gen;
			f->flags |= CTD_FLOW_NEW_SEEN;
			requeue(eng, f, now);
			if (eng->want_events)
				flow_event(eng, f, ev->type, now);
		}
		if (eng->sinks.event)
			eng->sinks.event(eng->sinks.arg, ev, NULL, now);
	}
	update_gauges(eng);
}

void ctd_engine_event(struct ctd_engine *eng, const struct ctd_event *ev,
		      const struct ctd_now *now)
{
	struct ctd_flow_key key;

	ctd_flow_key_from_event(ev, &key);
	apply(eng, ev, &key, ctd_flowtable_hash(&key), now);
}

void ctd_engine_message(struct ctd_engine *eng, const struct nlmsghdr *nlh,
			const struct ctd_now *now)
{
	ctd_engine_messages(eng, &nlh, 1, now);
}

void ctd_engine_messages(struct ctd_engine *eng,
			 const struct nlmsghdr *const *msgs, size_t n,
			 const struct ctd_now *now)
{
	ctd_engine_messages_ns(eng, msgs, NULL, n, now);
}

/* A DESTROY of a flow ctd has no trace of asks the filter of forgotten
 * ends; with DESTROY-only subscription that is nearly every one. */
static void prefetch_forgotten(const struct ctd_engine *eng,
			       const struct ctd_event *ev, uint64_t hash)
{
	if (ev->type == CTD_EV_DESTROY && eng->forgotten)
		ctd_endfilter_prefetch(eng->forgotten, hash);
}

void ctd_engine_messages_ns(struct ctd_engine *eng,
			    const struct nlmsghdr *const *msgs,
			    const int32_t *nsids, size_t n,
			    const struct ctd_now *now)
{
	struct ctd_event ev[32];
	struct ctd_flow_key key[32];
	uint64_t hash[32];
	int r[32];

	while (n) {
		size_t k = n < 32 ? n : 32;

		for (size_t i = 0; i < k; i++) {
			r[i] = ctd_ctevent_parse(msgs[i], &ev[i]);
			if (r[i] == 0) {
				if (nsids)
					ev[i].nsid = nsids[i];
				ctd_flow_key_from_event(&ev[i], &key[i]);
				hash[i] = ctd_flowtable_hash(&key[i]);
				ctd_flowtable_prefetch(eng->flows, hash[i], 0);
				prefetch_forgotten(eng, &ev[i], hash[i]);
			}
		}
		for (size_t i = 0; i < k; i++)
			if (r[i] == 0)
				ctd_flowtable_prefetch(eng->flows, hash[i], 1);
		for (size_t i = 0; i < k; i++) {
			if (r[i] == 0)
				apply(eng, &ev[i], &key[i], hash[i], now);
			else if (r[i] == -EPROTO)
				eng->stats->parse_ignored++;
			else
				eng->stats->parse_errors++;
		}
		msgs += k;
		if (nsids)
			nsids += k;
		n -= k;
	}
}

static void to_suspects(void *arg, struct ctd_expiry_node *node)
{
	struct ctd_engine *eng = arg;
	struct ctd_flow *f = flow_of(node);

	/* Decided by the next dump to begin, never by one under way. */
	f->exp.deadline_us = (int64_t)eng->gen + 1;   /* see flowtable.h */
	f->flags |= CTD_FLOW_SUSPECT;
	ctd_fifo_append(&eng->suspects, &node->link);
	eng->stats->expiry_suspects++;
}

int64_t ctd_engine_sweep(struct ctd_engine *eng, const struct ctd_now *now,
			 size_t budget)
{
	int64_t next;

	ctd_expiry_sweep(eng->expiry, now->mono_us, budget, to_suspects, eng,
			 &next);
	update_gauges(eng);
	return next;
}

int64_t ctd_engine_next_deadline(const struct ctd_engine *eng)
{
	return ctd_expiry_next(eng->expiry);
}

bool ctd_engine_wants_dump(const struct ctd_engine *eng)
{
	return eng->suspects.count > 0;
}

void ctd_engine_dump_begin(struct ctd_engine *eng, bool resync)
{
	eng->gen++;
	eng->dumping = true;
	eng->resync = resync;
	eng->stats->dumps++;
	if (resync)
		eng->stats->resyncs++;
}

/* Events carry no counters, so long flows are reported from dumps: an
 * interim record when the last one (or the start) is active_ns old,
 * with the deltas since the previous report. */
static void maybe_interim(struct ctd_engine *eng, struct ctd_flow *f,
			  const struct ctd_now *now)
{
	struct ctd_flow_cold *cold = f->cold;
	uint64_t since;
	struct ctd_record rec;

	/* Counters come with the cold part, so it is there. */
	if (!eng->active_ns || !(f->flags & CTD_FLOW_COUNTERS) || !cold)
		return;
	since = f->flags & CTD_FLOW_REPORTED ? cold->report_ns : f->first_ns;
	if (now->wall_ns < since + eng->active_ns)
		return;
	ctd_record_from_flow(f, CTD_END_ACTIVE, now->wall_ns, &rec);
	if (!(f->flags & CTD_FLOW_REPORTED)) {
		memcpy(rec.delta, rec.cnt, sizeof(rec.delta));
		rec.flags |= CTD_REC_DELTA;
	}
	emit(eng, &rec, f);
	memcpy(cold->reported, cold->cnt, sizeof(cold->reported));
	cold->report_ns = now->wall_ns;
	f->flags |= CTD_FLOW_REPORTED;
}

void ctd_engine_dump_entry(struct ctd_engine *eng, const struct ctd_event *ev,
			   const struct ctd_now *now)
{
	struct ctd_flow_key key;
	struct ctd_flow *f;
	uint64_t hash;
	bool known;

	/* Another shard's conntrack: its events never come here. */
	if (eng->shards > 1 &&
	    ctd_shardfilter_shard(ev->id, eng->shards) != eng->shard)
		return;
	eng->stats->dump_entries++;
	/* DYING is set before the kernel sends DESTROY: that event is
	 * queued or coming, so the entry must not resurrect the flow. */
	if (ev->status & IPS_DYING)
		return;
	ctd_flow_key_from_event(ev, &key);
	hash = ctd_flowtable_hash(&key);
	f = ctd_flowtable_lookup_hashed(eng->flows, &key, hash);
	if (f && f->flags & CTD_FLOW_TOMBSTONE && same_as_buried(eng, f, ev)) {
		eng->stats->dump_stale++;
		return;
	}
	known = f != NULL && !(f->flags & CTD_FLOW_TOMBSTONE);
	f = track(eng, &key, hash, now);
	if (!f)
		return;
	if (!known) {
		f->flags |= CTD_FLOW_FROM_DUMP;
		eng->stats->dump_new_flows++;
	}
	refresh(eng, f, ev);
	f->gen = eng->gen;
	if (!(f->flags & CTD_FLOW_SUSPECT))
		requeue(eng, f, now);
	maybe_interim(eng, f, now);
	update_gauges(eng);
}

void ctd_engine_dump_pending(struct ctd_engine *eng, const struct ctd_event *ev)
{
	struct ctd_flow_key key;
	struct ctd_flow *f;

	ctd_flow_key_from_event(ev, &key);
	f = ctd_flowtable_lookup(eng->flows, &key);
	if (f && !(f->flags & CTD_FLOW_TOMBSTONE))
		f->gen = eng->gen;
}

/* O(flows), but only after a resync dump, which itself lists them all. */
static void sweep_unlisted(struct ctd_engine *eng, const struct ctd_now *now)
{
	struct ctd_expiry_node *n, *next;
	size_t cls;

	for (cls = 0; cls < CTD_TMO__COUNT; cls++) {
		for (n = ctd_expiry_head(eng->expiry, (enum ctd_tmo)cls); n; n = next) {
			next = ctd_expiry_node_of(n->link.next);
			if (flow_of(n)->gen != eng->gen)
				finish(eng, flow_of(n), CTD_END_LOST, now);
		}
	}
}

void ctd_engine_dump_end(struct ctd_engine *eng, bool ok,
			 const struct ctd_now *now)
{
	struct ctd_expiry_node *n;
	bool resync = eng->resync;

	eng->dumping = false;
	forget_ends(eng, eng->remember_ends);
	eng->resync = false;
	if (!ok) {
		eng->stats->dump_failures++;
		return;
	}
	if (resync)
		sweep_unlisted(eng, now);
	while ((n = ctd_expiry_node_of(eng->suspects.head)) &&
	       (uint32_t)flow_of(n)->exp.deadline_us <= eng->gen) {
		struct ctd_flow *f = flow_of(n);

		if (f->gen == eng->gen) {
			eng->stats->expiry_alive++;
			requeue(eng, f, now);
		} else {
			finish(eng, f, CTD_END_EXPIRED, now);
		}
	}
	update_gauges(eng);
}

int ctd_engine_netns_going(struct ctd_engine *eng, int32_t nsid)
{
	if (is_going(eng, nsid))
		return 0;
	if (eng->ngoing == CTD_ENGINE_GOING_MAX)
		return -ENOSPC;
	eng->going[eng->ngoing++] = nsid;
	return 0;
}

/* One flow of a gone namespace; returns 1 when it made a record. */
static size_t gone_flow(struct ctd_engine *eng, struct ctd_flow *f,
			const struct ctd_now *now)
{
	struct ctd_record rec;

	bool buried = f->flags & CTD_FLOW_TOMBSTONE;

	dequeue(eng, f);
	if (!buried) {
		ctd_record_from_flow(f, CTD_END_NETNS_GONE, now->wall_ns, &rec);
		rec.flags |= CTD_REC_DUMP_COUNTERS;
		emit(eng, &rec, f);
	}
	ctd_flowtable_remove(eng->flows, f);
	return buried ? 0 : 1;
}

static void not_going(struct ctd_engine *eng, int32_t nsid)
{
	for (size_t i = 0; i < eng->ngoing; i++)
		if (eng->going[i] == nsid) {
			eng->going[i] = eng->going[--eng->ngoing];
			return;
		}
}

/* Tombstones of the namespace go too: its nsid may be given to the
 * next namespace, whose conntracks must not look like repeats. */
size_t ctd_engine_netns_gone(struct ctd_engine *eng, int32_t nsid,
			     const struct ctd_now *now)
{
	struct ctd_flowtable_iter it = { 0 };
	const struct ctd_flow *cf;
	size_t n = 0;

	not_going(eng, nsid);
	/* The walk has read the next link before a flow is removed. */
	while ((cf = ctd_flowtable_next(eng->flows, &it)))
		if (cf->key.nsid == nsid)
			n += gone_flow(eng, (struct ctd_flow *)cf, now);
	update_gauges(eng);
	return n;
}
