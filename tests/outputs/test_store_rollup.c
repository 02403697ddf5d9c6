/* Tests for src/outputs/store_rollup.c: rows between the same hosts in
 * the same minute share cells; a row adds one flow to one cell per span
 * and kind kept (none for pairs), with both directions' packets and
 * bytes, in buckets aligned to the span; keys per kind; sources and
 * destinations of an hour not folded yet get minute cells only; a full
 * table refuses a row whole; clear empties it for reuse. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/flows/record.h"
#include "ctd/outputs/store_rollup.h"

#define T0_MS 1796000000000ull   /* a day's start + 800 s */
#define ALL UINT64_MAX           /* every hour folded: every cell added */

static struct ctd_record rec(uint8_t src, uint16_t dport, uint64_t end_ms)
{
	struct ctd_record r = { .family = AF_INET, .proto = IPPROTO_TCP };

	memcpy(r.tuple[0].src, (uint8_t[]){ 10, 0, 0, src }, 4);
	memcpy(r.tuple[0].dst, (uint8_t[]){ 10, 9, 0, 1 }, 4);
	r.tuple[0].dport = dport;
	r.cnt[0] = (struct ctd_counters){ 3, 300 };
	r.cnt[1] = (struct ctd_counters){ 2, 2000 };
	r.end_ns = end_ms * 1000000;
	return r;
}

static const struct ctd_rollup_cell *find(const struct ctd_rollup *r,
					  unsigned span, unsigned kind,
					  const uint8_t *key, size_t klen)
{
	const struct ctd_rollup_cell *c;
	size_t pos = 0;

	while ((c = ctd_rollup_next(r, &pos)))
		if (c->span == span && c->kind == kind && c->klen == klen &&
		    (klen == 0 || memcmp(c->key, key, klen) == 0))
			return c;
	return NULL;
}

static void test_cells_shared_and_aligned(void **state)
{
	struct ctd_rollup *r;
	struct ctd_record a = rec(1, 443, T0_MS), b = rec(1, 443, T0_MS + 5);
	const struct ctd_rollup_cell *c;

	(void)state;
	assert_int_equal(ctd_rollup_new(0, &r), 0);
	assert_true(ctd_rollup_add(r, &a, "", ALL));
	assert_int_equal(ctd_rollup_count(r), CTD_ROLLUP_PER_ROW);
	assert_true(ctd_rollup_add(r, &b, "", ALL));
	assert_int_equal(ctd_rollup_count(r), CTD_ROLLUP_PER_ROW);
	c = find(r, CTD_SPAN_HOUR, CTD_ROLLUP_PORT,
		 (uint8_t[]){ IPPROTO_TCP, 443 >> 8, 443 & 255 }, 3);
	assert_non_null(c);
	assert_int_equal(c->flows, 2);
	assert_int_equal(c->packets, 10);
	assert_int_equal(c->bytes, 4600);
	assert_int_equal(c->bucket_ms, T0_MS - T0_MS % 3600000);
	c = find(r, CTD_SPAN_DAY, CTD_ROLLUP_SRC, (uint8_t[]){ 10, 0, 0, 1 }, 4);
	assert_non_null(c);
	assert_int_equal(c->bucket_ms, T0_MS - T0_MS % 86400000);
	assert_null(find(r, CTD_SPAN_DAY, CTD_ROLLUP_PAIR,
			 (uint8_t[]){ 10, 0, 0, 1, 10, 9, 0, 1 }, 8));
	assert_non_null(find(r, CTD_SPAN_MINUTE, CTD_ROLLUP_NETNS, NULL, 0));
	ctd_rollup_free(r);
}

