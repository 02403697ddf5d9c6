/* Tests for src/flowtable.c: what makes two flows distinct, the bound,
 * growth to a realistic table size, the promise behind the slab pool (a
 * warm table serves NEW/DESTROY churn without allocating), and the walk
 * over every flow, whole or in slices with the table changing between
 * them. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/flows/flowtable.h"

#define INITIAL_BUCKETS 1024

/* Distinct keys for i < 2^24: three bytes of i go into the source
 * address; the id and ports vary too so the hash sees every field. */
static void make_key(struct ctd_flow_key *k, uint32_t i)
{
	memset(k, 0, sizeof(*k));
	k->family = AF_INET;
	k->proto = IPPROTO_UDP;
	k->id = i * 2654435761u;
	k->orig.src[0] = 10;
	k->orig.src[1] = (uint8_t)(i >> 16);
	k->orig.src[2] = (uint8_t)(i >> 8);
	k->orig.src[3] = (uint8_t)i;
	k->orig.dst[0] = 192;
	k->orig.dst[3] = 1;
	k->orig.sport = (uint16_t)(i & 0xffff);
	k->orig.dport = 53;
}

static struct ctd_flow *must_insert(struct ctd_flowtable *ft,
				    const struct ctd_flow_key *k)
{
	struct ctd_flow *f = NULL;

	assert_int_equal(ctd_flowtable_insert(ft, k, &f), 0);
	assert_non_null(f);
	return f;
}

static void test_insert_lookup_remove(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow_key k1, k2;
	struct ctd_flow *f1, *f2;

	(void)state;
	assert_non_null(ft);
	assert_int_equal(ctd_flowtable_count(ft), 0);
	make_key(&k1, 1);
	make_key(&k2, 2);
	assert_null(ctd_flowtable_lookup(ft, &k1));
	f1 = must_insert(ft, &k1);
	assert_memory_equal(&f1->key, &k1, sizeof(k1));
	assert_ptr_equal(ctd_flowtable_lookup(ft, &k1), f1);
	assert_null(ctd_flowtable_lookup(ft, &k2));
	f2 = must_insert(ft, &k2);
	assert_ptr_not_equal(f1, f2);
	assert_int_equal(ctd_flowtable_count(ft), 2);

	ctd_flowtable_remove(ft, f1);
	assert_null(ctd_flowtable_lookup(ft, &k1));
	assert_ptr_equal(ctd_flowtable_lookup(ft, &k2), f2);
	assert_int_equal(ctd_flowtable_count(ft), 1);
	ctd_flowtable_remove(ft, f2);
	assert_null(ctd_flowtable_lookup(ft, &k2));
	assert_int_equal(ctd_flowtable_count(ft), 0);
	ctd_flowtable_free(ft);
	ctd_flowtable_free(NULL);
}

/* A second insert of a live key is refused and leaves the first alone. */
static void test_duplicate_is_eexist(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow_key k;
	struct ctd_flow *f, *g = NULL;

	(void)state;
	make_key(&k, 5);
	f = must_insert(ft, &k);
	f->mark = 77;
	assert_int_equal(ctd_flowtable_insert(ft, &k, &g), -EEXIST);
	assert_int_equal(ctd_flowtable_count(ft), 1);
	assert_ptr_equal(ctd_flowtable_lookup(ft, &k), f);
	assert_int_equal(f->mark, 77);
	ctd_flowtable_free(ft);
}

/* A recycled slot comes back zeroed: no state leaks between flows. */
static void test_insert_returns_zeroed_flow(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow_key k;
	struct ctd_flow *f;

	(void)state;
	make_key(&k, 9);
	f = must_insert(ft, &k);
	f->status = 0xffffffffu;
	f->mark = 1;
	f->flags = 0xff;
	f->first_ns = 123;
	assert_non_null(ctd_flow_cold(ft, f));
	f->cold->cnt[CTD_DIR_REPLY].bytes = 456;
	memset(f->cold->labels, 0xee, sizeof(f->cold->labels));
	ctd_flowtable_remove(ft, f);
	f = must_insert(ft, &k);
	assert_int_equal(f->status, 0);
	assert_int_equal(f->mark, 0);
	assert_int_equal(f->flags, 0);
	assert_int_equal(f->first_ns, 0);
	assert_null(f->cold);
	assert_null(f->reply);
	/* The recycled cold part comes back zeroed too. */
	assert_non_null(ctd_flow_cold(ft, f));
	assert_int_equal(f->cold->cnt[CTD_DIR_REPLY].bytes, 0);
	assert_int_equal(f->cold->labels[15], 0);
	assert_memory_equal(&f->key, &k, sizeof(k));
	ctd_flowtable_free(ft);
}

