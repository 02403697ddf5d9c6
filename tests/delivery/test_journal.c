/* Tests for src/delivery/journal.c on real files in a temporary
 * directory: entries come back in order with their kinds; an intact
 * entry of a kind the owner does not know is skipped and counted, so a
 * spool never takes a write-ahead log's entry; a batch is appended all
 * or none; a cut undoes appends; a rewrite replaces the whole file. The
 * torn and damaged entries are tested through the spool (test_spool.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctd/delivery/journal.h"
#include "ctd/delivery/spool.h"

#define ENTRY_HDR 16

struct fixture {
	char dir[64];
	char path[128];
	char buf[256];
};

/* This test's owner knows kinds 1 and 2 (any length) only. */
static bool kinds_1_2(unsigned kind, size_t len)
{
	(void)len;
	return kind == 1 || kind == 2;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/ctd-journal-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/out.wal", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct ctd_journal *open_j(struct fixture *f, ctd_journal_fits *fits)
{
	struct ctd_journal *j = NULL;

	assert_int_equal(ctd_journal_open(f->path, NULL, fits, &j), 0);
	return j;
}

static void expect(struct fixture *f, struct ctd_journal *j, unsigned kind,
		   const char *text)
{
	unsigned k;
	size_t len;

	assert_int_equal(ctd_journal_peek(j, f->buf, sizeof(f->buf), &k, &len),
			 1);
	assert_int_equal(k, kind);
	assert_int_equal(len, strlen(text));
	assert_memory_equal(f->buf, text, len);
	ctd_journal_consume(j);
}

static void expect_end(struct fixture *f, struct ctd_journal *j)
{
	unsigned k;
	size_t len;

	assert_int_equal(ctd_journal_peek(j, f->buf, sizeof(f->buf), &k, &len),
			 0);
}

static void test_kinds_the_owner_knows(void **state)
{
	struct fixture *f = *state;
	struct ctd_journal *j = open_j(f, kinds_1_2);

	assert_int_equal(ctd_journal_append(j, 1, "one", 3), 0);
	assert_int_equal(ctd_journal_append(j, 7, "seven", 5), 0);
	assert_int_equal(ctd_journal_append(j, 2, "two", 3), 0);
	expect(f, j, 1, "one");
	expect(f, j, 2, "two");
	expect_end(f, j);
	assert_int_equal(ctd_journal_stats(j)->corrupt, 1);
	assert_int_equal(ctd_journal_stats(j)->skipped_bytes, ENTRY_HDR + 5);
	ctd_journal_free(j);
}

/* The write-ahead log's record entries (kind 3) in a file opened as a
 * spool: never returned as the spool's. */
static void test_spool_refuses_wal_kinds(void **state)
{
	struct fixture *f = *state;
	struct ctd_journal *j = open_j(f, kinds_1_2);
	struct ctd_spool *sp = NULL;
	enum ctd_spool_kind kind;
	size_t len;

	assert_int_equal(ctd_journal_append(j, 3, f->buf, 8), 0);
	ctd_journal_free(j);
	assert_int_equal(ctd_spool_open(f->path, NULL, &sp), 0);
	assert_int_equal(ctd_spool_peek(sp, f->buf, sizeof(f->buf), &kind,
					&len), 0);
	assert_int_equal(ctd_spool_stats(sp)->corrupt, 1);
	ctd_spool_free(sp);
}

static void test_batch_all_or_none(void **state)
{
	struct fixture *f = *state;
	struct ctd_journal *j = open_j(f, kinds_1_2);
	struct ctd_journal_entry ok[2] = {
		{ 1, "ab", 2, "cd", 2 }, { 2, "e", 1, NULL, 0 },
	};
	struct ctd_journal_entry bad[2] = {
		{ 1, "x", 1, NULL, 0 },
		{ 1, f->buf, CTD_JOURNAL_MAX_ENTRY, "y", 1 },   /* too long */
	};
	uint64_t size;

	assert_int_equal(ctd_journal_append_many(j, ok, 2), 0);
	size = ctd_journal_size(j);
	assert_int_equal(size, 2 * ENTRY_HDR + 5);
	assert_int_equal(ctd_journal_append_many(j, bad, 2), -EMSGSIZE);
	assert_int_equal(ctd_journal_size(j), size);
	expect(f, j, 1, "abcd");
	expect(f, j, 2, "e");
	expect_end(f, j);
	ctd_journal_free(j);
}

static void test_cut_undoes_appends(void **state)
{
	struct fixture *f = *state;
	struct ctd_journal *j = open_j(f, kinds_1_2);
	uint64_t size;

	assert_int_equal(ctd_journal_append(j, 1, "keep", 4), 0);
	size = ctd_journal_size(j);
	assert_int_equal(ctd_journal_append(j, 1, "undo", 4), 0);
	assert_int_equal(ctd_journal_cut(j, size), 0);
	assert_int_equal(ctd_journal_cut(j, size + 1), -EINVAL);
	ctd_journal_free(j);
	j = open_j(f, kinds_1_2);
	expect(f, j, 1, "keep");
	expect_end(f, j);
	ctd_journal_free(j);
}

static int fill_new(void *arg, struct ctd_journal *into)
{
	(void)arg;
	return ctd_journal_append(into, 2, "new", 3);
}

static int fill_fails(void *arg, struct ctd_journal *into)
{
	(void)arg;
	(void)into;
	return -EIO;
}

static void test_rewrite(void **state)
{
	struct fixture *f = *state;
	struct ctd_journal *j = open_j(f, kinds_1_2);

	assert_int_equal(ctd_journal_append(j, 1, "old", 3), 0);
	assert_int_equal(ctd_journal_rewrite(j, fill_fails, NULL), -EIO);
	expect(f, j, 1, "old");
	assert_int_equal(ctd_journal_rewrite(j, fill_new, NULL), 0);
	assert_int_equal(ctd_journal_unread(j), ENTRY_HDR + 3);
	expect(f, j, 2, "new");
	expect_end(f, j);
	ctd_journal_free(j);
	j = open_j(f, kinds_1_2);
	expect(f, j, 2, "new");
	assert_int_equal(ctd_journal_truncate(j), 0);
	assert_int_equal(ctd_journal_size(j), 0);
	ctd_journal_free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_kinds_the_owner_knows),
		T(test_spool_refuses_wal_kinds),
		T(test_batch_all_or_none),
		T(test_cut_undoes_appends),
		T(test_rewrite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
