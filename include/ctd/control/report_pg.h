/* report_pg: `ctd report top` answered from the central PostgreSQL
 * database of the postgresql output: the rows of every exporter summed,
 * so one report covers the fleet. Top only (by src, dst, port, pair or
 * netns); the other reports need the local store. */
#ifndef CTD_REPORT_PG_H
#define CTD_REPORT_PG_H

#include <stdbool.h>

#include "ctd/control/report_query.h"

extern const struct ctd_report_backend ctd_report_pg;

/* Whether a --store/--db value names a PostgreSQL database (a
 * postgresql:// or postgres:// URI) rather than an SQLite file. */
bool ctd_report_pg_is_uri(const char *target);

#endif
