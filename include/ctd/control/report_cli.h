/* report_cli: `ctd report SUBCOMMAND [options]`, a client of the flow
 * store: parses the command line into a query (report_query.h), runs it
 * on a backend and prints the rows (report_table.h). Owns the options,
 * their defaults and which subcommand takes which. */
#ifndef CTD_REPORT_CLI_H
#define CTD_REPORT_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctd/control/report_query.h"
#include "ctd/control/report_table.h"

struct ctd_report_args {
	struct ctd_report_query q;
	enum ctd_rfmt fmt;
	const char *store;       /* --store / --db; NULL: the config's */
};

/* argv[0] is "report". Times count from now_ms. -EINVAL with the
 * reason in err. */
int ctd_report_parse(int argc, char **argv, uint64_t now_ms,
		     struct ctd_report_args *ret, char *err, size_t errlen);

/* Runs a.q on backend b at target, printing to out. */
int ctd_report_run(const struct ctd_report_backend *b, const char *target,
		   const struct ctd_report_args *a, FILE *out, char *err,
		   size_t errlen);

/* `ctd report ...`: returns the exit status (0, 1 failed, 2 usage). */
int ctd_store_report_main(int argc, char **argv);

#endif
