/* flowtable: chained hash table of flows over a slab pool.
 *
 * Flows are carved from slabs (growing from 256 flows to a huge page's
 * worth, so a small table stays small) and recycled through a
 * free list threaded on the hash link, so a warm table serves NEW/DESTROY
 * churn without touching malloc. The link sits in a slot just before the
 * flow, where no other module can reach it: a chain walk reads link and
 * key from the same cache lines as when the link was the flow's first
 * field. The bucket array doubles when the load passes
 * one flow per bucket; that rehash is the only O(n) step and happens
 * log2(n) times over the table's life.
 *
 * The key includes the kernel's conntrack id, which the kernel derives
 * with a keyed hash, so traffic cannot steer flows into one bucket; a
 * fixed hash seed is therefore enough. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ctd/flows/flowtable.h"

/* A slab fills one 2 MiB huge page where the kernel gives them: every
 * event looks up a random flow, and with 4 KiB pages most lookups also
 * missed the TLB (a fifth of ctd's time under a flow storm). */
#define HUGE_PAGE (2u << 20)
#define FLOWS_PER_SLAB ((HUGE_PAGE - 64) / sizeof(struct ctd_flow_slot))
#define FIRST_SLAB 256
#define MIN_BUCKETS 1024
#define REHASH_AHEAD 8              /* buckets a rehash fetches ahead */

struct ctd_flow_slot {
	struct ctd_flow_slot *hnext;   /* hash chain; free list when unused */
	struct ctd_flow flow;
};

_Static_assert(sizeof(struct ctd_flow_slot) <= 128,
	       "a flow and its link fill at most two cache lines");

struct slab {
	struct slab *next;
	struct ctd_flow_slot flows[];
};

/* Small parts only some flows have (reply tuples, cold parts): slabs
 * carved into objects and recycled through a free list, as flows are. */
#define PART_SLAB 65536

struct part_pool {
	void *free;
	size_t size;                /* object size, a multiple of 8 */
	void *slabs;                /* chained through their first word */
	size_t nslabs;
};

struct ctd_flowtable {
	struct ctd_flow_slot **buckets;
	size_t nbuckets;            /* a power of two */
	size_t count;
	size_t max_flows;
	size_t nslabs;
	struct slab *slabs;
	size_t slab_bytes;
	struct ctd_flow_slot *free_list;
	struct part_pool replies, colds;
	/* The last key a lookup did not find, and where it would go: the
	 * insert that usually follows skips a second hash and walk. Valid
	 * while the table is unchanged (version). */
	struct ctd_flow_key miss_key;
	size_t miss_bucket;
	uint64_t miss_version;
	/* The last flow a lookup found and its bucket: the remove that
	 * often follows (a DESTROY) skips the hash. Valid while unchanged. */
	const struct ctd_flow *hit;
	size_t hit_bucket;
	uint64_t hit_version;
	uint64_t version;           /* bumped by every insert and remove */
};

_Static_assert(sizeof(struct ctd_flow_key) == 48,
	       "flow keys are hashed and compared as bytes: no padding");

static void *part_get(struct part_pool *p)
{
	void *obj;

	if (!p->free) {
		char *s = malloc(PART_SLAB);

		if (!s)
			return NULL;
		*(void **)s = p->slabs;
		p->slabs = s;
		p->nslabs++;
		for (size_t off = 8; off + p->size <= PART_SLAB; off += p->size) {
			*(void **)(s + off) = p->free;
			p->free = s + off;
		}
	}
	obj = p->free;
	p->free = *(void **)obj;
	memset(obj, 0, p->size);
	return obj;
}

static void part_put(struct part_pool *p, void *obj)
{
	*(void **)obj = p->free;
	p->free = obj;
}

