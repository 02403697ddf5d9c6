/* outputs: the table of record outputs ctd can open. Each out_*.c
 * exports one descriptor saying what the output is called, whether a
 * configuration turns it on, how to open it and which events it takes;
 * main.c opens the enabled ones in table order and the privilege drop
 * names their spool files from it. Adding an output is its own file and
 * one row in src/outputs.c. */
#ifndef CTD_OUTPUTS_H
#define CTD_OUTPUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_config;
struct ctd_counter_defs;
struct ctd_output;
struct ctd_owner;
struct ctd_setting_group;
struct ev_loop;

/* events_setting of an output that always takes its default events. */
#define CTD_OUTPUT_EVENTS_FIXED SIZE_MAX

struct ctd_output_desc {
	/* Stable: names the output's counters and its spool file; the
	 * output it creates carries the same name. */
	const char *name;
	/* Its settings: rows, defaults, checks, --help (setting.h). */
	const struct ctd_setting_group *settings;
	/* Its own counters' rows (stats.h), as its outputs show them;
	 * NULL: none. The parent of shards reads sums by them. */
	const struct ctd_counter_defs *counters;
	bool (*enabled)(const struct ctd_config *cfg);
	/* Opens the output cfg describes; files it opens are handed to
	 * owner (safefile.c; NULL: none). Logs why it cannot, once, and
	 * returns -errno. */
	int (*create)(struct ev_loop *loop, const struct ctd_config *cfg,
		      const struct ctd_owner *owner, struct ctd_output **ret);
	/* What it takes (1 << CTD_EV_*): these events, unless
	 * events_setting is the offsetof in its settings' struct of the
	 * setting that chooses them. */
	unsigned events;
	size_t events_setting;
};

/* Every output in the order they open, NULL-terminated; at most
 * CTD_OUT_MAX. Only the first four can take event records (deliver.c):
 * the outputs with an events setting come first. */
extern const struct ctd_output_desc *const ctd_outputs[];

/* Every output's settings group, in the same order, NULL-terminated:
 * what ctd_config_init and the command line take. */
extern const struct ctd_setting_group *const ctd_output_settings[];

/* The descriptor called name (the counters' output name); NULL. */
const struct ctd_output_desc *ctd_output_find(const char *name);

/* out's own counter called name (its rows, stats.h); 0 when it has
 * none such. For tests and tools: the reporting side reads the rows. */
uint64_t ctd_output_counter(const struct ctd_output *out, const char *name);

/* The events d takes under cfg, for ctd_deliver_add. */
unsigned ctd_output_events(const struct ctd_output_desc *d,
			   const struct ctd_config *cfg);

#endif
