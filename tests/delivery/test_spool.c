/* Tests for src/spool.c on real files in a temporary directory: records
 * and raw bytes come back in order across a reopen; a torn tail (crash
 * mid-write) and a damaged entry are skipped and counted while intact
 * entries still come back; the file is emptied only when all was read;
 * a CONSUMED mark at an offset is where a reader after a crash starts;
 * a cut undoes appends. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctd/delivery/spool.h"
#include "ctd/flows/record.h"

#define ENTRY_HDR 16

struct fixture {
	char dir[64];
	char path[128];
	char buf[CTD_SPOOL_MAX_ENTRY];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/ctd-spool-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/json.spool", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char tmp[160];

	unlink(f->path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
	unlink(tmp);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct ctd_record rec_with_id(uint32_t id)
{
	struct ctd_record rec;

	memset(&rec, 0, sizeof(rec));
	rec.id = id;
	rec.cnt[0].bytes = 1000 + id;
	return rec;
}

static struct ctd_spool *open_spool(struct fixture *f)
{
	struct ctd_spool *sp = NULL;

	assert_int_equal(ctd_spool_open(f->path, NULL, &sp), 0);
	return sp;
}

static void append_records(struct ctd_spool *sp, uint32_t from, uint32_t to)
{
	for (uint32_t id = from; id < to; id++) {
		struct ctd_record rec = rec_with_id(id);

		assert_int_equal(ctd_spool_append(sp, CTD_SPOOL_RECORD, &rec,
						  sizeof(rec)), 0);
	}
}

/* Reads the next entry, expecting the record with this id. */
static void expect_record(struct fixture *f, struct ctd_spool *sp, uint32_t id)
{
	enum ctd_spool_kind kind;
	struct ctd_record rec;
	size_t len;

	assert_int_equal(ctd_spool_peek(sp, f->buf, sizeof(f->buf), &kind, &len), 1);
	assert_int_equal(kind, CTD_SPOOL_RECORD);
	assert_int_equal(len, sizeof(rec));
	memcpy(&rec, f->buf, sizeof(rec));
	assert_int_equal(rec.id, id);
	assert_int_equal(rec.cnt[0].bytes, 1000 + id);
	ctd_spool_consume(sp);
}

static void expect_end(struct fixture *f, struct ctd_spool *sp)
{
	enum ctd_spool_kind kind;
	size_t len;

	assert_int_equal(ctd_spool_peek(sp, f->buf, sizeof(f->buf), &kind, &len), 0);
}

static void test_round_trip_across_reopen(void **state)
{
	struct fixture *f = *state;
	struct ctd_spool *sp = open_spool(f);
	const char raw[] = "{\"v\":1}\n{\"v\":";
	enum ctd_spool_kind kind;
	size_t len;

	append_records(sp, 0, 3);
	assert_int_equal(ctd_spool_append(sp, CTD_SPOOL_RAW, raw, strlen(raw)), 0);
	append_records(sp, 3, 5);
	ctd_spool_free(sp);

	sp = open_spool(f);
	assert_int_equal(ctd_spool_size(sp),
			 5 * (ENTRY_HDR + sizeof(struct ctd_record)) +
			 ENTRY_HDR + strlen(raw));
	for (uint32_t id = 0; id < 3; id++)
		expect_record(f, sp, id);
	/* Peek without consume returns the same entry again. */
	assert_int_equal(ctd_spool_peek(sp, f->buf, sizeof(f->buf), &kind, &len), 1);
	assert_int_equal(ctd_spool_peek(sp, f->buf, sizeof(f->buf), &kind, &len), 1);
	assert_int_equal(kind, CTD_SPOOL_RAW);
	assert_memory_equal(f->buf, raw, strlen(raw));
	ctd_spool_consume(sp);
	expect_record(f, sp, 3);
	assert_int_equal(ctd_spool_reset(sp), -EBUSY);
	expect_record(f, sp, 4);
	expect_end(f, sp);
	assert_int_equal(ctd_spool_stats(sp)->torn + ctd_spool_stats(sp)->corrupt, 0);
	assert_int_equal(ctd_spool_reset(sp), 0);
	assert_int_equal(ctd_spool_size(sp), 0);
	ctd_spool_free(sp);
	sp = open_spool(f);
	expect_end(f, sp);
	ctd_spool_free(sp);
}

