/* readback: how far an output's spool is final. Records read back from
 * the spool stay there (past its CONSUMED mark) until the output made
 * them final; the mark may only move over a stretch in which every
 * record is final, so a crash replays the rest once and nothing twice.
 * Replay goes in file order and taken records settle first in, first
 * out, so they normally become final in read order; one made final at
 * once because the taken ring could not grow is the exception, hence a
 * final flag per entry rather than a count. Pure; owns a ring of the
 * read-back records' end offsets in read order, which grows as needed. */
#ifndef CTD_READBACK_H
#define CTD_READBACK_H

#include <stddef.h>
#include <stdint.h>

struct ctd_readback;

/* Reading starts at offset start (the spool's CONSUMED mark). */
struct ctd_readback *ctd_readback_new(uint64_t start);
void ctd_readback_free(struct ctd_readback *rb);

/* An entry read back whose last byte ends before offset end (offsets
 * only grow). Returns its token, never 0, or 0 when memory ran out. */
uint64_t ctd_readback_add(struct ctd_readback *rb, uint64_t end);
/* The last add is taken back (what it was for could not be held). */
void ctd_readback_cancel_last(struct ctd_readback *rb);
/* The entry of token is final (delivered or given up). */
void ctd_readback_final(struct ctd_readback *rb, uint64_t token);
/* Everything before this offset was read back and is final. */
uint64_t ctd_readback_final_end(const struct ctd_readback *rb);
/* Entries read back and not final. */
size_t ctd_readback_pending(const struct ctd_readback *rb);
/* The spool was emptied or rewritten (nothing pending): offsets start
 * again at start. */
void ctd_readback_restart(struct ctd_readback *rb, uint64_t start);

#endif
