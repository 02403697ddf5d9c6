/* Tests for src/engine.c (and src/record.c through it): recorded kernel
 * messages in, records out. The key property: a DESTROY for a flow ctd
 * never saw still yields the same complete record. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/flows/engine.h"
#include "ctd/flows/flowtable.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"
#include "recording.h"

#define NOW_NS 1795536600000000000ULL

static const struct ctd_now test_now = { 5000000, NOW_NS };

struct sink {
	struct ctd_record recs[16];
	size_t nrecs;
	unsigned events[CTD_EV__COUNT];
	unsigned events_with_record;
	uint64_t last_now;
	unsigned flow_events;        /* event records offered */
	unsigned flow_events_merged; /* ... that found earlier ones pending */
};

/* An output that never takes event records: each one stays pending on
 * the flow, as deliver does when an output refuses. */
static void on_flow_event(void *arg, const struct ctd_record *rec,
			  uint8_t *missed)
{
	struct sink *s = arg;

	assert_true(rec->events == 1u << CTD_EV_NEW ||
		    rec->events == 1u << CTD_EV_UPDATE);
	assert_int_equal(rec->end_reason, CTD_END_ACTIVE);
	s->flow_events++;
	if (*missed)
		s->flow_events_merged++;
	*missed |= rec->events;
}

static void on_record(void *arg, const struct ctd_record *rec)
{
	struct sink *s = arg;

	assert_true(s->nrecs < sizeof(s->recs) / sizeof(s->recs[0]));
	s->recs[s->nrecs++] = *rec;
}

static void on_event(void *arg, const struct ctd_event *ev,
		     const struct ctd_record *rec, const struct ctd_now *now)
{
	struct sink *s = arg;

	s->last_now = now->wall_ns;
	s->events[ev->type]++;
	if (rec) {
		assert_int_equal(ev->type, CTD_EV_DESTROY);
		s->events_with_record++;
	}
}

/* Every class times out after 10 s, plus 5 s of slack. */
static struct ctd_engine *new_engine_full(size_t max_flows, uint32_t active_s,
					  bool want_events, size_t remember,
					  struct ctd_stats *st, struct sink *s)
{
	struct ctd_engine_sinks sinks = { on_record, on_event, on_flow_event, s };
	struct ctd_engine_cfg cfg = { .max_flows = max_flows, .slack_s = 5,
				      .active_timeout_s = active_s,
				      .want_events = want_events,
				      .remember_ends = remember };
	struct ctd_engine *eng;
	size_t i;

	for (i = 0; i < CTD_TMO__COUNT; i++)
		cfg.timeout_s[i] = 10;
	memset(st, 0, sizeof(*st));
	memset(s, 0, sizeof(*s));
	eng = ctd_engine_new(&cfg, st, &sinks);
	assert_non_null(eng);
	return eng;
}

static struct ctd_engine *new_engine_cfg(size_t max_flows, uint32_t active_s,
					 bool want_events, struct ctd_stats *st,
					 struct sink *s)
{
	return new_engine_full(max_flows, active_s, want_events, 0, st, s);
}

static struct ctd_engine *new_engine_active(size_t max_flows, uint32_t active_s,
					    struct ctd_stats *st, struct sink *s)
{
	return new_engine_cfg(max_flows, active_s, false, st, s);
}

static struct ctd_engine *new_engine(size_t max_flows, struct ctd_stats *st,
				     struct sink *s)
{
	return new_engine_active(max_flows, 0, st, s);
}

static bool is_destroy(const struct nlmsghdr *nlh)
{
	struct ctd_event ev;

	return ctd_ctevent_parse(nlh, &ev) == 0 && ev.type == CTD_EV_DESTROY;
}

static void replay(struct ctd_engine *eng, const struct recording *rec,
		   bool only_destroy)
{
	size_t i;

	for (i = 0; i < rec->count; i++)
		if (!only_destroy || is_destroy(rec->msgs[i]))
			ctd_engine_message(eng, rec->msgs[i], &test_now);
}

static const struct ctd_record *find(const struct sink *s, uint8_t proto,
				     uint8_t family)
{
	size_t i;

	for (i = 0; i < s->nrecs; i++)
		if (s->recs[i].proto == proto && s->recs[i].family == family)
			return &s->recs[i];
	fail_msg("no record for proto %u family %u", proto, family);
	return NULL;
}

