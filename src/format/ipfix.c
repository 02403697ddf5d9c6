/* ipfix: IPFIX messages from flow records.
 *
 * One list of fields per template drives both the template record and
 * the data records, so the two cannot disagree. Counters are delta
 * counts: an interim record carries what the flow did since the previous
 * one, and the final record the rest, so a collector that sums gets the
 * kernel's totals. */
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/flows/record.h"
#include "ctd/format/ipfix.h"

enum kind {
	K_SRC4, K_DST4, K_SRC6, K_DST6, K_SPORT, K_DPORT, K_PROTO, K_ICMP,
	K_START, K_END, K_OCT, K_PKT, K_ROCT, K_RPKT, K_REASON, K_VRF,
	K_MARK, K_CTID, K_NSRC4, K_NDST4, K_NSRC6, K_NDST6, K_NSPORT,
	K_NDPORT, K_NATEV, K_LABELS,
};

struct ie {
	uint16_t id;
	uint16_t len;
	uint32_t pen;
	uint8_t kind;
};

#define FIELDS_MAX 32
#define PEN_SELF 1u    /* stands for the configured enterprise number */

/* Enterprise-specific element ids under the configured number
 * (docs/outputs.md): ctMark, ctId, ctLabels. */
enum { IE_CT_MARK = 1, IE_CT_ID = 2, IE_CT_LABELS = 3 };

static const struct ie ie_addr4[] = {
	{ 8, 4, 0, K_SRC4 }, { 12, 4, 0, K_DST4 },
};
static const struct ie ie_addr6[] = {
	{ 27, 16, 0, K_SRC6 }, { 28, 16, 0, K_DST6 },
};
static const struct ie ie_common[] = {
	{ 7, 2, 0, K_SPORT }, { 11, 2, 0, K_DPORT }, { 4, 1, 0, K_PROTO },
	{ 152, 8, 0, K_START }, { 153, 8, 0, K_END },
};
static const struct ie ie_count[CTD_IPFIX_SHAPE__COUNT][4] = {
	[CTD_IPFIX_BIFLOW] = {
		{ 1, 8, 0, K_OCT }, { 2, 8, 0, K_PKT },
		{ 1, 8, CTD_IPFIX_PEN_REVERSE, K_ROCT },
		{ 2, 8, CTD_IPFIX_PEN_REVERSE, K_RPKT },
	},
	[CTD_IPFIX_UNIFLOW] = { { 1, 8, 0, K_OCT }, { 2, 8, 0, K_PKT } },
	[CTD_IPFIX_INITIATOR] = {
		{ 231, 8, 0, K_OCT }, { 298, 8, 0, K_PKT },
		{ 232, 8, 0, K_ROCT }, { 299, 8, 0, K_RPKT },
	},
};
static const struct ie ie_tail[] = {
	{ 136, 1, 0, K_REASON }, { 234, 4, 0, K_VRF },
};
static const struct ie ie_own[] = {
	{ IE_CT_MARK, 4, PEN_SELF, K_MARK }, { IE_CT_ID, 4, PEN_SELF, K_CTID },
};
static const struct ie ie_labels = { IE_CT_LABELS, 16, PEN_SELF, K_LABELS };
static const struct ie ie_nat4[] = {
	{ 225, 4, 0, K_NSRC4 }, { 226, 4, 0, K_NDST4 },
};
static const struct ie ie_nat6[] = {
	{ 281, 16, 0, K_NSRC6 }, { 282, 16, 0, K_NDST6 },
};
static const struct ie ie_napt[] = {
	{ 227, 2, 0, K_NSPORT }, { 228, 2, 0, K_NDPORT },
};
static const struct ie ie_natev = { 230, 1, 0, K_NATEV };

/* RFC 7011 4.3: scope exportingProcessId, then the counters. */
static const struct ie ie_stats[] = {
	{ 144, 4, 0, 0 }, { 41, 8, 0, 0 }, { 42, 8, 0, 0 }, { 40, 8, 0, 0 },
	{ 166, 8, 0, 0 },
};
#define STATS_RECORD_LEN 36

#define N(a) (sizeof(a) / sizeof((a)[0]))

static size_t append(struct ie *f, size_t n, const struct ie *add, size_t k)
{
	memcpy(f + n, add, k * sizeof(*add));
	return n + k;
}

