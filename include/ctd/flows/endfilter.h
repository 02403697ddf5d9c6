/* endfilter: the ended flows ctd forgot, so a repeated DESTROY it can no
 * longer recognise is at least known to be possibly one. When a flow's
 * end leaves the table (past remember-ends, or no room to remember it at
 * all), its key goes into a Bloom filter; a DESTROY for a flow ctd has no
 * trace of is a possible duplicate when the filter may hold its key.
 * Two generations of n keys each: the older is dropped when the newer is
 * full, so memory is fixed and the filter covers the last n to 2n ends
 * forgotten. Pure; owns the bit arrays. */
#ifndef CTD_ENDFILTER_H
#define CTD_ENDFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_endfilter;

/* n: keys per generation (at least 1024). NULL when out of memory. */
struct ctd_endfilter *ctd_endfilter_new(size_t n);
void ctd_endfilter_free(struct ctd_endfilter *f);

void ctd_endfilter_add(struct ctd_endfilter *f, uint64_t key_hash);
/* False: never added (in the last two generations). True: probably
 * added (false positives about 1 in 50,000 at capacity). */
bool ctd_endfilter_maybe(const struct ctd_endfilter *f, uint64_t key_hash);
/* Starts fetching what maybe will read for key_hash: a batch asks this
 * for each of its keys before it asks maybe for any. */
void ctd_endfilter_prefetch(const struct ctd_endfilter *f, uint64_t key_hash);

#endif
