/* outputs: the table of every record output and the one rule for which
 * events an output takes. The outputs themselves, their descriptors and
 * their settings live in out_*.c; this file only lists them, in the
 * order they open. */
#include <string.h>

#include "ctd/base/stats.h"
#include "ctd/config/config.h"
#include "ctd/outputs/out_file.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/out_ipfix.h"
#include "ctd/outputs/out_kafka.h"
#include "ctd/outputs/out_pg.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/out_stream.h"
#include "ctd/outputs/out_syslog.h"
#include "ctd/outputs/outputs.h"

/* One row per output, in the order they open. */
#define OUTPUTS(X) X(json) X(stream) X(kafka) X(ipfix) X(ctlog) X(syslog) \
	X(store) X(pg)

#define DESC(name) &ctd_out_##name##_desc,
#define SETTINGS(name) &ctd_out_##name##_settings,

const struct ctd_output_desc *const ctd_outputs[] = { OUTPUTS(DESC) NULL };
const struct ctd_setting_group *const ctd_output_settings[] = {
	OUTPUTS(SETTINGS) NULL
};

_Static_assert(sizeof(ctd_outputs) / sizeof(ctd_outputs[0]) - 1 <= CTD_OUT_MAX,
	       "deliver and the counters hold CTD_OUT_MAX outputs");

unsigned ctd_output_events(const struct ctd_output_desc *d,
			   const struct ctd_config *cfg)
{
	if (d->events_setting == CTD_OUTPUT_EVENTS_FIXED)
		return d->events;
	const char *set = ctd_config_group_get(cfg, d->settings);

	return *(const unsigned *)(const void *)(set + d->events_setting);
}

uint64_t ctd_output_counter(const struct ctd_output *out, const char *name)
{
	const struct ctd_counter_defs *defs = out->counters;

	for (size_t i = 0; defs && out->own && i < defs->n; i++)
		if (strcmp(defs->rows[i].name, name) == 0)
			return *(const uint64_t *)(const void *)
				((const char *)out->own + defs->rows[i].off);
	return 0;
}

const struct ctd_output_desc *ctd_output_find(const char *name)
{
	for (size_t i = 0; ctd_outputs[i]; i++)
		if (strcmp(ctd_outputs[i]->name, name) == 0)
			return ctd_outputs[i];
	return NULL;
}
