/* dest: one output's delivery state, shared by the delivery modules
 * (deliver.c, replay.c, lifecycle.c) and by nothing outside src/delivery/:
 * its retry list, spool, write-ahead log, read-back ring, the ring of
 * records it took that are not final yet, and the books that keep
 * records = delivered + failed + held (output.h). dest.c owns the taken
 * ring and its share of the memory budget; deliver.c makes and frees a
 * dest, lifecycle.c opens and closes its files. */
#ifndef CTD_DEST_H
#define CTD_DEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/base/log.h"

struct ctd_membudget;
struct ctd_out_stats;
struct ctd_output;
struct ctd_readback;
struct ctd_record;
struct ctd_retry;
struct ctd_spool;
struct ctd_wal;

/* A record the output took, not final yet: its log sequence (0: not
 * logged; for one read back from the spool, its read-back token) and
 * how it came (CTD_TAKEN_*). */
struct ctd_taken {
	uint64_t seq;
	uint32_t flags;
};

enum {
	CTD_TAKEN_RETRIED = 1u << 0,     /* from the retry list */
	CTD_TAKEN_REPLAYED = 1u << 1,    /* from the spool */
	CTD_TAKEN_EVENT = 1u << 2,       /* an event record: not a flow record */
};

struct ctd_dest {
	struct ctd_output *out;
	struct ctd_retry *retry;
	struct ctd_spool *spool;     /* NULL: none; losses are counted */
	struct ctd_wal *wal;         /* NULL without a spool */
	struct ctd_out_stats *st;
	unsigned events;             /* 1 << CTD_EV_* it takes */
	struct ctd_readback *rb;     /* read back from the spool, not final */
	uint64_t spool_records;      /* in the spool, not read back yet */
	uint64_t wal_kept;           /* at exit: left in the log alone */
	struct ctd_taken *taken;     /* a ring, in the order taken */
	size_t taken_cap, taken_head, taken_n;
	struct ctd_membudget *budget; /* shared by all outputs */
	uint64_t settled_seen, given_up_seen;
	bool rush;                   /* ready again: re-send held ones now */
	bool replay_stuck;           /* a spooled entry refused: wait */
	struct ctd_log_rate losses;  /* the "lost records" line */
	struct ctd_log_rate wal_fails;
};

/* A record given up, n times, counted under reason (a failed_* field of
 * t->st) and in failed. */
void ctd_dest_fail(struct ctd_dest *t, uint64_t *reason, uint64_t n);
/* The rate-limited "lost records" line, when failed grew. */
void ctd_dest_log_losses(struct ctd_dest *t, int64_t now);
/* Appends rec to the spool; false without one or when it is refused. */
bool ctd_dest_spool_record(struct ctd_dest *t, const struct ctd_record *rec);
/* held, dying (the retry list's length), spool and memory gauges. */
void ctd_dest_update_gauges(struct ctd_dest *t);
/* rec into the write-ahead log's next batch: its sequence, 0 without
 * a log (or memory). */
uint64_t ctd_dest_log_add(struct ctd_dest *t, const struct ctd_record *rec);
/* A held record is final: tag is its read-back token when replayed,
 * else its log sequence (0: none). */
void ctd_dest_release(struct ctd_dest *t, bool replayed, uint64_t tag);

/* Whether the output may not be offered a record now: one it takes
 * must fit in the taken ring until final (grows it when it can). */
bool ctd_dest_taken_full(struct ctd_dest *t);
/* The output took rec (flags: CTD_TAKEN_*, seq as in struct ctd_taken):
 * final now when the output has no settled op, else into the ring. */
void ctd_dest_took(struct ctd_dest *t, const struct ctd_record *rec,
		   uint32_t flags, uint64_t seq);
/* Counts final what the output settled, or gave up, since the last look. */
void ctd_dest_settle(struct ctd_dest *t);

/* Writes the log's batch (a failure counted in wal_errors and logged at
 * most so often). */
void ctd_dest_commit_log(struct ctd_dest *t, int64_t now);
/* Moves the spool's CONSUMED mark over what is final, or empties it. */
void ctd_dest_commit_spool(struct ctd_dest *t);

#endif
