/* report_table: prints `ctd report` rows as an aligned table with human
 * units (the default), JSON or CSV. A ctd_report_printer is the sink a
 * backend writes rows into (report_query.h); owns only its stream's
 * layout state. */
#ifndef CTD_REPORT_TABLE_H
#define CTD_REPORT_TABLE_H

#include <stdint.h>
#include <stdio.h>

#include "ctd/control/report_query.h"

enum ctd_rfmt { CTD_RFMT_TABLE, CTD_RFMT_JSON, CTD_RFMT_CSV };

struct ctd_report_printer {
	FILE *f;
	enum ctd_rfmt fmt;
	const struct ctd_rcol *cols;
	size_t ncols;
	uint64_t rows;
};

/* Header line, or JSON's opening with the query (report, window, by). */
void ctd_report_print_begin(struct ctd_report_printer *p, FILE *f,
			    enum ctd_rfmt fmt, const struct ctd_report_query *q);
/* A ctd_report_sink's row: arg is the printer. */
void ctd_report_print_row(void *arg, const struct ctd_rval *v);
void ctd_report_print_end(struct ctd_report_printer *p);

/* "512 B", "1.5 KiB", "1.2 GiB": three digits at most. */
void ctd_report_human_bytes(uint64_t v, char *buf, size_t cap);

#endif
