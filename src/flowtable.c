/* flowtable: chained hash table of flows over a slab pool.
 *
 * Flows are carved from slabs of FLOWS_PER_SLAB and recycled through a
 * free list threaded on hnext, so a warm table serves NEW/DESTROY churn
 * without touching malloc. The bucket array doubles when the load passes
 * one flow per bucket; that rehash is the only O(n) step and happens
 * log2(n) times over the table's life.
 *
 * The key includes the kernel's conntrack id, which the kernel derives
 * with a keyed hash, so traffic cannot steer flows into one bucket; a
 * fixed hash seed is therefore enough. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/flowtable.h"

#define FLOWS_PER_SLAB 1024
#define MIN_BUCKETS 1024

struct slab {
	struct slab *next;
	struct ctd_flow flows[FLOWS_PER_SLAB];
};

struct ctd_flowtable {
	struct ctd_flow **buckets;
	size_t nbuckets;            /* a power of two */
	size_t count;
	size_t max_flows;
	size_t nslabs;
	struct slab *slabs;
	struct ctd_flow *free_list;
	/* The last key a lookup did not find, and where it would go: the
	 * insert that usually follows skips a second hash and walk. Valid
	 * while the table is unchanged (version). */
	struct ctd_flow_key miss_key;
	size_t miss_bucket;
	uint64_t miss_version;
	uint64_t version;           /* bumped by every insert and remove */
};

_Static_assert(sizeof(struct ctd_flow_key) == 44,
	       "flow keys are hashed and compared as bytes: no padding");

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t key_hash(const struct ctd_flow_key *key)
{
	const unsigned char *p = (const unsigned char *)key;
	uint64_t h = 0x9e3779b97f4a7c15ULL, w;
	uint32_t tail;
	size_t i;

	/* One multiply per word and one full mix at the end: the words
	 * are tuple bytes, so the final avalanche is what spreads them. */
	for (i = 0; i + 8 <= sizeof(*key); i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	memcpy(&tail, p + i, 4);
	return mix64(h ^ tail);
}

static bool key_equal(const struct ctd_flow_key *a, const struct ctd_flow_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

struct ctd_flowtable *ctd_flowtable_new(size_t max_flows)
{
	struct ctd_flowtable *ft = calloc(1, sizeof(*ft));

	if (!ft)
		return NULL;
	ft->nbuckets = MIN_BUCKETS;
	ft->buckets = calloc(ft->nbuckets, sizeof(*ft->buckets));
	if (!ft->buckets) {
		free(ft);
		return NULL;
	}
	ft->max_flows = max_flows;
	return ft;
}

void ctd_flowtable_free(struct ctd_flowtable *ft)
{
	struct slab *s, *next;

	if (!ft)
		return;
	for (s = ft->slabs; s; s = next) {
		next = s->next;
		free(s);
	}
	free(ft->buckets);
	free(ft);
}

void ctd_flow_key_from_event(const struct ctd_event *ev,
			     struct ctd_flow_key *ret_key)
{
	memset(ret_key, 0, sizeof(*ret_key));
	ret_key->orig = ev->tuple[CTD_DIR_ORIG];
	ret_key->id = ev->id;
	ret_key->zone = ev->zone;
	ret_key->family = ev->family;
	ret_key->proto = ev->proto;
}

static size_t bucket_of(const struct ctd_flowtable *ft,
			const struct ctd_flow_key *key)
{
	return (size_t)key_hash(key) & (ft->nbuckets - 1);
}

struct ctd_flow *ctd_flowtable_lookup(struct ctd_flowtable *ft,
				      const struct ctd_flow_key *key)
{
	size_t b = bucket_of(ft, key);
	struct ctd_flow *f;

	for (f = ft->buckets[b]; f; f = f->hnext)
		if (key_equal(&f->key, key))
			return f;
	ft->miss_key = *key;
	ft->miss_bucket = b;
	ft->miss_version = ft->version + 1;
	return NULL;
}

static int grow_pool(struct ctd_flowtable *ft)
{
	struct slab *s = malloc(sizeof(*s));
	size_t i;

	if (!s)
		return -ENOMEM;
	for (i = 0; i < FLOWS_PER_SLAB; i++) {
		s->flows[i].hnext = ft->free_list;
		ft->free_list = &s->flows[i];
	}
	s->next = ft->slabs;
	ft->slabs = s;
	ft->nslabs++;
	return 0;
}

/* A failed resize keeps the old array: the table stays correct, only
 * chains get longer. */
static void maybe_grow_buckets(struct ctd_flowtable *ft)
{
	size_t n = ft->nbuckets * 2, i;
	struct ctd_flow **nb, *f, *next;

	if (ft->count <= ft->nbuckets)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	for (i = 0; i < ft->nbuckets; i++) {
		for (f = ft->buckets[i]; f; f = next) {
			size_t b = (size_t)key_hash(&f->key) & (n - 1);

			next = f->hnext;
			f->hnext = nb[b];
			nb[b] = f;
		}
	}
	free(ft->buckets);
	ft->buckets = nb;
	ft->nbuckets = n;
}

int ctd_flowtable_insert(struct ctd_flowtable *ft,
			 const struct ctd_flow_key *key,
			 struct ctd_flow **ret_flow)
{
	struct ctd_flow *f;
	size_t b;
	int r;

	if (ft->miss_version == ft->version + 1 && key_equal(&ft->miss_key, key))
		b = ft->miss_bucket;
	else if (ctd_flowtable_lookup(ft, key))
		return -EEXIST;
	else
		b = ft->miss_bucket;
	if (ft->max_flows && ft->count >= ft->max_flows)
		return -ENOSPC;
	if (!ft->free_list && (r = grow_pool(ft)) < 0)
		return r;
	f = ft->free_list;
	ft->free_list = f->hnext;
	memset(f, 0, sizeof(*f));
	f->key = *key;
	f->hnext = ft->buckets[b];
	ft->buckets[b] = f;
	ft->count++;
	ft->version++;
	maybe_grow_buckets(ft);
	*ret_flow = f;
	return 0;
}

void ctd_flowtable_remove(struct ctd_flowtable *ft, struct ctd_flow *flow)
{
	struct ctd_flow **pp = &ft->buckets[bucket_of(ft, &flow->key)];

	while (*pp && *pp != flow)
		pp = &(*pp)->hnext;
	if (!*pp)
		return;
	*pp = flow->hnext;
	flow->hnext = ft->free_list;
	ft->free_list = flow;
	ft->count--;
	ft->version++;
}

size_t ctd_flowtable_count(const struct ctd_flowtable *ft)
{
	return ft->count;
}

size_t ctd_flowtable_buckets(const struct ctd_flowtable *ft)
{
	return ft->nbuckets;
}

size_t ctd_flowtable_memory(const struct ctd_flowtable *ft)
{
	return sizeof(*ft) + ft->nbuckets * sizeof(*ft->buckets) +
	       ft->nslabs * sizeof(struct slab);
}

const struct ctd_flow *ctd_flowtable_bucket(const struct ctd_flowtable *ft,
					    size_t i)
{
	return i < ft->nbuckets ? ft->buckets[i] : NULL;
}
