/* out_store: finished flows into an SQLite database.
 *
 * submit copies a flow record into the batch; the loop's flush hands the
 * whole batch to the writer thread (store_writer.c: SQLite and the
 * commit's fsync block, the loop must not), which writes it in one
 * transaction (one fsync per batch, not per record). Only its COMMIT
 * makes the batch's records final, which settled reports to delivery
 * once the thread has told the loop (an ev_async wakes it). A failed
 * commit rolls back and keeps the batch: its records stay unsettled, in
 * delivery's write-ahead log, and the next flush has the thread try
 * again; at shutdown abandon lets delivery spool them.
 *
 * Threads: the database, its statements, the rollup table, retention
 * and the prune clock are the writer thread's (the functions under
 * "Writer thread" below); the records' counts, the stats and the timers
 * the loop's. They meet only in store_writer.c.
 *
 * Only final records are stored (destroy, expired, evicted, lost,
 * netns_gone): their counters are the flow's totals, so interim records
 * (active) are skipped rather than folded in, and event records too.
 *
 * A crash between COMMIT and delivery learning of it replays records
 * that are stored already: the flow's identity (conntrack id, kernel
 * start time, namespace, original tuple) is a UNIQUE key and rows go in
 * with INSERT OR IGNORE, so a repeat inserts nothing, is counted, and
 * adds nothing to the rollups, which are updated in the same
 * transaction. WAL journal mode lets `ctd report` and sqlite3 read
 * while ctd writes.
 *
 * Rollups (minute, hour, day by source, destination, protocol and port,
 * and namespace) are summed over the batch in memory first
 * (store_rollup.c) and written as one upsert per cell before COMMIT:
 * a batch between few hosts costs a few statements, not fifteen a row.
 * Sources and destinations, which have many keys, get minute cells
 * only; once an hour is over, the upkeep folds its minute cells into
 * the hour's cells and adds those to the day's, moving the mark in
 * rollup_state in the same transaction (a row ending before the mark, a
 * late one, is added to every span at once). In ctd-storebench -f, the
 * daemon's timing, that took the writer from 14.6 to 7.5 us a row and
 * its disk writes from 1.5 KB to 0.66 KB (docs/benchmarks.md).
 * Once a minute, after a commit, a prune in its own transaction drops
 * rows and minute rollups past store-retention, hour and day rollups
 * past store-rollup-retention, and then the oldest rows while the
 * database's pages in use are past store-max-size.
 *
 * A commit rewrites the tail pages of every B-tree and syncs the WAL,
 * whatever the batch's size, so in the daemon a flush with fewer than
 * COALESCE_MIN records waits, up to COALESCE_MS after the batch's first
 * record (a timer wakes the loop, whose flush then commits): records
 * stay unsettled meanwhile, as they would in a slow commit. A live storm
 * cost 60-77 us of CPU per flow with a commit per loop iteration
 * (docs/benchmarks.md). Without a loop (tests, benchmarks) every flush
 * commits and waits for the thread.
 *
 * Every B-tree a row goes into is keyed time first (the identity starts
 * with the kernel's start time; the address indexes with the end minute),
 * so a batch's rows land in a few pages at the end of each tree. Keyed
 * by address first (or by the conntrack id, which is random), each row
 * dirtied a page of its own per tree: at 10 M rows that was about 16 KiB
 * of WAL per flow and a fill rate falling under 3,000 rows/s. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/base/membudget.h"
#include "ctd/base/stats.h"
#include "ctd/base/safefile.h"
#include "ctd/config/cfgcheck.h"
#include "ctd/config/config.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "ctd/outputs/store_rollup.h"
#include "ctd/outputs/store_writer.h"
#include "ctd/service/runlock.h"

/* Records in one batch at most (about 8 MiB; two batches, the one
 * filled and the one written, their pages touched only as a burst
 * fills them); past it submit refuses and the records wait on the
 * dying list until the writer takes the batch. At 8,192 the 40,000
 * flows of conntrack -F in storm.py --cost mix found both batches full
 * for 16,000-20,000 records, each of them held, logged, read back and
 * submitted again by the reader: its CPU per flow was 14.5 us against
 * 6.4 at 32,768, where none was refused (docs/benchmarks.md). */
#define BATCH_MAX 32768
/* A burst the writer is too slow for (one conntrack -F of 100,000 flows
 * found both batches full for 32,000-36,000 records) grows the batch
 * being filled, doubling, up to this, charged to delivery's memory
 * budget: a record taken costs the reader a copy, one refused the same
 * copy into the retry list plus its log entry, read back and submitted
 * again. 2 x 131,072 records of 248 bytes: 65 MiB at most, only in a
 * burst, given back once the batch is empty again. */
#define BATCH_GROW_MAX 131072
#define PRUNE_EVERY_MS 60000u
#define DEFAULT_STORE_DIR "/var/lib/ctd"
/* Beside the spool by default. */
#define DEFAULT_STORE DEFAULT_STORE_DIR "/flows.db"
/* Cells summed before a write: a full batch of flows between distinct
 * hosts fills it a few times per batch, about 1.5 MiB. */
#define ROLLUP_CELLS 16384
/* Past store-max-size, rows go until the pages in use are under this
 * share of it, so the next batches do not prune again at once. */
#define TRIM_TO_PCT 90
#define TRIM_ROUNDS 16
#define AUTO_MAX_SIZE (2ULL << 30)
#define COALESCE_MIN 2048
#define COALESCE_MS 100
/* The writer's nice. Not lowered: at nice 10 on a busy machine the
 * writer fell behind in a burst, twice as many records found both
 * batches full (30,000 of 40,000 against 17,000 at nice 0), and each
 * such record costs the reader more (held, logged, read back and
 * submitted again) than the writer's CPU it was meant to spare. */
