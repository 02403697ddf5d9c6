/* deliver: hands every record to every output and makes sure each one
 * gets it. A refused record waits on that output's retry list for a
 * random share of the grace period; over the list's bound, past the
 * memory budget all outputs share, and at shutdown, it goes to the
 * output's spool file, which is replayed first at the next start. Owns
 * the outputs it is given, their retry lists, spools and write-ahead
 * logs, and one timer on the loop.
 *
 * The delivery subsystem's words (src/delivery/, one module each):
 *   record     a finished flow (or an event) for one output; each
 *              output's flow records obey records = delivered + failed
 *              + held (struct ctd_out_stats, output.h) after every
 *              commit, where the held gauge is recomputed
 *   dest       one output's delivery state and books (dest.c)
 *   taken      the output's submit said DELIVERED; not final yet
 *              (dest.c keeps them in a ring, in the order taken)
 *   settled    the output's count of taken records now final
 *              (output.h settled; settle.c for byte streams)
 *   final      written, sent or acknowledged as the output promises:
 *              counted in delivered (or failed) and forgotten
 *   held       taken and not final, on the retry list, or in the spool
 *   retry list one output's refused records, each re-sent after a
 *              random share of grace (retry.c); the kernel's own list of
 *              that kind is its dying list, whose name the public
 *              counters dying and dying_peak and --dying-max keep
 *   journal    the file format both files below share: checksummed
 *              entries appended, torn tails skipped (journal.c)
 *   spool      durable overflow: records (or rendered bytes) on disk,
 *              replayed in order, marked consumed as they become final
 *              (spool.c; readback.c says how far that is)
 *   write-ahead log  every record held only in memory, written after
 *              each batch so a crash loses none (wal.c); moved to the
 *              spool at the next start, or at shutdown (lifecycle.c)
 *   replay     reading the spool back into the output (replay.c)
 *   commit     after each batch of events: outputs flush, what became
 *              final is counted, the log's batch is written
 *   carried    records found held at start (spool, a dead ctd's log) */
#ifndef CTD_DELIVER_H
#define CTD_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/base/timeutil.h"

struct ctd_config;
struct ctd_deliver;
struct ctd_owner;
struct ctd_output;
struct ctd_record;
struct ctd_stats;
struct ev_loop;

struct ctd_deliver_cfg {
	uint32_t grace_ms;          /* re-send within [0, grace) */
	size_t retry_max;           /* records held per output (dying-max) */
	/* Bytes all outputs' retry lists and taken rings hold together;
	 * past it records go to the spool. 0: no bound. */
	size_t memory_max;
	const char *spool_dir;      /* NULL: no spool (losses counted) */
	uint32_t (*random)(void *arg);   /* NULL: seeded from clock and pid */
	void *random_arg;
	const struct ctd_owner *owner;  /* ctd's user: gets the spool; NULL */
	struct ctd_clock clock;     /* zeroed: the system clock */
};

int ctd_deliver_new(struct ev_loop *loop, const struct ctd_deliver_cfg *cfg,
		    struct ctd_stats *stats, struct ctd_deliver **ret);
/* Flushes, spools what is left and frees every output. */
void ctd_deliver_free(struct ctd_deliver *d);

/* Takes ownership of out, also on error. events says what it gets:
 * 1 << CTD_EV_DESTROY for flow records (ends and interim records),
 * 1 << CTD_EV_NEW and 1 << CTD_EV_UPDATE for event records. Opens its
 * spool and queues what the spool holds for replay. */
int ctd_deliver_add(struct ctd_deliver *d, struct ctd_output *out,
		    unsigned events);
/* True when some output takes NEW or UPDATE event records. */
bool ctd_deliver_wants_events(const struct ctd_deliver *d);
size_t ctd_deliver_count(const struct ctd_deliver *d);

void ctd_deliver_record(struct ctd_deliver *d, const struct ctd_record *rec);
/* An event record. An output that cannot take it is not held back on
 * the retry list: the event stays pending in *missed (two bits per
 * output, kept on the flow) and goes out merged with the flow's next
 * event; the flow's final record makes pending ones moot. */
void ctd_deliver_event(struct ctd_deliver *d, const struct ctd_record *rec,
		       uint8_t *missed);
/* What the timer does: re-sends the held records due at the clock's now
 * (all of an output that said it is ready), reads spooled ones back, and
 * re-arms the timer. Returns the monotonic µs it is next needed at
 * (INT64_MAX: nothing held). */
int64_t ctd_deliver_tick(struct ctd_deliver *d);
/* After each batch of events, before the next is read: every output
 * writes what it buffered, what became final is counted, and what is
 * still held is written to the output's write-ahead log, so a crash
 * loses at most the batch being handled. */
void ctd_deliver_commit(struct ctd_deliver *d);
/* The same (kept for callers that only mean the writes). */
void ctd_deliver_flush(struct ctd_deliver *d);
/* SIGHUP's new configuration: each output takes what it can live (a
 * file output moves to a new path; bytes buffered follow). */
int ctd_deliver_reload(struct ctd_deliver *d, const struct ctd_config *next);
/* SIGHUP: outputs reopen their files; nothing buffered is lost. */
void ctd_deliver_reopen(struct ctd_deliver *d);

/* Shutdown: keeps re-sending everything held for at most timeout_s by
 * the clock, running the loop (whose other watchers the caller stopped),
 * then spools the rest. Returns the records left for the spool. */
size_t ctd_deliver_finish(struct ctd_deliver *d, unsigned timeout_s);

#endif