/* The reply tuple is stored apart only when it is not the original
 * reversed, and reads back the same either way. */
static void test_reply_tuple(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_tuple r, got;
	struct ctd_flow_key k;
	struct ctd_flow *f;

	(void)state;
	make_key(&k, 10);
	f = must_insert(ft, &k);
	ctd_flow_reply(f, &got);
	assert_int_equal(got.sport, 0);
	assert_int_equal(got.src[0] | got.dst[0], 0);
	memcpy(r.src, k.orig.dst, 16);
	memcpy(r.dst, k.orig.src, 16);
	r.sport = k.orig.dport;
	r.dport = k.orig.sport;
	assert_int_equal(ctd_flow_set_reply(ft, f, &r), 0);
	assert_null(f->reply);
	ctd_flow_reply(f, &got);
	assert_memory_equal(&got, &r, sizeof(r));
	r.dst[3] ^= 1;             /* SNAT: replies come to another address */
	r.dport = 40000;
	assert_int_equal(ctd_flow_set_reply(ft, f, &r), 0);
	assert_non_null(f->reply);
	ctd_flow_reply(f, &got);
	assert_memory_equal(&got, &r, sizeof(r));
	r.dst[3] ^= 1;
	r.dport = k.orig.sport;
	assert_int_equal(ctd_flow_set_reply(ft, f, &r), 0);
	assert_null(f->reply);
	ctd_flowtable_free(ft);
}

enum key_part {
	PART_ID, PART_ZONE, PART_SRC_BYTE, PART_DST_BYTE, PART_SPORT,
	PART_DPORT, PART_PROTO, PART_FAMILY, PART__COUNT
};

static void vary(struct ctd_flow_key *k, enum key_part part)
{
	switch (part) {
	case PART_ID:       k->id ^= 1; break;
	case PART_ZONE:     k->zone = 3; break;
	case PART_SRC_BYTE: k->orig.src[2] ^= 1; break;
	case PART_DST_BYTE: k->orig.dst[3] ^= 0x80; break;
	case PART_SPORT:    k->orig.sport++; break;
	case PART_DPORT:    k->orig.dport++; break;
	case PART_PROTO:    k->proto = IPPROTO_TCP; break;
	case PART_FAMILY:   k->family = AF_INET6; break;
	case PART__COUNT:   break;
	}
}

/* Keys that differ in a single field are different flows: the kernel
 * reuses tuples across zones and ids, and both must stay apart here. */
static void test_each_key_part_distinguishes(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow_key base, k[PART__COUNT];
	struct ctd_flow *fbase, *f[PART__COUNT];
	int p;

	(void)state;
	make_key(&base, 7);
	fbase = must_insert(ft, &base);
	for (p = 0; p < PART__COUNT; p++) {
		k[p] = base;
		vary(&k[p], (enum key_part)p);
		assert_memory_not_equal(&k[p], &base, sizeof(base));
		assert_null(ctd_flowtable_lookup(ft, &k[p]));
		f[p] = must_insert(ft, &k[p]);
	}
	assert_int_equal(ctd_flowtable_count(ft), PART__COUNT + 1);
	assert_ptr_equal(ctd_flowtable_lookup(ft, &base), fbase);
	for (p = 0; p < PART__COUNT; p++)
		assert_ptr_equal(ctd_flowtable_lookup(ft, &k[p]), f[p]);
	ctd_flowtable_free(ft);
}

#define KEY_FIELD(m) \
	{ #m, offsetof(struct ctd_flow_key, m), \
	  sizeof(((struct ctd_flow_key *)NULL)->m) }

static const struct {
	const char *name;
	size_t off, len;
} key_fields[] = {
	KEY_FIELD(id), KEY_FIELD(zone), KEY_FIELD(orig.src),
	KEY_FIELD(orig.dst), KEY_FIELD(orig.sport), KEY_FIELD(orig.dport),
	KEY_FIELD(proto), KEY_FIELD(family),
};

/* Key v of a field's set: all zero but one byte of the field, which is
 * byte v / 255 of it, set to v % 255 + 1. */
