/* retry: one output's completed records that it could not take yet,
 * each re-sent after a random share of the grace period, as the kernel
 * does with its own dying list (hence the public counters dying and
 * dying_peak, and --dying-max). Owns copies of the records in a bounded
 * pool and a min-heap of due times. Pure: time and randomness come in. */
#ifndef CTD_RETRY_H
#define CTD_RETRY_H

#include <stddef.h>
#include <stdint.h>

struct ctd_retry;
struct ctd_membudget;
struct ctd_record;

struct ctd_retry_cfg {
	uint32_t grace_ms;                  /* re-send within [0, grace) */
	size_t max;                         /* records held at most */
	uint32_t (*random)(void *arg);      /* uniform 32-bit values */
	void *random_arg;
	/* Shared with the other outputs' lists; NULL: no byte bound. */
	struct ctd_membudget *budget;
};

struct ctd_retry *ctd_retry_new(const struct ctd_retry_cfg *cfg);
void ctd_retry_free(struct ctd_retry *d);

/* Holds a copy of rec, due at now + random % grace, with a tag the
 * caller gets back for the head (deliver.c: the record's write-ahead log
 * sequence). -ENOSPC at the bound (max), -ENOBUFS when the memory
 * budget has no room for more, -ENOMEM when the pool cannot grow. */
int ctd_retry_add(struct ctd_retry *d, const struct ctd_record *rec,
		  uint64_t tag, int64_t now_us);

/* The earliest due time (monotonic µs), INT64_MAX when empty. */
int64_t ctd_retry_next_due(const struct ctd_retry *d);
/* The record with the earliest due time, or NULL when empty; valid until
 * the next call that changes the list. */
const struct ctd_record *ctd_retry_head(const struct ctd_retry *d);
uint64_t ctd_retry_head_tag(const struct ctd_retry *d);
/* The head was delivered (or spooled): forget it. */
void ctd_retry_pop(struct ctd_retry *d);
/* The head was refused again: due at now + random % grace. */
void ctd_retry_defer(struct ctd_retry *d, int64_t now_us);

size_t ctd_retry_count(const struct ctd_retry *d);
size_t ctd_retry_max(const struct ctd_retry *d);
/* Bytes charged to the budget (the pool's capacity). */
size_t ctd_retry_bytes(const struct ctd_retry *d);

#endif