static void test_torn_tail(void **state)
{
	struct fixture *f = *state;
	struct ctd_spool *sp = open_spool(f);
	uint64_t full;

	append_records(sp, 0, 4);
	full = ctd_spool_size(sp);
	ctd_spool_free(sp);
	/* A crash in the middle of the fourth entry's payload. */
	assert_int_equal(truncate(f->path, (off_t)(full - 10)), 0);
	sp = open_spool(f);
	for (uint32_t id = 0; id < 3; id++)
		expect_record(f, sp, id);
	expect_end(f, sp);
	assert_int_equal(ctd_spool_stats(sp)->torn, 1);
	assert_int_equal(ctd_spool_stats(sp)->skipped_bytes,
			 ENTRY_HDR + sizeof(struct ctd_record) - 10);
	ctd_spool_free(sp);

	/* A crash inside a header. */
	assert_int_equal(truncate(f->path, (off_t)(3 * (ENTRY_HDR +
					sizeof(struct ctd_record)) + 5)), 0);
	sp = open_spool(f);
	for (uint32_t id = 0; id < 3; id++)
		expect_record(f, sp, id);
	expect_end(f, sp);
	assert_int_equal(ctd_spool_stats(sp)->torn, 1);
	/* Everything was read: the torn rest goes with the reset. */
	assert_int_equal(ctd_spool_reset(sp), 0);
	ctd_spool_free(sp);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void test_damaged_entries(void **state)
{
	struct fixture *f = *state;
	struct ctd_spool *sp = open_spool(f);
	off_t entry = (off_t)(ENTRY_HDR + sizeof(struct ctd_record));

	append_records(sp, 0, 4);
	ctd_spool_free(sp);
	/* Payload of entry 1 damaged: only that one is skipped. */
	flip_byte(f->path, entry + ENTRY_HDR + 4);
	sp = open_spool(f);
	expect_record(f, sp, 0);
	expect_record(f, sp, 2);
	expect_record(f, sp, 3);
	expect_end(f, sp);
	assert_int_equal(ctd_spool_stats(sp)->corrupt, 1);
	ctd_spool_free(sp);
	/* Magic of entry 2 damaged too: the reader finds entry 3's header
	 * and goes on; entries 1 and 2 are one damaged stretch, skipped and
	 * counted. */
	flip_byte(f->path, 2 * entry);
	sp = open_spool(f);
	expect_record(f, sp, 0);
	expect_record(f, sp, 3);
	expect_end(f, sp);
	assert_int_equal(ctd_spool_stats(sp)->corrupt, 1);
	assert_int_equal(ctd_spool_stats(sp)->skipped_bytes, 2 * entry);
	ctd_spool_free(sp);
	/* A length damaged to run past the end: the same. */
	sp = open_spool(f);
	append_records(sp, 4, 6);
	ctd_spool_free(sp);
	flip_byte(f->path, 3 * entry + 10);
	sp = open_spool(f);
	expect_record(f, sp, 0);
	expect_record(f, sp, 4);
	expect_record(f, sp, 5);
	expect_end(f, sp);
	ctd_spool_free(sp);
}

/* A CONSUMED mark below the read position (the part final so far): a
 * reader after a crash starts there; a mark never moves back, nor past
 * the end. */
static void test_mark_consumed_at_offset(void **state)
{
	struct fixture *f = *state;
	struct ctd_spool *sp = open_spool(f);
	uint64_t entry = ENTRY_HDR + sizeof(struct ctd_record), two;

	append_records(sp, 0, 5);
	expect_record(f, sp, 0);
	two = ctd_spool_size(sp) - ctd_spool_unread(sp) + entry;
	assert_int_equal(ctd_spool_peek(sp, f->buf, sizeof(f->buf),
					 &(enum ctd_spool_kind){0}, &(size_t){0}), 1);
	assert_int_equal(ctd_spool_peeked_end(sp), two);
	ctd_spool_consume(sp);
	expect_record(f, sp, 2);
	assert_int_equal(ctd_spool_mark_consumed(sp, two), 0);
	assert_int_equal(ctd_spool_mark_consumed(sp, entry), 0);
	assert_int_equal(ctd_spool_mark_consumed(sp, 1u << 30), -EINVAL);
	ctd_spool_free(sp);
	sp = open_spool(f);
	while (ctd_spool_peek(sp, f->buf, sizeof(f->buf), &(enum ctd_spool_kind){0},
			      &(size_t){0}) == 1)
		ctd_spool_consume(sp);
	assert_int_equal(ctd_spool_consumed_mark(sp), two);
	ctd_spool_seek(sp, two);
	for (uint32_t id = 2; id < 5; id++)
		expect_record(f, sp, id);
	expect_end(f, sp);
	ctd_spool_free(sp);
}

static void test_append_failure_leaves_no_partial_entry(void **state)
{
	struct fixture *f = *state;
	struct ctd_spool *sp = open_spool(f);
	char big[64];

	memset(big, 'x', sizeof(big));
	assert_int_equal(ctd_spool_append(sp, CTD_SPOOL_RAW, big,
					  CTD_SPOOL_MAX_ENTRY + 1), -EMSGSIZE);
	assert_int_equal(ctd_spool_size(sp), 0);
	ctd_spool_free(sp);
	assert_int_equal(ctd_spool_open("/nonexistent-dir/x.spool", NULL, &sp), -ENOENT);
}

/* The name deliver.c opens and the privilege drop hands over: exactly
 * dir/name.spool, and refused rather than cut when it does not fit. */
/* Appends cut back (shutdown undoing a move that did not fit) leave the
 * entries before them whole; a cut below what was read is refused. */
static void test_cut_undoes_appends(void **state)
{
	struct fixture *f = *state;
	struct ctd_spool *sp = open_spool(f);
	uint64_t size;

	append_records(sp, 1, 4);
	size = ctd_spool_size(sp);
	append_records(sp, 4, 9);
	assert_int_equal(ctd_spool_cut(sp, size), 0);
	assert_int_equal(ctd_spool_size(sp), size);
	ctd_spool_free(sp);
	sp = open_spool(f);
	for (uint32_t id = 1; id < 4; id++)
		expect_record(f, sp, id);
	expect_end(f, sp);
	assert_int_equal(ctd_spool_cut(sp, 0), -EINVAL);
	assert_int_equal(ctd_spool_cut(sp, size + 1), -EINVAL);
	ctd_spool_free(sp);
}

static void test_build_path(void **state)
{
	char buf[32], small[16];

	(void)state;
	assert_int_equal(ctd_spool_build_path("/var/lib/ctd", "json", buf,
					      sizeof(buf)), 0);
	assert_string_equal(buf, "/var/lib/ctd/json.spool");
	/* 15 characters and the NUL fit exactly; one more does not. */
	assert_int_equal(ctd_spool_build_path("/d", "abcdef", small,
					      sizeof(small)), 0);
	assert_string_equal(small, "/d/abcdef.spool");
	assert_int_equal(ctd_spool_build_path("/d", "abcdefg", small,
					      sizeof(small)), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_across_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_consumed_at_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_failure_leaves_no_partial_entry,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_undoes_appends, setup, teardown),
		cmocka_unit_test(test_build_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
