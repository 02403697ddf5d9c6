/* store_writer: the flow store's batches handed from the loop to a
 * thread of their own, which writes them. SQLite's statements and the
 * commit's fsync block, for as long as the disk takes; in the loop they
 * stopped the reader (design: modules never block), so they run here.
 * Owns the thread and two batches of records: the loop fills one while
 * the thread writes the other (double buffering), so the loop only
 * copies records and never waits for the thread. The one being filled
 * can grow for a burst the thread is too slow for (grow), and shrinks
 * back once it is empty again. The writing itself is
 * the caller's (out_store.c): a function called on the thread.
 *
 * Threads: every function here is for the loop's thread, but the write
 * function, which runs on the writer's; they share only what the mutex
 * guards. */
#ifndef CTD_STORE_WRITER_H
#define CTD_STORE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_record;
struct ctd_store_writer;

/* What the writer did, summed since the start (bytes, bytes_per_flow:
 * gauges). The write function adds to its own copy; the loop gets a
 * snapshot from poll. */
struct ctd_store_tally {
	uint64_t rows, repeats, commits, commit_us;
	uint64_t errors, err_busy, err_full, err_io;
	uint64_t pruned, pruned_size, prune_errors;
	uint64_t bytes, bytes_per_flow;
	char error[160];          /* the last failure's words, "" after a success */
};

/* Writes n records in one transaction on the writer's thread; 0 when
 * it committed, -errno (the tally says why) when not: the batch is then
 * kept and written again when the loop calls send. */
typedef int (*ctd_store_write_fn)(void *arg, const struct ctd_record *rec,
				  size_t n, struct ctd_store_tally *t);

struct ctd_store_writer_cfg {
	size_t cap;               /* records per batch */
	ctd_store_write_fn write;
	void *arg;
	/* Called on the writer's thread after each batch (ev_async_send):
	 * the loop should poll. NULL: the loop calls wait instead. */
	void (*notify)(void *arg);
	void *notify_arg;
	int nice;                 /* the thread's nice (0: the process's) */
};

/* What poll tells the loop. */
struct ctd_store_writer_state {
	uint64_t done;            /* mark of the last batch committed */
	uint64_t batches;         /* batches committed */
	uint64_t waits;           /* sends refused: the writer still busy */
	bool busy;                /* a batch in the writer's hands (being
	                           * written, or failed and kept) */
	bool failed;              /* ... and its last write failed */
};

int ctd_store_writer_new(const struct ctd_store_writer_cfg *cfg,
			 struct ctd_store_writer **ret);
/* Stops the thread once its current write is done and frees; a batch
 * not written yet is dropped (abandon's rule). */
void ctd_store_writer_free(struct ctd_store_writer *w);

/* Copies rec into the batch being filled; false when it is full. */
bool ctd_store_writer_add(struct ctd_store_writer *w,
			  const struct ctd_record *rec);
/* Records in the batch being filled, and how many it can hold. */
size_t ctd_store_writer_filling(const struct ctd_store_writer *w);
size_t ctd_store_writer_room(const struct ctd_store_writer *w);
/* Makes the batch being filled hold cap records (more than it can):
 * a burst that would find both batches full. The batch goes back to
 * cfg.cap once written (poll) or empty again. -ENOMEM: unchanged. */
int ctd_store_writer_grow(struct ctd_store_writer *w, size_t cap);
/* Bytes the two batches hold past cfg.cap each: what growth costs now
 * (the caller charges it to its memory budget). */
size_t ctd_store_writer_extra(const struct ctd_store_writer *w);

/* Hands the batch being filled to the writer, to be known by mark (the
 * loop's count of records taken when it ends) once it commits. When
 * the writer still holds a batch: a failed one is tried again, and
 * -EBUSY (a filled batch waiting: counted once in waits) leaves the
 * filled one with the loop. An empty batch is -ENODATA, unless empty:
 * then it goes too, for the write function's upkeep (n = 0). */
int ctd_store_writer_send(struct ctd_store_writer *w, uint64_t mark,
			  bool empty);

/* A snapshot of the state and the tally. */
void ctd_store_writer_poll(struct ctd_store_writer *w,
			   struct ctd_store_writer_state *st,
			   struct ctd_store_tally *t);

/* Blocks until the writer has no batch being written (a failed one may
 * be kept). For tests and benchmarks without a loop. */
void ctd_store_writer_wait(struct ctd_store_writer *w);

/* Shutdown: drops the filled batch and a failed one kept; one being
 * written finishes (its commit may still land: replays are ignored). */
void ctd_store_writer_abandon(struct ctd_store_writer *w);

/* Runs fn(arg, t) on the caller's thread while the writer writes
 * nothing: waits for the batch being written first (tests and the
 * public prune and trim use the database this way). Returns fn's. */
int64_t ctd_store_writer_call(struct ctd_store_writer *w,
			      int64_t (*fn)(void *arg, struct ctd_store_tally *t),
			      void *arg);

#endif
