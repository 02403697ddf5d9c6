/* lifecycle: an output's spool and write-ahead log from start to
 * shutdown. At start it opens both (the spool's directory made for ctd's
 * user), undoes a move of the log into the spool that a crash cut short,
 * moves what a ctd that died left in the log to the spool, and counts
 * the spooled records as this run's (carried). At shutdown what the
 * output took but did not make final is abandoned and, with what the
 * retry list and the log hold, goes to the spool; what not even that can
 * keep is counted in failed_shutdown. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/base/safefile.h"
#include "ctd/delivery/dest.h"
#include "ctd/delivery/lifecycle.h"
#include "ctd/delivery/readback.h"
#include "ctd/delivery/retry.h"
#include "ctd/delivery/spool.h"
#include "ctd/delivery/wal.h"
#include "ctd/flows/record.h"
#include "ctd/outputs/output.h"

/* Records already in the spool (held at the last stop) are this run's
 * too: records = delivered + failed + held counts them. */
static uint64_t count_records(struct ctd_dest *t, void *scratch)
{
	enum ctd_spool_kind kind;
	uint64_t n = 0;
	size_t len;

	while (ctd_spool_peek(t->spool, scratch, CTD_SPOOL_MAX_ENTRY, &kind,
			      &len) == 1) {
		n += kind == CTD_SPOOL_RECORD;
		ctd_spool_consume(t->spool);
	}
	return n;
}

/* Reading starts at the last CONSUMED mark: what lies before it was
 * read back and made final by an earlier run. */
static void count_spooled(struct ctd_dest *t, void *scratch)
{
	count_records(t, scratch);
	ctd_spool_seek(t->spool, ctd_spool_consumed_mark(t->spool));
	t->spool_records = count_records(t, scratch);
	ctd_spool_seek(t->spool, ctd_spool_consumed_mark(t->spool));
}

static int to_spool(void *arg, const struct ctd_record *rec)
{
	struct ctd_dest *t = arg;

	if (ctd_spool_append(t->spool, CTD_SPOOL_RECORD, rec, sizeof(*rec)) < 0)
		return -EIO;
	t->spool_records++;
	return 0;
}

/* The one move of the log's live records to the end of the spool, at
 * start (a ctd that died) and at shutdown, all or none: a spool that
 * fills up part-way is cut back to where it was and the log keeps every
 * record for the next start. That start cuts the spool back again to
 * the size the log noted, should this cut fail: a record in both would
 * come twice. Returns the records moved, or -errno. */
static int move_log(struct ctd_dest *t)
{
	uint64_t size = ctd_spool_size(t->spool), before = t->spool_records;
	int r = ctd_wal_recover(t->wal, size, to_spool, t);

	if (r < 0) {
		ctd_spool_cut(t->spool, size);
		t->spool_records = before;
	}
	return r;
}

/* A move of the log into the spool that a crash (or a full disk) cut
 * short left part of it appended to the spool: that part goes, the log
 * still has all of it. */
static int undo_recovery(struct ctd_dest *t)
{
	uint64_t token;
	int r = ctd_wal_interrupted(t->wal, &token);

	if (r <= 0 || token >= ctd_spool_size(t->spool))
		return r;
	log_warn("output %s: moving its write-ahead log to the spool was cut "
		 "short; the %llu bytes it had moved are moved again",
		 t->out->name,
		 (unsigned long long)(ctd_spool_size(t->spool) - token));
	return ctd_spool_cut(t->spool, token);
}

/* Returns 0 with the log open, or < 0 without it (and without the
 * spool when a cut-short move cannot be undone: what this run spooled
 * would be cut off with it). */
static int open_log(struct ctd_dest *t, const struct ctd_owner *owner)
{
	char path[CTD_SPOOL_PATH_MAX + 8];
	int r;

	snprintf(path, sizeof(path), "%s", ctd_spool_path(t->spool));
	memcpy(path + strlen(path) - strlen(".spool"), ".wal", 5);
	r = ctd_wal_open(path, owner, &t->wal);
	if (r < 0) {
		log_err("output %s: no write-ahead log at %s (%s): records it "
			"holds would not survive a crash", t->out->name, path,
			ctd_safefile_strerror(r));
		return r;
	}
	r = undo_recovery(t);
	if (r >= 0)
		return 0;
	log_err("output %s: cannot undo a cut-short move of %s to the spool "
		"(%s); no spool this run", t->out->name, path,
		ctd_log_errstr(-r));
	ctd_wal_free(t->wal);
	t->wal = NULL;
	ctd_spool_free(t->spool);
	t->spool = NULL;
	return r;
}

/* The log of a ctd that died: what it held goes to the spool, once. If
 * that fails, the log keeps it for the next start, which cuts off what
 * the spool got: this run then spools nothing (it would be cut off too). */