static void one_byte_key(struct ctd_flow_key *k, size_t field, uint32_t v)
{
	memset(k, 0, sizeof(*k));
	((unsigned char *)k)[key_fields[field].off + v / 255] =
		(unsigned char)(v % 255 + 1);
}

/* Per field, every key that is zero but for one byte of that field: 255
 * keys per byte, far more than buckets can keep apart, so they share
 * chains. Each must find its own flow: equality reads every byte of
 * every field, not just what the hash happened to separate. */
static void test_one_byte_keys_share_chains(void **state)
{
	struct ctd_flow_key k;
	struct ctd_flow **flows;
	uint32_t v, n;
	size_t fi;

	(void)state;
	for (fi = 0; fi < sizeof(key_fields) / sizeof(key_fields[0]); fi++) {
		struct ctd_flowtable *ft = ctd_flowtable_new(0);

		n = (uint32_t)key_fields[fi].len * 255;
		flows = calloc(n, sizeof(*flows));
		assert_non_null(flows);
		for (v = 0; v < n; v++) {
			one_byte_key(&k, fi, v);
			flows[v] = must_insert(ft, &k);
		}
		assert_int_equal(ctd_flowtable_count(ft), n);
		for (v = 0; v < n; v++) {
			one_byte_key(&k, fi, v);
			if (ctd_flowtable_lookup(ft, &k) != flows[v])
				fail_msg("%s key %u found another flow",
					 key_fields[fi].name, v);
		}
		free(flows);
		ctd_flowtable_free(ft);
	}
}

static void test_bound_is_enospc(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(3);
	struct ctd_flow_key k;
	struct ctd_flow *f[3], *g = NULL;
	uint32_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		make_key(&k, i);
		f[i] = must_insert(ft, &k);
	}
	make_key(&k, 3);
	assert_int_equal(ctd_flowtable_insert(ft, &k, &g), -ENOSPC);
	assert_int_equal(ctd_flowtable_count(ft), 3);
	assert_null(ctd_flowtable_lookup(ft, &k));

	ctd_flowtable_remove(ft, f[1]);
	g = must_insert(ft, &k);
	assert_ptr_equal(ctd_flowtable_lookup(ft, &k), g);
	assert_int_equal(ctd_flowtable_count(ft), 3);
	make_key(&k, 4);
	assert_int_equal(ctd_flowtable_insert(ft, &k, &g), -ENOSPC);
	ctd_flowtable_free(ft);
}

/* 200,000 live flows: all found, the bucket array grew to keep chains
 * short, and removing them all empties the table. */
static void test_growth_200k(void **state)
{
	const uint32_t n = 200000;
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow **flows = calloc(n, sizeof(*flows));
	struct ctd_flow_key k;
	uint32_t i;

	(void)state;
	assert_non_null(flows);
	assert_int_equal(ctd_flowtable_buckets(ft), INITIAL_BUCKETS);
	for (i = 0; i < n; i++) {
		make_key(&k, i);
		flows[i] = must_insert(ft, &k);
	}
	assert_int_equal(ctd_flowtable_count(ft), n);
	assert_true(ctd_flowtable_buckets(ft) > INITIAL_BUCKETS);
	assert_true(ctd_flowtable_buckets(ft) >= ctd_flowtable_count(ft));
	for (i = 0; i < n; i++) {
		make_key(&k, i);
		assert_ptr_equal(ctd_flowtable_lookup(ft, &k), flows[i]);
		assert_memory_equal(&flows[i]->key, &k, sizeof(k));
	}
	for (i = 0; i < n; i++)
		ctd_flowtable_remove(ft, flows[i]);
	assert_int_equal(ctd_flowtable_count(ft), 0);
	for (i = 0; i < n; i += 997) {
		make_key(&k, i);
		assert_null(ctd_flowtable_lookup(ft, &k));
	}
	free(flows);
	ctd_flowtable_free(ft);
}

/* A sliding window of live flows, as on a busy box: every step one new
 * flow arrives and the oldest ends. Once warm, memory must not move. */
static void churn(struct ctd_flowtable *ft, struct ctd_flow **win,
		  uint32_t window, uint32_t from, uint32_t to)
{
	struct ctd_flow_key k;
	uint32_t i;

	for (i = from; i < to; i++) {
		if (i >= window)
			ctd_flowtable_remove(ft, win[i % window]);
		make_key(&k, i);
		win[i % window] = must_insert(ft, &k);
	}
}

