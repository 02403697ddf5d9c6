/* settle: which of an output's taken records are final, for an output
 * that learns it by position in a byte stream (bytes written to a file or
 * socket, bytes a TCP peer acknowledged, datagrams the kernel took). A
 * FIFO of each taken record's end position; the settled count is what
 * the output reports to delivery (output.h, settled). Pure; owns the
 * FIFO's array, which grows up to a bound. */
#ifndef CTD_SETTLE_H
#define CTD_SETTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_settle {
	uint64_t *ends;       /* end positions, a ring */
	size_t cap, max, head, n;
	uint64_t settled;     /* records settled since the start */
	uint64_t done_end;    /* end of the last record settled */
};

/* At most max records unsettled at once (taking one more is refused). */
void ctd_settle_init(struct ctd_settle *s, size_t max);
void ctd_settle_free(struct ctd_settle *s);

/* A record taken whose last byte ends at position end (positions only
 * grow). -ENOSPC at the bound, -ENOMEM. */
int ctd_settle_take(struct ctd_settle *s, uint64_t end);
/* Everything up to position done is final: settles the records ending
 * there or before. Returns the settled count. */
uint64_t ctd_settle_advance(struct ctd_settle *s, uint64_t done);
/* The records not settled yet are given up (shutdown: delivery spools
 * its own copies); they count as settled from here on, never twice. */
void ctd_settle_abandon(struct ctd_settle *s);
size_t ctd_settle_pending(const struct ctd_settle *s);
/* End position of the oldest unsettled record, or UINT64_MAX. */
uint64_t ctd_settle_oldest_end(const struct ctd_settle *s);
/* Whether position pos falls inside the oldest unsettled record (part of
 * it is out, part not: a torn line if the stream ended there). */
bool ctd_settle_inside(const struct ctd_settle *s, uint64_t pos);

#endif