#define WRITER_NICE 0

#define HOUR_MS 3600000u
/* An hour is folded once it has been over this long: the records of
 * its last flows still on their way rarely miss it (one that does is
 * added to the folded cells directly, as before folding). */
#define FOLD_GRACE_MS 120000u
/* Hours one upkeep folds at most, catching up after ctd was stopped. */
#define FOLD_MAX_HOURS 168

enum { S_INSERT, S_ROLLUP, S_BEGIN, S_COMMIT, S_ROLLBACK, S_INIT_FOLDED,
       S_FOLDED, S_FOLD_HOUR, S_FOLD_DAY, S_SET_FOLDED, S__COUNT };

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS flows("
	" id INTEGER NOT NULL, kstart_ns INTEGER NOT NULL,"
	" netns TEXT NOT NULL, family INTEGER NOT NULL, proto INTEGER NOT NULL,"
	" src BLOB NOT NULL, dst BLOB NOT NULL,"
	" sport INTEGER NOT NULL, dport INTEGER NOT NULL,"
	" reply_src BLOB, reply_dst BLOB, reply_sport INTEGER, reply_dport INTEGER,"
	" orig_packets INTEGER, orig_bytes INTEGER,"
	" reply_packets INTEGER, reply_bytes INTEGER,"
	" start_ms INTEGER, end_ms INTEGER NOT NULL, end_reason TEXT,"
	" zone INTEGER, mark INTEGER,"
	" UNIQUE(kstart_ns, id, netns, proto, src, dst, sport, dport));"
	"CREATE INDEX IF NOT EXISTS flows_end ON flows(end_ms);"
	"CREATE INDEX IF NOT EXISTS flows_src_minute ON flows(end_ms / 60000, src);"
	"CREATE INDEX IF NOT EXISTS flows_dst_minute ON flows(end_ms / 60000, dst);"
	"CREATE TABLE IF NOT EXISTS rollup(span INTEGER NOT NULL,"
	" kind INTEGER NOT NULL, bucket INTEGER NOT NULL, key BLOB NOT NULL,"
	" flows INTEGER NOT NULL, packets INTEGER NOT NULL,"
	" bytes INTEGER NOT NULL,"
	" PRIMARY KEY(span, kind, bucket, key)) WITHOUT ROWID;"
	/* Hours before folded have their source and destination hour and
	 * day cells (store_rollup.c's folded kinds); later ones only minute
	 * cells so far. No row: an older ctd's store, every cell added. */
	"CREATE TABLE IF NOT EXISTS rollup_state(folded INTEGER NOT NULL);";

static const char *const sql[S__COUNT] = {
	[S_INSERT] = "INSERT OR IGNORE INTO flows VALUES(?1, ?2, ?3, ?4, ?5, "
		"?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
		"?19, ?20, ?21, ?22)",
	[S_ROLLUP] = "INSERT INTO rollup VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
		"ON CONFLICT(span, kind, bucket, key) DO UPDATE SET "
		"flows = flows + excluded.flows, "
		"packets = packets + excluded.packets, "
		"bytes = bytes + excluded.bytes",
	/* IMMEDIATE: a second writer makes BEGIN fail, not the COMMIT. */
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	/* Folding starts with the current hour in a new store; in one an
	 * older ctd wrote, whose current hour has every cell already, with
	 * the next. Run in each transaction: shards share the store. */
	[S_INIT_FOLDED] = "INSERT INTO rollup_state SELECT ?1 - ?1 % 3600000 + "
		"CASE WHEN EXISTS (SELECT 1 FROM rollup) THEN 3600000 ELSE 0 END "
		"WHERE NOT EXISTS (SELECT 1 FROM rollup_state)",
	[S_FOLDED] = "SELECT folded FROM rollup_state",
	/* Kinds 0 and 1: ctd_rollup_folded. The hour's cells are made whole
	 * from its minute cells (sorted by the GROUP BY: appended in key
	 * order), and added to the day's. */
	[S_FOLD_HOUR] = "INSERT OR REPLACE INTO rollup SELECT 3600, kind, ?1, "
		"key, SUM(flows), SUM(packets), SUM(bytes) FROM rollup WHERE "
		"span = 60 AND kind IN (0, 1) AND bucket >= ?1 AND "
		"bucket < ?1 + 3600000 GROUP BY kind, key",
	[S_FOLD_DAY] = "INSERT INTO rollup SELECT 86400, kind, "
		"?1 - ?1 % 86400000, key, flows, packets, bytes FROM rollup "
		"WHERE span = 3600 AND kind IN (0, 1) AND bucket = ?1 "
		"ON CONFLICT(span, kind, bucket, key) DO UPDATE SET "
		"flows = flows + excluded.flows, "
		"packets = packets + excluded.packets, "
		"bytes = bytes + excluded.bytes",
	[S_SET_FOLDED] = "UPDATE rollup_state SET folded = ?1",
};

/* What the store counts beside delivery (ctd -s, metrics); the writer
 * thread's tally is copied in at each flush. */
struct store_counters {
	uint64_t rows;           /* rows inserted */
	uint64_t repeats;        /* records stored already (a replay after a
	                          * crash): ignored */
	uint64_t commits;        /* transactions committed */
	uint64_t commit_errors;  /* transactions that failed (the records
	                          * stay held and are written again) */
	uint64_t pruned;         /* rows older than store-retention */
	uint64_t pruned_size;    /* oldest rows past store-max-size */
	uint64_t commit_us;      /* time spent writing batches */
	uint64_t waits;          /* batches ready that waited for the writer */
	uint64_t grows;          /* batches grown past BATCH_MAX for a burst */
	uint64_t err_busy;       /* failed commits: another writer */
	uint64_t err_full;       /* ... disk full */
	uint64_t err_io;         /* ... any other reason */
	uint64_t bytes;          /* gauge: the database's pages in use */
	uint64_t max_bytes;      /* gauge: store-max-size resolved */
	uint64_t bytes_per_flow; /* gauge: bytes / rows held */
};

/* Shards share one database: its gauges are the same for each. */
#define SC(name, field, gauge, same, prom, help) \
	{ name, offsetof(struct store_counters, field), gauge, prom, help, same }

static const struct ctd_counter_def store_counter_rows[] = {
	SC("store_rows", rows, false, false, "store_rows_total", "Flow store: rows inserted."),
	SC("store_repeats", repeats, false, false, "store_repeats_total", "Flow store: records stored already (replayed after a crash), ignored."),
	SC("store_commits", commits, false, false, "store_commits_total", "Flow store: transactions committed."),
	SC("store_commit_errors", commit_errors, false, false, "store_commit_errors_total", "Flow store: transactions that failed; their records are held and written again."),
	SC("store_pruned", pruned, false, false, "store_pruned_total", "Flow store: rows pruned past store-retention."),
	SC("store_pruned_size", pruned_size, false, false, "store_pruned_size_total", "Flow store: oldest rows pruned past store-max-size."),
	SC("store_commit_us", commit_us, false, false, "store_commit_seconds_total", "Flow store: time spent writing and committing batches."),
	SC("store_waits", waits, false, false, "store_waits_total", "Flow store: batches ready that waited for the writer thread, still writing the one before."),
	SC("store_grows", grows, false, false, "store_grows_total", "Flow store: batches grown past 32,768 records for a burst the writer thread was too slow for (charged to the memory budget)."),
	SC("store_err_busy", err_busy, false, false, "store_errors_busy_total", "Flow store: failed transactions, another writer held the database."),
	SC("store_err_full", err_full, false, false, "store_errors_full_total", "Flow store: failed transactions, disk or database full."),
	SC("store_err_io", err_io, false, false, "store_errors_io_total", "Flow store: failed transactions, any other reason."),
	SC("store_bytes", bytes, true, true, "store_bytes", "Flow store: the database's pages in use."),
	SC("store_max_bytes", max_bytes, true, true, "store_max_bytes", "Flow store: store-max-size resolved."),
	SC("store_bytes_per_flow", bytes_per_flow, true, true, "store_bytes_per_flow", "Flow store: pages in use per row held (rollups and indexes included)."),
};

static const struct ctd_counter_defs store_counters = {
	store_counter_rows,
	sizeof(store_counter_rows) / sizeof(store_counter_rows[0]),
	0,
};

struct out_store {
	struct ctd_output base;
	struct store_counters own;
	/* The writer thread's (the loop's before the thread starts): */
	sqlite3 *db;
	sqlite3_stmt *st[S__COUNT];
	int lock_fd;               /* flock: one ctd per store */
	char *path;
	unsigned retention;
	unsigned rollup_retention;
	uint64_t max_size;
	struct ctd_rollup *rollup;    /* the batch's cells, not yet written */
	uint64_t folded_ms;           /* rollup_state, read in each transaction */
	uint64_t last_prune_ms;
	/* The loop's: */
	struct ctd_store_writer *writer;
	struct ev_loop *loop;         /* NULL: commit at every flush */
	ev_timer wake;                /* a waiting batch's deadline */
	ev_async done;                /* the writer finished a batch */
	int64_t first_us;             /* when the batch got its first record */
	bool failing;              /* in a commit error streak: logged */
	bool refusing;             /* said AGAIN: call ready after a commit */
	uint64_t taken;            /* records taken since the start */
	uint64_t committed;        /* ... of them final */
	uint64_t upkeep_ms;        /* the writer last sent to prune */
	size_t charged;            /* bytes of growth charged to the budget */
};

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct out_store *to_store(struct ctd_output *out)
{
	return (struct out_store *)out;
}

static bool stored(const struct ctd_record *rec)
{
	return !rec->events && rec->end_reason != CTD_END_ACTIVE;
}

/* The batch being filled doubled, when the budget has room for it. */
static bool grow(struct out_store *s)
{
	size_t cap = ctd_store_writer_room(s->writer);
	size_t more = cap * sizeof(struct ctd_record);

	if (cap >= BATCH_GROW_MAX || !s->base.budget ||
	    !ctd_membudget_take(s->base.budget, more))
		return false;
	if (ctd_store_writer_grow(s->writer, 2 * cap) < 0) {
		ctd_membudget_give(s->base.budget, more);
		return false;
	}
	s->charged += more;
	s->own.grows++;
	return true;
}

/* What a shrunk batch gave back goes back to the budget. */
static void settle_growth(struct out_store *s)
{
	size_t extra = ctd_store_writer_extra(s->writer);

	if (s->charged > extra) {
		ctd_membudget_give(s->base.budget, s->charged - extra);
		s->charged = extra;
	}
}

static enum ctd_out_status store_submit(struct ctd_output *out,
					const struct ctd_record *rec)
{
	struct out_store *s = to_store(out);

	if (!stored(rec)) {
		out->stats.skipped++;
		s->taken++;
		return CTD_OUT_DELIVERED;
	}
	if (ctd_store_writer_filling(s->writer) == 0)
		s->first_us = mono_us();
	if (!ctd_store_writer_add(s->writer, rec) &&
	    (!grow(s) || !ctd_store_writer_add(s->writer, rec))) {
		s->refusing = true;
		return CTD_OUT_AGAIN;
	}
	s->taken++;
	return CTD_OUT_DELIVERED;
}

static int addr_len(const struct ctd_record *rec)
{
	return rec->family == AF_INET6 ? 16 : 4;
}

static void bind_tuple(sqlite3_stmt *st, int col, const struct ctd_record *rec,
		       const struct ctd_tuple *t)
{
	sqlite3_bind_blob(st, col, t->src, addr_len(rec), SQLITE_STATIC);
	sqlite3_bind_blob(st, col + 1, t->dst, addr_len(rec), SQLITE_STATIC);
	sqlite3_bind_int(st, col + 2, t->sport);
	sqlite3_bind_int(st, col + 3, t->dport);
}

/* The netns label is bound from netns, which must outlive the step. */
static void bind_row(sqlite3_stmt *st, const struct ctd_record *rec,
		     const char *netns)
{
	const struct ctd_counters *c = rec->cnt;

	sqlite3_bind_int64(st, 1, rec->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)rec->start_ns);
	sqlite3_bind_text(st, 3, netns, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, rec->family);
	sqlite3_bind_int(st, 5, rec->proto);
	bind_tuple(st, 6, rec, &rec->tuple[CTD_DIR_ORIG]);
	bind_tuple(st, 10, rec, &rec->tuple[CTD_DIR_REPLY]);
	sqlite3_bind_int64(st, 14, (sqlite3_int64)c[CTD_DIR_ORIG].packets);
	sqlite3_bind_int64(st, 15, (sqlite3_int64)c[CTD_DIR_ORIG].bytes);
	sqlite3_bind_int64(st, 16, (sqlite3_int64)c[CTD_DIR_REPLY].packets);
	sqlite3_bind_int64(st, 17, (sqlite3_int64)c[CTD_DIR_REPLY].bytes);
	sqlite3_bind_int64(st, 18, (sqlite3_int64)(rec->start_ns / 1000000));
	sqlite3_bind_int64(st, 19, (sqlite3_int64)(rec->end_ns / 1000000));
	sqlite3_bind_text(st, 20, ctd_end_reason_name(rec->end_reason), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int(st, 21, rec->zone);
	sqlite3_bind_int64(st, 22, rec->mark);
}

/* Runs a prepared statement to its end and resets it. Its bindings are
 * left: every user binds all its parameters again before the next step,
 * and clearing them cost a call per parameter per row. */
static int step(sqlite3_stmt *st)
{
	int r = sqlite3_step(st);

	sqlite3_reset(st);
	return r == SQLITE_DONE || r == SQLITE_ROW ? 0 : -EIO;
}

static int write_cell(sqlite3_stmt *st, const struct ctd_rollup_cell *c)
{
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(ctd_rollup_span_ms[c->span] /
						   1000));
	sqlite3_bind_int(st, 2, c->kind);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)c->bucket_ms);
	sqlite3_bind_blob(st, 4, c->key, c->klen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)c->flows);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)c->packets);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)c->bytes);
	return step(st);
}