static void check_basic_records(const struct sink *s, bool new_seen)
{
	const struct ctd_record *r;

	assert_int_equal(s->nrecs, 4);
	r = find(s, IPPROTO_TCP, AF_INET);
	assert_int_equal(r->tuple[CTD_DIR_ORIG].sport, 43208);
	assert_int_equal(r->tuple[CTD_DIR_REPLY].sport, 8080);
	assert_int_equal(r->cnt[CTD_DIR_ORIG].packets, 6);
	assert_int_equal(r->cnt[CTD_DIR_ORIG].bytes, 370);
	assert_int_equal(r->cnt[CTD_DIR_REPLY].packets, 4);
	assert_int_equal(r->cnt[CTD_DIR_REPLY].bytes, 221);
	assert_true(r->flags & CTD_REC_COUNTERS);
	assert_true(r->flags & CTD_REC_KERNEL_TIME);
	assert_true(r->flags & CTD_REC_TCPSTATE);
	assert_int_equal(!!(r->flags & CTD_REC_NEW_SEEN), new_seen);
	assert_true(r->start_ns < r->end_ns);
	assert_true(r->end_ns < NOW_NS);     /* the kernel's stop time, not arrival */
	assert_int_equal(r->end_reason, CTD_END_DESTROY);
	r = find(s, IPPROTO_UDP, AF_INET);
	assert_int_equal(r->cnt[CTD_DIR_ORIG].bytes, 38);
	assert_int_equal(r->cnt[CTD_DIR_REPLY].bytes, 48);
	r = find(s, IPPROTO_UDP, AF_INET6);
	assert_int_equal(r->cnt[CTD_DIR_ORIG].bytes, 55);
	assert_int_equal(r->cnt[CTD_DIR_REPLY].packets, 0);
	r = find(s, IPPROTO_TCP, AF_INET6);
	assert_int_equal(r->cnt[CTD_DIR_ORIG].bytes, 371);
}

static void test_full_recording(void **state)
{
	struct recording rec;
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);

	(void)state;
	recording_load(&rec, "basic.nl");
	replay(eng, &rec, false);
	check_basic_records(&s, true);
	assert_int_equal(st.events[CTD_EV_NEW], 4);
	assert_int_equal(st.events[CTD_EV_UPDATE], 11);
	assert_int_equal(st.events[CTD_EV_DESTROY], 4);
	assert_int_equal(s.events_with_record, 4);
	assert_int_equal(s.last_now, NOW_NS);
	assert_int_equal(st.flows_created, 4);
	assert_int_equal(st.flows_unseen_destroy, 0);
	assert_int_equal(st.records, 4);
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 0);
	ctd_engine_free(eng);
	recording_free(&rec);
}

/* The kernel folds an undelivered NEW into the DESTROY: ctd must still
 * produce the same complete record from the DESTROY alone. */
static void test_destroy_without_new(void **state)
{
	struct recording rec;
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);

	(void)state;
	recording_load(&rec, "basic.nl");
	replay(eng, &rec, true);
	check_basic_records(&s, false);
	assert_int_equal(st.flows_unseen_destroy, 4);
	assert_int_equal(st.flows_created, 0);
	ctd_engine_free(eng);
	recording_free(&rec);
}

/* Event records are offered only when wanted; what the sink leaves
 * pending stays on the flow, is seen by its next event, and rides on
 * its final record. */
static void test_missed_events_stay_on_flow(void **state)
{
	struct recording rec;
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);

	(void)state;
	recording_load(&rec, "basic.nl");
	replay(eng, &rec, false);
	assert_int_equal(s.flow_events, 0);
	ctd_engine_free(eng);

	eng = new_engine_cfg(0, 0, true, &st, &s);
	replay(eng, &rec, false);
	assert_int_equal(s.flow_events,
			 st.events[CTD_EV_NEW] + st.events[CTD_EV_UPDATE]);
	assert_true(s.flow_events > 0);
	/* Every event after a flow's first found the first still pending. */
	assert_int_equal(s.flow_events_merged, s.flow_events - st.flows_created);
	assert_int_equal(s.nrecs, 4);
	for (size_t i = 0; i < s.nrecs; i++)
		assert_true(s.recs[i].missed & 1u << CTD_EV_NEW);
	ctd_engine_free(eng);
	recording_free(&rec);
}

/* Parses the recording's DESTROY events, in order. */
static size_t destroys_of(const struct recording *rec, struct ctd_event *evs,
			  size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < rec->count && n < max; i++)
		if (ctd_ctevent_parse(rec->msgs[i], &evs[n]) == 0 &&
		    evs[n].type == CTD_EV_DESTROY)
			n++;
	return n;
}

/* The kernel sends a DESTROY again to every listener when another
 * reliable listener missed it: remembered ends drop the repeat, but a
 * new conntrack reusing id and tuple (another kernel start time) still
 * gets its record, and only the newest remember_ends ends are kept. */
