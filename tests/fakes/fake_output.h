/* fake_output: a record output for the delivery modules' tests: takes
 * records while accept is set (up to limit), makes taken ones final at
 * flush unless hold_back, and remembers what it got: how often each id
 * (below FAKE_OUTPUT_IDS), in which order, the last one's events. */
#ifndef CTD_TEST_FAKE_OUTPUT_H
#define CTD_TEST_FAKE_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/outputs/output.h"

#define FAKE_OUTPUT_IDS 256

struct fake_output {
	struct ctd_output base;
	bool accept;
	size_t limit;          /* takes no more than this (0: any) */
	size_t taken;
	unsigned got[FAKE_OUTPUT_IDS];   /* records taken, by id */
	uint32_t order[FAKE_OUTPUT_IDS]; /* the first ids, in the order taken */
	uint32_t last_id;
	uint8_t last_events;   /* of the last record taken */
	uint64_t final;        /* settled count */
	bool hold_back;        /* taken records are not final yet */
	bool abandoned;
	size_t raw_bytes;      /* replayed raw bytes taken */
	bool *freed;           /* set when freed (NULL: not told) */
};

/* A fake named name, taking records (accept), with a settled op. */
void fake_output_init(struct fake_output *f, const char *name, bool accept);

#endif
