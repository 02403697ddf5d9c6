/* endfilter: a Bloom filter of 14.4 bits per key and 10 hash positions
 * (false positives ~1/1000 at capacity), the positions drawn from one
 * 64-bit key hash by double hashing (Kirsch-Mitzenmacher). */
#include <stdlib.h>
#include <string.h>

#include "ctd/endfilter.h"

#define HASHES 10
#define BITS_PER_KEY 15

struct ctd_endfilter {
	size_t n;                /* keys per generation */
	size_t bits;             /* bits per generation */
	size_t added;            /* keys in the newer generation */
	uint64_t *gen[2];        /* gen[0] the newer */
};

struct ctd_endfilter *ctd_endfilter_new(size_t n)
{
	struct ctd_endfilter *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->n = n < 1024 ? 1024 : n;
	f->bits = f->n * BITS_PER_KEY;
	f->gen[0] = calloc(f->bits / 64 + 1, sizeof(uint64_t));
	f->gen[1] = calloc(f->bits / 64 + 1, sizeof(uint64_t));
	if (!f->gen[0] || !f->gen[1]) {
		ctd_endfilter_free(f);
		return NULL;
	}
	return f;
}

void ctd_endfilter_free(struct ctd_endfilter *f)
{
	if (!f)
		return;
	free(f->gen[0]);
	free(f->gen[1]);
	free(f);
}

static size_t pos(const struct ctd_endfilter *f, uint64_t h, unsigned i)
{
	uint64_t a = h, b = (h >> 32 | h << 32) | 1;

	return (size_t)((a + i * b) % f->bits);
}

static bool has(const uint64_t *bits, const struct ctd_endfilter *f,
		uint64_t h)
{
	for (unsigned i = 0; i < HASHES; i++) {
		size_t p = pos(f, h, i);

		if (!(bits[p / 64] & 1ull << (p % 64)))
			return false;
	}
	return true;
}

void ctd_endfilter_add(struct ctd_endfilter *f, uint64_t h)
{
	if (f->added == f->n) {
		uint64_t *old = f->gen[1];

		memset(old, 0, (f->bits / 64 + 1) * sizeof(uint64_t));
		f->gen[1] = f->gen[0];
		f->gen[0] = old;
		f->added = 0;
	}
	for (unsigned i = 0; i < HASHES; i++) {
		size_t p = pos(f, h, i);

		f->gen[0][p / 64] |= 1ull << (p % 64);
	}
	f->added++;
}

bool ctd_endfilter_maybe(const struct ctd_endfilter *f, uint64_t h)
{
	return has(f->gen[0], f, h) || has(f->gen[1], f, h);
}
