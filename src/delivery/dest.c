/* dest: one output's delivery state and its books. Every change to
 * what an output holds goes through here, so records = delivered +
 * failed + held stays true at every step: a failure is counted by
 * reason when it happens, a taken record is counted final only when the
 * output's settled count passes it, and the held gauge is recomputed
 * from the parts (taken ring, retry list, spool, log) rather than kept
 * by hand.
 *
 * The taken ring is charged to the shared memory budget even past it
 * (see taken_grow) and given back when empty. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "ctd/base/log.h"
#include "ctd/base/membudget.h"
#include "ctd/base/ring.h"
#include "ctd/delivery/dest.h"
#include "ctd/delivery/readback.h"
#include "ctd/delivery/retry.h"
#include "ctd/delivery/spool.h"
#include "ctd/delivery/wal.h"
#include "ctd/flows/record.h"
#include "ctd/outputs/output.h"

#define TAKEN_MAX 65536          /* records taken, not final, per output,
				  * unless the output says (taken_max) */
#define TAKEN_KEEP 4096          /* a ring this small is kept when empty */

void ctd_dest_log_losses(struct ctd_dest *t, int64_t now)
{
	uint64_t n = ctd_log_rate_due(&t->losses, t->st->failed, now);

	if (n)
		log_err("output %s: lost %llu records (%s)", t->out->name,
			(unsigned long long)n,
			t->spool ? "the spool could not take them" :
				   "no spool to hold them");
}

/* A record given up, counted by reason (output.h). */
void ctd_dest_fail(struct ctd_dest *t, uint64_t *reason, uint64_t n)
{
	*reason += n;
	t->st->failed += n;
}

bool ctd_dest_spool_record(struct ctd_dest *t, const struct ctd_record *rec)
{
	if (!t->spool ||
	    ctd_spool_append(t->spool, CTD_SPOOL_RECORD, rec, sizeof(*rec)) < 0)
		return false;
	t->st->spooled++;
	t->spool_records++;
	t->st->spool_size = ctd_spool_size(t->spool);
	return true;
}

void ctd_dest_update_gauges(struct ctd_dest *t)
{
	t->st->dying = ctd_retry_count(t->retry);
	if (t->st->dying > t->st->dying_peak)
		t->st->dying_peak = t->st->dying;
	t->st->held = t->taken_n + t->st->dying + t->spool_records +
		      t->wal_kept;
	if (t->spool) {
		t->st->spool_size = ctd_spool_size(t->spool);
		t->st->spool_skipped = ctd_spool_stats(t->spool)->corrupt +
				       ctd_spool_stats(t->spool)->torn;
	}
	if (t->wal)
		t->st->wal_bytes = ctd_wal_size(t->wal);
	t->st->memory_bytes = ctd_retry_bytes(t->retry) +
			      t->taken_cap * sizeof(*t->taken);
}

uint64_t ctd_dest_log_add(struct ctd_dest *t, const struct ctd_record *rec)
{
	return t->wal ? ctd_wal_add(t->wal, rec) : 0;
}

/* A held record is final (delivered or given up). One read back from
 * the spool is tagged with its read-back token: the spool's mark may
 * pass it now. Any other is tagged with its log sequence (0: none). */
void ctd_dest_release(struct ctd_dest *t, bool replayed, uint64_t tag)
{
	if (replayed)
		ctd_readback_final(t->rb, tag);
	else if (tag)
		ctd_wal_done(t->wal, tag);
}

/* A larger ring, charged to the budget even past it: refusing it
 * would keep a full retry list from ever draining into the output. It
 * is small (16 bytes a record, TAKEN_MAX at most) and given back when
 * empty; the retry lists get what it leaves. */
static int taken_grow(struct ctd_dest *t)
{
	size_t old = t->taken_cap;
	int r = ctd_ring_grow((void **)&t->taken, sizeof(*t->taken),
			      &t->taken_cap, &t->taken_head, t->taken_n);

	if (r == 0)
		ctd_membudget_charge(t->budget,
				     (t->taken_cap - old) * sizeof(*t->taken));
	return r;
}

/* An empty ring goes back to the budget, for the other outputs; a small
 * one stays (a file output empties it at every commit). */