static void test_repeated_destroy_dropped(void **state)
{
	struct recording rec;
	struct ctd_event evs[8];
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine_full(0, 0, false, 4, &st, &s);
	size_t n;

	(void)state;
	recording_load(&rec, "basic.nl");
	n = destroys_of(&rec, evs, 8);
	assert_int_equal(n, 4);
	replay(eng, &rec, false);
	assert_int_equal(s.nrecs, 4);
	assert_int_equal(st.ends_remembered, 4);
	assert_int_equal(st.flows_tracked, 0);
	for (size_t i = 0; i < n; i++)
		ctd_engine_event(eng, &evs[i], &test_now);
	assert_int_equal(s.nrecs, 4);
	assert_int_equal(st.destroy_duplicates, 4);
	/* Same id and tuple, later start: a new flow, recorded. */
	assert_true(evs[0].have & CTD_HAVE_TSTART);
	evs[0].tstart_ns += 1000;
	ctd_engine_event(eng, &evs[0], &test_now);
	assert_int_equal(s.nrecs, 5);
	assert_int_equal(st.ends_remembered, 4);
	ctd_engine_free(eng);

	/* Bounded: with 2 remembered, only the 2 newest repeats drop. */
	eng = new_engine_full(0, 0, false, 2, &st, &s);
	n = destroys_of(&rec, evs, 8);
	replay(eng, &rec, false);
	assert_int_equal(st.ends_remembered, 2);
	/* Newest first: re-recording an old one would push them out. */
	for (size_t i = n; i-- > 0;)
		ctd_engine_event(eng, &evs[i], &test_now);
	assert_int_equal(st.destroy_duplicates, 2);
	assert_int_equal(s.nrecs, 6);
	/* The 2 forgotten ones are not silent: marked and counted. */
	assert_int_equal(st.possible_duplicates, 2);
	assert_true(s.recs[4].flags & CTD_REC_DUP_UNCHECKED);
	assert_true(s.recs[5].flags & CTD_REC_DUP_UNCHECKED);
	for (size_t i = 0; i < 4; i++)
		assert_false(s.recs[i].flags & CTD_REC_DUP_UNCHECKED);
	ctd_engine_free(eng);

	/* Off: outside dumps nothing is remembered. */
	eng = new_engine(0, &st, &s);
	replay(eng, &rec, false);
	for (size_t i = 0; i < n; i++)
		ctd_engine_event(eng, &evs[i], &test_now);
	assert_int_equal(st.destroy_duplicates, 0);
	assert_int_equal(s.nrecs, 8);
	assert_int_equal(st.possible_duplicates, 4);
	ctd_engine_free(eng);
	recording_free(&rec);
}

/* At the table bound the flow closest to expiry is evicted with an
 * "evicted" record; its DESTROY, when it comes, still gives the final
 * record from the event alone. */
static void test_table_full_evicts(void **state)
{
	struct recording rec;
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(1, &st, &s);

	(void)state;
	recording_load(&rec, "basic.nl");
	replay(eng, &rec, false);
	/* 4 flows overlap in time: 3 evictions, then their DESTROYs come
	 * for flows no longer tracked: 3 + 4 records. */
	assert_int_equal(st.ends[CTD_END_EVICTED], 3);
	assert_int_equal(st.ends[CTD_END_DESTROY], 4);
	assert_int_equal(s.nrecs, 7);
	assert_int_equal(st.flows_table_full, 0);
	ctd_engine_free(eng);
	recording_free(&rec);
}

static void test_malformed_counted(void **state)
{
	struct recording rec;
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct nlmsghdr *copy;

	(void)state;
	recording_load(&rec, "basic.nl");
	copy = malloc(rec.msgs[0]->nlmsg_len);
	assert_non_null(copy);
	memcpy(copy, rec.msgs[0], rec.msgs[0]->nlmsg_len);
	copy->nlmsg_len = 30;   /* cuts the first attribute in half */
	ctd_engine_message(eng, copy, &test_now);
	copy->nlmsg_type = NLMSG_ERROR;
	ctd_engine_message(eng, copy, &test_now);
	assert_int_equal(st.parse_errors, 1);
	assert_int_equal(st.parse_ignored, 1);
	assert_int_equal(s.nrecs, 0);
	free(copy);
	ctd_engine_free(eng);
	recording_free(&rec);
}

static void make_event(struct ctd_event *ev, enum ctd_evtype type)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = (uint8_t)type;
	ev->family = AF_INET;
	ev->proto = IPPROTO_UDP;
	ev->id = 77;
	ev->have = CTD_HAVE_ORIG | CTD_HAVE_ID;
	ev->tuple[CTD_DIR_ORIG].src[0] = 10;
	ev->tuple[CTD_DIR_ORIG].sport = 1234;
	ev->tuple[CTD_DIR_ORIG].dport = 53;
}

/* Evicted alive, a flow is not tracked again by its later events (its
 * record would have made-up times and no counters); its DESTROY gives
 * its final record, which is no duplicate. */
static void test_evicted_at_most_once(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(1, &st, &s);
	struct ctd_event a, b;

	(void)state;
	make_event(&a, CTD_EV_NEW);
	make_event(&b, CTD_EV_NEW);
	b.id = 78;
	b.tuple[CTD_DIR_ORIG].sport = 4321;
	ctd_engine_event(eng, &a, &test_now);
	ctd_engine_event(eng, &b, &test_now);        /* evicts a */
	assert_int_equal(st.ends[CTD_END_EVICTED], 1);
	for (int i = 0; i < 3; i++) {
		a.type = CTD_EV_UPDATE;
		ctd_engine_event(eng, &a, &test_now);
	}
	assert_int_equal(st.events_after_evict, 3);
	assert_int_equal(st.ends[CTD_END_EVICTED], 1);
	a.type = CTD_EV_DESTROY;
	ctd_engine_event(eng, &a, &test_now);
	assert_int_equal(s.nrecs, 2);
	assert_int_equal(s.recs[1].end_reason, CTD_END_DESTROY);
	assert_int_equal(s.recs[1].id, 77);
	assert_false(s.recs[1].flags & CTD_REC_DUP_UNCHECKED);
	assert_int_equal(st.possible_duplicates, 0);
	assert_int_equal(st.destroy_duplicates, 0);
	ctd_engine_free(eng);
}

