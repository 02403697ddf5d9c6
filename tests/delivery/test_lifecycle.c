/* Tests for src/delivery/lifecycle.c on real files in a temporary
 * directory: no spool directory means no files; at start the spool's
 * records count as this run's (carried) and the write-ahead log a ctd
 * that died left moves to the spool, once; at shutdown what the output
 * took but did not make final is abandoned and, with the retry list's
 * records, ends in the spool, nothing failed; a record that was never
 * logged and cannot be spooled counts in failed_shutdown. */
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
#include "ctd/delivery/lifecycle.h"
#include "ctd/delivery/readback.h"
#include "ctd/delivery/retry.h"
#include "ctd/delivery/spool.h"
#include "ctd/delivery/wal.h"
#include "ctd/flows/record.h"
#include "fake_output.h"
#include "logcap.h"
#include "tmpdir.h"

struct fixture {
	char dir[TMPDIR_MAX];
	char path[128];
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

static void dest_init(struct fixture *fx)
{
	struct ctd_retry_cfg rc = { 1000, 16, no_random, NULL, NULL };

	memset(&fx->t, 0, sizeof(fx->t));
	fake_output_init(&fx->out, "fake", true);
	fx->t.out = &fx->out.base;
	fx->t.st = &fx->out.base.stats;
	fx->t.budget = &fx->budget;
	fx->t.retry = ctd_retry_new(&rc);
	assert_non_null(fx->t.retry);
}

static void dest_drop(struct fixture *fx)
{
	ctd_retry_free(fx->t.retry);
	ctd_spool_free(fx->t.spool);
	ctd_wal_free(fx->t.wal);
	ctd_readback_free(fx->t.rb);
	free(fx->t.taken);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	tmpdir_make(fx->dir, "lifecycle");
	snprintf(fx->path, sizeof(fx->path), "%s/spool", fx->dir);
	fx->scratch = malloc(CTD_SPOOL_MAX_ENTRY);
	assert_non_null(fx->scratch);
	dest_init(fx);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	dest_drop(fx);
	free(fx->scratch);
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

/* Records in the spool's file, read from its start. */
static uint64_t spooled(struct fixture *fx)
{
	char path[160];
	struct ctd_spool *sp;
	enum ctd_spool_kind kind;
	uint64_t n = 0;
	size_t len;

	snprintf(path, sizeof(path), "%s/fake.spool", fx->path);
	assert_int_equal(ctd_spool_open(path, NULL, &sp), 0);
	while (ctd_spool_peek(sp, fx->scratch, CTD_SPOOL_MAX_ENTRY, &kind,
			      &len) == 1) {
		n += kind == CTD_SPOOL_RECORD;
		ctd_spool_consume(sp);
	}
	ctd_spool_free(sp);
	return n;
}

static void assert_identity(struct ctd_dest *t)
{
	ctd_dest_update_gauges(t);
	assert_int_equal(t->st->records,
			 t->st->delivered + t->st->failed + t->st->held);
}

static void test_no_dir(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(ctd_lifecycle_open(&fx->t, NULL, NULL, fx->scratch), 0);
	assert_null(fx->t.spool);
	assert_null(fx->t.wal);
}

/* A ctd that died with 2 records in its spool and 3 live in its log. */
static void test_start_after_a_crash(void **state)
{
	struct fixture *fx = *state;
	struct ctd_record rec = { .id = 7 };
	struct logcap lc;

	assert_int_equal(ctd_lifecycle_open(&fx->t, fx->path, NULL,
					    fx->scratch), 0);
	for (int i = 0; i < 2; i++)
		assert_true(ctd_dest_spool_record(&fx->t, &rec));
	for (int i = 0; i < 3; i++)
		assert_true(ctd_wal_add(fx->t.wal, &rec) > 0);
	assert_int_equal(ctd_wal_commit(fx->t.wal), 0);
	dest_drop(fx);                   /* no shutdown */

	dest_init(fx);
	logcap_begin(&lc);
	assert_int_equal(ctd_lifecycle_open(&fx->t, fx->path, NULL,
					    fx->scratch), 0);
	assert_non_null(strstr(logcap_end(&lc), "3 records a ctd that died "
			       "held were in its write-ahead log"));
	assert_int_equal(fx->t.st->carried, 5);
	assert_int_equal(fx->t.st->records, 5);
	assert_int_equal(ctd_wal_size(fx->t.wal), 0);
	assert_identity(&fx->t);
	assert_int_equal(fx->t.st->held, 5);
	assert_int_equal(spooled(fx), 5);
}

/* Shutdown: one taken and not final (in the log), one on the retry
 * list (in the log), one on the retry list never logged. */
static void test_shutdown_spools_everything(void **state)
{
	struct fixture *fx = *state;
	struct ctd_record rec = { .id = 9 };
	struct logcap lc;

	assert_int_equal(ctd_lifecycle_open(&fx->t, fx->path, NULL,
					    fx->scratch), 0);
	fx->out.hold_back = true;
	fx->t.st->records = 3;
	assert_false(ctd_dest_taken_full(&fx->t));
	ctd_dest_took(&fx->t, &rec, 0, 0);
	assert_int_equal(ctd_retry_add(fx->t.retry, &rec,
				       ctd_dest_log_add(&fx->t, &rec), 0), 0);
	assert_int_equal(ctd_retry_add(fx->t.retry, &rec, 0, 0), 0);
	ctd_dest_commit_log(&fx->t, 0);
	assert_identity(&fx->t);
	logcap_begin(&lc);
	assert_int_equal(ctd_lifecycle_close(&fx->t), 3);
	logcap_end(&lc);
	assert_true(fx->out.abandoned);
	assert_identity(&fx->t);
	assert_int_equal(fx->t.st->failed, 0);
	assert_int_equal(fx->t.st->held, 3);
	assert_int_equal(fx->t.st->spooled, 3);
	assert_int_equal(ctd_wal_size(fx->t.wal), 0);
	assert_int_equal(spooled(fx), 3);
}

/* Without a spool, a held record nobody logged is lost, and counted. */
static void test_shutdown_without_spool(void **state)
{
	struct fixture *fx = *state;
	struct ctd_record rec = { .id = 1 };

	fx->t.st->records = 1;
	assert_int_equal(ctd_retry_add(fx->t.retry, &rec, 0, 0), 0);
	assert_int_equal(ctd_lifecycle_close(&fx->t), 1);
	assert_int_equal(fx->t.st->failed_shutdown, 1);
	assert_identity(&fx->t);
	assert_int_equal(fx->t.st->held, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_no_dir),
		T(test_start_after_a_crash),
		T(test_shutdown_spools_everything),
		T(test_shutdown_without_spool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
