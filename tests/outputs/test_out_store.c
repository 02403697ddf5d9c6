/* Tests for src/outputs/out_store.c and store_top.c with records built
 * here: a batch is one transaction at the flush and final only when it
 * commits; a failed commit (another writer holds the database) keeps the
 * batch unsettled until a later flush commits it; the same records
 * submitted again insert nothing and are counted; the rollups (minute,
 * hour and day; by source, destination, port and namespace) add
 * up to the raw rows, key by key; retention prunes rows and rollups;
 * store-max-size prunes the oldest rows and counts them apart; interim and
 * event records are skipped but still settle in order; in the daemon (a
 * loop) a small batch waits up to 100 ms for more, a big one commits at
 * once. Each test reads the database through its own
 * connection, as a reader beside ctd would. */
#include <errno.h>
#include <ev.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctd/base/membudget.h"
#include "ctd/config/config.h"
#include "ctd/flows/record.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "logcap.h"
#include "tmpdir.h"

#define DAY_MS (86400ull * 1000)
#define HOUR_MS (3600ull * 1000)

struct fixture {
	char dir[TMPDIR_MAX];
	char path[TMPDIR_MAX + 16];
	struct ctd_output *out;
	sqlite3 *reader;
	uint64_t now_ms;
};

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ctd_out_store_cfg cfg = { f->path, 30 * 86400, 400 * 86400,
					 1ULL << 30, false };

	tmpdir_make(f->dir, "store");
	snprintf(f->path, sizeof(f->path), "%s/flows.db", f->dir);
	assert_int_equal(ctd_out_store_new(&cfg, NULL, &f->out), 0);
	assert_int_equal(sqlite3_open_v2(f->path, &f->reader,
					 SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	f->now_ms = wall_ms();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sqlite3_close(f->reader);
	f->out->ops->free(f->out);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* Flow i: one of three sources, one of two destinations, bytes that
 * tell flows apart; ended age_ms ago. */
static struct ctd_record rec_at(unsigned i, uint64_t now_ms, uint64_t age_ms)
{
	struct ctd_record r = { .family = AF_INET, .proto = IPPROTO_UDP,
				.end_reason = CTD_END_DESTROY, .id = 1000 + i,
				.nsid = CTD_NSID_SELF, .mark = i, .zone = 0 };
	struct ctd_tuple *o = &r.tuple[CTD_DIR_ORIG], *re = &r.tuple[CTD_DIR_REPLY];

	memcpy(o->src, (uint8_t[]){ 10, 0, 0, (uint8_t)(1 + i % 3) }, 4);
	memcpy(o->dst, (uint8_t[]){ 10, 1, 0, (uint8_t)(1 + i % 2) }, 4);
	o->sport = (uint16_t)(20000 + i);
	o->dport = 53;
	memcpy(re->src, o->dst, 4);
	memcpy(re->dst, o->src, 4);
	re->sport = 53;
	re->dport = o->sport;
	r.cnt[CTD_DIR_ORIG] = (struct ctd_counters){ 1 + i % 4, 100 * (i % 3 + 1) };
	r.cnt[CTD_DIR_REPLY] = (struct ctd_counters){ 1, 60 + i };
	r.end_ns = (now_ms - age_ms) * 1000000;
	r.start_ns = r.end_ns - 5000000;
	return r;
}

static void submit_n(struct fixture *f, unsigned from, unsigned n,
		     uint64_t age_ms)
{
	for (unsigned i = from; i < from + n; i++) {
		struct ctd_record r = rec_at(i, f->now_ms, age_ms);

		assert_int_equal(f->out->ops->submit(f->out, &r),
				 CTD_OUT_DELIVERED);
	}
}

static int64_t query(struct fixture *f, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(f->reader, sql, -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int64_t rows(struct fixture *f)
{
	return query(f, "SELECT COUNT(*) FROM flows");
}

/* Nothing is final, nor visible, before the flush; after it one commit
 * made all of them final at once. */
static void test_one_transaction_per_flush(void **state)
{
	struct fixture *f = *state;

	submit_n(f, 0, 100, 1000);
	assert_int_equal(f->out->ops->settled(f->out), 0);
	assert_int_equal(rows(f), 0);
	f->out->ops->flush(f->out);
	assert_int_equal(ctd_output_counter(f->out, "store_commits"), 1);
	assert_int_equal(f->out->ops->settled(f->out), 100);
	assert_int_equal(ctd_output_counter(f->out, "store_rows"), 100);
	assert_int_equal(rows(f), 100);
	/* An empty flush commits nothing. */
	f->out->ops->flush(f->out);
	assert_int_equal(ctd_output_counter(f->out, "store_commits"), 1);
	assert_int_equal(query(f, "SELECT journal_mode = 'wal' FROM "
				  "pragma_journal_mode"), 1);
}

/* Another writer holds the database: the commit fails once (logged
 * once), the records stay unsettled, and the next flush stores them. */
static void test_failed_commit_keeps_records(void **state)
{
	struct fixture *f = *state;
	struct logcap lc;
	sqlite3 *other;

	assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
			 SQLITE_OK);
	submit_n(f, 0, 10, 1000);
	logcap_begin(&lc);
	f->out->ops->flush(f->out);
	f->out->ops->flush(f->out);
	assert_non_null(strstr(logcap_end(&lc), "holding 10 records"));
	assert_int_equal(ctd_output_counter(f->out, "store_commit_errors"), 2);
	assert_int_equal(ctd_output_counter(f->out, "store_err_busy"), 2);
	assert_int_equal(ctd_output_counter(f->out, "store_err_io"), 0);
	assert_int_equal(f->out->ops->settled(f->out), 0);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(other);
	logcap_begin(&lc);
	f->out->ops->flush(f->out);
	assert_non_null(strstr(logcap_end(&lc), "writing again"));
	assert_int_equal(f->out->ops->settled(f->out), 10);
	assert_int_equal(rows(f), 10);
}

/* A replay after a crash: the same flows again, in a later batch and
 * twice within one, insert nothing and count as repeats. */
static void test_repeats_insert_once(void **state)
{
	struct fixture *f = *state;

	submit_n(f, 0, 50, 1000);
	f->out->ops->flush(f->out);
	submit_n(f, 0, 50, 1000);
	submit_n(f, 40, 20, 1000);
	f->out->ops->flush(f->out);
	assert_int_equal(rows(f), 60);
	assert_int_equal(ctd_output_counter(f->out, "store_rows"), 60);
	assert_int_equal(ctd_output_counter(f->out, "store_repeats"), 60);
	assert_int_equal(f->out->ops->settled(f->out), 120);
	assert_int_equal(query(f, "SELECT SUM(flows) FROM rollup WHERE span = 60 "
				  "AND kind = 0"), 60);
}

static void check_kind(struct fixture *f, unsigned span, unsigned kind,
		       int64_t bytes);

/* Every row is in exactly one cell per span and kind, with both
 * directions' packets and bytes, once its hour is folded. */
static void test_rollups_add_up(void **state)
{
	struct fixture *f = *state;
	int64_t bytes;

	submit_n(f, 0, 300, 1000);
	submit_n(f, 300, 300, 5 * 60000);
	f->out->ops->flush(f->out);
	assert_int_equal(ctd_out_store_prune(f->out, f->now_ms + 2 * HOUR_MS), 0);
	bytes = query(f, "SELECT SUM(orig_bytes + reply_bytes) FROM flows");
	assert_true(query(f, "SELECT COUNT(DISTINCT bucket) FROM rollup WHERE "
			     "span = 60 AND kind = 0") >= 2);
	for (unsigned span = 0; span < 3; span++)
		for (unsigned kind = 0; kind < 5; kind++)
			if (kind != 3)    /* pairs: none */
				check_kind(f, span == 0 ? 60 : span == 1 ?
					   3600 : 86400, kind, bytes);
	assert_int_equal(query(f, "SELECT COUNT(*) FROM rollup WHERE kind = 3"), 0);
}

static int64_t cells(struct fixture *f, unsigned span, unsigned kind)
{
	char q[128];

	snprintf(q, sizeof(q), "SELECT COALESCE(SUM(flows), 0) FROM rollup "
		 "WHERE span = %u AND kind = %u", span, kind);
	return query(f, q);
}

/* A new store folds from its first hour: until that hour is over, its
 * sources and destinations are in minute cells only; the fold makes
 * their hour cells and adds to the day's once (the mark moves in the
 * same transaction, so folding again adds nothing), and a row ending
 * in a folded hour later is added to those cells directly. */
static void test_hours_folded(void **state)
{
	struct fixture *f = *state;
	int64_t mark, before;
	char q[128];

	submit_n(f, 0, 30, 1000);
	f->out->ops->flush(f->out);
	mark = query(f, "SELECT folded FROM rollup_state");
	assert_int_equal(mark % HOUR_MS, 0);
	assert_true(mark <= (int64_t)f->now_ms &&
		    mark > (int64_t)(f->now_ms - HOUR_MS));
	snprintf(q, sizeof(q), "SELECT COUNT(*) FROM flows WHERE end_ms < %lld",
		 (long long)mark);
	before = query(f, q);          /* 0 but in an hour's first second */
	assert_int_equal(cells(f, 60, 0), 30);
	assert_int_equal(cells(f, 3600, 0), before);
	assert_int_equal(cells(f, 86400, 1), before);
	assert_int_equal(cells(f, 3600, 2), 30);     /* ports: added */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ctd_out_store_prune(f->out,
						     f->now_ms + 2 * HOUR_MS), 0);
		assert_true(query(f, "SELECT folded FROM rollup_state") >=
			    mark + (int64_t)HOUR_MS);
		assert_int_equal(cells(f, 3600, 0), 30);
		assert_int_equal(cells(f, 3600, 1), 30);
		assert_int_equal(cells(f, 86400, 0), 30);
		assert_int_equal(cells(f, 86400, 1), 30);
	}
	submit_n(f, 30, 1, 0);
	f->out->ops->flush(f->out);
	assert_int_equal(cells(f, 3600, 0), 31);
	assert_int_equal(cells(f, 86400, 1), 31);
	assert_int_equal(ctd_output_counter(f->out, "store_commit_errors"), 0);
}

/* One kind's rollups at one span: totals equal the rows', and each key's
 * sums equal a GROUP BY over the rows. */
static void check_kind(struct fixture *f, unsigned span, unsigned kind,
		       int64_t bytes)
{
	static const char *const group[] = {
		"src", "dst", "CAST(char(proto, dport >> 8, dport & 255) AS BLOB)",
		"CAST(src || dst AS BLOB)", "CAST(netns AS BLOB)",
	};
	static const unsigned keys[] = { 3, 2, 1, 6, 1 };
	char q[768];

	snprintf(q, sizeof(q), "SELECT SUM(flows) - 600 + SUM(bytes) - %lld "
		 "FROM rollup WHERE span = %u AND kind = %u", (long long)bytes,
		 span, kind);
	assert_int_equal(query(f, q), 0);
	snprintf(q, sizeof(q), "SELECT COUNT(*) FROM (SELECT key, SUM(flows) n,"
		 " SUM(packets) p, SUM(bytes) b FROM rollup WHERE span = %u AND "
		 "kind = %u GROUP BY key) r JOIN (SELECT %s k, COUNT(*) n, "
		 "SUM(orig_packets + reply_packets) p, SUM(orig_bytes + "
		 "reply_bytes) b FROM flows GROUP BY k) w ON r.key = w.k AND "
		 "r.n = w.n AND r.p = w.p AND r.b = w.b", span, kind, group[kind]);
	assert_int_equal(query(f, q), keys[kind]);
}

/* Rows and rollup minutes past the retention go, in their own
 * transaction; newer ones stay. */
static void test_retention_prunes(void **state)
{
	struct fixture *f = *state;

	submit_n(f, 0, 40, 40 * DAY_MS);
	submit_n(f, 40, 10, 1000);
	f->out->ops->flush(f->out);
	assert_int_equal(rows(f), 10);
	assert_int_equal(ctd_output_counter(f->out, "store_pruned"), 40);
	assert_int_equal(query(f, "SELECT SUM(flows) FROM rollup WHERE span = 60 "
				  "AND kind = 0"), 10);
	assert_int_equal(ctd_out_store_prune(f->out, f->now_ms + 2 * HOUR_MS), 0);
	/* Hour and day rollups outlive the rows, to store-rollup-retention. */
	assert_int_equal(query(f, "SELECT SUM(flows) FROM rollup WHERE span = "
				  "86400 AND kind = 1"), 50);
	/* A later prune finds nothing more to do. */
	assert_int_equal(ctd_out_store_prune(f->out, f->now_ms), 0);
	assert_int_equal(ctd_out_store_prune(f->out, f->now_ms + 31 * DAY_MS), 10);
	assert_int_equal(rows(f), 0);
	assert_int_equal(query(f, "SELECT COUNT(*) FROM rollup WHERE span = 60"), 0);
	assert_int_equal(query(f, "SELECT SUM(flows) FROM rollup WHERE span = "
				  "3600 AND kind = 4"), 50);
	assert_int_equal(ctd_out_store_prune(f->out, f->now_ms + 402 * DAY_MS), 0);
	assert_int_equal(query(f, "SELECT COUNT(*) FROM rollup"), 0);
	assert_int_equal(ctd_output_counter(f->out, "store_pruned"), 50);
}

/* Past store-max-size the oldest rows go, until the pages in use are
 * under 90 % of it; counted apart from retention, with the gauges. */
static void test_max_size_trims_oldest(void **state)
{
	struct fixture *f = *state;
	struct ctd_out_store_cfg cfg = { f->path, 30 * 86400, 400 * 86400,
					 256 << 10, false };
	int64_t newest_gone;

	f->out->ops->free(f->out);
	assert_int_equal(ctd_out_store_new(&cfg, NULL, &f->out), 0);
	for (unsigned i = 0; i < 6; i++) {
		submit_n(f, i * 1000, 1000, (6 - i) * 3600000ull);
		f->out->ops->flush(f->out);
	}
	assert_int_equal(rows(f), 6000);
	assert_true(ctd_out_store_trim(f->out) > 0);
	assert_true(ctd_output_counter(f->out, "store_pruned_size") > 0);
	assert_int_equal(ctd_output_counter(f->out, "store_pruned"), 0);
	assert_int_equal(rows(f) + (int64_t)ctd_output_counter(f->out, "store_pruned_size"), 6000);
	assert_true(ctd_output_counter(f->out, "store_bytes") <= 256 << 10);
	assert_int_equal(ctd_output_counter(f->out, "store_max_bytes"), 256 << 10);
	assert_true(ctd_output_counter(f->out, "store_bytes_per_flow") > 20);
	/* The oldest went: what is left ended after all that was pruned. */
	newest_gone = (int64_t)(f->now_ms - 6 * 3600000ull) / 1000;
	assert_true(query(f, "SELECT MIN(end_ms) FROM flows") / 1000 >= newest_gone);
	assert_int_equal(query(f, "SELECT SUM(flows) FROM rollup WHERE span = "
				  "86400 AND kind = 0"), 6000);
	assert_int_equal(ctd_out_store_trim(f->out), 0);
}

/* Interim and event records are not rows, but settle in order with the
 * rest: nothing after a buffered row is final before it. */
static void test_interim_skipped(void **state)
{
	struct fixture *f = *state;
	struct ctd_record active = rec_at(7, f->now_ms, 0);
	struct ctd_record event = rec_at(8, f->now_ms, 0);

	active.end_reason = CTD_END_ACTIVE;
	event.events = 1u << CTD_EV_NEW;
	submit_n(f, 0, 1, 1000);
	assert_int_equal(f->out->ops->submit(f->out, &active), CTD_OUT_DELIVERED);
	assert_int_equal(f->out->ops->submit(f->out, &event), CTD_OUT_DELIVERED);
	assert_int_equal(f->out->ops->settled(f->out), 0);
	f->out->ops->flush(f->out);
	assert_int_equal(f->out->ops->settled(f->out), 3);
	assert_int_equal(f->out->stats.skipped, 2);
	assert_int_equal(rows(f), 1);
}

/* The batch's bound makes submit refuse; a flush takes records again. */
static void test_abandon_and_bound(void **state)
{
	struct fixture *f = *state;
	struct ctd_record r = rec_at(0, f->now_ms, 1000);
	unsigned n = 0;

	while (f->out->ops->submit(f->out, &r) == CTD_OUT_DELIVERED)
		n++;
	assert_int_equal(n, 32768);
	f->out->ops->abandon(f->out);
	assert_int_equal(f->out->ops->settled(f->out), n);
	f->out->ops->flush(f->out);
	assert_int_equal(rows(f), 0);
	assert_int_equal(f->out->ops->submit(f->out, &r), CTD_OUT_DELIVERED);
}

/* Fills the batch until submit refuses; returns how many it took. */
static unsigned fill_up(struct fixture *f)
{
	for (unsigned n = 0;; n++) {
		struct ctd_record r = rec_at(n, f->now_ms, 1000);

		if (f->out->ops->submit(f->out, &r) != CTD_OUT_DELIVERED)
			return n;
	}
}

/* A burst grows the batch, doubling, while the memory budget has room
 * (charged to it) and gives it back once the batch is empty; without
 * room the bound stays. */
static void test_burst_grows_within_budget(void **state)
{
	struct fixture *f = *state;
	const size_t batch = 32768 * sizeof(struct ctd_record);
	struct ctd_membudget b = { .max = batch + batch / 2 };

	f->out->budget = &b;
	assert_int_equal(fill_up(f), 2 * 32768);
	assert_int_equal(ctd_output_counter(f->out, "store_grows"), 1);
	assert_int_equal(b.held, batch);
	f->out->ops->abandon(f->out);
	f->out->ops->flush(f->out);
	assert_int_equal(b.held, 0);
	assert_int_equal(rows(f), 0);
	b.max = batch / 2;
	assert_int_equal(fill_up(f), 32768);
	assert_int_equal(ctd_output_counter(f->out, "store_grows"), 1);
	assert_int_equal(b.held, 0);
	f->out->ops->abandon(f->out);
}

/* One turn of the daemon's loop: it sleeps until the timer or the
 * writer thread's ev_async wakes it, then delivery's flush. */
static void loop_turn(struct fixture *f, struct ev_loop *loop)
{
	ev_run(loop, EVRUN_ONCE);
	f->out->ops->flush(f->out);
}

/* The daemon's store (made by the table's create, with a loop): a small
 * batch is left for the timer's wakeup, a big one goes to the writer at
 * the flush; either is final only once the writer's commit woke the
 * loop. */
static void test_small_batches_wait(void **state)
{
	struct fixture *f = *state;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	static struct ctd_config cfg;

	f->out->ops->free(f->out);
	ctd_config_init(&cfg, ctd_output_settings);
	assert_int_equal(ctd_config_set(&cfg, "store", f->path, NULL, 0), 0);
	assert_int_equal(ctd_out_store_desc.create(loop, &cfg, NULL, &f->out), 0);
	submit_n(f, 0, 10, 1000);
	f->out->ops->flush(f->out);
	assert_int_equal(f->out->ops->settled(f->out), 0);
	assert_int_equal(rows(f), 0);
	loop_turn(f, loop);                 /* the timer, within 100 ms */
	loop_turn(f, loop);                 /* the writer's commit */
	assert_int_equal(f->out->ops->settled(f->out), 10);
	assert_int_equal(rows(f), 10);
	submit_n(f, 10, 2048, 1000);
	f->out->ops->flush(f->out);
	loop_turn(f, loop);
	assert_int_equal(f->out->ops->settled(f->out), 2058);
	assert_int_equal(rows(f), 2058);
	assert_int_equal(ctd_output_counter(f->out, "store_commits"), 2);
	assert_true(ctd_output_counter(f->out, "store_max_bytes") > 0);
	f->out->ops->free(f->out);
	f->out = NULL;
	ev_loop_destroy(loop);
	assert_int_equal(ctd_out_store_new(&(struct ctd_out_store_cfg){
		f->path, 30 * 86400, 400 * 86400, 1ULL << 30, false }, NULL, &f->out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_one_transaction_per_flush),
		T(test_failed_commit_keeps_records),
		T(test_repeats_insert_once),
		T(test_rollups_add_up),
		T(test_retention_prunes),
		T(test_max_size_trims_oldest),
		T(test_interim_skipped),
		T(test_abandon_and_bound),
		T(test_burst_grows_within_budget),
		T(test_hours_folded),
		T(test_small_batches_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
