/* Tests for src/delivery/replay.c on a real spool in a temporary
 * directory: spooled records and raw bytes go back to the output in
 * file order while it takes them; a refusal stops the reading (the
 * refused record stays unread and nothing counted); records it took
 * stay in the spool until final, then the read-back mark passes them;
 * the budget per call stops a long spool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/base/membudget.h"
#include "ctd/delivery/dest.h"
#include "ctd/delivery/readback.h"
#include "ctd/delivery/replay.h"
#include "ctd/delivery/retry.h"
#include "ctd/delivery/spool.h"
#include "ctd/flows/record.h"
#include "fake_output.h"
#include "tmpdir.h"

struct fixture {
	char dir[TMPDIR_MAX];
	struct fake_output out;
	struct ctd_membudget budget;
	struct ctd_dest t;
	void *scratch;
};

static uint32_t no_random(void *arg)
{
	(void)arg;
	return 0;
}

/* A spool of n records (ids 0..n-1) and a raw entry after the first. */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct ctd_retry_cfg rc = { 1000, 16, no_random, NULL, NULL };
	char path[128];

	assert_non_null(fx);
	tmpdir_make(fx->dir, "replay");
	snprintf(path, sizeof(path), "%s/fake.spool", fx->dir);
	fake_output_init(&fx->out, "fake", true);
	fx->t.out = &fx->out.base;
	fx->t.st = &fx->out.base.stats;
	fx->t.budget = &fx->budget;
	fx->t.retry = ctd_retry_new(&rc);
	assert_int_equal(ctd_spool_open(path, NULL, &fx->t.spool), 0);
	fx->t.rb = ctd_readback_new(0);
	fx->scratch = malloc(CTD_SPOOL_MAX_ENTRY);
	assert_non_null(fx->scratch);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	ctd_retry_free(fx->t.retry);
	ctd_spool_free(fx->t.spool);
	ctd_readback_free(fx->t.rb);
	free(fx->t.taken);
	free(fx->scratch);
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

static void spool_ids(struct fixture *fx, uint32_t n)
{
	for (uint32_t id = 0; id < n; id++) {
		struct ctd_record rec = { .id = id };

		assert_int_equal(ctd_spool_append(fx->t.spool, CTD_SPOOL_RECORD,
						  &rec, sizeof(rec)), 0);
		if (id == 0)
			assert_int_equal(ctd_spool_append(fx->t.spool,
					CTD_SPOOL_RAW, "raw\n", 4), 0);
		fx->t.spool_records++;
	}
}

static void test_in_order_until_refused(void **state)
{
	struct fixture *fx = *state;
	bool budget_hit = false;

	spool_ids(fx, 5);
	fx->out.limit = 3;
	assert_int_equal(ctd_replay_refill(&fx->t, fx->scratch, &budget_hit), 0);
	assert_false(budget_hit);
	assert_true(fx->t.replay_stuck);
	assert_int_equal(fx->out.taken, 3);
	assert_int_equal(fx->out.last_id, 2);
	assert_int_equal(fx->out.raw_bytes, 4);
	assert_int_equal(fx->t.spool_records, 2);
	/* Taken, not final: the spool keeps them (the raw entry is final
	 * once taken, but its mark waits for the record before it). */
	assert_int_equal(fx->t.taken_n, 3);
	assert_int_equal(ctd_readback_pending(fx->t.rb), 4);
	assert_int_equal(fx->out.base.stats.replayed, 1);
	/* Stuck: nothing more is read until the flag is cleared. */
	fx->out.limit = 0;
	assert_int_equal(ctd_replay_refill(&fx->t, fx->scratch, &budget_hit), 0);
	assert_int_equal(fx->out.taken, 3);
	fx->t.replay_stuck = false;
	assert_int_equal(ctd_replay_refill(&fx->t, fx->scratch, &budget_hit), 0);
	assert_int_equal(fx->out.taken, 5);
	assert_int_equal(fx->t.spool_records, 0);
	assert_int_equal(ctd_spool_unread(fx->t.spool), 0);
}

static void test_final_moves_the_mark(void **state)
{
	struct fixture *fx = *state;
	bool budget_hit = false;

	spool_ids(fx, 3);
	assert_int_equal(ctd_replay_refill(&fx->t, fx->scratch, &budget_hit), 0);
	assert_int_equal(ctd_readback_final_end(fx->t.rb), 0);
	fx->out.final = 3;
	ctd_dest_settle(&fx->t);
	assert_int_equal(ctd_readback_pending(fx->t.rb), 0);
	assert_int_equal(ctd_readback_final_end(fx->t.rb),
			 ctd_spool_size(fx->t.spool));
	assert_int_equal(fx->out.base.stats.replayed, 4);
	assert_int_equal(fx->out.base.stats.delivered, 3);
}

static void test_budget(void **state)
{
	struct fixture *fx = *state;
	bool budget_hit = false;

	spool_ids(fx, 1100);
	assert_int_equal(ctd_replay_refill(&fx->t, fx->scratch, &budget_hit), 0);
	assert_true(budget_hit);
	assert_int_equal(fx->out.taken + (fx->out.raw_bytes ? 1 : 0), 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_in_order_until_refused),
		T(test_final_moves_the_mark),
		T(test_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
