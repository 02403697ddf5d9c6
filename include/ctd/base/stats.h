/* stats: every counter ctd keeps, in one plain struct that modules bump
 * and the reporting side reads. Anything ctd drops is counted here; an
 * output's delivery counters live in its struct ctd_output (output.h)
 * and are reached through out[]. */
#ifndef CTD_STATS_H
#define CTD_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Sizes of the enums the counters are kept by, so this header needs
 * none of their modules (engine.c checks they match). */
#define CTD_STATS_EVTYPES 3        /* enum ctd_evtype (ctevent.h) */
#define CTD_STATS_END_REASONS 6    /* enum ctd_end_reason (record.h) */
#define CTD_OUT_MAX 8

/* A counter an output keeps for itself, beside the delivery counters
 * every output has (struct ctd_out_stats): described by the output's
 * own rows, so ctd -s, the JSON answer and the metrics show it without
 * the reporting side naming it. */
struct ctd_counter_def {
	const char *name;    /* the ctd -s and JSON key (after out_NAME_) */
	size_t off;          /* of its uint64_t in the output's struct */
	bool gauge;
	const char *prom;    /* the Prometheus family (after ctd_output_) */
	const char *help;
	/* A gauge every shard process reads from the same place (the
	 * brokers, one database): the shards' largest, not their sum. */
	bool same;
};

/* Which delivery counters shared by several kinds of output one can
 * move; the others of those are shown (ctd -s) only when not zero. */
enum {
	CTD_SHOWS_EVENTS = 1,    /* events, events_missed, events_merged */
	CTD_SHOWS_ACKS = 2,      /* acked, unacked, resent */
	CTD_SHOWS_GIVE_UP = 4,   /* failed_output */
	CTD_SHOWS_LINK = 8,      /* reconnects */
};

struct ctd_counter_defs {
	const struct ctd_counter_def *rows;
	size_t n;
	unsigned shows;          /* CTD_SHOWS_* */
};

/* Event -> record latency buckets: the kernel's stamp on the event
 * (CTA_TIMESTAMP_EVENT) to the wall clock of the read that brought it;
 * the record is written before the loop sleeps again. Upper bounds in
 * ms; the last bucket is everything above 1 s. */
#define CTD_LAT_BOUNDS_MS { 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000 }
#define CTD_LAT__COUNT 11

struct ctd_out_stats;

struct ctd_stats {
	uint64_t events[CTD_STATS_EVTYPES];  /* parsed events by type */
	uint64_t nl_messages;            /* netlink messages received */
	uint64_t nl_reads;               /* datagrams read */
	uint64_t nl_syscalls;            /* recvmmsg calls (the empty last one too) */
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
	uint64_t ends[CTD_STATS_END_REASONS]; /* records by end_reason */
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
	uint64_t possible_duplicates;    /* DESTROYs of flows whose end may
	                                  * have been recorded and forgotten:
	                                  * records marked dup_check none */
	uint64_t events_after_evict;     /* NEW/UPDATE for a flow evicted
	                                  * alive: not tracked again */
	uint64_t text_dropped;           /* -f lines skipped: terminal stuck */
	uint64_t rcvbuf;                 /* netlink receive buffer, bytes */
	uint64_t flows_tracked;          /* gauge */
	uint64_t flows_suspect;          /* gauge: waiting for a dump */
	uint64_t kernel_pending;         /* gauge: DESTROYs the kernel holds */
	uint64_t kernel_pending_peak;
	/* The kernel-pressure governor (guard.c), copied from its page. */
	uint64_t kernel_failed_open;      /* gauge: 1 while failed open */
	uint64_t kernel_open_since_us;    /* gauge: wall µs of the last change */
	uint64_t kernel_fail_opens;       /* times it failed open */
	uint64_t kernel_rearms;           /* times reliable mode came back */
	uint64_t kernel_lost;             /* events the kernel dropped for ctd
	                                  * while failed open: records lost */
	uint64_t kernel_released;         /* conntracks the last fail-open freed */
	uint64_t kernel_table_count;      /* gauge: nf_conntrack_count */
	uint64_t kernel_table_max;        /* gauge: nf_conntrack_max */
	uint64_t kernel_table_peak_pct;   /* gauge: fullest seen, percent */
	uint64_t kernel_lag_us;           /* gauge: age of the newest DESTROY */
	uint64_t guard_running;           /* gauge: 1 while the guard lives */
	uint64_t kernel_cause;            /* gauge: enum ctd_pressure_cause */
	uint64_t kernel_held_est;         /* gauge: count minus the last table
	                                  * dump: about what the kernel holds */
	uint64_t dying_walks_skipped;     /* verdicts without the dying walk */
	uint64_t table_bytes;            /* gauge: flow table memory */
	uint64_t memory_held_bytes;      /* gauge: the outputs' held records
	                                  * (dying lists, taken rings) */
	uint64_t memory_max_bytes;       /* gauge: memory-max, resolved */
	uint64_t ctl_requests;           /* control-socket requests answered */
	uint64_t ctl_refused;            /* ... refused: not root nor in the
	                                  * group, request too long or not text */
	uint64_t ctl_timeouts;           /* clients dropped: no whole request
	                                  * (or answer not read) within 5 s */
	uint64_t ctl_evicted;            /* silent clients dropped to make room */
	uint64_t metrics_requests;       /* Prometheus scrapes answered */
	uint64_t reloads;                /* SIGHUPs applied */
	uint64_t reload_failures;        /* ... refused: a configuration, a
	                                  * certificate or key that did not
	                                  * load (logged; what ran stays) */
	uint64_t notify_dropped;         /* sd_notify messages the service
	                                  * manager did not take at once */
	uint64_t unclean_restarts;       /* starts after a ctd that died */
	uint64_t spool_degraded;         /* gauge: the spool directory is unusable */
	uint64_t latency[CTD_LAT__COUNT];  /* DESTROY -> record, by bucket */
	uint64_t latency_sum_us;          /* ... all of them added up */
	uint64_t ends_remembered;        /* gauge: ended flows kept to drop
	                                  * repeated DESTROYs */
	uint64_t netns_watched;          /* gauge: namespaces besides ctd's own */
	uint64_t netns_added;            /* namespaces taken under watch */
	uint64_t netns_gone;             /* watched namespaces that disappeared */
	uint64_t netns_flushed;          /* ... whose table ctd flushed first */
	uint64_t netns_errors;           /* namespaces ctd could not enter, number
	                                  * or dump (logged) */
	uint64_t netns_dump_counters;    /* netns_gone records with the last
	                                  * dump's counters, not the kernel's */
	uint64_t netns_foreign;          /* events from namespaces not watched */
	uint64_t netns_early_flows;      /* flows alive in a namespace when ctd
	                                  * set it up, learned by a table dump */
	uint64_t shards;                 /* gauge: shard processes running
	                                  * (shards > 1; 0 with one process) */
	uint64_t shard_restarts;         /* shards started again after they
	                                  * died */
	const char *out_name[CTD_OUT_MAX];
	struct ctd_out_stats *out[CTD_OUT_MAX];   /* owned by the outputs */
	/* Each output's own counters (NULL: none) and their rows. */
	const struct ctd_counter_defs *out_defs[CTD_OUT_MAX];
	const void *out_own[CTD_OUT_MAX];
};

#endif
