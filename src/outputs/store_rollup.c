/* store_rollup: a batch's rollup cells, summed before they are written.
 *
 * Open addressing over a power-of-two table kept at most three quarters
 * full, so a probe stays short; the cells in use are also listed by
 * index, so clearing and walking cost what the batch used, not the
 * table's size. A row adds to CTD_ROLLUP_PER_ROW cells at most; add
 * refuses before touching anything when that many might not fit, so a
 * row's share is never split between two writes of the table. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/flows/record.h"
#include "ctd/outputs/store_rollup.h"

const uint64_t ctd_rollup_span_ms[CTD_SPAN__COUNT] = {
	60000, 3600000, 86400000,
};

/* The finest span each kind keeps; CTD_SPAN__COUNT: none. Pairs have
 * no rollups: between many hosts a pair is nearly one flow per bucket,
 * so their cells copied the rows, and the current hour's and day's cells
 * were spread over so many pages that each batch dirtied one page per
 * flow (measured: 8 KiB of WAL per flow at 10 M flows a day). */
const enum ctd_rollup_span ctd_rollup_finest[CTD_ROLLUP__COUNT] = {
	[CTD_ROLLUP_PAIR] = CTD_SPAN__COUNT,
};

/* Added row by row, a source's or destination's hour and day cells
 * were two upserts per row each at keys spread over the hour's and the
 * day's stretch of the table; folded, the hour is one sorted pass over
 * its minute cells. Ports and namespaces have few keys, whose cells
 * stay in the cache: added. */
const bool ctd_rollup_folded[CTD_ROLLUP__COUNT] = {
	[CTD_ROLLUP_SRC] = true,
	[CTD_ROLLUP_DST] = true,
};

struct ctd_rollup {
	struct ctd_rollup_cell *cell;
	uint32_t *slot;          /* cell index + 1, 0: free */
	size_t mask;             /* slots - 1 */
	size_t used, cap;
};

int ctd_rollup_new(size_t cap, struct ctd_rollup **ret)
{
	struct ctd_rollup *r = calloc(1, sizeof(*r));
	size_t slots = 16;

	if (cap < 4 * CTD_ROLLUP_PER_ROW)
		cap = 4 * CTD_ROLLUP_PER_ROW;
	while (slots < cap * 4 / 3 + 1)
		slots *= 2;
	if (r) {
		r->cap = cap;
		r->mask = slots - 1;
		r->cell = malloc(cap * sizeof(*r->cell));
		r->slot = calloc(slots, sizeof(*r->slot));
	}
	if (!r || !r->cell || !r->slot) {
		ctd_rollup_free(r);
		return -ENOMEM;
	}
	*ret = r;
	return 0;
}

void ctd_rollup_free(struct ctd_rollup *r)
{
	if (!r)
		return;
	free(r->cell);
	free(r->slot);
	free(r);
}

static size_t addr_len(const struct ctd_record *rec)
{
	return rec->family == AF_INET6 ? 16 : 4;
}

size_t ctd_rollup_key(enum ctd_rollup_kind kind, const struct ctd_record *rec,
		      const char *netns, uint8_t *key)
{
	const struct ctd_tuple *t = &rec->tuple[CTD_DIR_ORIG];
	size_t n = addr_len(rec);

	switch (kind) {
	case CTD_ROLLUP_SRC:
		memcpy(key, t->src, n);
		return n;
	case CTD_ROLLUP_DST:
		memcpy(key, t->dst, n);
		return n;
	case CTD_ROLLUP_PORT:
		key[0] = rec->proto;
		key[1] = (uint8_t)(t->dport >> 8);
		key[2] = (uint8_t)t->dport;
		return 3;
	case CTD_ROLLUP_PAIR:
		memcpy(key, t->src, n);
		memcpy(key + n, t->dst, n);
		return 2 * n;
	default:
		n = strnlen(netns, CTD_ROLLUP_KEY_MAX);
		memcpy(key, netns, n);
		return n;
	}
}

/* FNV-1a over what tells cells apart. */
static uint64_t cell_hash(const struct ctd_rollup_cell *c)
{
	uint64_t h = 1469598103934665603ULL ^ c->bucket_ms;

	h = (h ^ c->span) * 1099511628211ULL;
	h = (h ^ c->kind) * 1099511628211ULL;
	for (size_t i = 0; i < c->klen; i++)
		h = (h ^ c->key[i]) * 1099511628211ULL;
	return h;
}

static bool same(const struct ctd_rollup_cell *a, const struct ctd_rollup_cell *b)
{
	return a->bucket_ms == b->bucket_ms && a->span == b->span &&
	       a->kind == b->kind && a->klen == b->klen &&
	       memcmp(a->key, b->key, a->klen) == 0;
}

/* The cell equal to probe, made (zeroed counters) if new. */
static struct ctd_rollup_cell *find(struct ctd_rollup *r,
				    const struct ctd_rollup_cell *probe)
{
	size_t i = cell_hash(probe) & r->mask;
	struct ctd_rollup_cell *c;

	for (; r->slot[i]; i = (i + 1) & r->mask)
		if (same(c = &r->cell[r->slot[i] - 1], probe))
			return c;
	c = &r->cell[r->used];
	*c = *probe;
	r->slot[i] = (uint32_t)++r->used;
	return c;
}

/* The spans past which kind k takes no share of a row ending at end_ms. */
static unsigned spans_of(unsigned k, uint64_t end_ms, uint64_t folded_ms)
{
	return ctd_rollup_folded[k] && end_ms >= folded_ms ? CTD_SPAN_HOUR :
							     CTD_SPAN__COUNT;
}

bool ctd_rollup_add(struct ctd_rollup *r, const struct ctd_record *rec,
		    const char *netns, uint64_t folded_ms)
{
	uint64_t end_ms = rec->end_ns / 1000000;
	struct ctd_rollup_cell probe = { 0 };

	if (r->used + CTD_ROLLUP_PER_ROW > r->cap)
		return false;
	for (unsigned k = 0; k < CTD_ROLLUP__COUNT; k++) {
		unsigned last = spans_of(k, end_ms, folded_ms);

		probe.kind = (uint8_t)k;
		probe.klen = (uint8_t)ctd_rollup_key(k, rec, netns, probe.key);
		for (unsigned s = ctd_rollup_finest[k]; s < last; s++) {
			struct ctd_rollup_cell *c;

			probe.span = (uint8_t)s;
			probe.bucket_ms = end_ms - end_ms % ctd_rollup_span_ms[s];
			c = find(r, &probe);
			c->flows++;
			c->packets += rec->cnt[0].packets + rec->cnt[1].packets;
			c->bytes += rec->cnt[0].bytes + rec->cnt[1].bytes;
		}
	}
	return true;
}

const struct ctd_rollup_cell *ctd_rollup_next(const struct ctd_rollup *r,
					      size_t *pos)
{
	return *pos < r->used ? &r->cell[(*pos)++] : NULL;
}

size_t ctd_rollup_count(const struct ctd_rollup *r)
{
	return r->used;
}

/* The slots of the cells in use are found again by their hash. */
void ctd_rollup_clear(struct ctd_rollup *r)
{
	for (size_t n = 0; n < r->used; n++) {
		size_t i = cell_hash(&r->cell[n]) & r->mask;

		while (r->slot[i] != n + 1)
			i = (i + 1) & r->mask;
		r->slot[i] = 0;
	}
	r->used = 0;
}
