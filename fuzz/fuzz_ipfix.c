/* Fuzz target: IPFIX encoder round trip. The input becomes a record (any
 * field values), an exporter configuration and reliability statistics;
 * the message built from them is read back with fuzz/ipfix_decode.c and
 * every field compared with what the record says it must carry. */
#include <linux/netfilter/nf_conntrack_common.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/flows/record.h"
#include "ctd/format/ipfix.h"
#include "ipfix_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	struct ctd_record rec;
	struct ctd_ipfix_stats st;
	uint32_t pen, domain, seq, export_time;
	uint8_t shape, natev, v6;
};

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void check_u(const struct dec_record *r, uint32_t pen, uint16_t id,
		    uint64_t want)
{
	const struct dec_field *f = dec_find(r, pen, id);

	CHECK(f && dec_uint(f) == want);
}

static void check_addr(const struct dec_record *r, uint16_t id,
		       const uint8_t *want, size_t len)
{
	const struct dec_field *f = dec_find(r, 0, id);

	CHECK(f && f->len == len && memcmp(f->val, want, len) == 0);
}

/* One data record against one direction of the flow. */
static void check_record(const struct input *in, const struct dec_record *r,
			 const struct ctd_tuple *t, const struct ctd_tuple *post,
			 const struct ctd_counters *fwd,
			 const struct ctd_counters *rev)
{
	const struct ctd_record *rec = &in->rec;
	bool v6 = rec->family == AF_INET6;
	bool ports = ctd_proto_has_ports(rec->proto);
	bool nat = rec->status & (IPS_SRC_NAT | IPS_DST_NAT);
	const struct dec_field *f;

	check_addr(r, v6 ? 27 : 8, t->src, v6 ? 16 : 4);
	check_addr(r, v6 ? 28 : 12, t->dst, v6 ? 16 : 4);
	check_u(r, 0, 7, ports ? t->sport : 0);
	check_u(r, 0, 11, ports ? t->dport : 0);
	check_u(r, 0, v6 ? 139 : 32,
		ctd_proto_is_icmp(rec->proto) ? t->dport : 0);
	check_u(r, 0, 4, rec->proto);
	check_u(r, 0, 152, rec->start_ns / 1000000);
	check_u(r, 0, 153, rec->end_ns / 1000000);
	check_u(r, 0, 234, rec->zone);
	f = dec_find(r, 0, 136);
	CHECK(f && dec_uint(f) >= 1 && dec_uint(f) <= 5);
	CHECK((dec_uint(f) == 2) == (rec->end_reason == CTD_END_ACTIVE));
	switch (in->shape) {
	case CTD_IPFIX_BIFLOW:
		check_u(r, 0, 1, fwd->bytes);
		check_u(r, 0, 2, fwd->packets);
		check_u(r, CTD_IPFIX_PEN_REVERSE, 1, rev->bytes);
		check_u(r, CTD_IPFIX_PEN_REVERSE, 2, rev->packets);
		break;
	case CTD_IPFIX_UNIFLOW:
		check_u(r, 0, 1, fwd->bytes);
		check_u(r, 0, 2, fwd->packets);
		CHECK(!dec_find(r, CTD_IPFIX_PEN_REVERSE, 1));
		break;
	default:
		check_u(r, 0, 231, fwd->bytes);
		check_u(r, 0, 298, fwd->packets);
		check_u(r, 0, 232, rev->bytes);
		check_u(r, 0, 299, rev->packets);
	}
	if (in->pen) {
		check_u(r, in->pen, 1, rec->mark);
		check_u(r, in->pen, 2, rec->id);
	}
	CHECK(!!dec_find(r, 0, 230) == (nat && in->natev != CTD_IPFIX_NATEV_NONE));
	if (!nat)
		return;
	/* Post-NAT: where the reply says the flow went and came from. */
	check_addr(r, v6 ? 281 : 225, post->dst, v6 ? 16 : 4);
	check_addr(r, v6 ? 282 : 226, post->src, v6 ? 16 : 4);
	check_u(r, 0, 227, ports ? post->dport : 0);
	check_u(r, 0, 228, ports ? post->sport : 0);
	if (in->natev != CTD_IPFIX_NATEV_NONE)
		check_u(r, 0, 230, rec->end_reason == CTD_END_ACTIVE ?
			(in->natev ? 1 : 4) : (in->natev ? 2 : 5));
}

static void check_stats(const struct input *in, const struct dec_record *r)
{
	CHECK(r->tid == CTD_IPFIX_TID_STATS);
	check_u(r, 0, 144, in->st.process_id);
	check_u(r, 0, 41, in->st.messages);
	check_u(r, 0, 42, in->st.records);
	check_u(r, 0, 40, in->st.octets);
	check_u(r, 0, 166, in->st.not_sent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[CTD_IPFIX_MSG_MAX];
	static struct dec_msg dm;
	struct input in = { 0 };
	struct ctd_ipfix_cfg cfg;
	struct ctd_ipfix_msg m;
	const struct ctd_counters *c;
	const struct ctd_record *rec = &in.rec;
	unsigned n;
	size_t len;

	memcpy(&in, data, size < sizeof(in) ? size : sizeof(in));
	in.rec.family = in.v6 & 1 ? AF_INET6 : AF_INET;
	if (!(in.v6 & 1)) {
		memset(in.rec.tuple[0].src + 4, 0, 12);
		memset(in.rec.tuple[0].dst + 4, 0, 12);
		memset(in.rec.tuple[1].src + 4, 0, 12);
		memset(in.rec.tuple[1].dst + 4, 0, 12);
	}
	in.rec.end_reason %= CTD_END__COUNT;
	in.shape %= CTD_IPFIX_SHAPE__COUNT;
	in.natev %= 3;
	if (in.pen == CTD_IPFIX_PEN_REVERSE)   /* config refuses it */
		in.pen = 0;
	cfg = (struct ctd_ipfix_cfg){ in.domain, in.pen, in.shape, in.natev };
	ctd_ipfix_msg_begin(&m, buf, sizeof(buf));
	CHECK(ctd_ipfix_msg_add_templates(&m, &cfg));
	CHECK(ctd_ipfix_msg_add_stats(&m, &in.st));
	n = ctd_ipfix_msg_add_record(&m, &cfg, rec);
	CHECK(n == (in.shape == CTD_IPFIX_UNIFLOW ? 2u : 1u));
	len = ctd_ipfix_msg_finish(&m, in.export_time, in.seq, in.domain);
	CHECK(ctd_ipfix_msg_len(buf, len) == len);
	CHECK(dec_message(buf, len, &dm) == 0);
	CHECK(dm.export_time == in.export_time && dm.seq == in.seq &&
	      dm.domain == in.domain);
	CHECK(dm.ntemplates == 5 && dm.nrecords == 1 + n);
	for (size_t i = 0; i < dm.nrecords; i++)
		CHECK(ctd_ipfix_record_size(&cfg, dm.r[i].tid) > 0);
	check_stats(&in, &dm.r[0]);
	c = !(rec->flags & CTD_REC_COUNTERS) ? NULL :
	    rec->flags & CTD_REC_DELTA ? rec->delta : rec->cnt;
	{
		static const struct ctd_counters zero[2];
		const struct ctd_counters *cc = c ? c : zero;

		check_record(&in, &dm.r[1], &rec->tuple[0], &rec->tuple[1],
			     &cc[0], &cc[1]);
		if (n == 2)
			check_record(&in, &dm.r[2], &rec->tuple[1],
				     &rec->tuple[0], &cc[1], &cc[0]);
	}
	return 0;
}
