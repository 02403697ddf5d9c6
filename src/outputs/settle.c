/* settle: records are final in the order they were taken, so a FIFO of
 * end positions and one comparison per record is all it needs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/base/ring.h"
#include "ctd/outputs/settle.h"

void ctd_settle_init(struct ctd_settle *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max;
}

void ctd_settle_free(struct ctd_settle *s)
{
	free(s->ends);
	s->ends = NULL;
	s->cap = s->n = s->head = 0;
}

static int grow(struct ctd_settle *s)
{
	return ctd_ring_grow((void **)&s->ends, sizeof(*s->ends), &s->cap,
			     &s->head, s->n);
}

int ctd_settle_take(struct ctd_settle *s, uint64_t end)
{
	if (s->n >= s->max)
		return -ENOSPC;
	if (s->n == s->cap && grow(s) < 0)
		return -ENOMEM;
	s->ends[(s->head + s->n) % s->cap] = end;
	s->n++;
	return 0;
}

uint64_t ctd_settle_advance(struct ctd_settle *s, uint64_t done)
{
	while (s->n && s->ends[s->head] <= done) {
		s->done_end = s->ends[s->head];
		s->head = (s->head + 1) % s->cap;
		s->n--;
		s->settled++;
	}
	return s->settled;
}

void ctd_settle_abandon(struct ctd_settle *s)
{
	if (s->n)
		s->done_end = s->ends[(s->head + s->n - 1) % s->cap];
	s->settled += s->n;
	s->n = s->head = 0;
}

size_t ctd_settle_pending(const struct ctd_settle *s)
{
	return s->n;
}

uint64_t ctd_settle_oldest_end(const struct ctd_settle *s)
{
	return s->n ? s->ends[s->head] : UINT64_MAX;
}

bool ctd_settle_inside(const struct ctd_settle *s, uint64_t pos)
{
	return s->n && pos > s->done_end && pos < s->ends[s->head];
}
