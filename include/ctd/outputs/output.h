/* output: the interface every record output implements, so delivery
 * (retry list, spool, counters) is written once for all of them. An
 * output embeds struct ctd_output as its first member. */
#ifndef CTD_OUTPUT_H
#define CTD_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

struct ctd_config;
struct ctd_output;
struct ctd_record;

/* One record output's delivery, named out_<name>_<counter>. Flow
 * records obey records = delivered + failed + held after every commit
 * (deliver.h), where delivery brings the held gauge up to date. */
struct ctd_out_stats {
	uint64_t records;        /* flow records for this output: made this
	                          * run, plus those found held at start */
	uint64_t carried;        /* ... of them found held at start (spool,
	                          * write-ahead log of a ctd that died) */
	uint64_t held;           /* gauge: taken but not final, waiting on
	                          * the retry list, or in the spool (at
	                          * exit also: in the write-ahead log) */
	uint64_t delivered;      /* records final: written, sent, acked */
	uint64_t deferred;       /* records it refused at first: held back */
	uint64_t retried;        /* held records delivered on a re-send */
	uint64_t spooled;        /* records written to the spool */
	uint64_t spooled_bytes;  /* rendered bytes written to the spool */
	uint64_t replayed;       /* spooled records delivered */
	uint64_t failed;         /* records given up: the sum of failed_* */
	uint64_t failed_render;  /* ... the output can never take it */
	uint64_t failed_spool;   /* ... held, and neither memory nor the
	                          * spool could keep it */
	uint64_t spilled_memory; /* records refused a place in memory by
	                          * memory-max: spooled (or failed_spool) */
	uint64_t memory_bytes;   /* gauge: this output's share of
	                          * memory_held_bytes */
	uint64_t failed_shutdown; /* ... held at exit and not written to the
	                          * spool or the write-ahead log */
	uint64_t failed_output;  /* ... taken, then given up by the output
	                          * (a message the far end refuses for good) */
	uint64_t wal_bytes;      /* gauge: write-ahead log size */
	uint64_t wal_errors;     /* write-ahead log writes that failed */
	uint64_t dying;          /* gauge: records waiting for a re-send on
	                          * the retry list (named, in the counters
	                          * too, after the kernel's dying list) */
	uint64_t dying_peak;
	uint64_t spool_size;     /* gauge: spool file bytes */
	uint64_t spool_skipped;  /* damaged spool entries skipped */
	uint64_t write_errors;   /* failed writes */
	uint64_t bytes;          /* bytes written */
	uint64_t events;         /* NEW/UPDATE event records taken */
	uint64_t events_missed;  /* ... refused: left pending on the flow */
	uint64_t events_merged;  /* pending ones carried by a later record */
	uint64_t skipped;        /* records this output does not render */
	uint64_t acked;          /* records the far end acknowledged: a
	                          * collector's TCP, brokers that persisted
	                          * them (UDP: sent) */
	uint64_t unacked;        /* gauge: written, not acknowledged yet */
	uint64_t resent;         /* records sent again after a reconnect or
	                          * a failed delivery report: duplicates the
	                          * far end may have got */
	uint64_t reconnects;     /* connections to the far end lost */
};

enum ctd_out_status {
	CTD_OUT_DELIVERED,   /* taken; final when settled counts it */
	CTD_OUT_AGAIN,       /* cannot take it yet: keep it and retry */
	CTD_OUT_FAILED,      /* can never take it (counted, not retried) */
};

struct ctd_output_ops {
	enum ctd_out_status (*submit)(struct ctd_output *out,
				      const struct ctd_record *rec);
	/* Bytes an earlier run had rendered but not written (from the
	 * spool); NULL when the output keeps no such bytes. */
	enum ctd_out_status (*submit_raw)(struct ctd_output *out,
					  const void *data, size_t len);
	/* Writes what it buffered; called after each batch of events. */
	void (*flush)(struct ctd_output *out);
	/* How many records taken (DELIVERED) since the output was made are
	 * final, in the order taken: written to the file or socket, sent,
	 * acknowledged by the collector or the brokers. Delivery keeps a
	 * record in its write-ahead log until then. NULL: final when taken. */
	uint64_t (*settled)(struct ctd_output *out);
	/* Shutdown: forgets every taken record not final yet and never sends
	 * it (delivery keeps its own copies in the write-ahead log, for the
	 * spool). NULL when settled is. */
	void (*abandon)(struct ctd_output *out);
	/* Reopens files (SIGHUP, log rotation); NULL when nothing to do. */
	int (*reopen)(struct ctd_output *out);
	void (*free)(struct ctd_output *out);
	/* A reloaded configuration: takes what may change live (a file
	 * output's path) and logs what needs a restart. Returns 0, or
	 * -errno (logged) when what it had to change could not be, and
	 * then changed nothing. NULL: nothing. */
	int (*reload)(struct ctd_output *out, const struct ctd_config *next);
};

struct ctd_output {
	const struct ctd_output_ops *ops;
	const char *name;                   /* stable: names its spool file */
	struct ctd_out_stats stats;         /* delivery counters, shown by ctd -s */
	/* Its own counters and their rows (stats.h); NULL: none. */
	const struct ctd_counter_defs *counters;
	const void *own;
	/* Taken records the output gave up (counted in failed_output):
	 * settled counts them too, delivery subtracts them. */
	uint64_t given_up;
	/* Set by the owner: the output calls it when it can take records
	 * again after saying CTD_OUT_AGAIN. */
	void (*ready)(void *arg, struct ctd_output *out);
	void *ready_arg;
	/* Set by the owner: the memory budget an output charges what it
	 * grows to take a burst (membudget.h; NULL: it must not grow). */
	struct ctd_membudget *budget;
	/* Set by the output: how many records it may have taken and not
	 * made final at once (0: delivery's default, dest.c). */
	size_t taken_max;
};

static inline void ctd_output_ready(struct ctd_output *out)
{
	if (out->ready)
		out->ready(out->ready_arg, out);
}

#endif
