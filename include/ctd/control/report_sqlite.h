/* report_sqlite: `ctd report` answered from ctd's SQLite flow store
 * (schema in out_store.h), opened read-only. Owns every SQL text the
 * reports use, so another backend mirrors this one file. */
#ifndef CTD_REPORT_SQLITE_H
#define CTD_REPORT_SQLITE_H

#include "ctd/control/report_query.h"

extern const struct ctd_report_backend ctd_report_sqlite;

#endif
