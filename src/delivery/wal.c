/* wal: journal.c's entry format (checksummed, torn tails skipped) with
 * the log's own kinds: a record with its sequence number, a list of
 * sequence numbers now done, and the note a recovery begins with. The
 * common case costs nothing on disk: a record made final before the
 * commit (a file output's write succeeded) is dropped from the batch
 * unwritten, and a log whose records are all done is truncated instead
 * of growing. A log that keeps a few live records while many pass
 * through (a collector that acknowledges late) is rewritten with only
 * those once most of it is done. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctd/base/safefile.h"
#include "ctd/delivery/journal.h"
#include "ctd/delivery/wal.h"
#include "ctd/flows/record.h"

#define COMPACT_MIN (8u << 20)   /* never rewrite a log smaller than this */

/* The log's entry kinds; the numbers are on disk, and the spool's
 * (spool.h) are others, as they were when both shared one list. */
enum {
	WAL_RECORD = 3,   /* a uint64_t sequence, a struct ctd_record */
	WAL_DONE = 4,     /* sequences now final (uint64_t[]) */
	WAL_ABSORB = 6,   /* a recovery began (a uint64_t token) */
};

struct pending {
	uint64_t seq;
	struct ctd_record rec;
	bool done;                   /* final before it was written */
};

struct ctd_wal {
	struct ctd_journal *j;
	uint64_t next_seq;
	uint64_t live;               /* written, not done */
	struct pending *batch;       /* added since the last commit */
	size_t nbatch, batch_cap;
	uint64_t *dones;             /* written ones now done */
	size_t ndones, dones_cap;
};

/* Whether a log entry of this kind may have this length. */
static bool kind_fits(unsigned kind, size_t len)
{
	switch (kind) {
	case WAL_RECORD:
		return len == sizeof(uint64_t) + sizeof(struct ctd_record);
	case WAL_ABSORB:
		return len == sizeof(uint64_t);
	case WAL_DONE:
		return len % sizeof(uint64_t) == 0;
	default:
		return false;
	}
}

