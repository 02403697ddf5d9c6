/* textfmt: the `ctd -f` line. One line per event, in the spirit of
 * `conntrack -E`: time, event, protocol, original tuple, reply tuple when
 * it differs from the mirrored original (NAT), TCP state, conntrack's
 * [UNREPLIED] and [ASSURED]; a DESTROY adds the flow's duration and both
 * directions' counters. A flow that ended without a DESTROY (expired,
 * lost, ...) gets an END line with the reason. Times are local unless
 * the caller asks for UTC (then with a Z). Runs only in the interactive
 * mode, so snprintf is fine here. */
#include <arpa/inet.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctd/base/timeutil.h"
#include "ctd/flows/record.h"
#include "ctd/format/textfmt.h"

struct line {
	char *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

__attribute__((format(printf, 2, 3)))
static void add(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, l->cap - l->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= l->cap - l->len)
		l->overflow = true;
	else
		l->len += (size_t)n;
}

static void add_endpoint(struct line *l, uint8_t family, const uint8_t *addr,
			 uint8_t proto, uint16_t port)
{
	char text[INET6_ADDRSTRLEN];

	if (!inet_ntop(family, addr, text, sizeof(text)))
		strcpy(text, "?");
	if (!ctd_proto_has_ports(proto))
		add(l, "%s", text);
	else if (family == AF_INET6)
		add(l, "[%s]:%u", text, port);
	else
		add(l, "%s:%u", text, port);
}

static void add_tuple(struct line *l, uint8_t family, uint8_t proto,
		      const struct ctd_tuple *t)
{
	add_endpoint(l, family, t->src, proto, t->sport);
	add(l, " -> ");
	add_endpoint(l, family, t->dst, proto, t->dport);
	if (ctd_proto_is_icmp(proto))
		add(l, " type=%u code=%u icmp_id=%u", t->dport >> 8, t->dport & 0xff,
		    t->sport);
}

static bool is_nat(uint8_t proto, const struct ctd_tuple *tuple)
{
	const struct ctd_tuple *o = &tuple[CTD_DIR_ORIG];
	const struct ctd_tuple *r = &tuple[CTD_DIR_REPLY];

	return memcmp(o->src, r->dst, 16) || memcmp(o->dst, r->src, 16) ||
	       (ctd_proto_has_ports(proto) &&
		(o->sport != r->dport || o->dport != r->sport));
}

/* label is "dur" for an ended flow, "age" for one still tracked. */
static void add_end(struct line *l, const struct ctd_record *rec,
		    const char *label)
{
	uint64_t ms = rec->end_ns / 1000000 - rec->start_ns / 1000000;

	add(l, " %s=%llu.%03llus", label, (unsigned long long)(ms / 1000),
	    (unsigned long long)(ms % 1000));
	if (rec->flags & CTD_REC_COUNTERS)
		add(l, " orig=%llup/%lluB reply=%llup/%lluB",
		    (unsigned long long)rec->cnt[CTD_DIR_ORIG].packets,
		    (unsigned long long)rec->cnt[CTD_DIR_ORIG].bytes,
		    (unsigned long long)rec->cnt[CTD_DIR_REPLY].packets,
		    (unsigned long long)rec->cnt[CTD_DIR_REPLY].bytes);
}

/* conntrack -E's words: a flow no reply was seen for, and one the kernel
 * will not drop early when its table is full. */
static void add_status(struct line *l, uint32_t status)
{
	if (!(status & IPS_SEEN_REPLY))
		add(l, " [UNREPLIED]");
	if (status & IPS_ASSURED)
		add(l, " [ASSURED]");
}

/* Time of day: "HH:MM:SS.mmm", with "Z" when utc_off_s is UTC's own. */
static void add_time(struct line *l, uint64_t ns, const struct ctd_textfmt_tz *tz)
{
	char iso[32];

	if (!tz || tz->utc) {
		ctd_fmt_iso8601_ms(ns, iso, sizeof(iso));
		add(l, "%s", iso + 11);
		return;
	}
	ns += (uint64_t)((int64_t)tz->off_s * 1000000000);
	ctd_fmt_iso8601_ms(ns, iso, sizeof(iso));
	add(l, "%.12s", iso + 11);
}