static void test_churn_reuses_pool(void **state)
{
	const uint32_t window = 3000;
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow **win = calloc(window, sizeof(*win));
	size_t warm;

	(void)state;
	assert_non_null(win);
	churn(ft, win, window, 0, 10000);
	warm = ctd_flowtable_memory(ft);
	assert_true(warm > 0);
	churn(ft, win, window, 10000, 400000);
	assert_int_equal(ctd_flowtable_memory(ft), warm);
	assert_int_equal(ctd_flowtable_count(ft), window);
	free(win);
	ctd_flowtable_free(ft);
}

/* The i that make_key made k from. */
static uint32_t key_index(const struct ctd_flow_key *k)
{
	return (uint32_t)k->orig.src[1] << 16 | (uint32_t)k->orig.src[2] << 8 |
	       k->orig.src[3];
}

/* Walks the whole table (in slices of `slice` buckets when non-zero)
 * and counts how often each flow came up in seen[]; returns the flows. */
static size_t walk(const struct ctd_flowtable *ft, size_t slice,
		   uint8_t *seen, uint32_t n)
{
	struct ctd_flowtable_iter it = { 0 };
	const struct ctd_flow *f;
	size_t total = 0;

	do {
		it.end = slice ? it.bucket + slice : 0;
		while ((f = ctd_flowtable_next(ft, &it))) {
			assert_true(key_index(&f->key) < n);
			seen[key_index(&f->key)]++;
			total++;
		}
		assert_null(it.chain);
	} while (it.bucket < ctd_flowtable_buckets(ft));
	return total;
}

static struct ctd_flowtable *table_of(uint32_t n, struct ctd_flow **flows)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow_key k;

	assert_non_null(ft);
	for (uint32_t i = 0; i < n; i++) {
		make_key(&k, i);
		flows[i] = must_insert(ft, &k);
	}
	return ft;
}

/* Every flow once, over a bucket array that grew 32-fold, whole and in
 * slices; and once more after every third flow was removed. */
static void test_iter_every_flow_once(void **state)
{
	const uint32_t n = 20000;
	struct ctd_flow **flows = calloc(n, sizeof(*flows));
	uint8_t *seen = calloc(n, 1);
	struct ctd_flowtable_iter it = { 0 };
	struct ctd_flowtable *ft = ctd_flowtable_new(0);

	(void)state;
	assert_non_null(flows);
	assert_non_null(seen);
	assert_null(ctd_flowtable_next(ft, &it));
	ctd_flowtable_free(ft);
	ft = table_of(n, flows);
	assert_int_equal(ctd_flowtable_buckets(ft), 32 * INITIAL_BUCKETS);
	assert_int_equal(walk(ft, 0, seen, n), n);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
	memset(seen, 0, n);
	assert_int_equal(walk(ft, 100, seen, n), n);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
	for (uint32_t i = 0; i < n; i += 3)
		ctd_flowtable_remove(ft, flows[i]);
	memset(seen, 0, n);
	assert_int_equal(walk(ft, 0, seen, n), n - (n + 2) / 3);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(seen[i], i % 3 ? 1 : 0);
	free(seen);
	free(flows);
	ctd_flowtable_free(ft);
}

/* The control socket's listing: slices of buckets with flows ending and
 * starting in between. Flows there from start to end come up exactly
 * once; the others at most once. */
static void test_iter_slices_while_changing(void **state)
{
	const uint32_t n = 4000, extra = 4000;
	struct ctd_flow **flows = calloc(n + extra, sizeof(*flows));
	uint8_t *seen = calloc(n + extra, 1);
	struct ctd_flowtable_iter it = { 0 };
	struct ctd_flowtable *ft = table_of(n, flows);
	const struct ctd_flow *f;
	struct ctd_flow_key k;
	uint32_t churned = 0;
	size_t buckets = ctd_flowtable_buckets(ft);

	(void)state;
	assert_non_null(seen);
	do {
		it.end = it.bucket + 16;
		while ((f = ctd_flowtable_next(ft, &it)))
			seen[key_index(&f->key)]++;
		/* One flow ends, one starts: the count stays, so the
		 * bucket array does not grow under the walk. */
		ctd_flowtable_remove(ft, flows[2 * churned]);
		make_key(&k, n + churned);
		flows[n + churned] = must_insert(ft, &k);
		churned++;
	} while (it.bucket < ctd_flowtable_buckets(ft));
	assert_int_equal(ctd_flowtable_buckets(ft), buckets);
	assert_int_equal(churned, buckets / 16);
	for (uint32_t i = 0; i < n + extra; i++) {
		bool stayed = i < n && (i % 2 || i / 2 >= churned);

		if (stayed)
			assert_int_equal(seen[i], 1);
		else
			assert_true(seen[i] <= 1);
	}
	free(seen);
	free(flows);
	ctd_flowtable_free(ft);
}

