/* Tests for src/base/ring.c: growth from nothing, keeping the order of a
 * ring that wrapped, an empty ring, and many doublings in a row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "ctd/base/ring.h"

struct ring {
	uint64_t *items;
	size_t cap, head, n;
};

static int grow(struct ring *r)
{
	return ctd_ring_grow((void **)&r->items, sizeof(*r->items), &r->cap,
			     &r->head, r->n);
}

static void push(struct ring *r, uint64_t v)
{
	if (r->n == r->cap)
		assert_int_equal(grow(r), 0);
	r->items[(r->head + r->n) % r->cap] = v;
	r->n++;
}

static uint64_t pop(struct ring *r)
{
	uint64_t v = r->items[r->head];

	r->head = (r->head + 1) % r->cap;
	r->n--;
	return v;
}

static void test_first_growth(void **state)
{
	struct ring r = { 0 };

	(void)state;
	assert_int_equal(grow(&r), 0);
	assert_int_equal(r.cap, CTD_RING_FIRST);
	assert_int_equal(r.head, 0);
	assert_non_null(r.items);
	free(r.items);
}

/* Half popped, the rest wrapped past the end: growth keeps the order. */
static void test_wrapped_order(void **state)
{
	struct ring r = { 0 };
	uint64_t next = 0, want = 0;

	(void)state;
	for (; next < CTD_RING_FIRST; next++)
		push(&r, next);
	for (int i = 0; i < 100; i++)
		assert_int_equal(pop(&r), want++);
	for (int i = 0; i < 100; i++)
		push(&r, next++);
	assert_int_equal(r.cap, CTD_RING_FIRST);
	push(&r, next++);                 /* full: doubles */
	assert_int_equal(r.cap, 2 * CTD_RING_FIRST);
	assert_int_equal(r.head, 0);
	while (r.n)
		assert_int_equal(pop(&r), want++);
	assert_int_equal(want, next);
	free(r.items);
}

/* Nothing queued (head anywhere): a bigger empty ring, head at 0. */
static void test_empty_growth(void **state)
{
	struct ring r = { 0 };

	(void)state;
	push(&r, 1);
	pop(&r);
	assert_int_equal(grow(&r), 0);
	assert_int_equal(r.cap, 2 * CTD_RING_FIRST);
	assert_int_equal(r.head, 0);
	assert_int_equal(r.n, 0);
	free(r.items);
}

static void test_many_doublings(void **state)
{
	struct ring r = { 0 };
	uint64_t want = 0;

	(void)state;
	for (uint64_t v = 0; v < 100000; v++) {
		push(&r, v);
		if (v % 3 == 0)
			assert_int_equal(pop(&r), want++);
	}
	while (r.n)
		assert_int_equal(pop(&r), want++);
	assert_int_equal(want, 100000);
	free(r.items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_growth),
		cmocka_unit_test(test_wrapped_order),
		cmocka_unit_test(test_empty_growth),
		cmocka_unit_test(test_many_doublings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