/* DESTROY carries no labels: the record keeps those seen earlier. Without
 * kernel timestamps the record falls back to ctd's arrival times. */
static void test_labels_and_arrival_times(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event ev;

	(void)state;
	make_event(&ev, CTD_EV_NEW);
	ctd_engine_event(eng, &ev, &(struct ctd_now){ 0, NOW_NS - 5000000000ULL });
	make_event(&ev, CTD_EV_UPDATE);
	ev.have |= CTD_HAVE_LABELS | CTD_HAVE_MARK;
	ev.labels[3] = 0x80;
	ev.mark = 9;
	ctd_engine_event(eng, &ev, &(struct ctd_now){ 4000000, NOW_NS - 1000000000ULL });
	make_event(&ev, CTD_EV_DESTROY);
	ctd_engine_event(eng, &ev, &test_now);
	assert_int_equal(s.nrecs, 1);
	assert_true(s.recs[0].flags & CTD_REC_LABELS);
	assert_int_equal(s.recs[0].labels[3], 0x80);
	assert_int_equal(s.recs[0].mark, 9);
	assert_false(s.recs[0].flags & CTD_REC_KERNEL_TIME);
	assert_false(s.recs[0].flags & CTD_REC_COUNTERS);
	assert_int_equal(s.recs[0].start_ns, NOW_NS - 5000000000ULL);
	assert_int_equal(s.recs[0].end_ns, NOW_NS);
	ctd_engine_free(eng);
}

/* Same tuple, different conntrack id: two flows, two records. */
static void test_id_distinguishes_flows(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event ev;

	(void)state;
	make_event(&ev, CTD_EV_NEW);
	ctd_engine_event(eng, &ev, &test_now);
	ev.id = 78;
	ctd_engine_event(eng, &ev, &test_now);
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 2);
	make_event(&ev, CTD_EV_DESTROY);
	ctd_engine_event(eng, &ev, &test_now);
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 1);
	assert_int_equal(s.nrecs, 1);
	assert_int_equal(s.recs[0].id, 77);
	assert_true(s.recs[0].flags & CTD_REC_NEW_SEEN);
	ctd_engine_free(eng);
}

/* The same conntrack in two namespaces is two flows. A namespace going
 * away: its flushed DESTROYs end as netns_gone with the kernel's word,
 * the flows still tracked then end from what ctd knew (said so), ended
 * ones are not reported again, and the other namespace is untouched. */
static void test_netns_gone(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event ev;

	(void)state;
	for (int32_t ns = 0; ns < 2; ns++) {
		for (uint32_t id = 1; id <= 2; id++) {
			make_event(&ev, CTD_EV_NEW);
			ev.nsid = ns;
			ev.id = id;
			ctd_engine_event(eng, &ev, &test_now);
		}
	}
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 4);
	assert_int_equal(ctd_engine_netns_going(eng, 1), 0);
	make_event(&ev, CTD_EV_DESTROY);
	ev.nsid = 1;
	ev.id = 1;
	ctd_engine_event(eng, &ev, &test_now);
	assert_int_equal(s.nrecs, 1);
	assert_int_equal(s.recs[0].end_reason, CTD_END_NETNS_GONE);
	assert_int_equal(s.recs[0].nsid, 1);
	assert_false(s.recs[0].flags & CTD_REC_DUMP_COUNTERS);
	assert_int_equal(ctd_engine_netns_gone(eng, 1, &test_now), 1);
	assert_int_equal(s.nrecs, 2);
	assert_int_equal(s.recs[1].id, 2);
	assert_int_equal(s.recs[1].end_reason, CTD_END_NETNS_GONE);
	assert_true(s.recs[1].flags & CTD_REC_DUMP_COUNTERS);
	assert_int_equal(st.ends[CTD_END_NETNS_GONE], 2);
	/* Namespace 0 keeps both flows; its DESTROYs are ordinary again. */
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 2);
	ev.nsid = 0;
	ctd_engine_event(eng, &ev, &test_now);
	assert_int_equal(s.recs[2].end_reason, CTD_END_DESTROY);
	assert_int_equal(s.recs[2].nsid, 0);
	ctd_engine_free(eng);
}

static struct ctd_now at(int64_t secs)
{
	return (struct ctd_now){ secs * 1000000, NOW_NS + (uint64_t)secs * 1000000000ULL };
}

/* A flow silent past its timeout is checked by the next dump: listed
 * means alive and re-queued; not listed means gone, record "expired". */
