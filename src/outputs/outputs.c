/* outputs: the table of every record output and the one rule for which
 * events an output takes. The outputs themselves and their descriptors
 * live in out_*.c; this file only lists them, in the order they open. */
#include "ctd/base/stats.h"
#include "ctd/config/config.h"
#include "ctd/outputs/out_file.h"
#include "ctd/outputs/out_ipfix.h"
#include "ctd/outputs/out_kafka.h"
#include "ctd/outputs/out_pg.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/out_stream.h"
#include "ctd/outputs/out_syslog.h"
#include "ctd/outputs/outputs.h"

const struct ctd_output_desc *const ctd_outputs[] = {
	&ctd_out_json_desc,
	&ctd_out_stream_desc,
	&ctd_out_kafka_desc,
	&ctd_out_ipfix_desc,
	&ctd_out_ctlog_desc,
	&ctd_out_syslog_desc,
	&ctd_out_store_desc,
	&ctd_out_pg_desc,
	NULL
};

_Static_assert(sizeof(ctd_outputs) / sizeof(ctd_outputs[0]) - 1 <= CTD_OUT_MAX,
	       "deliver and the counters hold CTD_OUT_MAX outputs");

unsigned ctd_output_events(const struct ctd_output_desc *d,
			   const struct ctd_config *cfg)
{
	if (d->events_setting == CTD_OUTPUT_EVENTS_FIXED)
		return d->events;
	return *(const unsigned *)((const char *)cfg + d->events_setting);
}
