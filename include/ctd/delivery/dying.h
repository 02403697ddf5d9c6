/* dying: one output's completed records that it could not take yet,
 * each re-sent after a random share of the grace period, as the kernel
 * does with its own dying list. Owns copies of the records in a bounded
 * pool and a min-heap of due times. Pure: time and randomness come in. */
#ifndef CTD_DYING_H
#define CTD_DYING_H

#include <stddef.h>
#include <stdint.h>

struct ctd_dying;
struct ctd_membudget;
struct ctd_record;

struct ctd_dying_cfg {
	uint32_t grace_ms;                  /* re-send within [0, grace) */
	size_t max;                         /* records held at most */
	uint32_t (*random)(void *arg);      /* uniform 32-bit values */
	void *random_arg;
	/* Shared with the other outputs' lists; NULL: no byte bound. */
	struct ctd_membudget *budget;
};

struct ctd_dying *ctd_dying_new(const struct ctd_dying_cfg *cfg);
void ctd_dying_free(struct ctd_dying *d);

/* Holds a copy of rec, due at now + random % grace, with a tag the
 * caller gets back for the head (deliver.c: the record's write-ahead log
 * sequence). -ENOSPC at the bound (max), -ENOBUFS when the memory
 * budget has no room for more, -ENOMEM when the pool cannot grow. */
int ctd_dying_add(struct ctd_dying *d, const struct ctd_record *rec,
		  uint64_t tag, int64_t now_us);

/* The earliest due time (monotonic µs), INT64_MAX when empty. */
int64_t ctd_dying_next_due(const struct ctd_dying *d);
/* The record with the earliest due time, or NULL when empty; valid until
 * the next call that changes the list. */
const struct ctd_record *ctd_dying_head(const struct ctd_dying *d);
uint64_t ctd_dying_head_tag(const struct ctd_dying *d);
/* The head was delivered (or spooled): forget it. */
void ctd_dying_pop(struct ctd_dying *d);
/* The head was refused again: due at now + random % grace. */
void ctd_dying_defer(struct ctd_dying *d, int64_t now_us);

size_t ctd_dying_count(const struct ctd_dying *d);
size_t ctd_dying_max(const struct ctd_dying *d);
/* Bytes charged to the budget (the pool's capacity). */
size_t ctd_dying_bytes(const struct ctd_dying *d);

#endif
