/* ring: doubling a ring keeps its order by copying the queued items in
 * two stretches (head to the end, then the wrapped part), not one by
 * one: the taken ring of a stalled collector holds 65,536 of them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/base/ring.h"

int ctd_ring_grow(void **items, size_t item_size, size_t *cap, size_t *head,
		  size_t n)
{
	size_t new_cap = *cap ? *cap * 2 : CTD_RING_FIRST;
	size_t first = n < *cap - *head ? n : *cap - *head;
	char *ring = malloc(new_cap * item_size);
	const char *old = *items;

	if (!ring)
		return -ENOMEM;
	if (n) {
		memcpy(ring, old + *head * item_size, first * item_size);
		memcpy(ring + first * item_size, old, (n - first) * item_size);
	}
	free(*items);
	*items = ring;
	*cap = new_cap;
	*head = 0;
	return 0;
}
