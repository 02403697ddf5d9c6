/* Tests for src/flowtable.c: keys, bounds, growth, and that a warm pool
 * serves churn without allocating. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/flowtable.h"

static void make_key(struct ctd_flow_key *k, uint32_t i)
{
	memset(k, 0, sizeof(*k));
	k->family = AF_INET;
	k->proto = IPPROTO_UDP;
	k->id = i * 2654435761u;
	k->orig.src[0] = 10;
	memcpy(&k->orig.src[1], &i, 3);
	k->orig.sport = (uint16_t)(i & 0xffff);
	k->orig.dport = 53;
}

static void test_insert_lookup_remove(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow_key k;
	struct ctd_flow *f, *g;

	(void)state;
	make_key(&k, 1);
	assert_null(ctd_flowtable_lookup(ft, &k));
	assert_int_equal(ctd_flowtable_insert(ft, &k, &f), 0);
	assert_memory_equal(&f->key, &k, sizeof(k));
	assert_ptr_equal(ctd_flowtable_lookup(ft, &k), f);
	assert_int_equal(ctd_flowtable_insert(ft, &k, &g), -EEXIST);
	assert_int_equal(ctd_flowtable_count(ft), 1);
	ctd_flowtable_remove(ft, f);
	assert_null(ctd_flowtable_lookup(ft, &k));
	assert_int_equal(ctd_flowtable_count(ft), 0);
	ctd_flowtable_free(ft);
	ctd_flowtable_free(NULL);
}

/* Each part of the key makes a different flow. */
static void test_key_parts(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow_key base, k;
	struct ctd_flow *f;
	int i;

	(void)state;
	make_key(&base, 7);
	assert_int_equal(ctd_flowtable_insert(ft, &base, &f), 0);
	for (i = 0; i < 7; i++) {
		k = base;
		switch (i) {
		case 0: k.id++; break;
		case 1: k.zone = 3; break;
		case 2: k.orig.dst[15] = 1; break;
		case 3: k.orig.sport++; break;
		case 4: k.proto = IPPROTO_TCP; break;
		case 5: k.family = AF_INET6; break;
		case 6: k.orig.dport++; break;
		}
		assert_null(ctd_flowtable_lookup(ft, &k));
		assert_int_equal(ctd_flowtable_insert(ft, &k, &f), 0);
	}
	assert_int_equal(ctd_flowtable_count(ft), 8);
	ctd_flowtable_free(ft);
}

static void test_bound(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(3);
	struct ctd_flow_key k;
	struct ctd_flow *f[4];
	uint32_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		make_key(&k, i);
		assert_int_equal(ctd_flowtable_insert(ft, &k, &f[i]), 0);
	}
	make_key(&k, 3);
	assert_int_equal(ctd_flowtable_insert(ft, &k, &f[3]), -ENOSPC);
	ctd_flowtable_remove(ft, f[1]);
	assert_int_equal(ctd_flowtable_insert(ft, &k, &f[3]), 0);
	ctd_flowtable_free(ft);
}

static void test_growth(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow_key k;
	struct ctd_flow *f;
	uint32_t i, n = 200000;

	(void)state;
	for (i = 0; i < n; i++) {
		make_key(&k, i);
		assert_int_equal(ctd_flowtable_insert(ft, &k, &f), 0);
	}
	assert_true(ctd_flowtable_buckets(ft) >= n);
	for (i = 0; i < n; i++) {
		make_key(&k, i);
		f = ctd_flowtable_lookup(ft, &k);
		assert_non_null(f);
		ctd_flowtable_remove(ft, f);
	}
	assert_int_equal(ctd_flowtable_count(ft), 0);
	ctd_flowtable_free(ft);
}

/* After warm-up, churn reuses pool slots: memory stays flat. */
static void test_churn_reuses_pool(void **state)
{
	struct ctd_flowtable *ft = ctd_flowtable_new(0);
	struct ctd_flow_key k;
	struct ctd_flow *f;
	size_t warm;
	uint32_t i;

	(void)state;
	for (i = 0; i < 5000; i++) {
		make_key(&k, i);
		assert_int_equal(ctd_flowtable_insert(ft, &k, &f), 0);
		ctd_flowtable_remove(ft, f);
	}
	warm = ctd_flowtable_memory(ft);
	for (i = 5000; i < 500000; i++) {
		make_key(&k, i);
		assert_int_equal(ctd_flowtable_insert(ft, &k, &f), 0);
		ctd_flowtable_remove(ft, f);
	}
	assert_int_equal(ctd_flowtable_memory(ft), warm);
	ctd_flowtable_free(ft);
}

static void test_key_from_event(void **state)
{
	struct ctd_event ev;
	struct ctd_flow_key k;

	(void)state;
	memset(&ev, 0xab, sizeof(ev));
	ev.family = AF_INET6;
	ev.proto = IPPROTO_TCP;
	ev.id = 42;
	ev.zone = 9;
	ctd_flow_key_from_event(&ev, &k);
	assert_int_equal(k.id, 42);
	assert_int_equal(k.zone, 9);
	assert_int_equal(k.family, AF_INET6);
	assert_int_equal(k.proto, IPPROTO_TCP);
	assert_memory_equal(&k.orig, &ev.tuple[CTD_DIR_ORIG], sizeof(k.orig));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_lookup_remove),
		cmocka_unit_test(test_key_parts),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_churn_reuses_pool),
		cmocka_unit_test(test_key_from_event),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
