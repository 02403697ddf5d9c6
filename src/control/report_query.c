/* report_query: the columns of each `ctd report`, the names of its
 * choices and the rollup buckets a window reads. The columns are the contract between a backend, which
 * emits values in this order, and the printer, which names them (JSON
 * keys, CSV header) and picks their look in a table. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "ctd/control/report_query.h"
#include "ctd/kernel/ctevent.h"

const char *const ctd_rq_cmd_name[CTD_RQ__COUNT] = {
	"top", "flows", "nat", "totals",
};
const char *const ctd_rq_by_name[CTD_BY__COUNT] = {
	"src", "dst", "port", "pair", "netns",
};
const char *const ctd_rq_order_name[CTD_ORDER__COUNT] = {
	"bytes", "packets", "flows",
};

#define SUMS { "flows", CTD_RCOL_COUNT, 9 }, { "packets", CTD_RCOL_COUNT, 11 }, \
	{ "bytes", CTD_RCOL_BYTES, 10 }

static const struct ctd_rcol top_addr[] = { { "addr", CTD_RCOL_TEXT, 39 }, SUMS };
static const struct ctd_rcol top_port[] = {
	{ "proto", CTD_RCOL_TEXT, 7 }, { "port", CTD_RCOL_COUNT, 5 }, SUMS,
};
static const struct ctd_rcol top_pair[] = {
	{ "src", CTD_RCOL_TEXT, 39 }, { "dst", CTD_RCOL_TEXT, 39 }, SUMS,
};
static const struct ctd_rcol top_netns[] = { { "netns", CTD_RCOL_TEXT, 16 }, SUMS };

static const struct ctd_rcol flows[] = {
	{ "start", CTD_RCOL_TIME, 19 }, { "end", CTD_RCOL_TIME, 19 },
	{ "netns", CTD_RCOL_TEXT, 6 }, { "proto", CTD_RCOL_TEXT, 5 },
	{ "src", CTD_RCOL_TEXT, 15 }, { "sport", CTD_RCOL_COUNT, 5 },
	{ "dst", CTD_RCOL_TEXT, 15 }, { "dport", CTD_RCOL_COUNT, 5 },
	{ "reply_src", CTD_RCOL_TEXT, 15 }, { "reply_sport", CTD_RCOL_COUNT, 5 },
	{ "reply_dst", CTD_RCOL_TEXT, 15 }, { "reply_dport", CTD_RCOL_COUNT, 5 },
	{ "orig_packets", CTD_RCOL_COUNT, 7 }, { "orig_bytes", CTD_RCOL_BYTES, 10 },
	{ "reply_packets", CTD_RCOL_COUNT, 7 }, { "reply_bytes", CTD_RCOL_BYTES, 10 },
	{ "end_reason", CTD_RCOL_TEXT, 8 },
};

static const struct ctd_rcol nat[] = {
	{ "start", CTD_RCOL_TIME, 19 }, { "end", CTD_RCOL_TIME, 19 },
	{ "proto", CTD_RCOL_TEXT, 5 },
	{ "inside", CTD_RCOL_TEXT, 15 }, { "inside_port", CTD_RCOL_COUNT, 5 },
	{ "nat", CTD_RCOL_TEXT, 15 }, { "nat_port", CTD_RCOL_COUNT, 5 },
	{ "peer", CTD_RCOL_TEXT, 15 }, { "peer_port", CTD_RCOL_COUNT, 5 },
	{ "bytes", CTD_RCOL_BYTES, 10 },
};

static const struct ctd_rcol totals[] = { { "time", CTD_RCOL_TIME, 19 }, SUMS };

#define N(a) (sizeof(a) / sizeof((a)[0]))

const struct ctd_rcol *ctd_report_columns(const struct ctd_report_query *q,
					  size_t *ret_n)
{
	static const struct { const struct ctd_rcol *c; size_t n; } top[] = {
		[CTD_BY_SRC] = { top_addr, N(top_addr) },
		[CTD_BY_DST] = { top_addr, N(top_addr) },
		[CTD_BY_PORT] = { top_port, N(top_port) },
		[CTD_BY_PAIR] = { top_pair, N(top_pair) },
		[CTD_BY_NETNS] = { top_netns, N(top_netns) },
	};

	switch (q->cmd) {
	case CTD_RQ_TOP:
		*ret_n = top[q->by].n;
		return top[q->by].c;
	case CTD_RQ_FLOWS:
		*ret_n = N(flows);
		return flows;
	case CTD_RQ_NAT:
		*ret_n = N(nat);
		return nat;
	default:
		*ret_n = N(totals);
		return totals;
	}
}

#define MINUTE_MS 60000ULL
#define HOUR_MS 3600000ULL
#define DAY_MS 86400000ULL

static uint64_t down(uint64_t t, uint64_t unit)
{
	return t - t % unit;
}

static uint64_t up(uint64_t t, uint64_t unit)
{
	return down(t + unit - 1, unit);
}

/* [a, b) in buckets of span; the middle in whole units of the next
 * span, recursively: out[k] .. out[4 - k] hold span k. */