static void test_expiry_checked_by_dump(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event a, b;
	struct ctd_now t;

	(void)state;
	make_event(&a, CTD_EV_NEW);
	make_event(&b, CTD_EV_NEW);
	b.id = 78;
	t = at(0);
	ctd_engine_event(eng, &a, &t);
	ctd_engine_event(eng, &b, &t);
	assert_int_equal(ctd_engine_next_deadline(eng), 15 * 1000000);
	t = at(14);
	ctd_engine_sweep(eng, &t, 100);
	assert_false(ctd_engine_wants_dump(eng));
	t = at(16);
	ctd_engine_sweep(eng, &t, 100);
	assert_true(ctd_engine_wants_dump(eng));
	assert_int_equal(st.flows_suspect, 2);
	ctd_engine_dump_begin(eng, false);
	b.type = CTD_EV_UPDATE;
	b.have |= CTD_HAVE_COUNTERS;
	b.cnt[CTD_DIR_ORIG].packets = 3;
	ctd_engine_dump_entry(eng, &b, &t);     /* b alive, a not listed */
	ctd_engine_dump_end(eng, true, &t);
	assert_int_equal(s.nrecs, 1);
	assert_int_equal(s.recs[0].id, 77);
	assert_int_equal(s.recs[0].end_reason, CTD_END_EXPIRED);
	assert_int_equal(st.expiry_alive, 1);
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 1);
	assert_false(ctd_engine_wants_dump(eng));
	/* b's DESTROY later: its record, with b's own counters. */
	make_event(&b, CTD_EV_DESTROY);
	b.id = 78;
	ctd_engine_event(eng, &b, &t);
	assert_int_equal(s.nrecs, 2);
	assert_int_equal(s.recs[1].end_reason, CTD_END_DESTROY);
	ctd_engine_free(eng);
}

/* A flow that becomes suspect while a dump runs is decided by the next
 * dump: the running one may already have walked past it. A failed dump
 * decides nothing. */
static void test_suspect_during_dump_waits(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event a;
	struct ctd_now t = at(0);

	(void)state;
	make_event(&a, CTD_EV_NEW);
	ctd_engine_event(eng, &a, &t);
	ctd_engine_dump_begin(eng, false);
	t = at(20);
	ctd_engine_sweep(eng, &t, 100);
	ctd_engine_dump_end(eng, true, &t);
	assert_int_equal(s.nrecs, 0);
	assert_true(ctd_engine_wants_dump(eng));
	ctd_engine_dump_begin(eng, false);
	ctd_engine_dump_end(eng, false, &t);
	assert_int_equal(s.nrecs, 0);
	assert_int_equal(st.dump_failures, 1);
	ctd_engine_dump_begin(eng, false);
	ctd_engine_dump_end(eng, true, &t);
	assert_int_equal(s.nrecs, 1);
	assert_int_equal(s.recs[0].end_reason, CTD_END_EXPIRED);
	ctd_engine_free(eng);
}

/* An event for a suspect proves it alive; a dump entry marked DYING
 * must not bring back a flow whose DESTROY is on its way. */
static void test_event_clears_suspect_and_dying_skipped(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event a;
	struct ctd_now t = at(0);

	(void)state;
	make_event(&a, CTD_EV_NEW);
	ctd_engine_event(eng, &a, &t);
	t = at(20);
	ctd_engine_sweep(eng, &t, 100);
	assert_true(ctd_engine_wants_dump(eng));
	make_event(&a, CTD_EV_UPDATE);
	ctd_engine_event(eng, &a, &t);
	assert_false(ctd_engine_wants_dump(eng));
	assert_int_equal(ctd_engine_next_deadline(eng), 35 * 1000000);
	make_event(&a, CTD_EV_UPDATE);
	a.id = 99;
	a.status = IPS_DYING;
	a.have |= CTD_HAVE_STATUS;
	ctd_engine_dump_begin(eng, false);
	ctd_engine_dump_entry(eng, &a, &t);
	ctd_engine_dump_end(eng, true, &t);
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 1);
	assert_int_equal(st.dump_new_flows, 0);
	ctd_engine_free(eng);
}

/* Flows learnt from the startup dump keep the kernel's start time and
 * counters, and say their start was not seen. */
static void test_startup_dump_flow(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event a;
	struct ctd_now t = at(0);

	(void)state;
	make_event(&a, CTD_EV_UPDATE);
	a.have |= CTD_HAVE_COUNTERS | CTD_HAVE_TSTART;
	a.cnt[CTD_DIR_ORIG].bytes = 1000;
	a.tstart_ns = NOW_NS - 60000000000ULL;
	ctd_engine_dump_begin(eng, false);
	ctd_engine_dump_entry(eng, &a, &t);
	ctd_engine_dump_end(eng, true, &t);
	assert_int_equal(st.dump_new_flows, 1);
	t = at(100);
	ctd_engine_sweep(eng, &t, 100);
	ctd_engine_dump_begin(eng, false);
	ctd_engine_dump_end(eng, true, &t);
	assert_int_equal(s.nrecs, 1);
	assert_int_equal(s.recs[0].start_ns, NOW_NS - 60000000000ULL);
	assert_int_equal(s.recs[0].cnt[CTD_DIR_ORIG].bytes, 1000);
	assert_false(s.recs[0].flags & CTD_REC_START_SEEN);
	assert_false(s.recs[0].flags & CTD_REC_NEW_SEEN);
	ctd_engine_free(eng);
}

