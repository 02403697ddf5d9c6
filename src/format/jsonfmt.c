/* jsonfmt: writes records as JSON lines without printf, since this runs
 * once per completed flow on the hot path. A small cursor type collects
 * the text and notes overflow once, so the field code stays linear. All
 * strings go through the escaper even when ctd produced them: a later
 * field (a helper name, a label) must not be able to break the line. */
#include <arpa/inet.h>
#include <string.h>

#include "ctd/base/timeutil.h"
#include "ctd/flows/record.h"
#include "ctd/format/jsonfmt.h"
#include "ctd/kernel/connlabel.h"

struct cursor {
	char *p;
	char *end;
	bool overflow;
};

static void put(struct cursor *c, const char *s, size_t n)
{
	if (c->overflow || (size_t)(c->end - c->p) < n) {
		c->overflow = true;
		return;
	}
	memcpy(c->p, s, n);
	c->p += n;
}

#define PUT_LIT(c, lit) put((c), (lit), sizeof(lit) - 1)

static void put_u64(struct cursor *c, uint64_t v)
{
	static const char pairs[] =
		"00010203040506070809101112131415161718192021222324"
		"25262728293031323334353637383940414243444546474849"
		"50515253545556575859606162636465666768697071727374"
		"75767778798081828384858687888990919293949596979899";
	char tmp[20];
	size_t n = sizeof(tmp);

	/* Two digits per division: counters and times are long numbers. */
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;

		v /= 100;
		tmp[--n] = pairs[d + 1];
		tmp[--n] = pairs[d];
	}
	if (v >= 10) {
		tmp[--n] = pairs[v * 2 + 1];
		tmp[--n] = pairs[v * 2];
	} else {
		tmp[--n] = (char)('0' + v);
	}
	put(c, tmp + n, sizeof(tmp) - n);
}

static void put_escaped(struct cursor *c, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };

		if (ch == '"' || ch == '\\') {
			put(c, "\\", 1);
			put(c, s, 1);
		} else if (ch < 0x20) {
			put(c, esc, sizeof(esc));
		} else {
			put(c, s, 1);
		}
	}
}

static void put_bool(struct cursor *c, bool v)
{
	if (v)
		PUT_LIT(c, "true");
	else
		PUT_LIT(c, "false");
}

/* A string of ctd's own (names, addresses, times): nothing to escape,
 * and the hot path should not look at it byte by byte. */
static void put_quoted(struct cursor *c, const char *s, size_t n)
{
	put(c, "\"", 1);
	put(c, s, n);
	put(c, "\"", 1);
}

static void put_str(struct cursor *c, const char *s)
{
	put_quoted(c, s, strlen(s));
}

/* ,"key": for a literal key, one copy of known length. */
#define PUT_KEY(c, lit) put((c), ",\"" lit "\":", sizeof(lit) + 3)

/* inet_ntop formats IPv4 with sprintf: a tenth of the record's cost. */
static size_t fmt_ipv4(const uint8_t *a, char *out)
{
	char *p = out;

	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];

		if (i)
			*p++ = '.';
		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
	}
	return (size_t)(p - out);
}

static char *fmt_hex16(unsigned v, char *p)
{
	static const char hex[] = "0123456789abcdef";
	int shift = v >= 0x1000 ? 12 : v >= 0x100 ? 8 : v >= 0x10 ? 4 : 0;

	for (; shift >= 0; shift -= 4)
		*p++ = hex[(v >> shift) & 15];
	return p;
}

/* The longest run of two or more zero groups (the first of equal ones),
 * as RFC 5952 and glibc choose it; *ret_len 0 when there is none. */
static int zero_run(const unsigned *w, int *ret_len)
{
	int best = -1, best_len = 0, cur = -1, cur_len = 0;

	for (int i = 0; i < 8; i++) {
		if (w[i]) {
			cur = -1;
			continue;
		}
		if (cur < 0) {
			cur = i;
			cur_len = 0;
		}
		if (++cur_len > best_len) {
			best = cur;
			best_len = cur_len;
		}
	}
	*ret_len = best_len >= 2 ? best_len : 0;
	return best_len >= 2 ? best : -1;
}

/* inet_ntop went through vfprintf per group: 12 % of a record's
 * instructions. Same text as glibc's, IPv4-compatible and -mapped
 * addresses included. */
size_t ctd_jsonfmt_ipv6(const uint8_t *a, char *out)
{
	unsigned w[8];
	char *p = out;
	int run, len;

	for (int i = 0; i < 8; i++)
		w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
	run = zero_run(w, &len);
	for (int i = 0; i < 8; i++) {
		if (i == run) {
			*p++ = ':';
			if (i + len == 8)
				*p++ = ':';
			i += len - 1;
			continue;
		}
		if (i)
			*p++ = ':';
		if (i == 6 && run == 0 && (len == 6 || (len == 5 && w[5] == 0xffff)))
			return (size_t)(p - out) + fmt_ipv4(a + 12, p);
		p = fmt_hex16(w[i], p);
	}
	return (size_t)(p - out);
}

