/* endfilter: a blocked Bloom filter: each key sets and tests its bits
 * in one 512-bit block (one cache line), so adding or asking costs one
 * cache miss, which matters on the DESTROY path of a storm. 32 bits per
 * key and 8 bits per key in its block give about 1 false positive in
 * 50,000 at capacity (16 per million measured). */
#include <stdlib.h>
#include <string.h>

#include "ctd/flows/endfilter.h"

#define HASHES 8
#define BITS_PER_KEY 32
#define BLOCK_WORDS 8                  /* 512 bits */

struct ctd_endfilter {
	size_t n;                /* keys per generation */
	size_t blocks;           /* blocks per generation */
	size_t added;            /* keys in the newer generation */
	bool rotated;            /* the older generation holds keys */
	uint64_t *gen[2];        /* gen[0] the newer */
};

struct ctd_endfilter *ctd_endfilter_new(size_t n)
{
	struct ctd_endfilter *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->n = n < 1024 ? 1024 : n;
	f->blocks = f->n * BITS_PER_KEY / (64 * BLOCK_WORDS) + 1;
	for (int g = 0; g < 2; g++) {
		f->gen[g] = aligned_alloc(64, f->blocks * BLOCK_WORDS * 8);
		if (!f->gen[g]) {
			ctd_endfilter_free(f);
			return NULL;
		}
		memset(f->gen[g], 0, f->blocks * BLOCK_WORDS * 8);
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

static uint64_t *block(const struct ctd_endfilter *f, uint64_t *bits,
		       uint64_t h)
{
	return bits + (size_t)((h >> 32) % f->blocks) * BLOCK_WORDS;
}

/* The key's HASHES bit positions in its block: independent 9-bit pieces
 * of two remixes of the hash (the block index used its high bits).
 * Arithmetic progressions (double hashing) inside one block would
 * overlap and cost an order of magnitude in false positives. */
static void bits_of(uint64_t h, unsigned *pos)
{
	uint64_t m = (h ^ h >> 29) * 0xbf58476d1ce4e5b9ULL;

	for (unsigned i = 0; i < HASHES; i++) {
		if (i == 7)
			m = (m ^ m >> 31) * 0x94d049bb133111ebULL;
		pos[i] = (unsigned)(m >> (9 * (i % 7))) % (64 * BLOCK_WORDS);
	}
}

static bool has(const struct ctd_endfilter *f, uint64_t *bits, uint64_t h)
{
	const uint64_t *blk = block(f, bits, h);
	unsigned pos[HASHES];

	bits_of(h, pos);
	for (unsigned i = 0; i < HASHES; i++)
		if (!(blk[pos[i] / 64] & 1ull << (pos[i] % 64)))
			return false;
	return true;
}

void ctd_endfilter_add(struct ctd_endfilter *f, uint64_t h)
{
	unsigned pos[HASHES];
	uint64_t *blk;

	if (f->added == f->n) {
		uint64_t *old = f->gen[1];

		memset(old, 0, f->blocks * BLOCK_WORDS * 8);
		f->gen[1] = f->gen[0];
		f->gen[0] = old;
		f->added = 0;
		f->rotated = true;
	}
	blk = block(f, f->gen[0], h);
	bits_of(h, pos);
	for (unsigned i = 0; i < HASHES; i++)
		blk[pos[i] / 64] |= 1ull << (pos[i] % 64);
	f->added++;
}

/* An empty generation has no bit set, so it is not read: until the
 * first end is forgotten (remember-ends of them after the start), every
 * DESTROY of a flow ctd never tracked asked two all-zero cache lines,
 * a tenth of ctd's CPU in a storm of such flows. */
bool ctd_endfilter_maybe(const struct ctd_endfilter *f, uint64_t h)
{
	return (f->added && has(f, f->gen[0], h)) ||
	       (f->rotated && has(f, f->gen[1], h));
}

void ctd_endfilter_prefetch(const struct ctd_endfilter *f, uint64_t h)
{
	if (f->added)
		__builtin_prefetch(block(f, f->gen[0], h));
	if (f->rotated)
		__builtin_prefetch(block(f, f->gen[1], h));
}
