/* pg_top: `ctd report top` answered from a PostgreSQL flow database
 * (out_pg.h's rollups) instead of the SQLite store: the fleet's top
 * talkers, summed over every exporter. */
#ifndef CTD_PG_TOP_H
#define CTD_PG_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ctd_store_top_query;

/* Whether a --store value names a PostgreSQL database (a postgresql://
 * or postgres:// URI) rather than an SQLite file. */
bool ctd_pg_top_is_uri(const char *store);

/* ctd_store_top for q->path a PostgreSQL URI: the same lines or JSON.
 * Connects and waits (a command, not the daemon). -EIO with libpq's
 * message in err (the URI's password hidden). */
int ctd_pg_top(const struct ctd_store_top_query *q, uint64_t now_ms, FILE *f,
	       char *err, size_t errlen);

#endif