static void put_addr(struct cursor *c, uint8_t family, const uint8_t *a)
{
	char text[INET6_ADDRSTRLEN];
	size_t n = family == AF_INET ? fmt_ipv4(a, text) : ctd_jsonfmt_ipv6(a, text);

	put_quoted(c, text, n);
}

static void put_tuple(struct cursor *c, const struct ctd_record *rec,
		      enum ctd_dir dir)
{
	const struct ctd_tuple *t = &rec->tuple[dir];

	PUT_LIT(c, "{\"src\":");
	put_addr(c, rec->family, t->src);
	PUT_LIT(c, ",\"dst\":");
	put_addr(c, rec->family, t->dst);
	if (ctd_proto_has_ports(rec->proto)) {
		PUT_KEY(c, "sport");
		put_u64(c, t->sport);
		PUT_KEY(c, "dport");
		put_u64(c, t->dport);
	} else if (ctd_proto_is_icmp(rec->proto)) {
		PUT_KEY(c, "icmp_type");
		put_u64(c, t->dport >> 8);
		PUT_KEY(c, "icmp_code");
		put_u64(c, t->dport & 0xff);
		PUT_KEY(c, "icmp_id");
		put_u64(c, t->sport);
	}
	if (rec->flags & CTD_REC_COUNTERS) {
		PUT_KEY(c, "packets");
		put_u64(c, rec->cnt[dir].packets);
		PUT_KEY(c, "bytes");
		put_u64(c, rec->cnt[dir].bytes);
	}
	if (rec->flags & CTD_REC_DELTA) {
		PUT_KEY(c, "delta_packets");
		put_u64(c, rec->delta[dir].packets);
		PUT_KEY(c, "delta_bytes");
		put_u64(c, rec->delta[dir].bytes);
	}
	put(c, "}", 1);
}

/* key and key_ms as ,"key": text, key_ms three bytes longer. */
static void put_time(struct cursor *c, const char *key, const char *key_ms,
		     size_t key_len, uint64_t ns)
{
	char iso[32];
	size_t n = ctd_fmt_iso8601_ms(ns, iso, sizeof(iso));

	put(c, key, key_len);
	put_quoted(c, iso, n);
	put(c, key_ms, key_len + 3);
	put_u64(c, ns / 1000000);
}

/* "key" and "key_ms", literals, copied without strlen (twice a record). */
#define PUT_TIME(c, lit, ns) \
	put_time((c), ",\"" lit "\":", ",\"" lit "_ms\":", sizeof(lit) + 3, (ns))

/* Bit order of enum ip_conntrack_status (linux/netfilter/nf_conntrack_common.h). */
static const char *const status_names[] = {
	"EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT",
	"DST_NAT", "SEQ_ADJUST", "SRC_NAT_DONE", "DST_NAT_DONE", "DYING",
	"FIXED_TIMEOUT", "TEMPLATE", "UNTRACKED", "HELPER", "OFFLOAD",
	"HW_OFFLOAD",
};

static void put_status(struct cursor *c, uint32_t status)
{
	size_t i;
	bool first = true;

	PUT_KEY(c, "status");
	put(c, "[", 1);
	for (i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (!(status & (1u << i)))
			continue;
		if (!first)
			put(c, ",", 1);
		put_str(c, status_names[i]);
		first = false;
	}
	put(c, "]", 1);
}

static void put_proto(struct cursor *c, const struct ctd_record *rec)
{
	const char *name = ctd_proto_name(rec->proto);
	char num[4] = { 0 };

	if (!name) {
		num[0] = (char)('0' + rec->proto / 100);
		num[1] = (char)('0' + rec->proto / 10 % 10);
		num[2] = (char)('0' + rec->proto % 10);
		name = num + (rec->proto < 10 ? 2 : rec->proto < 100 ? 1 : 0);
	}
	PUT_KEY(c, "proto");
	put_str(c, name);
	PUT_KEY(c, "proto_num");
	put_u64(c, rec->proto);
}

static void put_events(struct cursor *c, uint8_t events)
{
	PUT_LIT(c, "{\"v\":1,\"type\":\"event\"");
	PUT_KEY(c, "events");
	put(c, "[", 1);
	if (events & 1u << CTD_EV_NEW)
		PUT_LIT(c, "\"new\"");
	if ((events & 1u << CTD_EV_NEW) && (events & 1u << CTD_EV_UPDATE))
		put(c, ",", 1);
	if (events & 1u << CTD_EV_UPDATE)
		PUT_LIT(c, "\"update\"");
	put(c, "]", 1);
}