static size_t fields(const struct ctd_ipfix_cfg *cfg, uint16_t tid,
		     struct ie f[FIELDS_MAX])
{
	bool v6 = tid == CTD_IPFIX_TID_V6 || tid == CTD_IPFIX_TID_V6_NAT;
	bool nat = tid == CTD_IPFIX_TID_V4_NAT || tid == CTD_IPFIX_TID_V6_NAT;
	size_t n = 0, ncount = cfg->shape == CTD_IPFIX_UNIFLOW ? 2 : 4;
	struct ie icmp = { v6 ? 139 : 32, 2, 0, K_ICMP };

	n = append(f, n, v6 ? ie_addr6 : ie_addr4, 2);
	n = append(f, n, ie_common, N(ie_common));
	n = append(f, n, &icmp, 1);
	n = append(f, n, ie_count[cfg->shape], ncount);
	n = append(f, n, ie_tail, N(ie_tail));
	if (cfg->pen)
		n = append(f, n, ie_own, N(ie_own));
	if (cfg->pen && cfg->labels)
		n = append(f, n, &ie_labels, 1);
	if (nat) {
		n = append(f, n, v6 ? ie_nat6 : ie_nat4, 2);
		n = append(f, n, ie_napt, N(ie_napt));
		if (cfg->nat_event != CTD_IPFIX_NATEV_NONE)
			n = append(f, n, &ie_natev, 1);
	}
	return n;
}

size_t ctd_ipfix_record_size(const struct ctd_ipfix_cfg *cfg, uint16_t tid)
{
	struct ie f[FIELDS_MAX];
	size_t n, len = 0;

	if (tid == CTD_IPFIX_TID_STATS)
		return STATS_RECORD_LEN;
	if (tid < CTD_IPFIX_TID_V4 || tid >= CTD_IPFIX_TID_STATS)
		return 0;
	n = fields(cfg, tid, f);
	for (size_t i = 0; i < n; i++)
		len += f[i].len;
	return len;
}

