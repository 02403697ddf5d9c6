/* stats: every counter ctd keeps, in one plain struct that modules bump
 * and the reporting side reads. Anything ctd drops is counted here. */
#ifndef CTD_STATS_H
#define CTD_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ctd/ctevent.h"
#include "ctd/record.h"

#define CTD_OUT_MAX 8

/* One record output's delivery, named out_<name>_<counter>. */
struct ctd_out_stats {
	uint64_t delivered;      /* records the output took */
	uint64_t deferred;       /* records it refused at first: held back */
	uint64_t retried;        /* held records delivered on a re-send */
	uint64_t spooled;        /* records written to the spool */
	uint64_t spooled_bytes;  /* rendered bytes written to the spool */
	uint64_t replayed;       /* spooled records delivered */
	uint64_t failed;         /* records lost: refused for good, or not
	                          * even the spool could take them */
	uint64_t dying;          /* gauge: records waiting for a re-send */
	uint64_t dying_peak;
	uint64_t spool_size;     /* gauge: spool file bytes */
	uint64_t spool_skipped;  /* damaged spool entries skipped */
	uint64_t write_errors;   /* failed writes */
	uint64_t bytes;          /* bytes written */
	uint64_t consumers;      /* gauge: connected readers (stream) */
	uint64_t refused;        /* readers refused: too many (stream) */
	uint64_t lost_bytes;     /* unread bytes of readers that went away */
	uint64_t events;         /* NEW/UPDATE event records taken */
	uint64_t events_missed;  /* ... refused: left pending on the flow */
	uint64_t events_merged;  /* pending ones carried by a later record */
	uint64_t skipped;        /* records this output does not render */
	uint64_t acked;          /* IPFIX data records the collector's TCP
	                          * acknowledged (UDP: sent) */
	uint64_t unacked;        /* gauge: written, not acknowledged yet */
	uint64_t resent;         /* data records sent again after a reconnect */
	uint64_t reconnects;     /* connections lost */
	uint64_t templates;      /* template messages sent */
};

struct ctd_stats {
	uint64_t events[CTD_EV__COUNT];  /* parsed events by type */
	uint64_t nl_messages;            /* netlink messages received */
	uint64_t nl_reads;               /* datagrams read */
	uint64_t nl_wakeups;             /* socket readiness callbacks */
	uint64_t nl_budget_hits;         /* wakeups that stopped at the budget */
	uint64_t nl_enobufs;             /* overruns reported (lossy mode) */
	uint64_t nl_drops;               /* events the socket dropped (SO_MEMINFO) */
	uint64_t nl_grows;               /* receive buffer doublings */
	uint64_t nl_truncated;           /* datagrams larger than a slot */
	uint64_t nl_errors;              /* other receive errors */
	uint64_t parse_errors;           /* malformed conntrack messages */
	uint64_t parse_ignored;          /* netlink messages that are not events */
	uint64_t flows_created;          /* flows added to the table */
	uint64_t flows_unseen_destroy;   /* DESTROY for a flow never seen */
	uint64_t flows_table_full;       /* flows not tracked: table at bound */
	uint64_t flows_nomem;            /* flows not tracked: out of memory */
	uint64_t records;                /* completed-flow records produced */
	uint64_t records_filtered;       /* records the filter settings left out */
	uint64_t ends[CTD_END__COUNT];   /* records by end_reason */
	uint64_t expiry_suspects;        /* flows that timed out here */
	uint64_t expiry_alive;           /* ... that a dump showed alive */
	uint64_t dumps;                  /* table dumps begun */
	uint64_t resyncs;                /* ... of them to resync after losses */
	uint64_t dump_failures;          /* table dumps that failed */
	uint64_t dump_entries;           /* conntracks listed by dumps */
	uint64_t dump_new_flows;         /* flows first learnt from a dump */
	uint64_t dump_stale;             /* dump entries for flows already ended */
	uint64_t destroy_duplicates;     /* DESTROYs for a flow already ended */
	uint64_t tombstone_failures;     /* ends not remembered: table full */
	uint64_t text_dropped;           /* -f lines skipped: terminal stuck */
	uint64_t rcvbuf;                 /* netlink receive buffer, bytes */
	uint64_t flows_tracked;          /* gauge */
	uint64_t flows_suspect;          /* gauge: waiting for a dump */
	uint64_t kernel_pending;         /* gauge: DESTROYs the kernel holds */
	uint64_t kernel_pending_peak;
	uint64_t table_bytes;            /* gauge: flow table memory */
	uint64_t ctl_requests;           /* control-socket requests answered */
	uint64_t ctl_refused;
	uint64_t metrics_requests;       /* Prometheus scrapes answered */            /* ... refused: not root, too many,
	                                  * request too long */
	uint64_t ends_remembered;        /* gauge: ended flows kept to drop
	                                  * repeated DESTROYs */
	const char *out_name[CTD_OUT_MAX];
	struct ctd_out_stats *out[CTD_OUT_MAX];   /* owned by the outputs */
};

/* One "name value" line per counter. */
void ctd_stats_print(const struct ctd_stats *st, FILE *f);
/* The same as one JSON object; per-output counters under "outputs". */
void ctd_stats_print_json(const struct ctd_stats *st, FILE *f);
/* The Prometheus text exposition: a family per counter with HELP and
 * TYPE, counters ending in _total and units in the names (ctd_events_total
 * {type="new"}, ctd_netlink_rcvbuf_bytes), and ctd_output_<counter>
 * {output="name"} per output. */
void ctd_stats_print_prometheus(const struct ctd_stats *st, FILE *f);
/* The HELP and TYPE lines of one family, for the report's own families. */
void ctd_stats_prometheus_family(FILE *f, const char *name, bool gauge,
				 const char *help);

#endif
