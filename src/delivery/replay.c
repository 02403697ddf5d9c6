/* replay: an output's spool read back into it, in the spool's order,
 * whenever it takes records again. An entry stays in the spool until it
 * is final (the read-back ring says how far the CONSUMED mark may move),
 * so a crash replays it again rather than losing it; a refusal stops
 * the reading until the next tick. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/delivery/dest.h"
#include "ctd/delivery/readback.h"
#include "ctd/delivery/replay.h"
#include "ctd/delivery/spool.h"
#include "ctd/flows/record.h"
#include "ctd/outputs/output.h"

#define REPLAY_BUDGET 1024       /* spooled entries read per output per tick */

static enum ctd_out_status replay_raw(struct ctd_dest *t, const void *data,
				      size_t len)
{
	enum ctd_out_status s;

	if (!t->out->ops->submit_raw)
		return CTD_OUT_FAILED;
	s = t->out->ops->submit_raw(t->out, data, len);
	if (s == CTD_OUT_DELIVERED)
		t->st->replayed++;
	return s;
}

/* Spooled rendered bytes back to the output: final once it took them
 * (or never can). false: stop reading for now. */
static bool refill_raw(struct ctd_dest *t, void *scratch, size_t len)
{
	enum ctd_out_status s = replay_raw(t, scratch, len);

	if (s == CTD_OUT_AGAIN) {
		t->replay_stuck = true;
		return false;
	}
	if (s == CTD_OUT_FAILED)
		ctd_dest_fail(t, &t->st->failed_render, 1);
	/* Without a slot, the next entry's end covers this one's. */
	ctd_readback_final(t->rb, ctd_readback_add(t->rb,
					ctd_spool_peeked_end(t->spool)));
	return true;
}

/* One spooled record back to the output, in the spool's order, so it
 * becomes final in that order too (taken records settle first in, first
 * out) and the spool's mark follows close behind: a crash repeats at
 * most what became final since the last commit. It stays in the spool
 * until final, never in the log too. false: refused; stop for now. */
static bool refill_record(struct ctd_dest *t, void *scratch)
{
	const struct ctd_record *rec = scratch;
	uint64_t token = ctd_readback_add(t->rb,
					  ctd_spool_peeked_end(t->spool));

	if (!token)
		return false;
	switch (ctd_dest_taken_full(t) ? CTD_OUT_AGAIN :
		t->out->ops->submit(t->out, rec)) {
	case CTD_OUT_AGAIN:
		ctd_readback_cancel_last(t->rb);
		t->replay_stuck = true;
		return false;
	case CTD_OUT_FAILED:
		ctd_dest_fail(t, &t->st->failed_render, 1);
		ctd_readback_final(t->rb, token);
		break;
	case CTD_OUT_DELIVERED:
		ctd_dest_took(t, rec, CTD_TAKEN_REPLAYED, token);
		break;
	}
	t->spool_records--;
	return true;
}

/* Replays spooled entries while the output takes them, up to the
 * budget per tick. */
int ctd_replay_refill(struct ctd_dest *t, void *scratch,
		      bool *ret_budget_hit)
{
	enum ctd_spool_kind kind;
	unsigned budget = REPLAY_BUDGET;
	size_t len;
	int r = 0;

	while (t->spool && !t->replay_stuck &&
	       (r = ctd_spool_peek(t->spool, scratch, CTD_SPOOL_MAX_ENTRY,
				   &kind, &len)) == 1) {
		if (!budget--) {
			*ret_budget_hit = true;
			break;
		}
		if (!(kind == CTD_SPOOL_RAW ? refill_raw(t, scratch, len) :
					      refill_record(t, scratch)))
			break;
		ctd_spool_consume(t->spool);
	}
	return r < 0 ? r : 0;
}
