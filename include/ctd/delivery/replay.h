/* replay: reads an output's spool back into it (records and rendered
 * bytes, in file order) while it takes them, at most a budget per call;
 * what it took stays in the spool until final (readback.h). Owns no
 * state of its own: the read position is the spool's, the progress the
 * dest's (dest.h). */
#ifndef CTD_REPLAY_H
#define CTD_REPLAY_H

#include <stdbool.h>

struct ctd_dest;

/* Replays t's spooled entries into its output until one is refused
 * (t->replay_stuck), the spool is read or the budget is spent (then
 * *ret_budget_hit). scratch holds one spool entry (CTD_SPOOL_MAX_ENTRY).
 * Returns 0 or the spool's read error (-errno). */
int ctd_replay_refill(struct ctd_dest *t, void *scratch,
		      bool *ret_budget_hit);

#endif