/* The summed cells into the rollup table, inside the open transaction. */
static int write_rollups(struct out_store *s)
{
	const struct ctd_rollup_cell *c;
	size_t pos = 0;
	int r = 0;

	while (r == 0 && (c = ctd_rollup_next(s->rollup, &pos)))
		r = write_cell(s->st[S_ROLLUP], c);
	ctd_rollup_clear(s->rollup);
	return r;
}

/* One row and, when it is new, its share of the rollups. Repeats are
 * counted by the caller only once the transaction commits. */
static int insert(struct out_store *s, const struct ctd_record *rec,
		  uint64_t *ret_rows)
{
	char netns[CTD_NETNS_NAME_MAX + 16];
	int r;

	ctd_record_netns_label(rec, netns, sizeof(netns));
	bind_row(s->st[S_INSERT], rec, netns);
	r = step(s->st[S_INSERT]);
	if (r < 0 || sqlite3_changes(s->db) == 0)
		return r;
	++*ret_rows;
	if (ctd_rollup_add(s->rollup, rec, netns, s->folded_ms))
		return 0;
	r = write_rollups(s);
	if (r == 0)
		ctd_rollup_add(s->rollup, rec, netns, s->folded_ms);
	return r;
}

/* Ends the open transaction: COMMIT when r is 0; ROLLBACK when r is an
 * error or the COMMIT failed (SQLite may have rolled back already).
 * Returns r, or the COMMIT's failure. */
