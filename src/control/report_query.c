/* report_query: the columns of each `ctd report` and the names of its
 * choices. The columns are the contract between a backend, which
 * emits values in this order, and the printer, which names them (JSON
 * keys, CSV header) and picks their look in a table. */
#include <stddef.h>

#include "ctd/control/report_query.h"

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
