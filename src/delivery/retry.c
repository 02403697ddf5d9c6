/* retry: the records one output could not take, waiting for a re-send.
 *
 * The kernel re-sends undelivered DESTROY events from its dying list
 * after random % grace so that many held events do not come back in one
 * burst against a listener that is still slow; the same spread is kept
 * here against a slow output. Due times are random, not FIFO, so they
 * live in a binary min-heap of (due, slot) pairs: 16-byte moves, while
 * the records stay put in a slot array with a free list.
 *
 * Memory is charged to the shared budget by capacity, not by count: what
 * the allocator holds is what the cgroup sees. The arrays double only as
 * far as the budget has room, and go back to it whole when the list
 * empties, so a drained output leaves the room to the others. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/base/membudget.h"
#include "ctd/delivery/retry.h"
#include "ctd/flows/record.h"

struct slot {
	struct ctd_record rec;
	uint64_t tag;
	uint32_t next_free;
};

struct heap_node {
	int64_t due;
	uint32_t slot;
};

struct ctd_retry {
	struct ctd_retry_cfg cfg;
	struct slot *slots;
	struct heap_node *heap;
	size_t count;
	size_t cap;            /* slots and heap nodes allocated */
	uint32_t free_head;    /* UINT32_MAX: none */
};

#define NO_SLOT UINT32_MAX
#define SLOT_BYTES (sizeof(struct slot) + sizeof(struct heap_node))
#define MIN_CAP 64

static void release(struct ctd_retry *d);

struct ctd_retry *ctd_retry_new(const struct ctd_retry_cfg *cfg)
{
	struct ctd_retry *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->cfg = *cfg;
	if (!d->cfg.grace_ms)
		d->cfg.grace_ms = 1;
	if (d->cfg.max > NO_SLOT - 1)
		d->cfg.max = NO_SLOT - 1;
	d->free_head = NO_SLOT;
	return d;
}

void ctd_retry_free(struct ctd_retry *d)
{
	if (!d)
		return;
	release(d);
	free(d);
}

/* The next capacity: double (MIN_CAP at first), within max and within
 * the budget's room. 0: none. */
static size_t next_cap(const struct ctd_retry *d)
{
	size_t cap = d->cap ? d->cap * 2 : MIN_CAP;
	size_t room = d->cfg.budget ? ctd_membudget_room(d->cfg.budget) :
				      SIZE_MAX;

	if (cap > d->cfg.max)
		cap = d->cfg.max;
	if ((cap - d->cap) > room / SLOT_BYTES)
		cap = d->cap + room / SLOT_BYTES;
	return cap;
}

static void charge(struct ctd_retry *d, size_t cap)
{
	if (!d->cfg.budget)
		return;
	if (cap > d->cap)
		ctd_membudget_take(d->cfg.budget, (cap - d->cap) * SLOT_BYTES);
	else
		ctd_membudget_give(d->cfg.budget, (d->cap - cap) * SLOT_BYTES);
}

/* An empty list gives all of its memory back. */
static void release(struct ctd_retry *d)
{
	charge(d, 0);
	free(d->slots);
	free(d->heap);
	d->slots = NULL;
	d->heap = NULL;
	d->cap = 0;
	d->free_head = NO_SLOT;
}

static int grow(struct ctd_retry *d)
{
	size_t cap = next_cap(d);
	struct slot *slots;
	struct heap_node *heap;

	if (cap <= d->cap)
		return -ENOBUFS;
	slots = realloc(d->slots, cap * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	d->slots = slots;
	heap = realloc(d->heap, cap * sizeof(*heap));
	if (!heap)
		return -ENOMEM;
	d->heap = heap;
	for (size_t i = cap; i-- > d->cap;) {
		slots[i].next_free = d->free_head;
		d->free_head = (uint32_t)i;
	}
	charge(d, cap);
	d->cap = cap;
	return 0;
}

static void swap(struct heap_node *a, struct heap_node *b)
{
	struct heap_node t = *a;

	*a = *b;
	*b = t;
}

static void sift_up(struct ctd_retry *d, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (d->heap[parent].due <= d->heap[i].due)
			return;
		swap(&d->heap[parent], &d->heap[i]);
		i = parent;
	}
}

static void sift_down(struct ctd_retry *d, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;

		if (l < d->count && d->heap[l].due < d->heap[min].due)
			min = l;
		if (r < d->count && d->heap[r].due < d->heap[min].due)
			min = r;
		if (min == i)
			return;
		swap(&d->heap[min], &d->heap[i]);
		i = min;
	}
}

static int64_t grace_us(struct ctd_retry *d)
{
	uint32_t r = d->cfg.random(d->cfg.random_arg);

	return (int64_t)(r % d->cfg.grace_ms) * 1000;
}

int ctd_retry_add(struct ctd_retry *d, const struct ctd_record *rec,
		  uint64_t tag, int64_t now_us)
{
	int64_t due = now_us + grace_us(d);
	uint32_t s;
	int r;

	if (d->count >= d->cfg.max)
		return -ENOSPC;
	if (d->free_head == NO_SLOT && (r = grow(d)) < 0)
		return r;
	s = d->free_head;
	d->free_head = d->slots[s].next_free;
	d->slots[s].rec = *rec;
	d->slots[s].tag = tag;
	d->heap[d->count] = (struct heap_node){ due, s };
	sift_up(d, d->count++);
	return 0;
}

int64_t ctd_retry_next_due(const struct ctd_retry *d)
{
	return d->count ? d->heap[0].due : INT64_MAX;
}

uint64_t ctd_retry_head_tag(const struct ctd_retry *d)
{
	return d->count ? d->slots[d->heap[0].slot].tag : 0;
}

const struct ctd_record *ctd_retry_head(const struct ctd_retry *d)
{
	return d->count ? &d->slots[d->heap[0].slot].rec : NULL;
}

void ctd_retry_pop(struct ctd_retry *d)
{
	uint32_t s;

	if (!d->count)
		return;
	s = d->heap[0].slot;
	d->slots[s].next_free = d->free_head;
	d->free_head = s;
	d->heap[0] = d->heap[--d->count];
	sift_down(d, 0);
	if (!d->count)
		release(d);
}

void ctd_retry_defer(struct ctd_retry *d, int64_t now_us)
{
	if (!d->count)
		return;
	d->heap[0].due = now_us + grace_us(d);
	sift_down(d, 0);
}

size_t ctd_retry_count(const struct ctd_retry *d)
{
	return d->count;
}

size_t ctd_retry_max(const struct ctd_retry *d)
{
	return d->cfg.max;
}

size_t ctd_retry_bytes(const struct ctd_retry *d)
{
	return d->cap * SLOT_BYTES;
}
