/* store_rollup: one batch's rollups, summed in memory before they reach
 * the flow store. Owns a fixed table of cells, one per (span, kind,
 * bucket, key), allocated once: adding a row costs no allocation, and a
 * batch of flows between the same hosts becomes one upsert per cell
 * instead of fifteen per row. PURE: no SQLite, no clock. */
#ifndef CTD_STORE_ROLLUP_H
#define CTD_STORE_ROLLUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_record;

/* What a rollup row is keyed by (the `kind` column, out_store.h). */
enum ctd_rollup_kind {
	CTD_ROLLUP_SRC,      /* original source address */
	CTD_ROLLUP_DST,      /* original destination address */
	CTD_ROLLUP_PORT,     /* protocol number, destination port (3 bytes) */
	CTD_ROLLUP_PAIR,     /* source then destination: not kept (.c) */
	CTD_ROLLUP_NETNS,    /* the namespace's label ("" ctd's own) */
	CTD_ROLLUP__COUNT
};

/* Bucket widths: minute, hour, day (UTC days). */
enum ctd_rollup_span { CTD_SPAN_MINUTE, CTD_SPAN_HOUR, CTD_SPAN_DAY,
		       CTD_SPAN__COUNT };

extern const uint64_t ctd_rollup_span_ms[CTD_SPAN__COUNT];
/* The finest span a kind is kept at (CTD_SPAN__COUNT: not kept). */
extern const enum ctd_rollup_span ctd_rollup_finest[CTD_ROLLUP__COUNT];
/* Kinds whose hour and day cells the store folds from their minute
 * cells once the hour is over (out_store.c), rather than adding each
 * row to them: source and destination, which have many keys. */
extern const bool ctd_rollup_folded[CTD_ROLLUP__COUNT];

#define CTD_ROLLUP_KEY_MAX 48   /* CTD_NETNS_NAME_MAX; a v6 pair is 32 */
#define CTD_ROLLUP_PER_ROW (CTD_SPAN__COUNT * (CTD_ROLLUP__COUNT - 1))

struct ctd_rollup_cell {
	uint64_t bucket_ms;      /* the bucket's start */
	uint64_t flows, packets, bytes;
	uint8_t span, kind, klen;
	uint8_t key[CTD_ROLLUP_KEY_MAX];
};

struct ctd_rollup;

/* A table of cap cells (at least 4 * CTD_ROLLUP_PER_ROW). */
int ctd_rollup_new(size_t cap, struct ctd_rollup **ret);
void ctd_rollup_free(struct ctd_rollup *r);

/* The key of one kind for rec, in key (CTD_ROLLUP_KEY_MAX bytes); netns
 * is the record's label. Returns its length. */
size_t ctd_rollup_key(enum ctd_rollup_kind kind, const struct ctd_record *rec,
		      const char *netns, uint8_t *key);

/* Adds rec's share (one flow, both directions' packets and bytes, by
 * its end time) to every span and kind, but the hour and day cells of
 * folded kinds when rec ended at or after folded_ms (its hour is not
 * folded yet: the fold will count it). false, adding nothing, when the
 * table is too full to take it: write the cells out, clear, add again. */
bool ctd_rollup_add(struct ctd_rollup *r, const struct ctd_record *rec,
		    const char *netns, uint64_t folded_ms);

/* The cells in use, *pos from 0; NULL after the last. */
const struct ctd_rollup_cell *ctd_rollup_next(const struct ctd_rollup *r,
					      size_t *pos);
size_t ctd_rollup_count(const struct ctd_rollup *r);
void ctd_rollup_clear(struct ctd_rollup *r);

#endif