/* remove() unlinks by pointer, so a flow object that is not in the
 * table, even one carrying a live flow's key, changes nothing. */
static void test_remove_foreign_flow_is_harmless(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow_key k;
	struct ctd_flow *live, foreign;
	size_t mem;

	(void)state;
	make_key(&k, 11);
	live = must_insert(ft, &k);
	mem = ctd_flowtable_memory(ft);

	memset(&foreign, 0, sizeof(foreign));
	foreign.key = k;
	ctd_flowtable_remove(ft, &foreign);
	make_key(&foreign.key, 12);
	ctd_flowtable_remove(ft, &foreign);

	assert_int_equal(ctd_flowtable_count(ft), 1);
	assert_ptr_equal(ctd_flowtable_lookup(ft, &k), live);
	assert_int_equal(ctd_flowtable_memory(ft), mem);
	/* The foreign object must not have joined the free list. */
	make_key(&k, 13);
	assert_ptr_not_equal(must_insert(ft, &k), &foreign);
	ctd_flowtable_free(ft);
}

/* The key takes the event's id, zone, family, protocol and original
 * tuple, zone and namespace, and nothing else: two events of one flow
 * that differ in reply tuple, status, mark or counters map to the same
 * key; the same conntrack in another namespace does not. */
static void test_key_from_event(void **state)
{
	struct ctd_event ev, ev2;
	struct ctd_flow_key k, k2, want;
	size_t i;

	(void)state;
	memset(&ev, 0xab, sizeof(ev));
	ev.family = AF_INET6;
	ev.proto = IPPROTO_TCP;
	ev.id = 42;
	ev.zone = 9;
	ev.nsid = 7;
	for (i = 0; i < 16; i++) {
		ev.tuple[CTD_DIR_ORIG].src[i] = (uint8_t)i;
		ev.tuple[CTD_DIR_ORIG].dst[i] = (uint8_t)(0x80 + i);
	}
	ev.tuple[CTD_DIR_ORIG].sport = 1234;
	ev.tuple[CTD_DIR_ORIG].dport = 443;
	ctd_flow_key_from_event(&ev, &k);

	memset(&want, 0, sizeof(want));
	want.orig = ev.tuple[CTD_DIR_ORIG];
	want.id = 42;
	want.zone = 9;
	want.family = AF_INET6;
	want.proto = IPPROTO_TCP;
	want.nsid = 7;
	assert_memory_equal(&k, &want, sizeof(want));

	ev2 = ev;
	ev2.type = CTD_EV_DESTROY;
	ev2.have ^= 0xffff;
	ev2.status ^= 1;
	ev2.mark ^= 1;
	ev2.tuple[CTD_DIR_REPLY].sport ^= 1;
	ev2.cnt[CTD_DIR_ORIG].bytes ^= 1;
	ctd_flow_key_from_event(&ev2, &k2);
	assert_memory_equal(&k2, &k, sizeof(k));

	ev2.nsid = CTD_NSID_SELF;
	ctd_flow_key_from_event(&ev2, &k2);
	assert_memory_not_equal(&k2, &k, sizeof(k));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_lookup_remove),
		cmocka_unit_test(test_duplicate_is_eexist),
		cmocka_unit_test(test_insert_returns_zeroed_flow),
		cmocka_unit_test(test_reply_tuple),
		cmocka_unit_test(test_each_key_part_distinguishes),
		cmocka_unit_test(test_one_byte_keys_share_chains),
		cmocka_unit_test(test_bound_is_enospc),
		cmocka_unit_test(test_growth_200k),
		cmocka_unit_test(test_iter_every_flow_once),
		cmocka_unit_test(test_iter_slices_while_changing),
		cmocka_unit_test(test_churn_reuses_pool),
		cmocka_unit_test(test_remove_foreign_flow_is_harmless),
		cmocka_unit_test(test_key_from_event),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
