/* reload: what a SIGHUP's new configuration changes in a running ctd.
 * The settings a reload can apply (config.c's table says which) go live:
 * the record filters, the event groups subscribed, the file outputs'
 * paths; the others are named in the log as needing a restart. Owns
 * nothing: it works on the running modules it is given. */
#ifndef CTD_RELOAD_H
#define CTD_RELOAD_H

#include <stdbool.h>

struct ctd_config;
struct ctd_deliver;
struct ctd_filter;
struct ctd_nlsrc;

struct ctd_reload_target {
	struct ctd_config *cfg;        /* the running configuration */
	struct ctd_filter **filter;    /* replaced when the filters change */
	struct ctd_deliver *deliver;
	struct ctd_nlsrc *nlsrc;       /* NULL: no socket to change */
	bool text;                     /* -f prints NEW/UPDATE lines */
};

/* The event groups the configuration needs (nlsrc.h CTD_NLSRC_*). */
unsigned ctd_reload_groups(const struct ctd_reload_target *t,
			   const struct ctd_config *o);
/* Logs once where record-labels takes the label names from (the start
 * and each reload; the outputs read the same file without a word). */
void ctd_reload_log_labels(const struct ctd_config *o);
/* Applies next (already checked) and reopens the outputs' files.
 * Returns 0, or -errno when an output could not take it: then nothing
 * of next is in force (logged). */
int ctd_reload_apply(struct ctd_reload_target *t,
		     const struct ctd_config *next);

#endif