static void taken_shrink(struct ctd_dest *t)
{
	if (t->taken_n || t->taken_cap <= TAKEN_KEEP)
		return;
	ctd_membudget_give(t->budget, t->taken_cap * sizeof(*t->taken));
	free(t->taken);
	t->taken = NULL;
	t->taken_cap = t->taken_head = 0;
}

/* Whether the output may be offered a record: one it takes must fit in
 * the ring until it is final; else it is held like one it refused. */
bool ctd_dest_taken_full(struct ctd_dest *t)
{
	if (!t->out->ops->settled)
		return false;
	if (t->taken_n >= (t->out->taken_max ? t->out->taken_max : TAKEN_MAX))
		return true;
	if (t->taken_n < t->taken_cap)
		return false;
	return taken_grow(t) < 0;
}

/* Counts a record final: by how it came. */
static void count_final(struct ctd_dest *t, uint32_t flags)
{
	if (flags & CTD_TAKEN_EVENT) {
		t->st->events++;
		return;
	}
	t->st->delivered++;
	if (flags & CTD_TAKEN_REPLAYED)
		t->st->replayed++;
	else if (flags & CTD_TAKEN_RETRIED)
		t->st->retried++;
}

/* The output took rec: final at once, or when settled says so; until
 * then in the log, unless it is an event record (never held). */
void ctd_dest_took(struct ctd_dest *t, const struct ctd_record *rec,
		 uint32_t flags, uint64_t seq)
{
	if (!t->out->ops->settled) {
		count_final(t, flags);
		ctd_dest_release(t, flags & CTD_TAKEN_REPLAYED, seq);
		return;
	}
	if (t->taken_n == t->taken_cap) {
		/* Every caller asked taken_full first, which made room;
		 * should one not, final at once, as without a log. */
		count_final(t, flags);
		ctd_dest_release(t, flags & CTD_TAKEN_REPLAYED, seq);
		return;
	}
	if (!seq && !(flags & CTD_TAKEN_EVENT))
		seq = ctd_dest_log_add(t, rec);
	t->taken[(t->taken_head + t->taken_n) % t->taken_cap] =
		(struct ctd_taken){ seq, flags };
	t->taken_n++;
}

/* Pops what the output made final since the last look. */
void ctd_dest_settle(struct ctd_dest *t)
{
	uint64_t n, given;

	if (!t->out->ops->settled)
		return;
	n = t->out->ops->settled(t->out) - t->settled_seen;
	given = t->out->given_up - t->given_up_seen;
	t->settled_seen += n;
	t->given_up_seen += given;
	for (; n && t->taken_n; n--, t->taken_n--) {
		struct ctd_taken *k = &t->taken[t->taken_head];

		ctd_dest_release(t, k->flags & CTD_TAKEN_REPLAYED, k->seq);
		count_final(t, k->flags);
		t->taken_head = (t->taken_head + 1) % t->taken_cap;
	}
	/* Taken, then given up by the output (counted in failed_output). */
	t->st->delivered -= given;
	t->st->failed += given;
	taken_shrink(t);
}

/* The spool's mark moves over the read-back records that are final
 * (a failed write is tried again at the next commit); the file is
 * emptied once all of it was read back and is final. */
void ctd_dest_commit_spool(struct ctd_dest *t)
{
	if (!t->spool || !ctd_spool_size(t->spool))
		return;
	if (!ctd_spool_unread(t->spool) && !ctd_readback_pending(t->rb)) {
		if (ctd_spool_truncate(t->spool) == 0)
			ctd_readback_restart(t->rb, 0);
		return;
	}
	ctd_spool_mark_consumed(t->spool, ctd_readback_final_end(t->rb));
}

void ctd_dest_commit_log(struct ctd_dest *t, int64_t now)
{
	int r;

	if (!t->wal)
		return;
	r = ctd_wal_commit(t->wal);
	if (r == 0)
		return;
	t->st->wal_errors++;
	if (ctd_log_rate_due(&t->wal_fails, t->st->wal_errors, now))
		log_err("output %s: cannot write its write-ahead log: %s; "
			"records it holds would not survive a crash",
			t->out->name, ctd_log_errstr(-r));
}