static int end_txn(struct out_store *s, int r)
{
	if (r == 0)
		r = step(s->st[S_COMMIT]);
	if (r < 0 && !sqlite3_get_autocommit(s->db))
		step(s->st[S_ROLLBACK]);
	return r;
}

/* Where folding stands, made first if the store has no mark yet;
 * inside a transaction. */
static int load_folded(struct out_store *s, uint64_t now_ms)
{
	sqlite3_stmt *st = s->st[S_FOLDED];
	int r;

	sqlite3_bind_int64(s->st[S_INIT_FOLDED], 1, (sqlite3_int64)now_ms);
	if (step(s->st[S_INIT_FOLDED]) < 0)
		return -EIO;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		s->folded_ms = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return r == SQLITE_ROW ? 0 : -EIO;
}

static int fold_hour(struct out_store *s, uint64_t hour_ms)
{
	sqlite3_bind_int64(s->st[S_FOLD_HOUR], 1, (sqlite3_int64)hour_ms);
	sqlite3_bind_int64(s->st[S_FOLD_DAY], 1, (sqlite3_int64)hour_ms);
	if (step(s->st[S_FOLD_HOUR]) < 0 || step(s->st[S_FOLD_DAY]) < 0)
		return -EIO;
	sqlite3_bind_int64(s->st[S_SET_FOLDED], 1,
			   (sqlite3_int64)(hour_ms + HOUR_MS));
	return step(s->st[S_SET_FOLDED]);
}