/* DESTROY-only subscription: a flow learnt from the startup dump gets no
 * event until its end. Silent past its timeout here, it is checked by a
 * dump, which lists it: alive, never a false "expired". Its DESTROY then
 * completes it once, with the kernel's final counters. */
static void test_destroy_only_dump_flow_stays_alive(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event a;
	struct ctd_now t = at(0);

	(void)state;
	make_event(&a, CTD_EV_UPDATE);
	a.have |= CTD_HAVE_COUNTERS | CTD_HAVE_TSTART;
	a.cnt[CTD_DIR_ORIG].bytes = 1000;
	a.tstart_ns = NOW_NS - 60000000000ULL;
	ctd_engine_dump_begin(eng, false);
	ctd_engine_dump_entry(eng, &a, &t);
	ctd_engine_dump_end(eng, true, &t);
	for (int64_t secs = 100; secs <= 300; secs += 100) {
		t = at(secs);
		ctd_engine_sweep(eng, &t, 100);
		assert_true(ctd_engine_wants_dump(eng));
		ctd_engine_dump_begin(eng, false);
		ctd_engine_dump_entry(eng, &a, &t);
		ctd_engine_dump_end(eng, true, &t);
	}
	assert_int_equal(s.nrecs, 0);
	assert_int_equal(st.expiry_alive, 3);
	a.type = CTD_EV_DESTROY;
	a.have |= CTD_HAVE_TSTOP;
	a.cnt[CTD_DIR_ORIG].bytes = 5000;
	a.tstop_ns = NOW_NS + 300000000000ULL;
	ctd_engine_event(eng, &a, &t);
	assert_int_equal(s.nrecs, 1);
	assert_int_equal(s.recs[0].end_reason, CTD_END_DESTROY);
	assert_int_equal(s.recs[0].cnt[CTD_DIR_ORIG].bytes, 5000);
	assert_true(s.recs[0].flags & CTD_REC_KERNEL_TIME);
	assert_int_equal(s.recs[0].start_ns, NOW_NS - 60000000000ULL);
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 0);
	ctd_engine_free(eng);
}

/* DESTROY-only subscription on recorded kernel messages: NAT, mark, ICMP
 * and TCP state all come from the DESTROY alone. */
static void test_destroy_only_records_complete(void **state)
{
	struct recording rec;
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	const struct ctd_record *r;

	(void)state;
	recording_load(&rec, "icmp-nat-mark.nl");
	replay(eng, &rec, true);
	assert_int_equal(s.nrecs, 4);
	assert_int_equal(st.flows_created, 0);
	for (size_t i = 0; i < s.nrecs; i++) {
		r = &s.recs[i];
		assert_true(r->flags & CTD_REC_COUNTERS);
		assert_true(r->flags & CTD_REC_KERNEL_TIME);
		assert_true(r->status & IPS_CONFIRMED);
		assert_int_equal(r->zone, 0);
		assert_false(r->flags & CTD_REC_NEW_SEEN);
		/* Recorded after conntrack -F: the DESTROYs carry the
		 * seconds left, so the end is a forced one. */
		assert_true(r->flags & CTD_REC_FORCED);
	}
	r = find(&s, IPPROTO_UDP, AF_INET);
	assert_int_equal(r->mark, 42);
	assert_int_equal(r->tuple[CTD_DIR_ORIG].dport, 6000);
	assert_int_equal(r->cnt[CTD_DIR_ORIG].bytes, 31);
	r = find(&s, IPPROTO_TCP, AF_INET);
	assert_int_equal(r->tuple[CTD_DIR_ORIG].dport, 9999);
	assert_int_equal(r->tuple[CTD_DIR_REPLY].sport, 8080);
	assert_true(r->status & IPS_DST_NAT);
	assert_true(r->flags & CTD_REC_TCPSTATE);
	assert_int_equal(r->tcp_state, 7);      /* TCP_CONNTRACK_TIME_WAIT */
	assert_int_equal(r->cnt[CTD_DIR_ORIG].packets, 5);
	assert_int_equal(r->cnt[CTD_DIR_REPLY].bytes, 164);
	r = find(&s, IPPROTO_ICMP, AF_INET);
	assert_int_equal(r->tuple[CTD_DIR_ORIG].sport, 4660);
	assert_int_equal(r->cnt[CTD_DIR_REPLY].bytes, 32);
	r = find(&s, IPPROTO_ICMPV6, AF_INET6);
	assert_int_equal(r->tuple[CTD_DIR_ORIG].sport, 17185);
	ctd_engine_free(eng);
	recording_free(&rec);
}

/* A DESTROY tells a forced end by the seconds it had left (CTA_TIMEOUT,
 * left out at 0), for flows ctd never tracked too; without it, only a
 * tracked flow's deadline tells. */