static void cut(uint64_t a, uint64_t b, int k, struct ctd_rq_stretch *out)
{
	static const uint64_t spans[3] = { MINUTE_MS, HOUR_MS, DAY_MS };
	uint64_t ma, mb;

	if (k == 2 || (ma = up(a, spans[k + 1])) >= (mb = down(b, spans[k + 1]))) {
		out[k] = (struct ctd_rq_stretch){ spans[k], a, b };
		return;
	}
	out[k] = (struct ctd_rq_stretch){ spans[k], a, ma };
	out[4 - k] = (struct ctd_rq_stretch){ spans[k], mb, b };
	cut(ma, mb, k + 1, out);
}

/* An hour either way matters little over a day, and the minutes at the
 * edges would cost more to read than the day's hours. */
void ctd_report_stretches(const struct ctd_report_query *q, uint64_t folded_ms,
			  struct ctd_rq_stretch out[CTD_RQ_STRETCHES])
{
	uint64_t unit = q->to_ms - q->from_ms >= DAY_MS ? HOUR_MS : MINUTE_MS;
	uint64_t a = down(q->from_ms, unit), b = up(q->to_ms, unit);

	for (int i = 0; i < CTD_RQ_STRETCHES; i++)
		out[i] = (struct ctd_rq_stretch){ MINUTE_MS, 0, 0 };
	if (b > folded_ms) {
		uint64_t m = a > folded_ms ? a : folded_ms;

		out[CTD_RQ_STRETCHES - 1] = (struct ctd_rq_stretch){ MINUTE_MS,
								     m, b };
		b = m;
	}
	if (a < b)
		cut(a, b, 0, out);
}

uint64_t ctd_report_totals_span(uint64_t every_ms)
{
	if (every_ms % DAY_MS == 0)
		return DAY_MS;
	return every_ms % HOUR_MS == 0 ? HOUR_MS : MINUTE_MS;
}

void ctd_report_totals_window(const struct ctd_report_query *q,
			      uint64_t *from, uint64_t *to)
{
	*from = down(q->from_ms, q->every_ms);
	*to = up(q->to_ms, MINUTE_MS);
}

void ctd_report_addr_text(const uint8_t *a, size_t n, char *buf, size_t cap)
{
	if (!a || (n != 4 && n != 16) ||
	    !inet_ntop(n == 16 ? AF_INET6 : AF_INET, a, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
}

void ctd_report_proto_text(int proto, char *buf, size_t cap)
{
	const char *name = ctd_proto_name((uint8_t)proto);

	if (name)
		snprintf(buf, cap, "%s", name);
	else
		snprintf(buf, cap, "%d", proto);
}