/* The hours over since the mark, folded with the mark moved past them,
 * in one transaction of their own (writer thread). */
static int fold(struct out_store *s, uint64_t now_ms, struct ctd_store_tally *t)
{
	int r = step(s->st[S_BEGIN]);

	if (r == 0)
		r = load_folded(s, now_ms);
	for (int n = 0; r == 0 && n < FOLD_MAX_HOURS &&
	     s->folded_ms + HOUR_MS + FOLD_GRACE_MS <= now_ms; n++) {
		r = fold_hour(s, s->folded_ms);
		s->folded_ms += HOUR_MS;
	}
	r = end_txn(s, r);
	if (r < 0)
		t->prune_errors++;
	return r;
}

static int write_batch(struct out_store *s, const struct ctd_record *rec,
		       size_t n, uint64_t *ret_rows, uint64_t now_ms)
{
	int r = step(s->st[S_BEGIN]);

	if (r == 0)
		r = load_folded(s, now_ms);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = insert(s, &rec[i], ret_rows);
	if (r == 0)
		r = write_rollups(s);
	r = end_txn(s, r);
	ctd_rollup_clear(s->rollup);
	return r;
}

/* Why a commit failed, counted by what would fix it (writer thread). */
static void count_error(struct out_store *s, struct ctd_store_tally *t)
{
	int code = sqlite3_errcode(s->db) & 0xff;

	t->errors++;
	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		t->err_busy++;
	else if (code == SQLITE_FULL)
		t->err_full++;
	else
		t->err_io++;
	snprintf(t->error, sizeof(t->error), "%s", sqlite3_errmsg(s->db));
}

/* Whether a minute has passed since then; a clock set back makes it
 * due once (the caller then notes the new time). */