/* Big-endian writers; the caller checked the room. */
static uint8_t *put8(uint8_t *p, uint8_t v)
{
	*p = v;
	return p + 1;
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p = put16(p, (uint16_t)(v >> 16));
	return put16(p, (uint16_t)v);
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	p = put32(p, (uint32_t)(v >> 32));
	return put32(p, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void close_set(struct ctd_ipfix_msg *m)
{
	if (!m->set_off)
		return;
	put16(m->buf + m->set_off, m->set_id);
	put16(m->buf + m->set_off + 2, (uint16_t)(m->len - m->set_off));
	m->set_off = 0;
	m->set_id = 0;
}

/* Room for need more bytes in a set with this id; opens it if needed. */
static uint8_t *reserve(struct ctd_ipfix_msg *m, uint16_t set_id, size_t need)
{
	size_t hdr = m->set_id == set_id ? 0 : 4;
	uint8_t *p;

	if (m->len + hdr + need > m->cap)
		return NULL;
	if (hdr) {
		close_set(m);
		m->set_off = m->len;
		m->set_id = set_id;
		m->len += 4;
	}
	p = m->buf + m->len;
	m->len += need;
	return p;
}

void ctd_ipfix_msg_begin(struct ctd_ipfix_msg *m, uint8_t *buf, size_t cap)
{
	memset(m, 0, sizeof(*m));
	m->buf = buf;
	m->cap = cap < CTD_IPFIX_MSG_MAX ? cap : CTD_IPFIX_MSG_MAX;
	m->len = CTD_IPFIX_HDR;
}

static uint8_t *put_spec(uint8_t *p, const struct ie *f, uint32_t pen)
{
	uint32_t e = f->pen == PEN_SELF ? pen : f->pen;

	p = put16(p, (uint16_t)(f->id | (e ? 0x8000 : 0)));
	p = put16(p, f->len);
	return e ? put32(p, e) : p;
}

static size_t spec_len(const struct ie *f, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += f[i].pen ? 8 : 4;
	return len;
}

bool ctd_ipfix_msg_add_templates(struct ctd_ipfix_msg *m,
				 const struct ctd_ipfix_cfg *cfg)
{
	struct ie f[CTD_IPFIX_TID_STATS - CTD_IPFIX_TID_V4][FIELDS_MAX];
	size_t n[CTD_IPFIX_TID_STATS - CTD_IPFIX_TID_V4], need = 0;
	struct ctd_ipfix_msg saved = *m;
	uint8_t *p;

	for (uint16_t t = CTD_IPFIX_TID_V4; t < CTD_IPFIX_TID_STATS; t++) {
		size_t i = t - CTD_IPFIX_TID_V4;

		n[i] = fields(cfg, t, f[i]);
		need += 4 + spec_len(f[i], n[i]);
	}
	p = reserve(m, 2, need);
	if (!p)
		return false;
	for (uint16_t t = CTD_IPFIX_TID_V4; t < CTD_IPFIX_TID_STATS; t++) {
		size_t i = t - CTD_IPFIX_TID_V4;

		p = put16(p, t);
		p = put16(p, (uint16_t)n[i]);
		for (size_t k = 0; k < n[i]; k++)
			p = put_spec(p, &f[i][k], cfg->pen);
	}
	p = reserve(m, 3, 6 + spec_len(ie_stats, N(ie_stats)));
	if (!p) {
		*m = saved;
		return false;
	}
	p = put16(p, CTD_IPFIX_TID_STATS);
	p = put16(p, N(ie_stats));
	p = put16(p, 1);
	for (size_t k = 0; k < N(ie_stats); k++)
		p = put_spec(p, &ie_stats[k], 0);
	return true;
}

bool ctd_ipfix_msg_add_stats(struct ctd_ipfix_msg *m,
			     const struct ctd_ipfix_stats *st)
{
	uint8_t *p = reserve(m, CTD_IPFIX_TID_STATS, STATS_RECORD_LEN);

	if (!p)
		return false;
	p = put32(p, st->process_id);
	p = put64(p, st->messages);
	p = put64(p, st->records);
	p = put64(p, st->octets);
	put64(p, st->not_sent);
	m->records++;
	return true;
}

/* One direction of a flow as a data record sees it. */
struct view {
	const struct ctd_tuple *t;      /* addresses and ports */
	const struct ctd_tuple *post;   /* after NAT: src/dst swapped */
	const struct ctd_counters *fwd;
	const struct ctd_counters *rev;
};

static bool tcp_closing(const struct ctd_record *rec)
{
	return rec->proto == IPPROTO_TCP && rec->flags & CTD_REC_TCPSTATE &&
	       rec->tcp_state >= TCP_CONNTRACK_FIN_WAIT &&
	       rec->tcp_state <= TCP_CONNTRACK_CLOSE;
}

/* flowEndReason (IANA): 1 idle, 2 active, 3 end detected, 4 forced,
 * 5 lack of resources. */
static uint8_t end_reason(const struct ctd_record *rec)
{
	switch (rec->end_reason) {
	case CTD_END_ACTIVE:
		return 2;
	case CTD_END_EVICTED:
		return 5;
	case CTD_END_EXPIRED:
		return 1;
	default:
		if (tcp_closing(rec))
			return 3;
		return rec->flags & CTD_REC_FORCED ? 4 : 1;
	}
}

/* natEvent: RFC 8158 NAT44 session create/delete (4/5), or the older
 * create/delete (1/2) some collectors expect. */
static uint8_t nat_event(const struct ctd_ipfix_cfg *cfg,
			 const struct ctd_record *rec)
{
	bool create = rec->end_reason == CTD_END_ACTIVE;

	if (cfg->nat_event == CTD_IPFIX_NATEV_LEGACY)
		return create ? 1 : 2;
	return create ? 4 : 5;
}

/* ctLabels: the 128 label bits as one big-endian number, label N its
 * 2^N (octet 15 - N / 8, bit N % 8). ctnetlink gives host-order 32-bit
 * words, lowest first: they go last word first. */
static uint8_t *put_labels(uint8_t *p, const struct ctd_record *rec)
{
	for (int w = 3; w >= 0; w--) {
		uint32_t v = 0;

		if (rec->flags & CTD_REC_LABELS)
			memcpy(&v, rec->labels + 4 * w, sizeof(v));
		p = put32(p, v);
	}
	return p;
}

static uint8_t *put_field(uint8_t *p, const struct ie *f,
			  const struct ctd_ipfix_cfg *cfg,
			  const struct ctd_record *rec, const struct view *v)
{
	bool icmp = ctd_proto_is_icmp(rec->proto);
	bool ports = ctd_proto_has_ports(rec->proto);

	switch (f->kind) {
	case K_SRC4: memcpy(p, v->t->src, 4); return p + 4;
	case K_DST4: memcpy(p, v->t->dst, 4); return p + 4;
	case K_SRC6: memcpy(p, v->t->src, 16); return p + 16;
	case K_DST6: memcpy(p, v->t->dst, 16); return p + 16;
	case K_NSRC4: memcpy(p, v->post->dst, 4); return p + 4;
	case K_NDST4: memcpy(p, v->post->src, 4); return p + 4;
	case K_NSRC6: memcpy(p, v->post->dst, 16); return p + 16;
	case K_NDST6: memcpy(p, v->post->src, 16); return p + 16;
	case K_SPORT: return put16(p, ports ? v->t->sport : 0);
	case K_DPORT: return put16(p, ports ? v->t->dport : 0);
	case K_NSPORT: return put16(p, ports ? v->post->dport : 0);
	case K_NDPORT: return put16(p, ports ? v->post->sport : 0);
	case K_ICMP: return put16(p, icmp ? v->t->dport : 0);
	case K_PROTO: return put8(p, rec->proto);
	case K_START: return put64(p, rec->start_ns / 1000000);
	case K_END: return put64(p, rec->end_ns / 1000000);
	case K_OCT: return put64(p, v->fwd->bytes);
	case K_PKT: return put64(p, v->fwd->packets);
	case K_ROCT: return put64(p, v->rev->bytes);
	case K_RPKT: return put64(p, v->rev->packets);
	case K_REASON: return put8(p, end_reason(rec));
	case K_VRF: return put32(p, rec->zone);
	case K_MARK: return put32(p, rec->mark);
	case K_CTID: return put32(p, rec->id);
	case K_NATEV: return put8(p, nat_event(cfg, rec));
	case K_LABELS: return put_labels(p, rec);
	}
	return p;
}

static bool put_data(struct ctd_ipfix_msg *m, const struct ctd_ipfix_cfg *cfg,
		     uint16_t tid, const struct ctd_record *rec,
		     const struct view *v)
{
	struct ie f[FIELDS_MAX];
	size_t n = fields(cfg, tid, f), len = 0;
	uint8_t *p;

	for (size_t i = 0; i < n; i++)
		len += f[i].len;
	p = reserve(m, tid, len);
	if (!p)
		return false;
	for (size_t i = 0; i < n; i++)
		p = put_field(p, &f[i], cfg, rec, v);
	m->records++;
	m->flow_records++;
	return true;
}

static bool is_nat(const struct ctd_record *rec)
{
	return rec->status & (IPS_SRC_NAT | IPS_DST_NAT);
}

unsigned ctd_ipfix_msg_add_record(struct ctd_ipfix_msg *m,
				  const struct ctd_ipfix_cfg *cfg,
				  const struct ctd_record *rec)
{
	static const struct ctd_counters zero[CTD_DIR__COUNT];
	const struct ctd_counters *c = !(rec->flags & CTD_REC_COUNTERS) ? zero :
				       rec->flags & CTD_REC_DELTA ? rec->delta :
				       rec->cnt;
	const struct ctd_tuple *o = &rec->tuple[CTD_DIR_ORIG];
	const struct ctd_tuple *r = &rec->tuple[CTD_DIR_REPLY];
	uint16_t tid = (uint16_t)((rec->family == AF_INET6 ? CTD_IPFIX_TID_V6 :
				   CTD_IPFIX_TID_V4) + is_nat(rec));
	struct view fwd = { o, r, &c[CTD_DIR_ORIG], &c[CTD_DIR_REPLY] };
	struct view back = { r, o, &c[CTD_DIR_REPLY], &c[CTD_DIR_ORIG] };
	struct ctd_ipfix_msg saved = *m;

	if (!put_data(m, cfg, tid, rec, &fwd))
		return 0;
	if (cfg->shape != CTD_IPFIX_UNIFLOW)
		return 1;
	if (!put_data(m, cfg, tid, rec, &back)) {
		*m = saved;
		return 0;
	}
	return 2;
}

size_t ctd_ipfix_msg_finish(struct ctd_ipfix_msg *m, uint32_t export_time,
			    uint32_t seq, uint32_t domain)
{
	uint8_t *p = m->buf;

	close_set(m);
	p = put16(p, 10);
	p = put16(p, (uint16_t)m->len);
	p = put32(p, export_time);
	p = put32(p, seq);
	put32(p, domain);
	return m->len;
}

uint32_t ctd_ipfix_domain(const struct ctd_ipfix_cfg *cfg, int32_t nsid)
{
	return nsid < 0 ? cfg->domain : cfg->domain + (uint32_t)nsid + 1u;
}

uint32_t ctd_ipfix_msg_domain(const uint8_t *msg)
{
	return (uint32_t)get16(msg + 12) << 16 | get16(msg + 14);
}

void ctd_ipfix_msg_restamp(uint8_t *msg, uint32_t export_time, uint32_t seq)
{
	put32(msg + 4, export_time);
	put32(msg + 8, seq);
}

size_t ctd_ipfix_msg_len(const uint8_t *msg, size_t avail)
{
	size_t len;

	if (avail < CTD_IPFIX_HDR || get16(msg) != 10)
		return 0;
	len = get16(msg + 2);
	return len >= CTD_IPFIX_HDR ? len : 0;
}

uint32_t ctd_ipfix_msg_count(const struct ctd_ipfix_cfg *cfg,
			     const uint8_t *msg, size_t len,
			     uint32_t *ret_flow_records)
{
	uint32_t records = 0, flows = 0;
	size_t off = CTD_IPFIX_HDR;

	while (off + 4 <= len) {
		uint16_t id = get16(msg + off), slen = get16(msg + off + 2);
		size_t rlen = ctd_ipfix_record_size(cfg, id);

		if (slen < 4 || off + slen > len)
			break;
		if (rlen) {
			records += (uint32_t)((slen - 4u) / rlen);
			if (id != CTD_IPFIX_TID_STATS)
				flows += (uint32_t)((slen - 4u) / rlen);
		}
		off += slen;
	}
	*ret_flow_records = flows;
	return records;
}

static const char *const shape_names[CTD_IPFIX_SHAPE__COUNT] = {
	[CTD_IPFIX_BIFLOW] = "biflow",
	[CTD_IPFIX_UNIFLOW] = "uniflow",
	[CTD_IPFIX_INITIATOR] = "initiator",
};

enum ctd_ipfix_shape ctd_ipfix_shape_parse(const char *s, bool *ret_ok)
{
	for (int i = 0; i < CTD_IPFIX_SHAPE__COUNT; i++) {
		if (strcmp(s, shape_names[i]) == 0) {
			*ret_ok = true;
			return (enum ctd_ipfix_shape)i;
		}
	}
	*ret_ok = false;
	return CTD_IPFIX_BIFLOW;
}

const char *ctd_ipfix_shape_name(enum ctd_ipfix_shape shape)
{
	return shape < CTD_IPFIX_SHAPE__COUNT ? shape_names[shape] : "?";
}

const char *ctd_ipfix_split_target(char *s, bool *ret_tcp, char **ret_host,
				char **ret_port)
{
	char *host, *port;

	if (strncmp(s, "udp:", 4) != 0 && strncmp(s, "tcp:", 4) != 0 &&
	    !ctd_ipfix_target_tls(s))
		return "expected udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT";
	*ret_tcp = s[0] == 't';
	host = s + 4;
	if (*host == '[') {
		port = strchr(host, ']');
		if (!port || port[1] != ':')
			return "an IPv6 address goes in brackets: [::1]:4739";
		*port = '\0';
		host++;
		port += 2;
	} else {
		port = strrchr(host, ':');
		if (!port)
			return ctd_ipfix_target_tls(s) ?
			       "no port (the IANA port is 4740 for IPFIX over TLS)" :
			       "no port (the IANA port is 4739)";
		*port++ = '\0';
	}
	if (!*host || !*port || strspn(port, "0123456789") != strlen(port) ||
	    atoi(port) < 1 || atoi(port) > 65535)
		return "port must be 1-65535";
	*ret_host = host;
	*ret_port = port;
	return NULL;
}

const char *ctd_ipfix_check_target(const char *target)
{
	char copy[512], *host, *port;
	bool tcp;

	if (strlen(target) >= sizeof(copy))
		return "too long";
	strcpy(copy, target);
	return ctd_ipfix_split_target(copy, &tcp, &host, &port);
}

bool ctd_ipfix_target_tls(const char *target)
{
	return strncmp(target, "tls:", 4) == 0;
}