static void test_other_minute_other_cells(void **state)
{
	struct ctd_rollup *r;
	struct ctd_record a = rec(1, 53, T0_MS), b = rec(2, 53, T0_MS + 60000);

	(void)state;
	assert_int_equal(ctd_rollup_new(0, &r), 0);
	assert_true(ctd_rollup_add(r, &a, "blue", ALL));
	assert_true(ctd_rollup_add(r, &b, "blue", ALL));
	/* New: b's minute for each kind kept; src at hour and day. */
	assert_int_equal(ctd_rollup_count(r), CTD_ROLLUP_PER_ROW + 6);
	assert_int_equal(find(r, CTD_SPAN_DAY, CTD_ROLLUP_NETNS,
			      (const uint8_t *)"blue", 4)->flows, 2);
	ctd_rollup_free(r);
}

/* A row in an hour not folded yet: its source and destination only in
 * minute cells (the fold makes the hour's and adds to the day's); one
 * ending before the mark (late) in every span, as folded cells need. */
static void test_unfolded_hour_minutes_only(void **state)
{
	uint64_t mark = T0_MS - T0_MS % 3600000;
	struct ctd_record a = rec(1, 53, mark), late = rec(2, 53, mark - 1);
	uint8_t src[4] = { 10, 0, 0, 1 };
	struct ctd_rollup *r;

	(void)state;
	assert_true(ctd_rollup_folded[CTD_ROLLUP_SRC]);
	assert_true(ctd_rollup_folded[CTD_ROLLUP_DST]);
	assert_false(ctd_rollup_folded[CTD_ROLLUP_PORT]);
	assert_int_equal(ctd_rollup_new(0, &r), 0);
	assert_true(ctd_rollup_add(r, &a, "", mark));
	assert_int_equal(ctd_rollup_count(r), CTD_ROLLUP_PER_ROW - 4);
	assert_non_null(find(r, CTD_SPAN_MINUTE, CTD_ROLLUP_SRC, src, 4));
	assert_null(find(r, CTD_SPAN_HOUR, CTD_ROLLUP_SRC, src, 4));
	assert_null(find(r, CTD_SPAN_DAY, CTD_ROLLUP_DST,
			 (uint8_t[]){ 10, 9, 0, 1 }, 4));
	assert_non_null(find(r, CTD_SPAN_DAY, CTD_ROLLUP_PORT,
			     (uint8_t[]){ IPPROTO_TCP, 0, 53 }, 3));
	ctd_rollup_clear(r);
	assert_true(ctd_rollup_add(r, &late, "", mark));
	assert_int_equal(ctd_rollup_count(r), CTD_ROLLUP_PER_ROW);
	assert_non_null(find(r, CTD_SPAN_HOUR, CTD_ROLLUP_SRC,
			     (uint8_t[]){ 10, 0, 0, 2 }, 4));
	ctd_rollup_free(r);
}

static void test_full_refuses_whole_row(void **state)
{
	struct ctd_rollup *r;
	unsigned added = 0;

	(void)state;
	assert_int_equal(ctd_rollup_new(4 * CTD_ROLLUP_PER_ROW, &r), 0);
	for (unsigned i = 0; i < 10; i++) {
		struct ctd_record a = rec((uint8_t)i, (uint16_t)i,
					  T0_MS + i * 86400000ull);

		if (!ctd_rollup_add(r, &a, "", ALL))
			break;
		added++;
	}
	assert_int_equal(added, 4);
	assert_int_equal(ctd_rollup_count(r), 4 * CTD_ROLLUP_PER_ROW);
	ctd_rollup_clear(r);
	assert_int_equal(ctd_rollup_count(r), 0);
	for (unsigned i = 0; i < 4; i++) {
		struct ctd_record a = rec(1, 1, T0_MS);

		assert_true(ctd_rollup_add(r, &a, "", ALL));
	}
	assert_int_equal(ctd_rollup_count(r), CTD_ROLLUP_PER_ROW);
	ctd_rollup_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cells_shared_and_aligned),
		cmocka_unit_test(test_other_minute_other_cells),
		cmocka_unit_test(test_unfolded_hour_minutes_only),
		cmocka_unit_test(test_full_refuses_whole_row),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
