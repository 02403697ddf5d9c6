/* report_pg: `ctd report` (top, flows, nat, totals) answered from the
 * central PostgreSQL database of the postgresql output (schema in
 * out_pg.h): every exporter's rows together, so one report covers the
 * fleet, and for the same flows the same answer as the SQLite store's
 * (report_sqlite.h). */
#ifndef CTD_REPORT_PG_H
#define CTD_REPORT_PG_H

#include <stdbool.h>

#include "ctd/control/report_query.h"

extern const struct ctd_report_backend ctd_report_pg;

/* Whether a --store/--db value names a PostgreSQL database (a
 * postgresql:// or postgres:// URI) rather than an SQLite file. */
bool ctd_report_pg_is_uri(const char *target);

#endif
