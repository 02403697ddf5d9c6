/* Tests for src/delivery/journal.c on real files in a temporary
 * directory: entries come back in order with their kinds; an intact
 * entry of a kind the owner does not know is skipped and counted, so a
 * spool never takes a write-ahead log's entry; a batch is appended all
 * or none; a cut undoes appends; a rewrite replaces the whole file; an
 * entry an earlier ctd wrote (zlib's CRC-32) is still read, one of
 * another record layout is not. The torn and damaged entries are tested
 * through the spool (test_spool.c). */
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
#include <zlib.h>
#include <cmocka.h>

#include "ctd/delivery/journal.h"
#include "ctd/delivery/spool.h"
#include "ctd/flows/record.h"

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

/* An entry as ctd wrote it before CRC-32C: header (magic "SPOL", kind,
 * version 1 << 12 | the record's size, length, zlib's CRC-32 of kind,
 * version, length and payload) and payload, appended to path. */
static void append_old(const char *path, uint16_t kind, uint16_t version,
		       const char *text)
{
	uint8_t e[ENTRY_HDR + 64];
	uint32_t magic = 0x4c4f5053u, len = (uint32_t)strlen(text), crc;
	FILE *f = fopen(path, "ab");

	memcpy(e, &magic, 4);
	memcpy(e + 4, &kind, 2);
	memcpy(e + 6, &version, 2);
	memcpy(e + 8, &len, 4);
	memcpy(e + ENTRY_HDR, text, len);
	crc = (uint32_t)crc32(0, e + 4, 8);
	crc = (uint32_t)crc32(crc, e + ENTRY_HDR, len);
	memcpy(e + 12, &crc, 4);
	assert_non_null(f);
	assert_int_equal(fwrite(e, 1, ENTRY_HDR + len, f), ENTRY_HDR + len);
	fclose(f);
}

static void test_earlier_checksum_read(void **state)
{
	struct fixture *f = *state;
	uint16_t v1 = (uint16_t)(1u << 12 | sizeof(struct ctd_record));
	struct ctd_journal *j;

	append_old(f->path, 1, v1, "before the upgrade");
	append_old(f->path, 2, (uint16_t)(v1 + 8), "another layout");
	j = open_j(f, kinds_1_2);
	assert_int_equal(ctd_journal_append(j, 2, "after", 5), 0);
	expect(f, j, 1, "before the upgrade");
	expect(f, j, 2, "after");
	expect_end(f, j);
	assert_int_equal(ctd_journal_stats(j)->corrupt, 1);
	ctd_journal_free(j);
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
		T(test_earlier_checksum_read),
		T(test_spool_refuses_wal_kinds),
		T(test_batch_all_or_none),
		T(test_cut_undoes_appends),
		T(test_rewrite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