static void put_head(struct cursor *c, const struct ctd_record *rec)
{
	if (rec->events) {
		put_events(c, rec->events);
	} else {
		PUT_LIT(c, "{\"v\":1,\"type\":\"flow\"");
		PUT_KEY(c, "end_reason");
		put_str(c, ctd_end_reason_name(rec->end_reason));
	}
	PUT_KEY(c, "id");
	put_u64(c, rec->id);
	PUT_KEY(c, "family");
	put_str(c, rec->family == AF_INET6 ? "ipv6" : "ipv4");
	put_proto(c, rec);
	PUT_KEY(c, "orig");
	put_tuple(c, rec, CTD_DIR_ORIG);
	PUT_KEY(c, "reply");
	put_tuple(c, rec, CTD_DIR_REPLY);
}

/* Absent for ctd's own namespace; names are any bytes but '/'. */
static void put_netns(struct cursor *c, const struct ctd_record *rec)
{
	char label[CTD_NETNS_NAME_MAX];

	if (rec->nsid != CTD_NSID_SELF) {
		ctd_record_netns_label(rec, label, sizeof(label));
		PUT_KEY(c, "netns");
		put(c, "\"", 1);
		put_escaped(c, label);
		put(c, "\"", 1);
	}
	if (rec->flags & CTD_REC_DUMP_COUNTERS) {
		PUT_KEY(c, "counters_from");
		put_str(c, "last_dump");
	}
}

static void put_tail(struct cursor *c, const struct ctd_record *rec)
{
	const char *state;

	PUT_TIME(c, "start", rec->start_ns);
	if (rec->events) {
		/* Not an end: when ctd saw the event. */
		PUT_TIME(c, "time", rec->end_ns);
	} else {
		PUT_TIME(c, "end", rec->end_ns);
		PUT_KEY(c, "duration_ms");
		put_u64(c, rec->end_ns / 1000000 - rec->start_ns / 1000000);
	}
	PUT_KEY(c, "time_source");
	put_str(c, rec->flags & CTD_REC_KERNEL_TIME ? "kernel" : "ctd");
	if (rec->flags & CTD_REC_TCPSTATE) {
		state = ctd_tcp_state_name(rec->tcp_state);
		PUT_KEY(c, "tcp_state");
		put_str(c, state ? state : "UNKNOWN");
	}
	put_status(c, rec->status);
	PUT_KEY(c, "mark");
	put_u64(c, rec->mark);
	PUT_KEY(c, "zone");
	put_u64(c, rec->zone);
	put_netns(c, rec);
	PUT_KEY(c, "new_seen");
	put_bool(c, rec->flags & CTD_REC_NEW_SEEN);
	PUT_KEY(c, "start_seen");
	put_bool(c, rec->flags & CTD_REC_START_SEEN);
	if (rec->flags & CTD_REC_DUP_UNCHECKED) {
		PUT_KEY(c, "dup_check");
		put_str(c, "none");
	}
}

/* Names are plain (connlabel.c keeps only letters, digits, space and
 * '-'); a bit without one is its number, a string too, so the array
 * has one type. */
static void put_labels(struct cursor *c, const struct ctd_record *rec,
		       const struct ctd_connlabel *names)
{
	bool first = true;

	if (!names || !(rec->flags & CTD_REC_LABELS) ||
	    !ctd_connlabel_any(rec->labels))
		return;
	PUT_KEY(c, "labels");
	put(c, "[", 1);
	for (unsigned b = 0; b < CTD_CONNLABEL_BITS; b++) {
		const char *name = ctd_connlabel_name(names, b);

		if (!ctd_connlabel_test(rec->labels, b))
			continue;
		if (!first)
			put(c, ",", 1);
		first = false;
		if (name) {
			put_str(c, name);
			continue;
		}
		put(c, "\"", 1);
		put_u64(c, b);
		put(c, "\"", 1);
	}
	put(c, "]", 1);
}

size_t ctd_jsonfmt_record_labels(const struct ctd_record *rec,
				 const struct ctd_connlabel *names,
				 char *buf, size_t cap)
{
	struct cursor c = { buf, buf + cap, false };

	put_head(&c, rec);
	put_tail(&c, rec);
	put_labels(&c, rec, names);
	PUT_LIT(&c, "}\n");
	return c.overflow ? 0 : (size_t)(c.p - buf);
}

size_t ctd_jsonfmt_record(const struct ctd_record *rec, char *buf, size_t cap)
{
	return ctd_jsonfmt_record_labels(rec, NULL, buf, cap);
}

size_t ctd_jsonfmt_string(const char *s, char *buf, size_t cap)
{
	struct cursor c = { buf, buf + cap, false };

	put(&c, "\"", 1);
	put_escaped(&c, s);
	put(&c, "\"", 1);
	return c.overflow ? 0 : (size_t)(c.p - buf);
}