int ctd_wal_open(const char *path, const struct ctd_owner *owner,
		 struct ctd_wal **ret)
{
	struct ctd_wal *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->next_seq = 1;
	r = ctd_journal_open(path, owner, kind_fits, &w->j);
	if (r < 0) {
		ctd_wal_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void ctd_wal_free(struct ctd_wal *w)
{
	if (!w)
		return;
	ctd_journal_free(w->j);
	free(w->batch);
	free(w->dones);
	free(w);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int push_done(struct ctd_wal *w, uint64_t seq)
{
	if (w->ndones == w->dones_cap) {
		size_t cap = w->dones_cap ? w->dones_cap * 2 : 256;
		uint64_t *d = realloc(w->dones, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		w->dones = d;
		w->dones_cap = cap;
	}
	w->dones[w->ndones++] = seq;
	return 0;
}

/* The sequence numbers marked done anywhere in the file, sorted, in
 * w->dones (which is empty between commits when this runs). */
static int read_dones(struct ctd_wal *w, void *buf)
{
	unsigned kind;
	size_t len;
	int r;

	while ((r = ctd_journal_peek(w->j, buf, CTD_JOURNAL_MAX_ENTRY, &kind,
				   &len)) == 1) {
		const uint64_t *seq = buf;

		for (size_t i = 0; kind == WAL_DONE &&
				   i < len / sizeof(*seq); i++)
			if (push_done(w, seq[i]) < 0)
				return -ENOMEM;
		ctd_journal_consume(w->j);
	}
	if (w->ndones)
		qsort(w->dones, w->ndones, sizeof(*w->dones), cmp_u64);
	return r;
}

/* Calls fn for each record entry not marked done (a second pass). */
static int each_live(struct ctd_wal *w, void *buf,
		     int (*fn)(void *arg, uint64_t seq,
			       const struct ctd_record *rec), void *arg)
{
	unsigned kind;
	size_t len;
	int r, n = 0;

	ctd_journal_seek(w->j, 0);
	while ((r = ctd_journal_peek(w->j, buf, CTD_JOURNAL_MAX_ENTRY, &kind,
				   &len)) == 1) {
		uint64_t seq;
		struct ctd_record rec;

		ctd_journal_consume(w->j);
		if (kind != WAL_RECORD)
			continue;
		memcpy(&seq, buf, sizeof(seq));
		memcpy(&rec, (char *)buf + sizeof(seq), sizeof(rec));
		if (w->ndones &&
		    bsearch(&seq, w->dones, w->ndones, sizeof(seq), cmp_u64))
			continue;
		if (seq >= w->next_seq)
			w->next_seq = seq + 1;
		r = fn(arg, seq, &rec);
		if (r < 0)
			return r;
		n++;
	}
	return r < 0 ? r : n;
}

/* Scans the file: fn gets every live record. */
static int scan(struct ctd_wal *w,
		int (*fn)(void *arg, uint64_t seq, const struct ctd_record *rec),
		void *arg)
{
	void *buf = malloc(CTD_JOURNAL_MAX_ENTRY);
	int r;

	if (!buf)
		return -ENOMEM;
	ctd_journal_seek(w->j, 0);
	r = read_dones(w, buf);
	if (r >= 0)
		r = each_live(w, buf, fn, arg);
	w->ndones = 0;
	free(buf);
	return r;
}

struct recover_arg {
	int (*fn)(void *arg, const struct ctd_record *rec);
	void *arg;
};

static int recover_one(void *arg, uint64_t seq, const struct ctd_record *rec)
{
	struct recover_arg *ra = arg;

	(void)seq;
	return ra->fn(ra->arg, rec);
}

int ctd_wal_interrupted(struct ctd_wal *w, uint64_t *ret_token)
{
	unsigned kind;
	size_t len;
	int r, found = 0;
	void *buf;

	if (!ctd_journal_size(w->j))      /* a clean stop left it empty */
		return 0;
	buf = malloc(CTD_JOURNAL_MAX_ENTRY);
	if (!buf)
		return -ENOMEM;
	ctd_journal_seek(w->j, 0);
	while ((r = ctd_journal_peek(w->j, buf, CTD_JOURNAL_MAX_ENTRY, &kind,
				   &len)) == 1) {
		if (kind == WAL_ABSORB) {
			memcpy(ret_token, buf, sizeof(*ret_token));
			found = 1;
		}
		ctd_journal_consume(w->j);
	}
	free(buf);
	return r < 0 ? r : found;
}

int ctd_wal_recover(struct ctd_wal *w, uint64_t token,
		    int (*fn)(void *arg, const struct ctd_record *rec),
		    void *arg)
{
	struct recover_arg ra = { fn, arg };
	int n;

	if (!ctd_journal_size(w->j))
		return 0;
	/* Before anything goes elsewhere: a crash from here on leaves the
	 * log as it was plus this note, so the next start can undo what
	 * this recovery did and do it again, once. */
	n = ctd_journal_append(w->j, WAL_ABSORB, &token, sizeof(token));
	if (n < 0)
		return n;
	n = scan(w, recover_one, &ra);
	if (n < 0)
		return n;
	w->next_seq = 1;
	return ctd_journal_truncate(w->j) < 0 ? -errno : n;
}

uint64_t ctd_wal_add(struct ctd_wal *w, const struct ctd_record *rec)
{
	if (w->nbatch == w->batch_cap) {
		size_t cap = w->batch_cap ? w->batch_cap * 2 : 256;
		struct pending *b = realloc(w->batch, cap * sizeof(*b));

		if (!b)
			return 0;
		w->batch = b;
		w->batch_cap = cap;
	}
	w->batch[w->nbatch] = (struct pending){ w->next_seq, *rec, false };
	w->nbatch++;
	return w->next_seq++;
}

void ctd_wal_done(struct ctd_wal *w, uint64_t seq)
{
	/* The batch holds consecutive sequence numbers. */
	if (w->nbatch && seq >= w->batch[0].seq) {
		w->batch[seq - w->batch[0].seq].done = true;
		return;
	}
	if (push_done(w, seq) == 0)
		w->live--;
}

static size_t batch_entries(struct ctd_wal *w, struct ctd_journal_entry *e)
{
	size_t n = 0;

	for (size_t i = 0; i < w->nbatch; i++) {
		if (w->batch[i].done)
			continue;
		e[n++] = (struct ctd_journal_entry){
			WAL_RECORD, &w->batch[i].seq,
			sizeof(w->batch[i].seq), &w->batch[i].rec,
			sizeof(w->batch[i].rec) };
	}
	if (w->ndones)
		e[n++] = (struct ctd_journal_entry){
			WAL_DONE, w->dones,
			w->ndones * sizeof(*w->dones), NULL, 0 };
	return n;
}

static int write_batch(struct ctd_wal *w, size_t *ret_new)
{
	struct ctd_journal_entry *e = malloc((w->nbatch + 1) * sizeof(*e));
	size_t n;
	int r;

	if (!e)
		return -ENOMEM;
	n = batch_entries(w, e);
	*ret_new = n - (w->ndones ? 1 : 0);
	r = n ? ctd_journal_append_many(w->j, e, n) : 0;
	free(e);
	return r;
}

static int rewrite_one(void *arg, uint64_t seq, const struct ctd_record *rec)
{
	struct ctd_journal_entry e = { WAL_RECORD, &seq, sizeof(seq),
				     rec, sizeof(*rec) };

	return ctd_journal_append_many(arg, &e, 1);
}

static int refill(void *arg, struct ctd_journal *into)
{
	return scan(arg, rewrite_one, into);
}

/* Mostly done: the live records alone go to a new file. */
static int compact(struct ctd_wal *w)
{
	return ctd_journal_rewrite(w->j, refill, w);
}

int ctd_wal_commit(struct ctd_wal *w)
{
	size_t added = 0;
	int r = 0;

	if (!w->nbatch && !w->ndones)
		return 0;
	/* Nothing live after this commit: an empty file says it all. */
	for (size_t i = 0; i < w->nbatch; i++)
		added += !w->batch[i].done;
	if (!added && w->live == 0)
		r = ctd_journal_size(w->j) ? ctd_journal_truncate(w->j) : 0;
	else
		r = write_batch(w, &added);
	if (r < 0)
		return r;
	w->live += added;
	w->nbatch = w->ndones = 0;
	if (ctd_journal_size(w->j) > COMPACT_MIN &&
	    w->live * 256 < ctd_journal_size(w->j) / 4)
		return compact(w);
	return 0;
}

uint64_t ctd_wal_live(const struct ctd_wal *w)
{
	return w->live;
}

uint64_t ctd_wal_pending(const struct ctd_wal *w)
{
	uint64_t n = 0;

	for (size_t i = 0; i < w->nbatch; i++)
		n += !w->batch[i].done;
	return n;
}

uint64_t ctd_wal_size(const struct ctd_wal *w)
{
	return ctd_journal_size(w->j);
}
