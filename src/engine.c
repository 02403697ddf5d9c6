/* engine: applies events to the flow table.
 *
 * NEW inserts, UPDATE refreshes (inserting when the NEW was lost: the
 * kernel folds an undelivered NEW into the flow's next event), DESTROY
 * completes the flow, emits its record and frees the slot. A DESTROY for
 * a flow ctd never saw is normal under load and still yields a complete
 * record, because DESTROY carries tuples, counters and timestamps. When
 * the table is at its bound a flow is simply not tracked (counted): its
 * DESTROY will still produce a record, only labels seen earlier are lost. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/ctevent.h"
#include "ctd/engine.h"
#include "ctd/flowtable.h"
#include "ctd/record.h"
#include "ctd/stats.h"

struct ctd_engine {
	struct ctd_flowtable *flows;
	struct ctd_stats *stats;
	struct ctd_engine_sinks sinks;
};

struct ctd_engine *ctd_engine_new(size_t max_flows, struct ctd_stats *stats,
				  const struct ctd_engine_sinks *sinks)
{
	struct ctd_engine *eng = calloc(1, sizeof(*eng));

	if (!eng)
		return NULL;
	eng->flows = ctd_flowtable_new(max_flows);
	if (!eng->flows) {
		free(eng);
		return NULL;
	}
	eng->stats = stats;
	eng->sinks = *sinks;
	return eng;
}

void ctd_engine_free(struct ctd_engine *eng)
{
	if (!eng)
		return;
	ctd_flowtable_free(eng->flows);
	free(eng);
}

const struct ctd_flowtable *ctd_engine_flows(const struct ctd_engine *eng)
{
	return eng->flows;
}

static void refresh(struct ctd_flow *f, const struct ctd_event *ev)
{
	if (ev->have & CTD_HAVE_REPLY)
		f->reply = ev->tuple[CTD_DIR_REPLY];
	if (ev->have & CTD_HAVE_STATUS)
		f->status = ev->status;
	if (ev->have & CTD_HAVE_MARK)
		f->mark = ev->mark;
	if (ev->have & CTD_HAVE_TCPSTATE)
		f->tcp_state = ev->tcp_state;
	if (ev->have & CTD_HAVE_LABELS) {
		memcpy(f->labels, ev->labels, sizeof(f->labels));
		f->flags |= CTD_FLOW_LABELS;
	}
	f->flags |= CTD_FLOW_NEW_SEEN;
}

static struct ctd_flow *track(struct ctd_engine *eng,
			      const struct ctd_flow_key *key, uint64_t now_ns)
{
	struct ctd_flow *f = ctd_flowtable_lookup(eng->flows, key);
	int r;

	if (f)
		return f;
	r = ctd_flowtable_insert(eng->flows, key, &f);
	if (r == -ENOSPC) {
		eng->stats->flows_table_full++;
		return NULL;
	}
	if (r < 0) {
		eng->stats->flows_nomem++;
		return NULL;
	}
	f->first_ns = now_ns;
	eng->stats->flows_created++;
	return f;
}

static void complete(struct ctd_engine *eng, const struct ctd_flow_key *key,
		     const struct ctd_event *ev, uint64_t now_ns)
{
	struct ctd_flow *f = ctd_flowtable_lookup(eng->flows, key);
	struct ctd_record rec;

	if (!f)
		eng->stats->flows_unseen_destroy++;
	ctd_record_from_destroy(f, ev, now_ns, &rec);
	if (f)
		ctd_flowtable_remove(eng->flows, f);
	eng->stats->records++;
	if (eng->sinks.record)
		eng->sinks.record(eng->sinks.arg, &rec);
	if (eng->sinks.event)
		eng->sinks.event(eng->sinks.arg, ev, &rec, now_ns);
}

void ctd_engine_event(struct ctd_engine *eng, const struct ctd_event *ev,
		      uint64_t now_ns)
{
	struct ctd_flow_key key;
	struct ctd_flow *f;

	eng->stats->events[ev->type]++;
	ctd_flow_key_from_event(ev, &key);
	if (ev->type == CTD_EV_DESTROY) {
		complete(eng, &key, ev, now_ns);
	} else {
		f = track(eng, &key, now_ns);
		if (f)
			refresh(f, ev);
		if (eng->sinks.event)
			eng->sinks.event(eng->sinks.arg, ev, NULL, now_ns);
	}
	eng->stats->flows_tracked = ctd_flowtable_count(eng->flows);
}

void ctd_engine_message(struct ctd_engine *eng, const struct nlmsghdr *nlh,
			uint64_t now_ns)
{
	struct ctd_event ev;
	int r = ctd_ctevent_parse(nlh, &ev);

	if (r == -EPROTO) {
		eng->stats->parse_ignored++;
		return;
	}
	if (r < 0) {
		eng->stats->parse_errors++;
		return;
	}
	ctd_engine_event(eng, &ev, now_ns);
}