static void add_netns(struct line *l, const struct ctd_record *rec)
{
	char label[CTD_NETNS_NAME_MAX];

	ctd_record_netns_label(rec, label, sizeof(label));
	add(l, " netns=%s", label);
}

static void add_proto(struct line *l, uint8_t num)
{
	const char *proto = ctd_proto_name(num);

	if (proto)
		add(l, "%-4s ", proto);
	else
		add(l, "%-4u ", num);
}

/* Both tuples (the reply's only when NAT changed it), then the state. */
static void add_flow(struct line *l, uint8_t family, uint8_t proto,
		     const struct ctd_tuple *tuple, bool reply, const char *state)
{
	add_proto(l, proto);
	add_tuple(l, family, proto, &tuple[CTD_DIR_ORIG]);
	if (reply && is_nat(proto, tuple)) {
		add(l, " nat ");
		add_tuple(l, family, proto, &tuple[CTD_DIR_REPLY]);
	}
	if (state)
		add(l, " %s", state);
}

size_t ctd_textfmt_event(const struct ctd_event *ev,
			 const struct ctd_record *rec, const char *netns,
			 uint64_t now_ns, const struct ctd_textfmt_tz *tz,
			 char *buf, size_t cap)
{
	struct line l = { buf, cap, 0, false };
	const char *state = ev->have & CTD_HAVE_TCPSTATE ?
			    ctd_tcp_state_name(ev->tcp_state) : NULL;

	add_time(&l, now_ns, tz);
	add(&l, " %-9s ", ctd_evtype_name(ev->type));
	add_flow(&l, ev->family, ev->proto, ev->tuple,
		 ev->have & CTD_HAVE_REPLY, state);
	if (ev->have & CTD_HAVE_STATUS)
		add_status(&l, ev->status);
	if (rec)
		add_end(&l, rec, "dur");
	if (rec && rec->nsid != CTD_NSID_SELF)
		add_netns(&l, rec);
	else if (ev->nsid != CTD_NSID_SELF && netns && *netns)
		add(&l, " netns=%s", netns);
	else if (ev->nsid != CTD_NSID_SELF)
		add(&l, " netns=nsid:%ld", (long)ev->nsid);
	add(&l, " id=%u\n", ev->id);
	return l.overflow ? 0 : l.len;
}

static const char *rec_state(const struct ctd_record *rec)
{
	return rec->flags & CTD_REC_TCPSTATE ?
	       ctd_tcp_state_name(rec->tcp_state) : NULL;
}

/* No event told of this end: ctd found it (the kernel's timeout passed
 * with no DESTROY, a resync, its own table full, a namespace gone). */
size_t ctd_textfmt_end(const struct ctd_record *rec,
		       const struct ctd_textfmt_tz *tz, char *buf, size_t cap)
{
	struct line l = { buf, cap, 0, false };

	add_time(&l, rec->end_ns, tz);
	add(&l, " %-9s ", "END");
	add_flow(&l, rec->family, rec->proto, rec->tuple, true, rec_state(rec));
	add_status(&l, rec->status);
	add_end(&l, rec, "dur");
	add(&l, " end=%s", ctd_end_reason_name(rec->end_reason));
	if (rec->nsid != CTD_NSID_SELF)
		add_netns(&l, rec);
	add(&l, " id=%u\n", rec->id);
	return l.overflow ? 0 : l.len;
}

size_t ctd_textfmt_flow(const struct ctd_record *rec, char *buf, size_t cap)
{
	struct line l = { buf, cap, 0, false };

	add_flow(&l, rec->family, rec->proto, rec->tuple, true, rec_state(rec));
	add_status(&l, rec->status);
	add_end(&l, rec, "age");
	add(&l, " mark=%u zone=%u", rec->mark, rec->zone);
	if (rec->nsid != CTD_NSID_SELF)
		add_netns(&l, rec);
	add(&l, " id=%u\n", rec->id);
	return l.overflow ? 0 : l.len;
}