static void test_forced_end_from_destroy(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event ev;
	struct ctd_now t = at(0);

	(void)state;
	make_event(&ev, CTD_EV_DESTROY);
	ev.have |= CTD_HAVE_TIMEOUT;
	ev.timeout = 25;
	ctd_engine_event(eng, &ev, &t);          /* untracked, flushed */
	make_event(&ev, CTD_EV_DESTROY);
	ev.id = 78;
	ctd_engine_event(eng, &ev, &t);          /* untracked, timed out */
	make_event(&ev, CTD_EV_NEW);
	ev.id = 79;
	ctd_engine_event(eng, &ev, &t);
	make_event(&ev, CTD_EV_DESTROY);
	ev.id = 79;
	t = at(2);
	ctd_engine_event(eng, &ev, &t);          /* tracked, 8 s before its timeout */
	assert_int_equal(s.nrecs, 3);
	assert_true(s.recs[0].flags & CTD_REC_FORCED);
	assert_false(s.recs[1].flags & CTD_REC_FORCED);
	assert_true(s.recs[2].flags & CTD_REC_FORCED);
	ctd_engine_free(eng);
}

/* The kernel's event stamp against the read time gives the DESTROY's
 * latency bucket; events without the stamp are not counted. */
static void test_destroy_latency_counted(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event ev;
	uint64_t total = 0;

	(void)state;
	make_event(&ev, CTD_EV_DESTROY);
	ctd_engine_event(eng, &ev, &test_now);
	ev.id++;
	ev.have |= CTD_HAVE_TEVENT;
	ev.tevent_ns = NOW_NS - 30000000ULL;      /* 30 ms: <= 50 ms */
	ctd_engine_event(eng, &ev, &test_now);
	ev.id++;
	ev.tevent_ns = NOW_NS - 1000000ULL;       /* exactly 1 ms */
	ctd_engine_event(eng, &ev, &test_now);
	ev.id++;
	ev.tevent_ns = NOW_NS - 3000000000ULL;    /* 3 s */
	ctd_engine_event(eng, &ev, &test_now);
	ev.id++;
	ev.tevent_ns = NOW_NS + 5000000ULL;       /* clock stepped back */
	ctd_engine_event(eng, &ev, &test_now);
	assert_int_equal(st.latency[5], 1);
	assert_int_equal(st.latency[0], 2);
	assert_int_equal(st.latency[CTD_LAT__COUNT - 1], 1);
	for (size_t i = 0; i < CTD_LAT__COUNT; i++)
		total += st.latency[i];
	assert_int_equal(total, 4);
	assert_int_equal(s.nrecs, 5);
	ctd_engine_free(eng);
}

/* Lossy mode: after a resync dump, flows neither listed nor heard of
 * since it began are "lost"; flows created meanwhile are kept. */
static void test_resync_marks_lost(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event a, b, c;
	struct ctd_now t = at(0);

	(void)state;
	make_event(&a, CTD_EV_NEW);
	make_event(&b, CTD_EV_NEW);
	make_event(&c, CTD_EV_NEW);
	b.id = 78;
	c.id = 79;
	ctd_engine_event(eng, &a, &t);
	ctd_engine_event(eng, &b, &t);
	ctd_engine_dump_begin(eng, true);
	ctd_engine_event(eng, &c, &t);          /* new during the dump */
	b.type = CTD_EV_UPDATE;
	ctd_engine_dump_entry(eng, &b, &t);     /* listed */
	ctd_engine_dump_end(eng, true, &t);     /* a: lost */
	assert_int_equal(s.nrecs, 1);
	assert_int_equal(s.recs[0].id, 77);
	assert_int_equal(s.recs[0].end_reason, CTD_END_LOST);
	assert_int_equal(st.resyncs, 1);
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 2);
	/* A plain check dump never declares anything lost. */
	ctd_engine_dump_begin(eng, false);
	ctd_engine_dump_end(eng, true, &t);
	assert_int_equal(s.nrecs, 1);
	ctd_engine_free(eng);
}

/* During a dump, a DESTROY leaves a tombstone: the dump's stale entry
 * for that flow is skipped, a repeated DESTROY is dropped, and a NEW
 * with the same key (reused id) starts a fresh flow. After the dump the
 * tombstones are gone. */
static void test_tombstones_during_dump(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event a, b;
	struct ctd_now t = at(0);

	(void)state;
	ctd_engine_dump_begin(eng, true);
	make_event(&a, CTD_EV_DESTROY);            /* never seen, ends now */
	ctd_engine_event(eng, &a, &t);
	assert_int_equal(s.nrecs, 1);
	make_event(&a, CTD_EV_UPDATE);             /* the dump's older view */
	ctd_engine_dump_entry(eng, &a, &t);
	assert_int_equal(st.dump_stale, 1);
	make_event(&a, CTD_EV_DESTROY);            /* a re-sent DESTROY */
	ctd_engine_event(eng, &a, &t);
	assert_int_equal(st.destroy_duplicates, 1);
	assert_int_equal(s.nrecs, 1);
	make_event(&b, CTD_EV_NEW);                /* same key, new flow */
	ctd_engine_event(eng, &b, &t);
	ctd_engine_dump_end(eng, true, &t);
	assert_int_equal(s.nrecs, 1);              /* b was heard of: kept */
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 1);
	make_event(&b, CTD_EV_DESTROY);
	ctd_engine_event(eng, &b, &t);
	assert_int_equal(s.nrecs, 2);
	assert_true(s.recs[1].flags & CTD_REC_NEW_SEEN);
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 0);
	ctd_engine_free(eng);
}

