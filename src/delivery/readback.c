/* readback: a ring of the read-back entries not final yet, oldest first,
 * each an end offset and a final flag. Tokens are consecutive numbers,
 * so a token's place in the ring is its distance from the oldest one's;
 * final entries at the head are popped and their end becomes the final
 * offset. Every operation is O(1) but the ring's doubling. */
#include <stdbool.h>
#include <stdlib.h>

#include "ctd/base/ring.h"
#include "ctd/delivery/readback.h"

struct slot {
	uint64_t end;
	bool final;
};

struct ctd_readback {
	struct slot *ring;
	size_t cap, head, n;
	uint64_t head_token;     /* token of the oldest pending entry */
	uint64_t final_end;
};

struct ctd_readback *ctd_readback_new(uint64_t start)
{
	struct ctd_readback *rb = calloc(1, sizeof(*rb));

	if (rb)
		ctd_readback_restart(rb, start);
	return rb;
}

void ctd_readback_free(struct ctd_readback *rb)
{
	if (!rb)
		return;
	free(rb->ring);
	free(rb);
}

static struct slot *slot_at(struct ctd_readback *rb, size_t i)
{
	return &rb->ring[(rb->head + i) % rb->cap];
}

static int grow(struct ctd_readback *rb)
{
	return ctd_ring_grow((void **)&rb->ring, sizeof(*rb->ring), &rb->cap,
			     &rb->head, rb->n);
}

uint64_t ctd_readback_add(struct ctd_readback *rb, uint64_t end)
{
	if (rb->n == rb->cap && grow(rb) < 0)
		return 0;
	*slot_at(rb, rb->n) = (struct slot){ end, false };
	rb->n++;
	return rb->head_token + rb->n - 1;
}

void ctd_readback_cancel_last(struct ctd_readback *rb)
{
	if (rb->n)
		rb->n--;
}

void ctd_readback_final(struct ctd_readback *rb, uint64_t token)
{
	if (token < rb->head_token || token - rb->head_token >= rb->n)
		return;
	slot_at(rb, (size_t)(token - rb->head_token))->final = true;
	while (rb->n && rb->ring[rb->head].final) {
		rb->final_end = rb->ring[rb->head].end;
		rb->head = (rb->head + 1) % rb->cap;
		rb->head_token++;
		rb->n--;
	}
}

uint64_t ctd_readback_final_end(const struct ctd_readback *rb)
{
	return rb->final_end;
}

size_t ctd_readback_pending(const struct ctd_readback *rb)
{
	return rb->n;
}

void ctd_readback_restart(struct ctd_readback *rb, uint64_t start)
{
	/* Tokens go on growing: one handed out before stays stale. */
	rb->head_token += rb->n;
	if (!rb->head_token)
		rb->head_token = 1;
	rb->head = rb->n = 0;
	rb->final_end = start;
}
