/* Tests for src/delivery/retry.c with an injected clock and random source: every
 * re-send falls in [now, now + grace), records come out in due order,
 * a refused head is rescheduled with its tag, the bound is honoured, and
 * records are copied (the caller's buffer may change after add). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/base/membudget.h"
#include "ctd/delivery/retry.h"
#include "ctd/flows/record.h"

struct rng {
	uint32_t next[16];
	size_t i, n;
	uint64_t lcg;
};

/* Scripted values first, then a deterministic LCG. */
static uint32_t fake_random(void *arg)
{
	struct rng *r = arg;

	if (r->i < r->n)
		return r->next[r->i++];
	r->lcg = r->lcg * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(r->lcg >> 33);
}

static struct ctd_retry *make(struct rng *r, uint32_t grace_ms, size_t max)
{
	struct ctd_retry_cfg cfg = { grace_ms, max, fake_random, r, NULL };
	struct ctd_retry *d = ctd_retry_new(&cfg);

	assert_non_null(d);
	return d;
}

static struct ctd_record rec_with_id(uint32_t id)
{
	struct ctd_record rec;

	memset(&rec, 0, sizeof(rec));
	rec.id = id;
	return rec;
}

static void test_due_is_random_share_of_grace(void **state)
{
	struct rng r = { { 0, 14999, 15000, 7500 }, 0, 4, 1 };
	struct ctd_retry *d = make(&r, 15000, 100);
	struct ctd_record rec = rec_with_id(1);
	int64_t now = 1000000;

	(void)state;
	/* random % grace: 0 -> now, 14999 -> last ms, 15000 wraps to 0 */
	assert_int_equal(ctd_retry_add(d, &rec, 0, now), 0);
	assert_int_equal(ctd_retry_next_due(d), now);
	ctd_retry_pop(d);
	assert_int_equal(ctd_retry_add(d, &rec, 0, now), 0);
	assert_int_equal(ctd_retry_next_due(d), now + 14999000);
	ctd_retry_pop(d);
	assert_int_equal(ctd_retry_add(d, &rec, 0, now), 0);
	assert_int_equal(ctd_retry_next_due(d), now);
	ctd_retry_pop(d);
	assert_int_equal(ctd_retry_add(d, &rec, 0, now), 0);
	assert_int_equal(ctd_retry_next_due(d), now + 7500000);
	ctd_retry_free(d);
}

