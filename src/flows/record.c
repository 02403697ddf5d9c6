/* record: merges what ctd tracked of a flow with the flow's final event.
 * The DESTROY event wins wherever it carries a value (it is the kernel's
 * last word); the tracked flow fills in what DESTROY never carries
 * (labels) or what a lossy path left out. Arrival times stand in for the
 * kernel's timestamps only when the timestamp extension was off. */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "ctd/flows/flowtable.h"
#include "ctd/flows/record.h"

static void merge_flow_state(const struct ctd_flow *flow,
			     const struct ctd_event *ev,
			     struct ctd_record *rec)
{
	rec->status = ev->have & CTD_HAVE_STATUS ? ev->status :
		      flow ? flow->status : 0;
	rec->mark = ev->have & CTD_HAVE_MARK ? ev->mark :
		    flow ? flow->mark : 0;
	if (ev->have & CTD_HAVE_TCPSTATE) {
		rec->tcp_state = ev->tcp_state;
		rec->flags |= CTD_REC_TCPSTATE;
	} else if (flow && ev->proto == IPPROTO_TCP) {
		rec->tcp_state = flow->tcp_state;
		rec->flags |= CTD_REC_TCPSTATE;
	}
	if (ev->have & CTD_HAVE_LABELS) {
		memcpy(rec->labels, ev->labels, sizeof(rec->labels));
		rec->flags |= CTD_REC_LABELS;
	} else if (flow && flow->flags & CTD_FLOW_LABELS && flow->cold) {
		memcpy(rec->labels, flow->cold->labels, sizeof(rec->labels));
		rec->flags |= CTD_REC_LABELS;
	}
	if (flow && flow->flags & CTD_FLOW_NEW_SEEN)
		rec->flags |= CTD_REC_NEW_SEEN;
}

static void merge_times(const struct ctd_flow *flow,
			const struct ctd_event *ev, uint64_t now_ns,
			struct ctd_record *rec)
{
	bool kstart = ev->have & CTD_HAVE_TSTART;
	bool kstop = ev->have & CTD_HAVE_TSTOP;

	if (kstart)
		rec->start_ns = ev->tstart_ns;
	else
		rec->start_ns = flow ? flow->first_ns : now_ns;
	rec->end_ns = kstop ? ev->tstop_ns : now_ns;
	if (rec->end_ns < rec->start_ns)
		rec->end_ns = rec->start_ns;
	kstart = kstart || (flow && flow->flags & CTD_FLOW_KERNEL_START);
	if (kstart && kstop)
		rec->flags |= CTD_REC_KERNEL_TIME;
}

void ctd_record_from_destroy(const struct ctd_flow *flow,
			     const struct ctd_event *ev, uint64_t now_ns,
			     struct ctd_record *ret_rec)
{
	struct ctd_record *rec = ret_rec;

	memset(rec, 0, sizeof(*rec));
	rec->end_reason = CTD_END_DESTROY;
	rec->family = ev->family;
	rec->proto = ev->proto;
	rec->zone = ev->zone;
	rec->nsid = ev->nsid;
	rec->id = ev->id;
	rec->tuple[CTD_DIR_ORIG] = ev->tuple[CTD_DIR_ORIG];
	if (ev->have & CTD_HAVE_REPLY)
		rec->tuple[CTD_DIR_REPLY] = ev->tuple[CTD_DIR_REPLY];
	else if (flow)
		ctd_flow_reply(flow, &rec->tuple[CTD_DIR_REPLY]);
	if (ev->have & CTD_HAVE_COUNTERS) {
		memcpy(rec->cnt, ev->cnt, sizeof(rec->cnt));
		rec->flags |= CTD_REC_COUNTERS;
	}
	merge_flow_state(flow, ev, rec);
	merge_times(flow, ev, now_ns, rec);
	ctd_record_set_delta(rec, flow);
}

void ctd_record_from_flow(const struct ctd_flow *flow,
			  enum ctd_end_reason reason, uint64_t now_ns,
			  struct ctd_record *ret_rec)
{
	struct ctd_record *rec = ret_rec;
	struct ctd_event none = { .proto = flow->key.proto };

	memset(rec, 0, sizeof(*rec));
	rec->end_reason = (uint8_t)reason;
	rec->family = flow->key.family;
	rec->proto = flow->key.proto;
	rec->zone = flow->key.zone;
	rec->nsid = flow->key.nsid;
	rec->id = flow->key.id;
	rec->tuple[CTD_DIR_ORIG] = flow->key.orig;
	ctd_flow_reply(flow, &rec->tuple[CTD_DIR_REPLY]);
	if (flow->flags & CTD_FLOW_COUNTERS && flow->cold) {
		memcpy(rec->cnt, flow->cold->cnt, sizeof(rec->cnt));
		rec->flags |= CTD_REC_COUNTERS;
	}
	merge_flow_state(flow, &none, rec);
	rec->start_ns = flow->first_ns;
	rec->end_ns = now_ns > flow->first_ns ? now_ns : flow->first_ns;
	ctd_record_set_delta(rec, flow);
}

void ctd_record_set_delta(struct ctd_record *rec, const struct ctd_flow *flow)
{
	size_t d;

	if (!flow || !(flow->flags & CTD_FLOW_REPORTED) || !flow->cold ||
	    !(rec->flags & CTD_REC_COUNTERS))
		return;
	for (d = 0; d < CTD_DIR__COUNT; d++) {
		rec->delta[d].packets = rec->cnt[d].packets -
					flow->cold->reported[d].packets;
		rec->delta[d].bytes = rec->cnt[d].bytes -
				      flow->cold->reported[d].bytes;
	}
	rec->flags |= CTD_REC_DELTA;
}

const char *ctd_end_reason_name(enum ctd_end_reason reason)
{
	static const char *const names[CTD_END__COUNT] = {
		[CTD_END_DESTROY] = "destroy",
		[CTD_END_EXPIRED] = "expired",
		[CTD_END_EVICTED] = "evicted",
		[CTD_END_LOST] = "lost",
		[CTD_END_ACTIVE] = "active",
		[CTD_END_NETNS_GONE] = "netns_gone",
	};

	return (unsigned)reason < CTD_END__COUNT ? names[reason] : "unknown";
}

void ctd_record_netns_label(const struct ctd_record *rec, char *buf, size_t len)
{
	if (!len)
		return;
	if (rec->nsid == CTD_NSID_SELF)
		buf[0] = '\0';
	else if (rec->netns[0])
		snprintf(buf, len, "%.*s", (int)sizeof(rec->netns), rec->netns);
	else
		snprintf(buf, len, "nsid:%ld", (long)rec->nsid);
}