static bool minute_since(uint64_t now, uint64_t then)
{
	return now < then || now - then >= PRUNE_EVERY_MS;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* true: leave a small batch for a later flush, the timer armed for
 * its deadline. A full batch (refusing) never waits. */
static bool wait_for_more(struct out_store *s, int64_t now_us)
{
	size_t n = ctd_store_writer_filling(s->writer);
	int64_t left = COALESCE_MS * 1000 - (now_us - s->first_us);

	if (!s->loop || !n || n >= COALESCE_MIN || s->refusing || left <= 0)
		return false;
	if (!ev_is_active(&s->wake)) {
		/* The loop's time is that of its last wakeup: a timer set
		 * from it could fire before the batch is due. */
		ev_now_update(s->loop);
		ev_timer_set(&s->wake, (double)left / 1e6, 0.);
		ev_timer_start(s->loop, &s->wake);
	}
	return true;
}

/* Only wakes the loop: its flush (before it blocks) commits. */
static void on_wake(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* Called on the writer thread: the loop's flush learns of the batch. */
static void notify_loop(void *arg)
{
	struct out_store *s = arg;

	ev_async_send(s->loop, &s->done);
}

static void copy_tally(struct store_counters *c, const struct ctd_store_tally *t)
{
	c->rows = t->rows;
	c->repeats = t->repeats;
	c->commits = t->commits;
	c->commit_us = t->commit_us;
	c->commit_errors = t->errors + t->prune_errors;
	c->err_busy = t->err_busy;
	c->err_full = t->err_full;
	c->err_io = t->err_io;
	c->pruned = t->pruned;
	c->pruned_size = t->pruned_size;
	c->bytes = t->bytes;
	c->bytes_per_flow = t->bytes_per_flow;
}

/* What the writer did since the last look: counters, records final,
 * a failure streak's start and end (logged once each). */
static void absorb(struct out_store *s)
{
	struct ctd_store_writer_state st;
	struct ctd_store_tally t;

	ctd_store_writer_poll(s->writer, &st, &t);
	settle_growth(s);
	copy_tally(&s->own, &t);
	s->own.waits = st.waits;
	if (st.done > s->committed)
		s->committed = st.done;
	if (!st.busy && !ctd_store_writer_filling(s->writer))
		s->committed = s->taken;
	if (st.failed && !s->failing)
		log_err("store %s: %s; holding %llu records", s->path, t.error,
			(unsigned long long)(s->taken - s->committed));
	else if (!st.failed && s->failing && !st.busy)
		log_info("store %s: writing again", s->path);
	s->failing = st.failed || (s->failing && st.busy);
}

/* Hands the filled batch over (or has a failed one tried again);
 * without a loop, waits for the thread to write it. */
static void hand_batch(struct out_store *s)
{
	uint64_t now = wall_ms();
	bool upkeep = minute_since(now, s->upkeep_ms);
	int r = ctd_store_writer_send(s->writer, s->taken, upkeep);

	settle_growth(s);
	if (r == 0 && upkeep)
		s->upkeep_ms = now;
	if (r == 0 && s->refusing) {
		s->refusing = false;
		ctd_output_ready(&s->base);
	}
	if (s->loop || r == -ENODATA)
		return;
	ctd_store_writer_wait(s->writer);
	absorb(s);
}

static void store_flush(struct ctd_output *out)
{
	struct out_store *s = to_store(out);

	absorb(s);
	if (wait_for_more(s, mono_us()))
		return;
	hand_batch(s);
	/* Without a loop: a failed batch tried again, then the filled one. */
	if (!s->loop && !s->failing && ctd_store_writer_filling(s->writer))
		hand_batch(s);
}

static int64_t prune(struct out_store *s, uint64_t now_ms,
		     struct ctd_store_tally *t);
static int64_t trim(struct out_store *s, struct ctd_store_tally *t);

/* Writer thread: one batch (none: upkeep only), and the prune when it
 * is due. */
static int write_on_thread(void *arg, const struct ctd_record *rec, size_t n,
			   struct ctd_store_tally *t)
{
	struct out_store *s = arg;
	uint64_t rows = 0, now = wall_ms();
	int64_t t0 = mono_us();
	int r = n ? write_batch(s, rec, n, &rows, now) : 0;

	if (n)
		t->commit_us += (uint64_t)(mono_us() - t0);
	if (r < 0) {
		count_error(s, t);
		return r;
	}
	t->error[0] = '\0';
	t->commits += n > 0;
	t->rows += rows;
	t->repeats += n - rows;
	if (minute_since(now, s->last_prune_ms)) {
		fold(s, now, t);
		prune(s, now, t);
		trim(s, t);
	}
	return 0;
}

static int64_t prune_table(struct out_store *s, const char *q, int64_t before)
{
	sqlite3_stmt *st;
	int r = sqlite3_prepare_v2(s->db, q, -1, &st, NULL);

	if (r != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, before);
	r = step(st);
	sqlite3_finalize(st);
	return r < 0 ? r : sqlite3_changes(s->db);
}

/* Its own transaction, so a slow prune never delays a batch's commit
 * and a failed one never undoes it. A rollup bucket goes once it began
 * before the cut (its last minute then ended before it too, or nearly).
 * Writer thread. */
static int64_t prune(struct out_store *s, uint64_t now_ms,
		     struct ctd_store_tally *t)
{
	int64_t cut = (int64_t)now_ms - (int64_t)s->retention * 1000, n;
	int64_t rcut = (int64_t)now_ms - (int64_t)s->rollup_retention * 1000;
	/* Minute cells of an hour not folded yet stay: the fold needs them. */
	int64_t mcut = cut < (int64_t)s->folded_ms ? cut : (int64_t)s->folded_ms;
	int r;

	s->last_prune_ms = now_ms;
	if (step(s->st[S_BEGIN]) < 0)
		return -EIO;
	n = prune_table(s, "DELETE FROM flows WHERE end_ms < ?1", cut);
	r = n < 0 ||
	    prune_table(s, "DELETE FROM rollup WHERE span = 60 AND "
			"kind IN (0, 1, 2, 3, 4) AND bucket < ?1", mcut) < 0 ||
	    prune_table(s, "DELETE FROM rollup WHERE span IN (3600, 86400) AND "
			"kind IN (0, 1, 2, 3, 4) AND bucket < ?1", rcut) < 0 ?
	    -EIO : 0;
	if (end_txn(s, r) < 0) {
		t->prune_errors++;
		return -EIO;
	}
	t->pruned += (uint64_t)n;
	return n;
}

static int64_t pragma(struct out_store *s, const char *q)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Pages in use: freed pages stay in the file and are used again, so
 * they do not count against store-max-size. */
static int64_t used_bytes(struct out_store *s)
{
	return (pragma(s, "PRAGMA page_count") -
		pragma(s, "PRAGMA freelist_count")) *
	       pragma(s, "PRAGMA page_size");
}

/* Rows held, from the rowids: rows are pruned oldest first and get
 * growing rowids, so this is exact but for the odd gap. Two subqueries:
 * MIN and MAX in one SELECT are not looked up at the B-tree's ends but
 * read by a scan of the whole table (0.16 s for 2 M rows, each minute). */
static int64_t rows_held(struct out_store *s)
{
	return pragma(s, "SELECT COALESCE((SELECT MAX(rowid) FROM flows) - "
		      "(SELECT MIN(rowid) FROM flows) + 1, 0)");
}

static void note_size(int64_t used, int64_t rows, struct ctd_store_tally *t)
{
	t->bytes = used > 0 ? (uint64_t)used : 0;
	t->bytes_per_flow = rows > 0 ? t->bytes / (uint64_t)rows : 0;
}

/* One round: the oldest rows that, at the average size, make up the
 * excess. Deleted rows free whole pages only as the B-trees merge, so
 * the caller measures again. */
static int64_t trim_round(struct out_store *s, int64_t used, int64_t rows)
{
	int64_t goal = (int64_t)(s->max_size / 100 * TRIM_TO_PCT);
	int64_t n = (used - goal) / (used / rows) + 1;

	return prune_table(s, "DELETE FROM flows WHERE rowid IN (SELECT rowid "
			   "FROM flows ORDER BY end_ms LIMIT ?1)", n);
}

/* Writer thread. */
static int64_t trim(struct out_store *s, struct ctd_store_tally *t)
{
	int64_t used = used_bytes(s), rows = rows_held(s), n, total = 0;

	for (int round = 0; round < TRIM_ROUNDS && rows > 0 &&
	     used > (int64_t)s->max_size / 100 * TRIM_TO_PCT &&
	     (round || used > (int64_t)s->max_size); round++) {
		n = trim_round(s, used, rows);
		if (n < 0) {
			t->prune_errors++;
			return n;
		}
		t->pruned_size += (uint64_t)n;
		total += n;
		used = used_bytes(s);
		rows = rows_held(s);
	}
	note_size(used, rows, t);
	return total;
}

struct call_prune {
	struct out_store *s;
	uint64_t now_ms;
};

static int64_t call_prune(void *arg, struct ctd_store_tally *t)
{
	struct call_prune *c = arg;

	fold(c->s, c->now_ms, t);
	return prune(c->s, c->now_ms, t);
}

static int64_t call_trim(void *arg, struct ctd_store_tally *t)
{
	return trim(arg, t);
}

/* The loop's (tests'): on the database while the writer writes nothing. */
int64_t ctd_out_store_prune(struct ctd_output *out, uint64_t now_ms)
{
	struct call_prune c = { to_store(out), now_ms };
	int64_t r = ctd_store_writer_call(c.s->writer, call_prune, &c);

	absorb(c.s);
	return r;
}

int64_t ctd_out_store_trim(struct ctd_output *out)
{
	struct out_store *s = to_store(out);
	int64_t r = ctd_store_writer_call(s->writer, call_trim, s);

	absorb(s);
	return r;
}

static uint64_t store_settled(struct ctd_output *out)
{
	return to_store(out)->committed;
}

/* Shutdown: the batch is dropped uncommitted; delivery spools its own
 * copies and the next start stores them. */
static void store_abandon(struct ctd_output *out)
{
	struct out_store *s = to_store(out);

	ctd_store_writer_abandon(s->writer);
	s->committed = s->taken;
}

static void store_free(struct ctd_output *out)
{
	struct out_store *s = to_store(out);

	if (!s)
		return;
	/* First: the thread may be writing. */
	ctd_store_writer_free(s->writer);
	if (s->charged)
		ctd_membudget_give(s->base.budget, s->charged);
	if (s->loop) {
		ev_timer_stop(s->loop, &s->wake);
		ev_async_stop(s->loop, &s->done);
	}
	for (int i = 0; i < S__COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	/* After sqlite3_close: closing any descriptor of the file drops the
	 * process's POSIX locks on it, SQLite's included. */
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	ctd_rollup_free(s->rollup);
	free(s->path);
	free(s);
}

static const struct ctd_output_ops store_ops = {
	.submit = store_submit,
	.flush = store_flush,
	.settled = store_settled,
	.abandon = store_abandon,
	.free = store_free,
};

/* The file is made (or checked) the safe way first, handed to owner and
 * locked against a second ctd; SQLite then opens it without following
 * links, and makes its -wal and -shm files with the database's owner. */
static int lock_file(struct out_store *s, const struct ctd_owner *owner,
		     bool shared)
{
	long pid;
	int r;

	s->lock_fd = ctd_safefile_open(s->path, O_RDWR | O_CREAT, 0640,
				       CTD_SAFE_REGULAR, owner);
	if (s->lock_fd < 0)
		return s->lock_fd;
	r = shared ? ctd_runlock_file_shared(s->lock_fd, &pid) :
		     ctd_runlock_file(s->lock_fd, &pid);
	if (r == -EBUSY)
		log_err("another ctd (pid %ld) writes the store %s", pid, s->path);
	return r;
}

/* Rows go into four B-trees at keys spread all over them (identity,
 * end, source, destination): with SQLite's default 2 MiB page cache a
 * store of millions of rows reads most of those pages back for each
 * batch; 16 MiB nearly doubled the insert rate (docs/benchmarks.md). */
static const char pragmas[] = "PRAGMA synchronous=FULL;"
	"PRAGMA cache_size=-16384";

/* One thread at a time uses the connection (the writer, or the loop
 * while the writer is idle: store_writer.c's mutex orders them), so
 * SQLite's own locking is turned off: the connection's (NOMUTEX) and the
 * allocator's statistics (MEMSTATUS, global; refused harmlessly once
 * SQLite is initialised). Their mutex pairs on every call, with the
 * bindings cleared after each step, cost the writer 2.7 of its 15.3 us
 * per row (ctd-storebench, 200,000 flows: 12.6 us without). */
static int open_db(struct out_store *s)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
		    SQLITE_OPEN_NOMUTEX;

	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	for (int i = 0; i < S__COUNT; i++)
		if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &s->st[i], NULL) != SQLITE_OK)
			return -EIO;
	return 0;
}

