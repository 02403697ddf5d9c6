/* wal: journal.c's entry format (checksummed, torn tails skipped) with
 * the log's own kinds: a record with its sequence number, a list of
 * sequence numbers now done, and the notes a recovery begins and ends
 * with. The common case costs nothing on disk: a record made final
 * before the commit (a file output's write succeeded) is dropped from
 * the batch unwritten.
 *
 * The log is a few segment files (slots): slot 0 at the log's path (an
 * older ctd's single-file log is a slot 0), slot k at "<path>.<k>". Each
 * is self-contained: a record's DONE entry goes to the segment holding
 * the record, and a segment covers one contiguous range of sequence
 * numbers, so finding it takes a look at each slot. New records go to
 * the current segment; past SEG_MAX the next commit starts another in a
 * free slot. A segment whose records are all done is emptied without
 * reading it: under steady traffic with records settled in order (the
 * store's writer thread) the old segments drain and are dropped whole.
 * Only when every slot is taken (a few long-lived records spread over
 * all of them: a collector that acknowledges late) is a segment read
 * back and rewritten with its live records alone, which keeps the log
 * bounded.
 *
 * Recovery moves every live record to the spool all or none. Slot 0
 * gets an ABSORB note (the caller's token) before any record moves and
 * a MOVED note once all have; only then are the segments emptied, slot
 * 0 last. A crash before MOVED: the next start finds ABSORB alone, the
 * caller undoes the partial move and recovers again. A crash after it:
 * the next start finds both and only finishes emptying. */
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

/* 8 slots of 4 MiB: the store holds up to 2 x 32,768 records unsettled
 * (272 bytes each on disk, ~17 MiB), which spans 5 segments, plus the
 * current one and one draining; the rest is slack before the fallback
 * rewrite. A 4 MiB segment drains soon after its last record is
 * settled, so the log stays within a few MiB of what is live. */
#define NSLOT 8
#define SEG_MAX (4u << 20)
/* A record entry on disk: journal.c's 16-byte header, seq, record. */
#define REC_ENTRY (16 + sizeof(uint64_t) + sizeof(struct ctd_record))

/* The log's entry kinds; the numbers are on disk, and the spool's
 * (spool.h) are others, as they were when both shared one list. */
enum {
	WAL_RECORD = 3,   /* a uint64_t sequence, a struct ctd_record */
	WAL_DONE = 4,     /* sequences now final (uint64_t[]) */
	WAL_ABSORB = 6,   /* a recovery began (a uint64_t token) */
	WAL_MOVED = 7,    /* ...and moved every record (the same token) */
};

struct pending {
	uint64_t seq;
	struct ctd_record rec;
	bool done;                   /* final before it was written */
};

struct seg {
	struct ctd_journal *j;       /* NULL: not opened (no file yet) */
	uint64_t first, last;        /* sequences written here; 0: none */
	uint64_t live;               /* written here, not done */
	uint64_t *dones;             /* done, not written yet */
	size_t ndones, dones_cap;
	bool broken;                 /* could not be made: never use */
};

struct ctd_wal {
	struct seg seg[NSLOT];
	unsigned cur;                /* where new records go */
	char *path;
	struct ctd_owner owner;
	bool has_owner;
	bool stale;                  /* a previous run's, not recovered yet */
	bool unfinished;             /* moved by a recovery, not emptied */
	uint64_t next_seq;
	uint64_t live;               /* written, not done */
	struct pending *batch;       /* added since the last commit */
	size_t nbatch, batch_cap;
};

/* Whether a log entry of this kind may have this length. */
static bool kind_fits(unsigned kind, size_t len)
{
	switch (kind) {
	case WAL_RECORD:
		return len == sizeof(uint64_t) + sizeof(struct ctd_record);
	case WAL_ABSORB:
	case WAL_MOVED:
		return len == sizeof(uint64_t);
	case WAL_DONE:
		return len % sizeof(uint64_t) == 0;
	default:
		return false;
	}
}

