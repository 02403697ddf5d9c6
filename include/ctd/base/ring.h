/* ring: the one growth step of the FIFO rings ctd keeps (delivery's
 * taken records, the spool's read-back entries, an output's settle
 * positions). Each owner keeps its own typed array and indices; this
 * doubles the array and lays the queued items out from index 0 again, so
 * the wrap-around copy is written once. Depends on nothing else in ctd. */
#ifndef CTD_RING_H
#define CTD_RING_H

#include <stddef.h>

/* The first capacity of a ring that had none. */
#define CTD_RING_FIRST 256

/* Doubles *items (cap items of item_size bytes, n queued from *head
 * on, wrapping) to a new array holding the same n in order from index
 * 0; *cap 0 grows to CTD_RING_FIRST. Returns 0 with *items, *cap and
 * *head updated, or -ENOMEM with nothing changed. */
int ctd_ring_grow(void **items, size_t item_size, size_t *cap, size_t *head,
		  size_t n);

#endif