static void test_many_within_window_in_due_order(void **state)
{
	struct rng r = { { 0 }, 0, 0, 42 };
	struct ctd_retry *d = make(&r, 15000, 10000);
	int64_t now = 5000000, last = INT64_MIN;
	uint32_t seen[2000] = { 0 };
	const struct ctd_record *head;

	(void)state;
	for (uint32_t i = 0; i < 2000; i++) {
		struct ctd_record rec = rec_with_id(i);

		assert_int_equal(ctd_retry_add(d, &rec, 0, now), 0);
	}
	assert_int_equal(ctd_retry_count(d), 2000);
	while ((head = ctd_retry_head(d))) {
		int64_t due = ctd_retry_next_due(d);

		assert_true(due >= now && due < now + 15000000);
		assert_true(due >= last);
		last = due;
		assert_true(head->id < 2000);
		seen[head->id]++;
		ctd_retry_pop(d);
	}
	for (uint32_t i = 0; i < 2000; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(ctd_retry_next_due(d), INT64_MAX);
	ctd_retry_free(d);
}

static void test_defer_reschedules_head(void **state)
{
	struct rng r = { { 100, 200, 5000 }, 0, 3, 1 };
	struct ctd_retry *d = make(&r, 15000, 10);
	struct ctd_record a = rec_with_id(1), b = rec_with_id(2);

	(void)state;
	assert_int_equal(ctd_retry_add(d, &a, 41, 0), 0);
	assert_int_equal(ctd_retry_add(d, &b, 0, 0), 0);
	assert_int_equal(ctd_retry_head(d)->id, 1);
	assert_int_equal(ctd_retry_head_tag(d), 41);
	/* Refused at t = 1 s: due again at 1 s + 5 s, behind b (0.2 s). */
	ctd_retry_defer(d, 1000000);
	assert_int_equal(ctd_retry_head(d)->id, 2);
	assert_int_equal(ctd_retry_head_tag(d), 0);
	assert_int_equal(ctd_retry_next_due(d), 200000);
	ctd_retry_pop(d);
	assert_int_equal(ctd_retry_head(d)->id, 1);
	assert_int_equal(ctd_retry_head_tag(d), 41);
	assert_int_equal(ctd_retry_next_due(d), 6000000);
	ctd_retry_free(d);
}

static void test_bound_and_copy(void **state)
{
	struct rng r = { { 0 }, 0, 0, 7 };
	struct ctd_retry *d = make(&r, 1000, 3);
	struct ctd_record rec = rec_with_id(9);

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(ctd_retry_add(d, &rec, 0, 10), 0);
	assert_int_equal(ctd_retry_add(d, &rec, 0, 10), -ENOSPC);
	assert_int_equal(ctd_retry_count(d), 3);
	rec.id = 77;   /* the list holds its own copies */
	assert_int_equal(ctd_retry_head(d)->id, 9);
	ctd_retry_pop(d);
	assert_int_equal(ctd_retry_add(d, &rec, 0, 10), 0);
	assert_int_equal(ctd_retry_count(d), 3);
	ctd_retry_free(d);
}

static void test_empty(void **state)
{
	struct rng r = { { 0 }, 0, 0, 3 };
	struct ctd_retry *d = make(&r, 1000, 0);
	struct ctd_record rec = rec_with_id(1);

	(void)state;
	assert_null(ctd_retry_head(d));
	ctd_retry_pop(d);
	ctd_retry_defer(d, 0);
	assert_int_equal(ctd_retry_add(d, &rec, 0, 0), -ENOSPC);
	ctd_retry_free(d);
	ctd_retry_free(NULL);
}

/* Two lists share one budget: the pool grows only as far as the budget
 * has room (-ENOBUFS past it, not -ENOSPC), by capacity in bytes, and an
 * emptied list gives all of it back to the other. */
static void test_shared_budget(void **state)
{
	struct rng r;
	struct ctd_membudget b = { 0, 0, 0 };
	struct ctd_retry_cfg cfg = { 1000, 1000, fake_random, &r, &b };
	struct ctd_retry *x, *y;
	struct ctd_record rec;
	size_t n = 0;

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(&rec, 0, sizeof(rec));
	x = ctd_retry_new(&cfg);
	y = ctd_retry_new(&cfg);
	assert_int_equal(ctd_retry_add(x, &rec, 1, 0), 0);
	/* One list of 64 slots: the budget is three of them. */
	b.max = 3 * ctd_retry_bytes(x);
	while (ctd_retry_add(x, &rec, 1, 0) == 0)
		n++;
	assert_int_equal(ctd_retry_add(x, &rec, 1, 0), -ENOBUFS);
	assert_int_equal(n + 1, ctd_retry_count(x));
	assert_true(b.held <= b.max);
	assert_int_equal(b.held, ctd_retry_bytes(x));
	assert_int_equal(ctd_retry_add(y, &rec, 1, 0), -ENOBUFS);
	while (ctd_retry_count(x))
		ctd_retry_pop(x);
	assert_int_equal(b.held, 0);
	assert_int_equal(ctd_retry_add(y, &rec, 1, 0), 0);
	assert_int_equal(b.held, ctd_retry_bytes(y));
	ctd_retry_free(x);
	ctd_retry_free(y);
	assert_int_equal(b.held, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due_is_random_share_of_grace),
		cmocka_unit_test(test_many_within_window_in_due_order),
		cmocka_unit_test(test_defer_reschedules_head),
		cmocka_unit_test(test_bound_and_copy),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_shared_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
