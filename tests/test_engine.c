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

#include "ctd/ctevent.h"
#include "ctd/engine.h"
#include "ctd/flowtable.h"
#include "ctd/record.h"
#include "ctd/stats.h"
#include "recording.h"

#define NOW_NS 1795536600000000000ULL

struct sink {
	struct ctd_record recs[16];
	size_t nrecs;
	unsigned events[CTD_EV__COUNT];
	unsigned events_with_record;
	uint64_t last_now;
};

static void on_record(void *arg, const struct ctd_record *rec)
{
	struct sink *s = arg;

	assert_true(s->nrecs < sizeof(s->recs) / sizeof(s->recs[0]));
	s->recs[s->nrecs++] = *rec;
}

static void on_event(void *arg, const struct ctd_event *ev,
		     const struct ctd_record *rec, uint64_t now_ns)
{
	struct sink *s = arg;

	s->last_now = now_ns;
	s->events[ev->type]++;
	if (rec) {
		assert_int_equal(ev->type, CTD_EV_DESTROY);
		s->events_with_record++;
	}
}

static struct ctd_engine *new_engine(size_t max_flows, struct ctd_stats *st,
				     struct sink *s)
{
	struct ctd_engine_sinks sinks = { on_record, on_event, s };
	struct ctd_engine *eng;

	memset(st, 0, sizeof(*st));
	memset(s, 0, sizeof(*s));
	eng = ctd_engine_new(max_flows, st, &sinks);
	assert_non_null(eng);
	return eng;
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
			ctd_engine_message(eng, rec->msgs[i], NOW_NS);
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

/* At the table bound flows go untracked but their records still come. */
static void test_table_full_still_records(void **state)
{
	struct recording rec;
	struct ctd_stats st;
	struct sink s;
	struct ctd_engine *eng = new_engine(1, &st, &s);

	(void)state;
	recording_load(&rec, "basic.nl");
	replay(eng, &rec, false);
	assert_int_equal(s.nrecs, 4);
	assert_true(st.flows_table_full > 0);
	assert_int_equal(st.flows_created + st.flows_unseen_destroy, 4);
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
	ctd_engine_message(eng, copy, NOW_NS);
	copy->nlmsg_type = NLMSG_ERROR;
	ctd_engine_message(eng, copy, NOW_NS);
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
	ctd_engine_event(eng, &ev, NOW_NS - 5000000000ULL);
	make_event(&ev, CTD_EV_UPDATE);
	ev.have |= CTD_HAVE_LABELS | CTD_HAVE_MARK;
	ev.labels[3] = 0x80;
	ev.mark = 9;
	ctd_engine_event(eng, &ev, NOW_NS - 1000000000ULL);
	make_event(&ev, CTD_EV_DESTROY);
	ctd_engine_event(eng, &ev, NOW_NS);
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
	ctd_engine_event(eng, &ev, NOW_NS);
	ev.id = 78;
	ctd_engine_event(eng, &ev, NOW_NS);
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 2);
	make_event(&ev, CTD_EV_DESTROY);
	ctd_engine_event(eng, &ev, NOW_NS);
	assert_int_equal(ctd_flowtable_count(ctd_engine_flows(eng)), 1);
	assert_int_equal(s.nrecs, 1);
	assert_int_equal(s.recs[0].id, 77);
	assert_true(s.recs[0].flags & CTD_REC_NEW_SEEN);
	ctd_engine_free(eng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_recording),
		cmocka_unit_test(test_destroy_without_new),
		cmocka_unit_test(test_table_full_still_records),
		cmocka_unit_test(test_malformed_counted),
		cmocka_unit_test(test_labels_and_arrival_times),
		cmocka_unit_test(test_id_distinguishes_flows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