static void part_free_all(struct part_pool *p)
{
	while (p->slabs) {
		void *next = *(void **)p->slabs;

		free(p->slabs);
		p->slabs = next;
	}
}

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
	size_t i;

	/* One multiply per word and one full mix at the end: the words
	 * are tuple bytes, so the final avalanche is what spreads them. */
	for (i = 0; i + 8 <= sizeof(*key); i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return mix64(h);
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
	ft->replies.size = (sizeof(struct ctd_tuple) + 7) & ~(size_t)7;
	ft->colds.size = (sizeof(struct ctd_flow_cold) + 7) & ~(size_t)7;
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
	part_free_all(&ft->replies);
	part_free_all(&ft->colds);
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
	ret_key->nsid = ev->nsid;
}

static size_t bucket_of(const struct ctd_flowtable *ft,
			const struct ctd_flow_key *key)
{
	return (size_t)key_hash(key) & (ft->nbuckets - 1);
}

uint64_t ctd_flowtable_hash(const struct ctd_flow_key *key)
{
	return key_hash(key);
}

struct ctd_flow *ctd_flowtable_lookup_hashed(struct ctd_flowtable *ft,
					     const struct ctd_flow_key *key,
					     uint64_t hash)
{
	size_t b = (size_t)hash & (ft->nbuckets - 1);
	struct ctd_flow_slot *s;

	for (s = ft->buckets[b]; s; s = s->hnext) {
		if (key_equal(&s->flow.key, key)) {
			ft->hit = &s->flow;
			ft->hit_bucket = b;
			ft->hit_version = ft->version + 1;
			return &s->flow;
		}
	}
	ft->miss_key = *key;
	ft->miss_bucket = b;
	ft->miss_version = ft->version + 1;
	return NULL;
}

struct ctd_flow *ctd_flowtable_lookup(struct ctd_flowtable *ft,
				      const struct ctd_flow_key *key)
{
	return ctd_flowtable_lookup_hashed(ft, key, key_hash(key));
}