static void dump_counters(struct ctd_engine *eng, uint64_t pkts, int64_t secs)
{
	struct ctd_event ev;
	struct ctd_now t = at(secs);

	make_event(&ev, CTD_EV_UPDATE);
	ev.have |= CTD_HAVE_COUNTERS;
	ev.cnt[CTD_DIR_ORIG].packets = pkts;
	ev.cnt[CTD_DIR_ORIG].bytes = pkts * 100;
	ctd_engine_dump_begin(eng, false);
	ctd_engine_dump_entry(eng, &ev, &t);
	ctd_engine_dump_end(eng, true, &t);
}

/* Interim records every active timeout, deltas since the previous one;
 * the final record's delta closes the sum. */
static void test_interim_deltas(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine_active(0, 2, &st, &s);
	struct ctd_event ev;
	struct ctd_now t = at(0);

	(void)state;
	make_event(&ev, CTD_EV_NEW);
	ctd_engine_event(eng, &ev, &t);
	dump_counters(eng, 3, 1);          /* 1 s old: not yet */
	assert_int_equal(s.nrecs, 0);
	dump_counters(eng, 5, 2);          /* 2 s: interim, delta 5 */
	dump_counters(eng, 6, 3);          /* 1 s after it: not yet */
	dump_counters(eng, 12, 4);         /* interim, delta 7 */
	assert_int_equal(s.nrecs, 2);
	assert_int_equal(s.recs[0].end_reason, CTD_END_ACTIVE);
	assert_int_equal(s.recs[0].delta[CTD_DIR_ORIG].packets, 5);
	assert_int_equal(s.recs[1].delta[CTD_DIR_ORIG].packets, 7);
	assert_int_equal(s.recs[1].delta[CTD_DIR_ORIG].bytes, 700);
	assert_int_equal(s.recs[1].cnt[CTD_DIR_ORIG].packets, 12);
	make_event(&ev, CTD_EV_DESTROY);
	ev.have |= CTD_HAVE_COUNTERS;
	ev.cnt[CTD_DIR_ORIG].packets = 15;
	ev.cnt[CTD_DIR_ORIG].bytes = 1500;
	t = at(5);
	ctd_engine_event(eng, &ev, &t);
	assert_int_equal(s.nrecs, 3);
	assert_true(s.recs[2].flags & CTD_REC_DELTA);
	assert_int_equal(s.recs[2].delta[CTD_DIR_ORIG].packets, 3);
	assert_int_equal(s.recs[2].delta[CTD_DIR_ORIG].bytes, 300);
	assert_int_equal(st.ends[CTD_END_ACTIVE], 2);
	ctd_engine_free(eng);
}

/* Reliable mode: a suspect gone from the table but on the kernel's
 * dying list is alive for us (its DESTROY is coming): no "expired"
 * record, and the DESTROY gives the one record. */
static void test_pending_destroy_is_alive(void **state)
{
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(0, &st, &s);
	struct ctd_event a;
	struct ctd_now t = at(0);

	(void)state;
	make_event(&a, CTD_EV_NEW);
	ctd_engine_event(eng, &a, &t);
	t = at(20);
	ctd_engine_sweep(eng, &t, 100);
	ctd_engine_dump_begin(eng, false);
	make_event(&a, CTD_EV_UPDATE);
	a.status = IPS_DYING;
	ctd_engine_dump_pending(eng, &a);
	ctd_engine_dump_end(eng, true, &t);
	assert_int_equal(s.nrecs, 0);
	assert_int_equal(st.expiry_alive, 1);
	make_event(&a, CTD_EV_DESTROY);
	ctd_engine_event(eng, &a, &t);
	assert_int_equal(s.nrecs, 1);
	assert_int_equal(s.recs[0].end_reason, CTD_END_DESTROY);
	ctd_engine_free(eng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_recording),
		cmocka_unit_test(test_destroy_without_new),
		cmocka_unit_test(test_missed_events_stay_on_flow),
		cmocka_unit_test(test_repeated_destroy_dropped),
		cmocka_unit_test(test_table_full_evicts),
		cmocka_unit_test(test_evicted_at_most_once),
		cmocka_unit_test(test_malformed_counted),
		cmocka_unit_test(test_labels_and_arrival_times),
		cmocka_unit_test(test_id_distinguishes_flows),
		cmocka_unit_test(test_netns_gone),
		cmocka_unit_test(test_expiry_checked_by_dump),
		cmocka_unit_test(test_suspect_during_dump_waits),
		cmocka_unit_test(test_event_clears_suspect_and_dying_skipped),
		cmocka_unit_test(test_startup_dump_flow),
		cmocka_unit_test(test_resync_marks_lost),
		cmocka_unit_test(test_tombstones_during_dump),
		cmocka_unit_test(test_interim_deltas),
		cmocka_unit_test(test_pending_destroy_is_alive),
		cmocka_unit_test(test_destroy_only_dump_flow_stays_alive),
		cmocka_unit_test(test_destroy_only_records_complete),
		cmocka_unit_test(test_destroy_latency_counted),
		cmocka_unit_test(test_forced_end_from_destroy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