static void recover_log(struct ctd_dest *t)
{
	int r = move_log(t);

	if (r > 0)
		log_warn("output %s: %d records a ctd that died held were in "
			 "its write-ahead log; they follow from the spool",
			 t->out->name, r);
	if (r >= 0)
		return;
	log_err("output %s: cannot move its write-ahead log to the spool (%s); "
		"it keeps them for the next start, and records this run "
		"cannot deliver in time will be lost", t->out->name,
		ctd_log_errstr(-r));
	ctd_wal_free(t->wal);
	t->wal = NULL;
	ctd_spool_free(t->spool);
	t->spool = NULL;
}

/* The spool file in dir, the directory ctd's own: made for, and handed
 * to, its user. */
static int open_spool(struct ctd_dest *t, const char *dir,
		      const struct ctd_owner *owner, char *path, size_t cap)
{
	int r = ctd_safefile_dir(dir, true, 0700, owner);

	if (r < 0)
		return r;
	close(r);
	r = ctd_spool_build_path(dir, t->out->name, path, cap);
	if (r == 0)
		r = ctd_spool_open(path, owner, &t->spool);
	return r;
}

int ctd_lifecycle_open(struct ctd_dest *t, const char *dir,
		       const struct ctd_owner *owner, void *scratch)
{
	char path[CTD_SPOOL_PATH_MAX];
	int r;

	if (!dir)
		return 0;
	r = open_spool(t, dir, owner, path, sizeof(path));
	if (r < 0)
		return r;
	r = open_log(t, owner);
	if (!t->spool)
		return 0;
	count_spooled(t, scratch);
	t->rb = ctd_readback_new(ctd_spool_consumed_mark(t->spool));
	if (!t->rb)
		return -ENOMEM;
	if (r == 0)
		recover_log(t);
	t->st->carried = t->spool_records;
	t->st->records += t->spool_records;
	if (t->spool && ctd_spool_size(t->spool))
		log_info("output %s: replaying %llu spooled bytes (%llu records) "
			 "from %s", t->out->name,
			 (unsigned long long)ctd_spool_size(t->spool),
			 (unsigned long long)t->spool_records, path);
	return 0;
}

/* Shutdown: the log's records join the spool (counted as spooled by this
 * run). Returns the records kept in the log alone. */
static uint64_t wal_to_spool(struct ctd_dest *t)
{
	int r = move_log(t);

	if (r >= 0) {
		t->st->spooled += (uint64_t)r;
		return 0;
	}
	log_err("output %s: its write-ahead log keeps %llu records; "
		"they follow at the next start", t->out->name,
		(unsigned long long)ctd_wal_live(t->wal));
	return ctd_wal_live(t->wal);
}

/* Shutdown, for a record an output took but did not make final (it is
 * abandoned): one read back stays in the spool past the mark, one in
 * the log goes there with the log; the rest is lost. */
static uint64_t leave_taken(struct ctd_dest *t, const struct ctd_taken *k)
{
	if (k->flags & CTD_TAKEN_REPLAYED)
		t->spool_records++;
	return !k->seq && !(k->flags & CTD_TAKEN_EVENT);
}

/* The same for a record on the retry list, which the spool may take. */
static uint64_t leave_held(struct ctd_dest *t, const struct ctd_record *rec)
{
	if (!ctd_retry_head_tag(t->retry))
		return !ctd_dest_spool_record(t, rec);
	return 0;
}

/* Shutdown: what the output took but did not make final is abandoned,
 * and what the log and the retry list hold goes to the spool. Counts
 * what not even that could keep: records never logged, and those of a
 * log batch the disk refused. */
size_t ctd_lifecycle_close(struct ctd_dest *t)
{
	const struct ctd_record *rec;
	size_t left = t->taken_n + ctd_retry_count(t->retry);
	uint64_t unlogged = 0;

	ctd_dest_settle(t);
	if (t->out->ops->abandon) {
		t->out->ops->abandon(t->out);
		/* Abandoned, not final: the count moves on, nothing counted. */
		t->settled_seen = t->out->ops->settled(t->out);
	}
	for (; t->taken_n; t->taken_n--) {
		unlogged += leave_taken(t, &t->taken[t->taken_head]);
		t->taken_head = (t->taken_head + 1) % t->taken_cap;
	}
	while ((rec = ctd_retry_head(t->retry))) {
		unlogged += leave_held(t, rec);
		ctd_retry_pop(t->retry);
	}
	if (t->wal && ctd_wal_commit(t->wal) < 0)
		unlogged += ctd_wal_pending(t->wal);
	ctd_dest_commit_spool(t);
	if (t->wal)
		t->wal_kept = wal_to_spool(t);
	ctd_dest_fail(t, &t->st->failed_shutdown, unlogged);
	ctd_dest_update_gauges(t);
	return left;
}