/* Zeroed memory, on huge pages when it is big enough for them. */
static void *alloc_big(size_t size)
{
	void *p;

	if (size < HUGE_PAGE)
		return calloc(1, size);
	size = (size + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
	if (posix_memalign(&p, HUGE_PAGE, size) != 0)
		return NULL;
	/* Advice only: without transparent huge pages it changes nothing. */
	(void)madvise(p, size, MADV_HUGEPAGE);
	memset(p, 0, size);
	return p;
}

static int grow_pool(struct ctd_flowtable *ft)
{
	size_t n = ft->nslabs < 7 ? (size_t)FIRST_SLAB << ft->nslabs :
		   FLOWS_PER_SLAB, i, bytes;
	struct slab *s;

	if (n > FLOWS_PER_SLAB)
		n = FLOWS_PER_SLAB;
	bytes = sizeof(*s) + n * sizeof(s->flows[0]);
	/* A full slab asks for the whole huge page: its flows and header
	 * come to a few bytes less, which alloc_big would put on 4 KiB
	 * pages (a fault per 32 flows, a tenth of ctd's CPU in a storm of
	 * new flows on a paravirtualized guest). */
	if (n == FLOWS_PER_SLAB)
		bytes = HUGE_PAGE;
	s = alloc_big(bytes);
	if (!s)
		return -ENOMEM;
	ft->slab_bytes += bytes;
	for (i = 0; i < n; i++) {
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
	struct ctd_flow_slot **nb, *f, *next;

	if (ft->count <= ft->nbuckets)
		return;
	nb = alloc_big(n * sizeof(*nb));
	if (!nb)
		return;
	for (i = 0; i < ft->nbuckets; i++) {
		/* Chains are short and their flows lie anywhere in the pool:
		 * without fetching ahead every key read waits for memory in
		 * turn (a twentieth of ctd's CPU while a storm's remembered
		 * ends fill the table). */
		if (i + REHASH_AHEAD < ft->nbuckets &&
		    ft->buckets[i + REHASH_AHEAD])
			__builtin_prefetch(ft->buckets[i + REHASH_AHEAD]);
		for (f = ft->buckets[i]; f; f = next) {
			size_t b = (size_t)key_hash(&f->flow.key) & (n - 1);

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
	struct ctd_flow_slot *s;
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
	s = ft->free_list;
	ft->free_list = s->hnext;
	memset(&s->flow, 0, sizeof(s->flow));
	s->flow.key = *key;
	s->hnext = ft->buckets[b];
	ft->buckets[b] = s;
	ft->count++;
	ft->version++;
	maybe_grow_buckets(ft);
	*ret_flow = &s->flow;
	return 0;
}

void ctd_flowtable_remove(struct ctd_flowtable *ft, struct ctd_flow *flow)
{
	size_t b = ft->hit == flow && ft->hit_version == ft->version + 1 ?
		   ft->hit_bucket : bucket_of(ft, &flow->key);
	struct ctd_flow_slot **pp = &ft->buckets[b], *s;

	/* Compared as flows: a pointer that is not the table's finds none. */
	while (*pp && &(*pp)->flow != flow)
		pp = &(*pp)->hnext;
	if (!(s = *pp))
		return;
	*pp = s->hnext;
	ctd_flow_strip(ft, flow);
	s->hnext = ft->free_list;
	ft->free_list = s;
	ft->count--;
	ft->version++;
}

static bool is_reverse(const struct ctd_tuple *o, const struct ctd_tuple *r)
{
	return o->sport == r->dport && o->dport == r->sport &&
	       memcmp(o->src, r->dst, sizeof(o->src)) == 0 &&
	       memcmp(o->dst, r->src, sizeof(o->dst)) == 0;
}

int ctd_flow_set_reply(struct ctd_flowtable *ft, struct ctd_flow *f,
		       const struct ctd_tuple *reply)
{
	if (is_reverse(&f->key.orig, reply)) {
		if (f->reply)
			part_put(&ft->replies, f->reply);
		f->reply = NULL;
	} else {
		if (!f->reply && !(f->reply = part_get(&ft->replies))) {
			f->more &= (uint8_t)~CTD_FLOW_REPLY_KNOWN;
			return -ENOMEM;
		}
		*f->reply = *reply;
	}
	f->more |= CTD_FLOW_REPLY_KNOWN;
	return 0;
}

void ctd_flow_reply(const struct ctd_flow *f, struct ctd_tuple *ret)
{
	const struct ctd_tuple *o = &f->key.orig;

	if (f->reply) {
		*ret = *f->reply;
	} else if (f->more & CTD_FLOW_REPLY_KNOWN) {
		memcpy(ret->src, o->dst, sizeof(ret->src));
		memcpy(ret->dst, o->src, sizeof(ret->dst));
		ret->sport = o->dport;
		ret->dport = o->sport;
	} else {
		memset(ret, 0, sizeof(*ret));
	}
}

struct ctd_flow_cold *ctd_flow_cold(struct ctd_flowtable *ft,
				    struct ctd_flow *f)
{
	if (!f->cold)
		f->cold = part_get(&ft->colds);
	return f->cold;
}

void ctd_flow_strip(struct ctd_flowtable *ft, struct ctd_flow *f)
{
	if (f->reply)
		part_put(&ft->replies, f->reply);
	if (f->cold)
		part_put(&ft->colds, f->cold);
	f->reply = NULL;
	f->cold = NULL;
	f->more = 0;
}

void ctd_flowtable_prefetch(const struct ctd_flowtable *ft, uint64_t hash,
			    int stage)
{
	struct ctd_flow_slot *const *b = &ft->buckets[hash & (ft->nbuckets - 1)];

	if (stage == 0)
		__builtin_prefetch(b);
	else if (*b)
		__builtin_prefetch(*b);
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
	       ft->slab_bytes +
	       (ft->replies.nslabs + ft->colds.nslabs) * PART_SLAB;
}

const struct ctd_flow *ctd_flowtable_next(const struct ctd_flowtable *ft,
					  struct ctd_flowtable_iter *it)
{
	size_t end = it->end && it->end < ft->nbuckets ? it->end : ft->nbuckets;
	const struct ctd_flow_slot *s = it->chain;

	while (!s) {
		if (it->bucket >= end)
			return NULL;
		s = ft->buckets[it->bucket++];
	}
	it->chain = s->hnext;
	return &s->flow;
}
