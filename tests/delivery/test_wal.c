/* Tests for src/wal.c on real files: a record made final before the
 * commit never reaches the disk; records still held after a commit are
 * in the file and come back from recover, once, unless marked done; a
 * log with nothing live is emptied; a failed write keeps everything for
 * the next commit; a log that is mostly done is rewritten with only the
 * live records; a torn tail (crash mid-write) is skipped; a recovery
 * cut short says so, with its token, and the next one brings every live
 * record back again. Segments: past 4 MiB new records go to "<path>.1";
 * a done lands in the segment holding its record; a drained segment is
 * emptied; recovery over several segments brings back exactly the live
 * records, oldest first, even when a crash cuts it short at any step
 * (mid-move, or after the move was noted done while emptying); an older
 * ctd's single-file log is recovered; with every slot held by a
 * long-lived record the log stays bounded. */
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

#include "tmpdir.h"

#include "ctd/delivery/journal.h"
#include "ctd/delivery/wal.h"
#include "ctd/flows/record.h"

struct fixture {
	char dir[64];
	char path[128];
	unsigned got[4096];
	unsigned n;
	uint32_t spool[4096];        /* a stand-in for the output's spool */
	unsigned nspool;
	unsigned fail_at;            /* spool_fail: refuse the record after */
	char *saved[8];              /* save_slots: the files' contents */
	long saved_len[8];
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
	for (unsigned k = 0; k < 8; k++)
		free(f->saved[k]);
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

#define NSLOT 8
#define SEG_MAX (4u << 20)
#define FILLER 4000             /* the id of records that pass through */
#define PER_SEG 16000           /* records that fill a segment (> 4 MiB) */

static void slot_path(const struct fixture *f, unsigned k, char *buf,
		      size_t cap)
{
	if (k)
		snprintf(buf, cap, "%s.%u", f->path, k);
	else
		snprintf(buf, cap, "%s", f->path);
}

/* The size of slot k's file on disk, -1 when there is none. */
static long slot_size(const struct fixture *f, unsigned k)
{
	char p[160];
	struct stat st;

	slot_path(f, k, p, sizeof(p));
	return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static unsigned slot_files(const struct fixture *f)
{
	unsigned n = 0;

	for (unsigned k = 0; k < 16; k++)
		n += slot_size(f, k) >= 0;
	return n;
}

/* Adds n records (id FILLER, or the next of *id every `every`-th), writes
 * them, and stores their sequence numbers in seq when it is not NULL. */
static void add_many(struct ctd_wal *w, unsigned n, unsigned every,
		     uint32_t *id, uint64_t *seq)
{
	for (unsigned i = 0; i < n; i++) {
		struct ctd_record r = rec(every && i % every == 0 ?
					  (*id)++ : FILLER);
		uint64_t s = ctd_wal_add(w, &r);

		assert_true(s > 0);
		if (seq)
			seq[i] = s;
	}
	assert_int_equal(ctd_wal_commit(w), 0);
}

/* Marks done every record of seq[0..n) that passes through. */
static void done_fillers(struct ctd_wal *w, const uint64_t *seq, unsigned n,
			 unsigned every)
{
	for (unsigned i = 0; i < n; i++)
		if (!every || i % every)
			ctd_wal_done(w, seq[i]);
}

static void test_rotation(void **state)
{
	struct fixture *f = *state;
	uint64_t *seq = calloc(PER_SEG, sizeof(*seq)), small[10];
	struct ctd_wal *w;
	long size0, size1;
	uint32_t id = 0;

	assert_non_null(seq);
	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	add_many(w, PER_SEG, 0, &id, seq);
	size0 = slot_size(f, 0);
	assert_true(size0 > (long)SEG_MAX);
	assert_int_equal(slot_size(f, 1), -1);     /* none made in advance */
	add_many(w, 10, 1, &id, small);            /* ids 0..9 */
	assert_int_equal(slot_size(f, 0), size0);  /* the next one took them */
	size1 = slot_size(f, 1);
	assert_true(size1 > 0);
	assert_int_equal(ctd_wal_size(w), (uint64_t)(size0 + size1));
	/* Each done goes to the segment holding its record. */
	for (unsigned i = 0; i < 5; i++)
		ctd_wal_done(w, small[i]);
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_int_equal(slot_size(f, 0), size0);
	assert_true(slot_size(f, 1) > size1);
	size1 = slot_size(f, 1);
	done_fillers(w, seq, PER_SEG / 2, 0);
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_true(slot_size(f, 0) > size0);
	assert_int_equal(slot_size(f, 1), size1);
	/* The last done drains segment 0: emptied, not read or rewritten. */
	done_fillers(w, seq + PER_SEG / 2, PER_SEG - PER_SEG / 2, 0);
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_int_equal(slot_size(f, 0), 0);
	assert_int_equal(slot_size(f, 1), size1);
	assert_int_equal(ctd_wal_live(w), 5);
	assert_int_equal(ctd_wal_size(w), (uint64_t)size1);
	ctd_wal_free(w);                           /* a crash */
	assert_int_equal(recover_now(f), 5);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(f->got[i], i >= 5);
	assert_int_equal(slot_size(f, 1), 0);
	free(seq);
}

/* Three full segments, each keeping every 1000th record (16 apiece,
 * ids 0..47 in the order added) and its others done; left as a crash
 * leaves them. */
static void three_segments(struct fixture *f)
{
	uint64_t *seq = calloc(PER_SEG, sizeof(*seq));
	struct ctd_wal *w;
	uint32_t id = 0;

	assert_non_null(seq);
	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	for (unsigned s = 0; s < 3; s++) {
		add_many(w, PER_SEG, 1000, &id, seq);
		done_fillers(w, seq, PER_SEG, 1000);
	}
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_int_equal(ctd_wal_live(w), 48);
	for (unsigned k = 0; k < 3; k++)
		assert_true(slot_size(f, k) > 0);
	ctd_wal_free(w);
	free(seq);
}

static int spool_ok(void *arg, const struct ctd_record *r)
{
	struct fixture *f = arg;

	assert_int_equal(r->cnt[0].bytes, 100 + r->id);
	assert_true(f->nspool < 4096);
	f->spool[f->nspool++] = r->id;
	return 0;
}

static int spool_fail(void *arg, const struct ctd_record *r)
{
	struct fixture *f = arg;

	if (f->nspool == f->fail_at)
		return -ENOSPC;
	return spool_ok(arg, r);
}

/* The spool holds ids 0..47 exactly once, in order. */
static void assert_spool_once(const struct fixture *f)
{
	assert_int_equal(f->nspool, 48);
	for (unsigned i = 0; i < 48; i++)
		assert_int_equal(f->spool[i], i);
}

static void test_segments_recovered(void **state)
{
	struct fixture *f = *state;
	struct ctd_wal *w;

	three_segments(f);
	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	assert_int_equal(ctd_wal_commit(w), -EBUSY);    /* recover first */
	assert_int_equal(ctd_wal_recover(w, 0, spool_ok, f), 48);
	assert_int_equal(ctd_wal_size(w), 0);
	ctd_wal_free(w);
	assert_spool_once(f);
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(slot_size(f, k), 0);
}

static void save_slots(struct fixture *f)
{
	for (unsigned k = 0; k < NSLOT; k++) {
		char p[160];
		FILE *fp;

		slot_path(f, k, p, sizeof(p));
		f->saved_len[k] = slot_size(f, k);
		if (f->saved_len[k] < 0)
			continue;
		f->saved[k] = malloc((size_t)f->saved_len[k] + 1);
		fp = fopen(p, "rb");
		assert_non_null(f->saved[k]);
		assert_non_null(fp);
		assert_int_equal(fread(f->saved[k], 1, (size_t)f->saved_len[k],
				       fp), (size_t)f->saved_len[k]);
		fclose(fp);
	}
}

/* The files as save_slots found them: the log before a recovery. */
static void restore_slots(struct fixture *f)
{
	for (unsigned k = 0; k < NSLOT; k++) {
		char p[160];
		FILE *fp;

		slot_path(f, k, p, sizeof(p));
		unlink(p);
		if (f->saved_len[k] < 0)
			continue;
		fp = fopen(p, "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(f->saved[k], 1, (size_t)f->saved_len[k],
					fp), (size_t)f->saved_len[k]);
		fclose(fp);
	}
}

/* The next start after a crash: undo what the spool got past the token,
 * then recover again. */
static void restart(struct fixture *f, int cut_short)
{
	struct ctd_wal *w;
	uint64_t token = 99;

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	assert_int_equal(ctd_wal_interrupted(w, &token), cut_short);
	if (cut_short) {
		assert_true(token <= f->nspool);
		f->nspool = (unsigned)token;
	}
	assert_true(ctd_wal_recover(w, f->nspool, spool_ok, f) >= 0);
	assert_int_equal(ctd_wal_size(w), 0);
	ctd_wal_free(w);
}

/* A crash after the k-th record reached the spool (of 48, over three
 * segments): the next start cuts the spool back and moves all again. */
static void test_crash_mid_move(void **state)
{
	static const unsigned at[] = { 0, 1, 15, 16, 17, 32, 47 };
	struct fixture *f = *state;

	three_segments(f);
	save_slots(f);
	for (unsigned i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		struct ctd_wal *w;

		restore_slots(f);
		f->nspool = 0;
		f->fail_at = at[i];
		assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
		assert_int_equal(ctd_wal_recover(w, 0, spool_fail, f),
				 -ENOSPC);
		assert_int_equal(f->nspool, at[i]);
		ctd_wal_free(w);                 /* the spool keeps its part */
		restart(f, 1);
		assert_spool_once(f);
		restart(f, 0);                   /* and nothing a third time */
		assert_spool_once(f);
	}
}

static bool any_kind(unsigned kind, size_t len)
{
	(void)kind;
	(void)len;
	return true;
}

/* What a crash after the move was noted complete leaves: slot 0 with
 * both notes (kinds 6 and 7, wal.c's), the top `emptied` slots empty. */
static void moved_then_crash(struct fixture *f, unsigned emptied)
{
	struct ctd_journal *j;
	uint64_t token = 0;
	char p[160];

	restore_slots(f);
	assert_int_equal(ctd_journal_open(f->path, NULL, any_kind, &j), 0);
	assert_int_equal(ctd_journal_append(j, 6, &token, sizeof(token)), 0);
	assert_int_equal(ctd_journal_append(j, 7, &token, sizeof(token)), 0);
	ctd_journal_free(j);
	for (unsigned k = 3 - emptied; k < 3; k++) {
		slot_path(f, k, p, sizeof(p));
		assert_int_equal(truncate(p, 0), 0);
	}
}

/* The spool got every record; the crash came while the segments were
 * emptied (slot 0, with the notes, last): none comes again. */
static void test_crash_while_emptying(void **state)
{
	struct fixture *f = *state;
	struct ctd_wal *w;

	three_segments(f);
	save_slots(f);
	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	assert_int_equal(ctd_wal_recover(w, 0, spool_ok, f), 48);
	ctd_wal_free(w);
	assert_spool_once(f);
	for (unsigned emptied = 0; emptied < 3; emptied++) {
		moved_then_crash(f, emptied);
		restart(f, 0);
		assert_spool_once(f);
		for (unsigned k = 0; k < 3; k++)
			assert_int_equal(slot_size(f, k), 0);
	}
}

/* A log an older ctd wrote: one file, records and a list of dones. */
static void test_single_file_log(void **state)
{
	struct fixture *f = *state;
	struct ctd_journal *j;
	uint64_t done[2] = { 2, 4 };

	assert_int_equal(ctd_journal_open(f->path, NULL, any_kind, &j), 0);
	for (uint64_t seq = 1; seq <= 5; seq++) {
		struct ctd_record r = rec((uint32_t)seq);
		struct ctd_journal_entry e = { 3, &seq, sizeof(seq),
					     &r, sizeof(r) };

		assert_int_equal(ctd_journal_append_many(j, &e, 1), 0);
	}
	assert_int_equal(ctd_journal_append(j, 4, done, sizeof(done)), 0);
	ctd_journal_free(j);
	assert_int_equal(recover_now(f), 3);
	for (uint32_t i = 1; i <= 5; i++)
		assert_int_equal(f->got[i], i % 2);
	assert_int_equal(slot_files(f), 1);
}

/* One record kept every 40 batches of 256 (~2.7 MiB) for ~48 MiB: every
 * slot ends up holding one, none drains, and the fallback rewrite keeps
 * the files at 8 and their size near what is live. */
static void test_all_slots_taken(void **state)
{
	struct fixture *f = *state;
	uint64_t seq[256], peak = 0;
	struct ctd_wal *w;
	uint32_t id = 0;

	assert_int_equal(ctd_wal_open(f->path, NULL, &w), 0);
	for (unsigned round = 0; round < 700; round++) {
		add_many(w, 256, round % 40 ? 0 : 256, &id, seq);
		done_fillers(w, seq, 256, round % 40 ? 0 : 256);
		if (ctd_wal_size(w) > peak)
			peak = ctd_wal_size(w);
		assert_true(slot_files(f) <= NSLOT);
	}
	assert_int_equal(ctd_wal_commit(w), 0);
	assert_int_equal(ctd_wal_live(w), 18);
	assert_int_equal(slot_files(f), NSLOT);
	/* Every slot full once, then never more than that. */
	assert_true(peak <= NSLOT * (uint64_t)SEG_MAX + (256u << 10));
	assert_true(ctd_wal_size(w) < 2 * SEG_MAX);
	ctd_wal_free(w);
	assert_int_equal(recover_now(f), 18);
	for (uint32_t i = 0; i < 18; i++)
		assert_int_equal(f->got[i], 1);
	assert_int_equal(f->got[FILLER], 0);
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
		T(test_rotation),
		T(test_segments_recovered),
		T(test_crash_mid_move),
		T(test_crash_while_emptying),
		T(test_single_file_log),
		T(test_all_slots_taken),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
