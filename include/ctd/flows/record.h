/* record: the export record of one flow, rendered by every output.
 * Built from what ctd tracked of the flow plus its final event, so a flow
 * whose NEW never arrived still gets a complete record. Pure. */
#ifndef CTD_RECORD_H
#define CTD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/kernel/ctevent.h"

struct ctd_flow;

/* Long enough for OpenStack's qrouter-<uuid> and CNI's cni-<uuid>;
 * longer names are shown as "nsid:N". */
#define CTD_NETNS_NAME_MAX 48

enum ctd_end_reason {
	CTD_END_DESTROY,   /* the kernel reported the end */
	CTD_END_EXPIRED,   /* timed out here and gone from the kernel's table */
	CTD_END_EVICTED,   /* pushed out of a full table */
	CTD_END_LOST,      /* its DESTROY was lost (lossy mode), found by a resync */
	CTD_END_ACTIVE,    /* not an end: interim record of a long flow */
	CTD_END_NETNS_GONE, /* its network namespace was deleted */
	CTD_END__COUNT
};

enum {
	CTD_REC_COUNTERS    = 1u << 0,
	CTD_REC_KERNEL_TIME = 1u << 1,  /* start and end from the kernel */
	CTD_REC_NEW_SEEN    = 1u << 2,
	CTD_REC_TCPSTATE    = 1u << 3,
	CTD_REC_LABELS      = 1u << 4,
	CTD_REC_START_SEEN  = 1u << 5,  /* began while ctd was listening */
	CTD_REC_DELTA       = 1u << 6,  /* delta[] is valid */
	CTD_REC_FORCED      = 1u << 7,  /* deleted before its timeout ran out */
	CTD_REC_DUP_UNCHECKED = 1u << 8, /* may repeat a record whose end ctd
	                                  * no longer remembers */
	/* Ended without a word from the kernel, counters from the last
	 * table dump (a namespace gone before ctd could flush it). */
	CTD_REC_DUMP_COUNTERS = 1u << 9,
};

struct ctd_record {
	uint32_t flags;                /* CTD_REC_* */
	uint8_t end_reason;            /* enum ctd_end_reason */
	uint8_t family;
	uint8_t proto;
	uint8_t tcp_state;
	uint16_t zone;
	/* An event record (NEW/UPDATE, for outputs that want them) when
	 * nonzero: 1 << CTD_EV_NEW | 1 << CTD_EV_UPDATE, merged when earlier
	 * ones were missed. 0 for a flow record. */
	uint8_t events;
	/* The flow's missed-event bits when it ended (see deliver.h). */
	uint8_t missed;
	uint32_t id;
	uint32_t status;
	uint32_t mark;
	struct ctd_tuple tuple[CTD_DIR__COUNT];
	struct ctd_counters cnt[CTD_DIR__COUNT];
	/* Since the flow's previous interim record, when it had one. */
	struct ctd_counters delta[CTD_DIR__COUNT];
	uint64_t start_ns;             /* wall clock */
	uint64_t end_ns;
	uint8_t labels[16];
	int32_t nsid;                  /* CTD_NSID_SELF: ctd's namespace */
	/* The namespace's name (/run/netns), filled in by whoever knows it
	 * (netns.c) before the record goes out; empty: "nsid:N". By value,
	 * so a spooled record keeps it after the namespace is gone. */
	char netns[CTD_NETNS_NAME_MAX];
};

/* flow may be NULL (a DESTROY for a flow ctd never saw); now_ns is the
 * wall-clock arrival time of ev, used only where the kernel gave none. */
void ctd_record_from_destroy(const struct ctd_flow *flow,
			     const struct ctd_event *ev, uint64_t now_ns,
			     struct ctd_record *ret_rec);

/* A flow that ends without a DESTROY: last known state, end time now. */
void ctd_record_from_flow(const struct ctd_flow *flow,
			  enum ctd_end_reason reason, uint64_t now_ns,
			  struct ctd_record *ret_rec);

/* Sets delta = totals - the counters at the flow's last interim record,
 * when it had one. */
void ctd_record_set_delta(struct ctd_record *rec, const struct ctd_flow *flow);

const char *ctd_end_reason_name(enum ctd_end_reason reason);
/* The record's namespace as outputs show it: its name, "nsid:N" when it
 * has none, "" for ctd's own. */
void ctd_record_netns_label(const struct ctd_record *rec, char *buf, size_t len);

#endif
