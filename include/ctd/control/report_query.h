/* report_query: what `ctd report` asks of a flow store, and what comes
 * back, whatever keeps the flows. A backend (report_sqlite.c; another
 * database later) answers a ctd_report_query by calling the sink once
 * per row, with the values in the order ctd_report_columns gives for
 * that query; report_table.c prints them. Owns the query's types and the
 * columns of each report, nothing else. */
#ifndef CTD_REPORT_QUERY_H
#define CTD_REPORT_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ctd_rq_cmd { CTD_RQ_TOP, CTD_RQ_FLOWS, CTD_RQ_NAT, CTD_RQ_TOTALS,
		  CTD_RQ__COUNT };

/* The same numbers as the store's rollup kinds (store_rollup.h). */
enum ctd_rq_by { CTD_BY_SRC, CTD_BY_DST, CTD_BY_PORT, CTD_BY_PAIR,
		 CTD_BY_NETNS, CTD_BY__COUNT };

enum ctd_rq_order { CTD_ORDER_BYTES, CTD_ORDER_PACKETS, CTD_ORDER_FLOWS,
		    CTD_ORDER__COUNT };

/* An address or prefix: family 0 when not given; lo..hi the addresses
 * it covers, in network order. */
struct ctd_rq_prefix {
	uint8_t family;         /* AF_INET, AF_INET6 */
	uint8_t lo[16], hi[16];
};

struct ctd_report_query {
	enum ctd_rq_cmd cmd;
	enum ctd_rq_by by;
	enum ctd_rq_order order;
	uint64_t limit;          /* rows at most; 0: all */
	uint64_t from_ms, to_ms; /* flows that ended in [from, to) */
	/* flows: filters, each off when unset (family 0, -1, NULL) */
	struct ctd_rq_prefix src, dst;
	int port;                /* source or destination port */
	int proto;
	const char *netns;       /* "" ctd's own namespace */
	/* nat: the outside address (family, addr) and port (-1 any); the
	 * flows alive at some point of [from, to) */
	struct ctd_rq_prefix nat;
	int nat_port;
	uint64_t every_ms;       /* totals: bucket width */
};

enum ctd_rcol_type {
	CTD_RCOL_TEXT,           /* s */
	CTD_RCOL_COUNT,          /* i */
	CTD_RCOL_BYTES,          /* i, shown as 1.2 GiB in tables */
	CTD_RCOL_TIME,           /* i, milliseconds since the epoch */
};

struct ctd_rcol {
	const char *name;
	enum ctd_rcol_type type;
	int width;               /* in a table */
};

struct ctd_rval {
	const char *s;
	int64_t i;
};

struct ctd_report_sink {
	void (*row)(void *arg, const struct ctd_rval *v);
	void *arg;
};

/* One stretch of rollup buckets of a window: span_ms wide, [a, b). */
struct ctd_rq_stretch {
	uint64_t span_ms, a, b;
};

#define CTD_RQ_STRETCHES 6
/* nat: a flow alive in the window ended after it, at most this much. */
#define CTD_RQ_NAT_LONGEST_MS 86400000ULL

/* The rollup buckets top reads for q's window, the same for every
 * backend so each sums the same cells: the window widened to whole
 * minutes (whole hours when it spans a day or more), cut into minutes
 * up to the first whole hour, hours up to the first whole UTC day,
 * days, then hours and minutes again; unused stretches are empty. From
 * folded_ms on (an hour the flow store has not folded yet: out_store.c;
 * UINT64_MAX: none) the window is read in minutes, the last stretch. */
void ctd_report_stretches(const struct ctd_report_query *q, uint64_t folded_ms,
			  struct ctd_rq_stretch out[CTD_RQ_STRETCHES]);

/* totals: the coarsest rollup span (ms) whose buckets tile every_ms,
 * and the buckets read, [*from, *to). */
uint64_t ctd_report_totals_span(uint64_t every_ms);
void ctd_report_totals_window(const struct ctd_report_query *q,
			      uint64_t *from, uint64_t *to);

/* A stored address (4 or 16 bytes) and a protocol number as the
 * reports print them, the same from every store ("?" for a bad one). */
void ctd_report_addr_text(const uint8_t *a, size_t n, char *buf, size_t cap);
void ctd_report_proto_text(int proto, char *buf, size_t cap);

/* The columns of q's report (they depend on cmd and, for top, by). */
const struct ctd_rcol *ctd_report_columns(const struct ctd_report_query *q,
					  size_t *ret_n);

/* A store that answers queries. open takes the backend's target (a
 * file for SQLite); run calls sink->row per row; errors are -errno with
 * a sentence in err. */
struct ctd_report_backend {
	const char *name;
	int (*open)(const char *target, void **ret, char *err, size_t errlen);
	int (*run)(void *h, const struct ctd_report_query *q,
		   const struct ctd_report_sink *sink, char *err, size_t errlen);
	void (*close)(void *h);
};

extern const char *const ctd_rq_cmd_name[CTD_RQ__COUNT];
extern const char *const ctd_rq_by_name[CTD_BY__COUNT];
extern const char *const ctd_rq_order_name[CTD_ORDER__COUNT];

#endif
