/* store_top: `ctd report top`, the top talkers from the flow store's
 * per-minute rollups (out_store.h). Opens the database read-only, so it
 * runs beside a writing ctd (WAL) and never changes the store. */
#ifndef CTD_STORE_TOP_H
#define CTD_STORE_TOP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct ctd_store_top_query {
	const char *path;
	bool by_dst;              /* rollup_dst instead of rollup_src */
	uint64_t since_ms;        /* rollup minutes from now_ms - since_ms */
	unsigned limit;
	bool json;
};

/* Prints the top addresses by bytes to f. -ENOENT without a store,
 * -EIO when SQLite fails (message in err). */
int ctd_store_top(const struct ctd_store_top_query *q, uint64_t now_ms,
		  FILE *f, char *err, size_t errlen);

/* `ctd report ...`: argv[0] is "report". Returns the exit status. */
int ctd_store_report_main(int argc, char **argv);

#endif
