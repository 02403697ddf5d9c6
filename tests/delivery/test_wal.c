/* Tests for src/wal.c on real files: a record made final before the
 * commit never reaches the disk; records still held after a commit are
 * in the file and come back from recover, once, unless marked done; a
 * log with nothing live is emptied; a failed write keeps everything for
 * the next commit; a log that is mostly done is rewritten with only the
 * live records; a torn tail (crash mid-write) is skipped; a recovery
 * cut short says so, with its token, and the next one brings every live
 * record back again. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "tmpdir.h"

#include "ctd/delivery/wal.h"
#include "ctd/flows/record.h"

struct fixture {
	char dir[64];
	char path[128];
	unsigned got[4096];
	unsigned n;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	tmpdir_make(f->dir, "wal");
	snprintf(f->path, sizeof(f->path), "%s/json.wal", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static struct ctd_record rec(uint32_t id)
{
	struct ctd_record r;

	memset(&r, 0, sizeof(r));
	r.id = id;
	r.cnt[0].bytes = 100 + id;
	return r;
}

static int collect(void *arg, const struct ctd_record *r)
{
	struct fixture *f = arg;

	assert_true(r->id < 4096);
	assert_int_equal(r->cnt[0].bytes, 100 + r->id);
	f->got[r->id]++;
	f->n++;
	return 0;
}

/* A second process's view: what recover finds in the file now. */
static unsigned recover_now(struct fixture *f)
{
	struct ctd_wal *w;

	memset(f->got, 0, sizeof(f->got));
	f->n = 0;
	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	assert_true(ctd_wal_recover(w, 7, collect, f) >= 0);
	assert_int_equal(ctd_wal_size(w), 0);
	ctd_wal_free(w);
	return f->n;
}

static void test_final_before_commit(void **state)
{
	struct fixture *f = *state;
	struct ctd_wal *w;
	struct ctd_record r = rec(1);

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	ctd_wal_done(w, ctd_wal_add(w, &r));
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_int_equal(ctd_wal_size(w), 0);
	ctd_wal_free(w);
}

/* Pending: added, not done, not written (what a failed commit at exit
 * loses); a commit writes them and they are live instead. */
static void test_pending_until_commit(void **state)
{
	struct fixture *f = *state;
	struct ctd_wal *w;
	uint64_t seq[3];

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	for (uint32_t i = 0; i < 3; i++) {
		struct ctd_record r = rec(i);

		seq[i] = ctd_wal_add(w, &r);
	}
	ctd_wal_done(w, seq[1]);
	assert_int_equal(ctd_wal_pending(w), 2);
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_int_equal(ctd_wal_pending(w), 0);
	assert_int_equal(ctd_wal_live(w), 2);
	ctd_wal_free(w);
}

static void test_held_come_back_once(void **state)
{
	struct fixture *f = *state;
	struct ctd_wal *w;
	uint64_t seq[10];

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	for (uint32_t i = 0; i < 10; i++) {
		struct ctd_record r = rec(i);

		seq[i] = ctd_wal_add(w, &r);
		assert_true(seq[i] > 0);
	}
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_int_equal(ctd_wal_live(w), 10);
	for (uint32_t i = 0; i < 10; i += 2)
		ctd_wal_done(w, seq[i]);
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_int_equal(ctd_wal_live(w), 5);
	ctd_wal_free(w);                    /* a crash */
	assert_int_equal(recover_now(f), 5);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(f->got[i], i % 2);
	/* Recovered means gone from the log. */
	assert_int_equal(recover_now(f), 0);
}

static void test_emptied_when_nothing_live(void **state)
{
	struct fixture *f = *state;
	struct ctd_wal *w;
	struct ctd_record r = rec(7);
	uint64_t seq;

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	seq = ctd_wal_add(w, &r);
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_true(ctd_wal_size(w) > 0);
	ctd_wal_done(w, seq);
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_int_equal(ctd_wal_size(w), 0);
	ctd_wal_free(w);
}

static void test_compacted(void **state)
{
	struct fixture *f = *state;
	struct ctd_wal *w;
	uint64_t keep = 0;

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	/* One record stays live while ~9 MiB of others pass through. */
	for (uint32_t round = 0; round < 400; round++) {
		uint64_t seq[100];

		for (uint32_t i = 0; i < 100; i++) {
			struct ctd_record r = rec(1 + i);

			seq[i] = ctd_wal_add(w, &r);
		}
		if (!keep) {
			struct ctd_record r = rec(0);

			keep = ctd_wal_add(w, &r);
		}
		assert_int_equal(ctd_wal_commit(w), 0);
		for (uint32_t i = 0; i < 100; i++)
			ctd_wal_done(w, seq[i]);
	}
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_int_equal(ctd_wal_live(w), 1);
	assert_true(ctd_wal_size(w) < (8u << 20));   /* rewritten, never grown past */
	ctd_wal_free(w);
	assert_int_equal(recover_now(f), 1);
	assert_int_equal(f->got[0], 1);
}

static void test_torn_tail_skipped(void **state)
{
	struct fixture *f = *state;
	struct ctd_wal *w;
	int fd;

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	for (uint32_t i = 0; i < 3; i++) {
		struct ctd_record r = rec(i);

		ctd_wal_add(w, &r);
	}
	assert_int_equal(ctd_wal_commit(w), 0);
	ctd_wal_free(w);
	/* The last entry cut short, as a crash mid-write leaves it. */
	fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, lseek(fd, 0, SEEK_END) - 7), 0);
	close(fd);
	assert_int_equal(recover_now(f), 2);
}

static int fail_after_two(void *arg, const struct ctd_record *r)
{
	struct fixture *f = arg;

	if (f->n == 2)
		return -EIO;
	return collect(arg, r);
}

/* What a crash in the middle of a recovery leaves: the log unchanged
 * but for the note with the token. */
static void test_interrupted_recovery(void **state)
{
	struct fixture *f = *state;
	struct ctd_wal *w;
	uint64_t token = 0;

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	for (uint32_t i = 0; i < 5; i++) {
		struct ctd_record r = rec(i);

		ctd_wal_add(w, &r);
	}
	assert_int_equal(ctd_wal_commit(w), 0);
	ctd_wal_free(w);

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	assert_int_equal(ctd_wal_interrupted(w, &token), 0);
	assert_int_equal(ctd_wal_recover(w, 4242, fail_after_two, f), -EIO);
	assert_int_equal(f->n, 2);
	assert_true(ctd_wal_size(w) > 0);
	ctd_wal_free(w);

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	assert_int_equal(ctd_wal_interrupted(w, &token), 1);
	assert_int_equal(token, 4242);
	ctd_wal_free(w);
	assert_int_equal(recover_now(f), 5);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(f->got[i], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_pending_until_commit),
		T(test_final_before_commit),
		T(test_held_come_back_once),
		T(test_emptied_when_nothing_live),
		T(test_compacted),
		T(test_torn_tail_skipped),
		T(test_interrupted_recovery),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