static int slot_path(const struct ctd_wal *w, unsigned k, char *buf,
		     size_t cap)
{
	int n = k ? snprintf(buf, cap, "%s.%u", w->path, k)
		  : snprintf(buf, cap, "%s", w->path);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Slot k's file, created when create is set, else -ENOENT when absent
 * (a probe for a previous run's segments makes nothing). */
static int open_slot(struct ctd_wal *w, unsigned k, bool create)
{
	const struct ctd_owner *o = w->has_owner ? &w->owner : NULL;
	char path[4096];
	int r = slot_path(w, k, path, sizeof(path));

	if (r < 0)
		return r;
	if (create)
		return ctd_journal_open(path, o, kind_fits, &w->seg[k].j);
	return ctd_journal_open_existing(path, o, kind_fits, &w->seg[k].j);
}

static uint64_t seg_size(const struct seg *s)
{
	return s->j ? ctd_journal_size(s->j) : 0;
}

static int open_slots(struct ctd_wal *w)
{
	int r = open_slot(w, 0, true);

	for (unsigned k = 1; r >= 0 && k < NSLOT; k++) {
		r = open_slot(w, k, false);
		if (r == -ENOENT)
			r = 0;
	}
	for (unsigned k = 0; r >= 0 && k < NSLOT; k++)
		w->stale |= seg_size(&w->seg[k]) > 0;
	return r;
}

int ctd_wal_open(const char *path, const struct ctd_owner *owner,
		 struct ctd_wal **ret)
{
	struct ctd_wal *w = calloc(1, sizeof(*w));
	int r;

	if (!w || !(w->path = strdup(path))) {
		free(w);
		return -ENOMEM;
	}
	w->next_seq = 1;
	if (owner) {
		w->owner = *owner;
		w->has_owner = true;
	}
	r = open_slots(w);
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
	for (unsigned k = 0; k < NSLOT; k++) {
		ctd_journal_free(w->seg[k].j);
		free(w->seg[k].dones);
	}
	free(w->path);
	free(w->batch);
	free(w);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int push_done(struct seg *s, uint64_t seq)
{
	if (s->ndones == s->dones_cap) {
		size_t cap = s->dones_cap ? s->dones_cap * 2 : 256;
		uint64_t *d = realloc(s->dones, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		s->dones = d;
		s->dones_cap = cap;
	}
	s->dones[s->ndones++] = seq;
	return 0;
}

/* The sequence numbers marked done anywhere in segment s, sorted, in
 * s->dones (with any not written yet). */
static int read_dones(struct seg *s, void *buf)
{
	unsigned kind;
	size_t len;
	int r;

	ctd_journal_seek(s->j, 0);
	while ((r = ctd_journal_peek(s->j, buf, CTD_JOURNAL_MAX_ENTRY, &kind,
				   &len)) == 1) {
		const uint64_t *seq = buf;

		for (size_t i = 0; kind == WAL_DONE &&
				   i < len / sizeof(*seq); i++)
			if (push_done(s, seq[i]) < 0)
				return -ENOMEM;
		ctd_journal_consume(s->j);
	}
	if (s->ndones)
		qsort(s->dones, s->ndones, sizeof(*s->dones), cmp_u64);
	return r;
}

typedef int each_fn(void *arg, uint64_t seq, const struct ctd_record *rec);

/* Calls fn for each record entry of s not marked done (a second pass). */
static int each_live(struct seg *s, void *buf, each_fn *fn, void *arg)
{
	unsigned kind;
	size_t len;
	int r, n = 0;

	ctd_journal_seek(s->j, 0);
	while ((r = ctd_journal_peek(s->j, buf, CTD_JOURNAL_MAX_ENTRY, &kind,
				   &len)) == 1) {
		uint64_t seq;
		struct ctd_record rec;

		ctd_journal_consume(s->j);
		if (kind != WAL_RECORD)
			continue;
		memcpy(&seq, buf, sizeof(seq));
		memcpy(&rec, (char *)buf + sizeof(seq), sizeof(rec));
		if (s->ndones &&
		    bsearch(&seq, s->dones, s->ndones, sizeof(seq), cmp_u64))
			continue;
		r = fn(arg, seq, &rec);
		if (r < 0)
			return r;
		n++;
	}
	return r < 0 ? r : n;
}

/* Reads segment s back: fn gets every live record. */
static int scan(struct seg *s, void *buf, each_fn *fn, void *arg)
{
	int r = read_dones(s, buf);

	if (r >= 0)
		r = each_live(s, buf, fn, arg);
	s->ndones = 0;
	return r;
}

/* The first record's sequence in s (how segments a previous run left
 * are put in order), or UINT64_MAX when it has none. */
static uint64_t first_seq(struct seg *s, void *buf)
{
	unsigned kind;
	size_t len;
	uint64_t seq = UINT64_MAX;

	ctd_journal_seek(s->j, 0);
	while (ctd_journal_peek(s->j, buf, CTD_JOURNAL_MAX_ENTRY, &kind,
				&len) == 1) {
		ctd_journal_consume(s->j);
		if (kind == WAL_RECORD) {
			memcpy(&seq, buf, sizeof(seq));
			break;
		}
	}
	return seq;
}

/* The slots with anything in them, oldest records first; returns how
 * many. */
static size_t order_slots(struct ctd_wal *w, void *buf, unsigned *order)
{
	uint64_t key[NSLOT];
	size_t n = 0;

	for (unsigned k = 0; k < NSLOT; k++) {
		size_t i;

		if (!seg_size(&w->seg[k]))
			continue;
		key[k] = first_seq(&w->seg[k], buf);
		for (i = n; i > 0 && key[order[i - 1]] > key[k]; i--)
			order[i] = order[i - 1];
		order[i] = k;
		n++;
	}
	return n;
}

/* Nothing in memory refers to what the segments hold. */
static void forget_all(struct ctd_wal *w)
{
	for (unsigned k = 0; k < NSLOT; k++) {
		w->seg[k].first = w->seg[k].last = 0;
		w->seg[k].live = 0;
		w->seg[k].ndones = 0;
	}
	w->live = 0;
	w->cur = 0;
}

/* Empties every segment, slot 0 (with the recovery's notes) last: until
 * it is empty, the next start knows the move was complete. */
static int empty_all(struct ctd_wal *w)
{
	for (unsigned k = NSLOT; k-- > 0;) {
		struct seg *s = &w->seg[k];
		int r = seg_size(s) ? ctd_journal_truncate(s->j) : 0;

		if (r < 0) {
			w->unfinished = true;
			return r;
		}
	}
	w->unfinished = w->stale = false;
	return 0;
}

static uint64_t log_size(const struct ctd_wal *w)
{
	uint64_t n = 0;

	for (unsigned k = 0; k < NSLOT; k++)
		n += seg_size(&w->seg[k]);
	return n;
}

/* Scans slot 0's notes: 1 with the last ABSORB's token, 2 when a MOVED
 * followed it, 0 when there is none, or -errno. */
static int read_notes(struct seg *s, void *buf, uint64_t *ret_token)
{
	unsigned kind;
	size_t len;
	int r, found = 0;

	ctd_journal_seek(s->j, 0);
	while ((r = ctd_journal_peek(s->j, buf, CTD_JOURNAL_MAX_ENTRY, &kind,
				   &len)) == 1) {
		if (kind == WAL_ABSORB) {
			memcpy(ret_token, buf, sizeof(*ret_token));
			found = 1;
		}
		if (kind == WAL_MOVED && found)
			found = 2;
		ctd_journal_consume(s->j);
	}
	return r < 0 ? r : found;
}

int ctd_wal_interrupted(struct ctd_wal *w, uint64_t *ret_token)
{
	void *buf;
	int r;

	if (!seg_size(&w->seg[0]))        /* a clean stop left it empty */
		return 0;
	buf = malloc(CTD_JOURNAL_MAX_ENTRY);
	if (!buf)
		return -ENOMEM;
	r = read_notes(&w->seg[0], buf, ret_token);
	free(buf);
	if (r != 2)
		return r;
	/* Every record reached the spool; only the emptying was cut short. */
	forget_all(w);
	r = empty_all(w);
	return r < 0 ? r : 0;
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

/* Every live record of every segment to fn, oldest first. */
static int move_all(struct ctd_wal *w, struct recover_arg *ra)
{
	unsigned order[NSLOT];
	void *buf = malloc(CTD_JOURNAL_MAX_ENTRY);
	size_t n;
	int r = 0, moved = 0;

	if (!buf)
		return -ENOMEM;
	n = order_slots(w, buf, order);
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = scan(&w->seg[order[i]], buf, recover_one, ra);
		moved += r > 0 ? r : 0;
	}
	free(buf);
	return r < 0 ? r : moved;
}

int ctd_wal_recover(struct ctd_wal *w, uint64_t token,
		    int (*fn)(void *arg, const struct ctd_record *rec),
		    void *arg)
{
	struct recover_arg ra = { fn, arg };
	struct ctd_journal *j = w->seg[0].j;
	int n, r;

	if (w->unfinished && (r = empty_all(w)) < 0)
		return r;
	if (!log_size(w))
		return 0;
	/* Before anything goes elsewhere: a crash from here until MOVED
	 * leaves the log as it was plus this note, so the next start can
	 * undo what this recovery did and do it again, once. */
	r = ctd_journal_append(j, WAL_ABSORB, &token, sizeof(token));
	if (r < 0)
		return r;
	n = move_all(w, &ra);
	if (n < 0)
		return n;
	r = ctd_journal_append(j, WAL_MOVED, &token, sizeof(token));
	if (r < 0)
		return r;
	/* The move is done whatever the emptying does: what it leaves,
	 * the next commit or start empties before anything else. */
	forget_all(w);
	empty_all(w);
	return n;
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

/* The segment whose range holds seq: one look per slot. */
static struct seg *find_seg(struct ctd_wal *w, uint64_t seq)
{
	for (unsigned k = 0; k < NSLOT; k++) {
		struct seg *s = &w->seg[k];

		if (s->first && s->first <= seq && seq <= s->last)
			return s;
	}
	return NULL;
}

void ctd_wal_done(struct ctd_wal *w, uint64_t seq)
{
	struct seg *s;

	/* The batch holds consecutive sequence numbers. */
	if (w->nbatch && seq >= w->batch[0].seq) {
		w->batch[seq - w->batch[0].seq].done = true;
		return;
	}
	s = find_seg(w, seq);
	if (s && s->live && push_done(s, seq) == 0) {
		s->live--;
		w->live--;
	}
}

/* A segment with nothing live is emptied unread; else its new dones
 * are written to it. */
static int flush_seg(struct seg *s)
{
	int r = 0;

	if (!s->live && seg_size(s))
		r = ctd_journal_truncate(s->j);
	else if (s->ndones)
		r = ctd_journal_append(s->j, WAL_DONE, s->dones,
				       s->ndones * sizeof(*s->dones));
	if (r < 0)
		return r;
	s->ndones = 0;
	if (!s->live)
		s->first = s->last = 0;
	return 0;
}

static int flush_dones(struct ctd_wal *w)
{
	for (unsigned k = 0; k < NSLOT; k++) {
		int r = flush_seg(&w->seg[k]);

		if (r < 0)
			return r;
	}
	return 0;
}

static bool slot_free(const struct ctd_wal *w, unsigned k)
{
	const struct seg *s = &w->seg[k];

	return k != w->cur && !s->broken && !s->first && !seg_size(s);
}

static int free_slot(const struct ctd_wal *w)
{
	for (unsigned k = 0; k < NSLOT; k++)
		if (slot_free(w, k))
			return (int)k;
	return -1;
}

/* The current segment is full: new records go to a free slot, made now
 * if it has no file. One that cannot be made is not tried again. */
static void rotate(struct ctd_wal *w)
{
	int k;

	if (seg_size(&w->seg[w->cur]) < SEG_MAX)
		return;
	while ((k = free_slot(w)) >= 0) {
		if (w->seg[k].j || open_slot(w, (unsigned)k, true) == 0) {
			w->cur = (unsigned)k;
			return;
		}
		w->seg[k].broken = true;
	}
}

/* The batch's unwritten records as entries; returns how many. */
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
	return n;
}

/* The range of the current segment now holds the entries just written. */
static void extend(struct ctd_wal *w, const struct ctd_journal_entry *e,
		   size_t n)
{
	struct seg *s = &w->seg[w->cur];

	if (!s->first)
		memcpy(&s->first, e[0].head, sizeof(s->first));
	memcpy(&s->last, e[n - 1].head, sizeof(s->last));
	s->live += n;
	w->live += n;
}

static int write_records(struct ctd_wal *w)
{
	struct ctd_journal_entry *e;
	size_t n;
	int r = 0;

	if (!w->nbatch)
		return 0;
	e = malloc(w->nbatch * sizeof(*e));
	if (!e)
		return -ENOMEM;
	n = batch_entries(w, e);
	if (n) {
		rotate(w);
		r = ctd_journal_append_many(w->seg[w->cur].j, e, n);
	}
	if (r == 0 && n)
		extend(w, e, n);
	if (r == 0)
		w->nbatch = 0;
	free(e);
	return r;
}

static int rewrite_one(void *arg, uint64_t seq, const struct ctd_record *rec)
{
	struct ctd_journal_entry e = { WAL_RECORD, &seq, sizeof(seq),
				     rec, sizeof(*rec) };

	return ctd_journal_append_many(arg, &e, 1);
}

struct refill_arg {
	struct seg *s;
	void *buf;
};

static int refill(void *arg, struct ctd_journal *into)
{
	struct refill_arg *ra = arg;

	return scan(ra->s, ra->buf, rewrite_one, into);
}

/* Segment s, mostly done, is rewritten with its live records alone. */
static int compact(struct seg *s)
{
	struct refill_arg ra = { s, malloc(CTD_JOURNAL_MAX_ENTRY) };
	int r;

	if (!ra.buf)
		return -ENOMEM;
	r = ctd_journal_rewrite(s->j, refill, &ra);
	free(ra.buf);
	return r;
}

static uint64_t garbage(const struct seg *s)
{
	uint64_t size = seg_size(s), used = s->live * REC_ENTRY;

	return size > used ? size - used : 0;
}

/* The fallback: every slot in use and the current one full. Of the
 * segments at least half done-with bytes, the one with the fewest live
 * records is rewritten (the current one too: it may be the only one). */
static int bound(struct ctd_wal *w)
{
	struct seg *best = NULL;

	if (seg_size(&w->seg[w->cur]) < SEG_MAX || free_slot(w) >= 0)
		return 0;
	for (unsigned k = 0; k < NSLOT; k++) {
		struct seg *s = &w->seg[k];

		if (s->first && garbage(s) > SEG_MAX / 2 &&
		    (!best || s->live < best->live))
			best = s;
	}
	return best ? compact(best) : 0;
}

int ctd_wal_commit(struct ctd_wal *w)
{
	int r;

	/* A recovery's emptying first (slot 0 last), then: a log not
	 * recovered yet is a previous run's, not to be drained here. */
	if (w->unfinished && (r = empty_all(w)) < 0)
		return r;
	if (w->stale)
		return -EBUSY;
	r = flush_dones(w);
	if (r == 0)
		r = write_records(w);
	if (r == 0)
		r = bound(w);
	return r;
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
	return log_size(w);
}