/* Only wakes the loop: its flush (before it blocks) takes the news. */
static void on_done(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* The writer thread is started last: the database is its from then on. */
static int start_writer(struct out_store *s, struct ev_loop *loop)
{
	struct ctd_store_writer_cfg wc = {
		.cap = BATCH_MAX, .write = write_on_thread, .arg = s,
		.notify = loop ? notify_loop : NULL, .notify_arg = s,
		.nice = WRITER_NICE,
	};

	s->loop = loop;
	if (loop) {
		ev_timer_init(&s->wake, on_wake, 0., 0.);
		ev_async_init(&s->done, on_done);
		ev_async_start(loop, &s->done);
	}
	return ctd_store_writer_new(&wc, &s->writer);
}

static int store_open(const struct ctd_out_store_cfg *cfg,
		      const struct ctd_owner *owner, struct ev_loop *loop,
		      struct ctd_output **ret)
{
	struct out_store *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->base.ops = &store_ops;
	s->base.name = ctd_out_store_desc.name;
	s->base.counters = &store_counters;
	s->base.own = &s->own;
	s->base.taken_max = 2 * BATCH_GROW_MAX;
	s->retention = cfg->retention;
	s->rollup_retention = cfg->rollup_retention;
	s->max_size = cfg->max_size;
	s->lock_fd = -1;
	s->own.max_bytes = cfg->max_size;
	s->path = strdup(cfg->path);
	r = !s->path ? -ENOMEM : ctd_rollup_new(ROLLUP_CELLS, &s->rollup);
	if (r == 0)
		r = lock_file(s, owner, cfg->shared);
	if (r == 0 && open_db(s) < 0) {
		log_err("store %s: %s", s->path, s->db ? sqlite3_errmsg(s->db) :
			"cannot open");
		r = -EIO;
	}
	if (r == 0)
		r = start_writer(s, loop);
	if (r < 0) {
		store_free(&s->base);
		return r;
	}
	*ret = &s->base;
	return 0;
}

int ctd_out_store_new(const struct ctd_out_store_cfg *cfg,
		      const struct ctd_owner *owner, struct ctd_output **ret)
{
	return store_open(cfg, owner, NULL, ret);
}

/* The smaller of 2 GiB and a tenth of the file system holding path, so
 * a default store never fills a small /var. */
uint64_t ctd_out_store_auto_size(const char *path)
{
	char dir[CTD_CONFIG_PATH_MAX];
	char *slash;
	struct statvfs v;
	uint64_t tenth;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		strcpy(dir, ".");
	if (statvfs(dir, &v) < 0)
		return AUTO_MAX_SIZE;
	tenth = (uint64_t)v.f_blocks * v.f_frsize / 10;
	return tenth < AUTO_MAX_SIZE ? tenth : AUTO_MAX_SIZE;
}

/* The store and store-* settings. */
struct store_settings {
	char path[CTD_SETTING_TEXT_MAX];   /* "" none */
	unsigned retention;                /* seconds rows are kept */
	unsigned rollup_retention;         /* ... hour and day rollups */
	size_t max_size;                   /* bytes; CTD_CONFIG_AUTO */
};

#define TF(field) offsetof(struct store_settings, field)

static const struct ctd_setting store_rows[] = {
	CTD_SETTING("store", CTD_SET_PATH, TF(path), 0, 0, true, false,
		    .def = DEFAULT_STORE),
	CTD_SETTING("store-retention", CTD_SET_DURATION, TF(retention), 60,
		    3650u * 86400, false, false, .def = "30d"),
	CTD_SETTING("store-rollup-retention", CTD_SET_DURATION,
		    TF(rollup_retention), 3600, 3650u * 86400, false, false,
		    .def = "400d"),
	CTD_SETTING("store-max-size", CTD_SET_SIZE, TF(max_size), 1u << 20,
		    UINT64_MAX, false, false, .def = "auto"),
};

/* Only the default location is ours to create. */
static void store_check(const void *conf, struct ctd_check *c)
{
	const struct store_settings *set = conf;

	if (*set->path)
		ctd_check_dir(c, "store", set->path,
			      strcmp(set->path, DEFAULT_STORE) == 0);
}

/* store-max-size auto depends on the file system the store is on. */
static void store_note(const void *conf, FILE *f)
{
	const struct store_settings *set = conf;
	uint64_t size;

	if (!*set->path || set->max_size != CTD_CONFIG_AUTO)
		return;
	size = ctd_out_store_auto_size(set->path);
	fprintf(f, "ctd: store-max-size auto is %llu bytes (%llu MiB): the "
		"smaller of 2 GiB and a tenth of the file system of %s\n",
		(unsigned long long)size, (unsigned long long)(size >> 20),
		set->path);
}

const struct ctd_setting_group ctd_out_store_settings = {
	.name = "store",
	.rows = store_rows,
	.n_rows = sizeof(store_rows) / sizeof(store_rows[0]),
	.size = sizeof(struct store_settings),
	.off_key = "store", .off_value = "none",
	.check = store_check,
	.note = store_note,
	.help =
"      --store PATH         also keep finished flows in an SQLite database\n"
"                           (default " DEFAULT_STORE "; 'none' = off)\n"
"      --store-retention TIME  rows older than TIME are pruned (default 30d;\n"
"                           s, m, h, d suffixes)\n"
"      --store-rollup-retention TIME  hour and day rollups kept (default 400d)\n"
"      --store-max-size SIZE  oldest rows pruned past SIZE (default auto:\n"
"                           2G or a tenth of the store's file system)\n",
};

static const struct store_settings *settings_of(const struct ctd_config *cfg)
{
	return ctd_config_group_get(cfg, &ctd_out_store_settings);
}

const char *ctd_out_store_path(const struct ctd_config *cfg)
{
	const struct store_settings *set = settings_of(cfg);

	return set ? set->path : "";
}

void ctd_out_store_retention(const struct ctd_config *cfg, unsigned *rows,
			     unsigned *rollups)
{
	const struct store_settings *set = settings_of(cfg);

	*rows = set->retention;
	*rollups = set->rollup_retention;
}

static bool store_enabled(const struct ctd_config *cfg)
{
	return *settings_of(cfg)->path;
}

static int store_create(struct ev_loop *loop, const struct ctd_config *cfg,
			const struct ctd_owner *owner, struct ctd_output **ret)
{
	const struct store_settings *set = settings_of(cfg);
	struct ctd_out_store_cfg sc = { set->path, set->retention,
					set->rollup_retention, set->max_size,
					cfg->shards > 1 };
	int r;

	/* Only the default location is ours to create. */
	if (strcmp(sc.path, DEFAULT_STORE) == 0) {
		r = ctd_safefile_dir(DEFAULT_STORE_DIR, true, 0750, owner);
		if (r >= 0)
			close(r);
	}
	if (sc.max_size == CTD_CONFIG_AUTO)
		sc.max_size = ctd_out_store_auto_size(sc.path);
	r = store_open(&sc, owner, loop, ret);
	if (r == -EBUSY || r == -EIO)
		return r;    /* named the other ctd, or SQLite's words */
	if (ctd_safefile_refused(r))
		log_err("refusing store %s: it %s; left untouched (see ctd(8), "
			"SECURITY)", sc.path, ctd_safefile_strerror(r));
	else if (r < 0)
		log_err("cannot open store %s: %s", sc.path, ctd_log_errstr(-r));
	return r;
}

/* One row per ended flow; interim and event records are skipped. */
const struct ctd_output_desc ctd_out_store_desc = {
	.name = "store",
	.settings = &ctd_out_store_settings,
	.counters = &store_counters,
	.enabled = store_enabled,
	.create = store_create,
	.events = 1u << CTD_EV_DESTROY,
	.events_setting = CTD_OUTPUT_EVENTS_FIXED,
};
