/* Tests for src/control/shardsum.c: counters and per-shard gauges add
 * up, gauges of the one kernel table take the largest, outputs meet by
 * name (one only some shards have is added), and a summed snapshot
 * reads as a struct ctd_stats with its outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/base/stats.h"
#include "ctd/control/shardsum.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"

struct shard {
	struct ctd_stats st;
	struct ctd_out_stats json, ipfix;
};

static void shard_init(struct shard *s, uint64_t base, bool with_ipfix)
{
	memset(s, 0, sizeof(*s));
	s->st.nl_messages = base;
	s->st.records = base * 2;
	s->st.flows_tracked = base + 1;              /* gauge, own table */
	s->st.kernel_table_count = 1000 + base;      /* gauge, one table */
	s->st.kernel_failed_open = base == 2;
	s->st.latency[3] = base;
	s->st.out_name[0] = "json";
	s->st.out[0] = &s->json;
	s->json.delivered = base * 2;
	s->json.held = base;
	if (with_ipfix) {
		s->st.out_name[1] = "ipfix";
		s->st.out[1] = &s->ipfix;
		s->ipfix.acked = 7;
	}
}

static void sums_shards(void **state)
{
	struct shard a, b, c;
	struct ctd_shardsnap snap, sum;
	const struct ctd_stats *st;

	(void)state;
	shard_init(&a, 1, false);
	shard_init(&b, 2, true);
	shard_init(&c, 3, true);
	memset(&sum, 0, sizeof(sum));
	ctd_shardsum_take(&snap, &a.st);
	ctd_shardsum_add(&sum, &snap);
	ctd_shardsum_take(&snap, &b.st);
	ctd_shardsum_add(&sum, &snap);
	ctd_shardsum_take(&snap, &c.st);
	ctd_shardsum_add(&sum, &snap);
	st = ctd_shardsum_view(&sum);
	assert_int_equal(st->nl_messages, 6);
	assert_int_equal(st->records, 12);
	assert_int_equal(st->flows_tracked, 2 + 3 + 4);
	assert_int_equal(st->latency[3], 6);
	assert_int_equal(st->kernel_table_count, 1003);
	assert_int_equal(st->kernel_failed_open, 1);
	assert_string_equal(st->out_name[0], "json");
	assert_int_equal(st->out[0]->delivered, 12);
	assert_int_equal(st->out[0]->held, 6);
	assert_string_equal(st->out_name[1], "ipfix");
	assert_int_equal(st->out[1]->acked, 14);
	assert_null(st->out_name[2]);
	assert_null(st->out[2]);
}

/* The snapshot holds no pointer into the shard's memory. */
static void snapshot_is_flat(void **state)
{
	struct shard a;
	struct ctd_shardsnap snap;

	(void)state;
	shard_init(&a, 5, true);
	ctd_shardsum_take(&snap, &a.st);
	for (int i = 0; i < CTD_OUT_MAX; i++) {
		assert_null(snap.st.out_name[i]);
		assert_null(snap.st.out[i]);
	}
	assert_string_equal(snap.name[1], "ipfix");
	assert_int_equal(snap.out[0].delivered, 10);
	a.json.delivered = 99;
	assert_int_equal(snap.out[0].delivered, 10);
}

/* Outputs in another order meet by name. */
static void outputs_by_name(void **state)
{
	struct ctd_shardsnap x, y, sum;

	(void)state;
	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	memset(&sum, 0, sizeof(sum));
	strcpy(x.name[0], "json");
	strcpy(x.name[1], "kafka");
	x.out[0].records = 1;
	x.out[1].records = 10;
	strcpy(y.name[0], "kafka");
	strcpy(y.name[1], "json");
	y.out[0].records = 20;
	y.out[1].records = 2;
	ctd_shardsum_add(&sum, &x);
	ctd_shardsum_add(&sum, &y);
	assert_string_equal(sum.name[0], "json");
	assert_int_equal(sum.out[0].records, 3);
	assert_int_equal(sum.out[1].records, 30);
}

/* An output's own counters: summed by word, a gauge every shard reads
 * alike (same) takes the largest, and the view finds the rows by the
 * output's name (the descriptor's), here the IPFIX output's. */
static void sums_own_counters(void **state)
{
	const struct ctd_output_desc *d = ctd_output_find("ipfix");
	struct ctd_counter_def same = { "x", 8, true, "x", "x", true };
	struct ctd_counter_defs defs = { NULL, 2, 0 };
	struct ctd_counter_def rows[2];
	struct shard a, b;
	uint64_t own_a[2] = { 5, 40 }, own_b[2] = { 7, 30 };
	struct ctd_shardsnap snap, sum;
	const struct ctd_stats *st;

	(void)state;
	assert_non_null(d);
	assert_non_null(d->counters);
	rows[0] = d->counters->rows[0];
	rows[0].off = 0;
	rows[1] = same;
	defs.rows = rows;
	shard_init(&a, 1, true);
	shard_init(&b, 2, true);
	a.st.out_defs[1] = b.st.out_defs[1] = &defs;
	a.st.out_own[1] = own_a;
	b.st.out_own[1] = own_b;
	memset(&sum, 0, sizeof(sum));
	ctd_shardsum_take(&snap, &a.st);
	ctd_shardsum_add(&sum, &snap);
	ctd_shardsum_take(&snap, &b.st);
	ctd_shardsum_add(&sum, &snap);
	assert_int_equal(sum.own[1][0], 12);
	assert_int_equal(sum.own[1][1], 40);
	st = ctd_shardsum_view(&sum);
	assert_ptr_equal(st->out_defs[1], d->counters);
	assert_ptr_equal(st->out_own[1], sum.own[1]);
	assert_null(st->out_defs[0] == d->counters ? st : NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sums_shards),
		cmocka_unit_test(snapshot_is_flat),
		cmocka_unit_test(outputs_by_name),
		cmocka_unit_test(sums_own_counters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
