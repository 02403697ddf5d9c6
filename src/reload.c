/* reload: a new configuration meets running modules. Each live setting
 * has its own step, each logged once; a step that fails keeps what runs
 * (a filter that cannot be built, a group that cannot be joined). The
 * outputs go first: a new path that cannot be opened leaves the whole
 * running configuration in force, not a new filter beside an old file
 * (main.c has run ctd -t's checks on it before). */
#include <errno.h>
#include <string.h>

#include "ctd/base/log.h"
#include "ctd/config/config.h"
#include "ctd/delivery/deliver.h"
#include "ctd/flows/filter.h"
#include "ctd/kernel/connlabel.h"
#include "ctd/kernel/nlsrc.h"
#include "ctd/outputs/outputs.h"
#include "ctd/reload.h"

/* Settings a reload cannot change in a running ctd, named in the log. */
static void restart_needed(void *arg, const char *key, const char *value,
			   bool live)
{
	(void)arg;
	if (!live)
		log_warn("reload: '%-23s %s' needs a restart to take effect",
			 key, value);
}

/* An output turned on or off needs a restart (a file output moved to
 * another path does not): said, not silently ignored. */
static void outputs_switched(const struct ctd_config *old,
			     const struct ctd_config *next)
{
	for (size_t i = 0; ctd_outputs[i]; i++) {
		bool was = ctd_outputs[i]->enabled(old);

		if (was != ctd_outputs[i]->enabled(next))
			log_warn("reload: turning output %s %s needs a restart",
				 ctd_outputs[i]->name, was ? "off" : "on");
	}
}

/* Filters change at once. */
static void apply_filter(struct ctd_reload_target *t,
			 const struct ctd_config *next)
{
	struct ctd_filter *f;

	if (memcmp(next->filter, t->cfg->filter, sizeof(next->filter)) == 0)
		return;
	f = ctd_config_filter(next);
	if (!f) {
		log_err("reload: out of memory for the new filter; keeping the old");
		return;
	}
	ctd_filter_free(*t->filter);
	*t->filter = f;
	memcpy(t->cfg->filter, next->filter, sizeof(next->filter));
	log_info("reload: new filter in effect");
}

/* NEW and UPDATE only when something uses them: each group joined
 * costs the firewall's packet path an event per connection. */
unsigned ctd_reload_groups(const struct ctd_reload_target *t,
			   const struct ctd_config *o)
{
	struct ctd_nlsrc_need need = {
		.event_records = ctd_deliver_wants_events(t->deliver),
		.text = t->text,
		.lossy = !o->broadcast_error,
		.all = o->subscribe == 1,
		.labels = o->record_labels,
	};

	return ctd_nlsrc_groups(&need);
}

static void apply_subscribe(struct ctd_reload_target *t,
			    const struct ctd_config *next)
{
	unsigned want = ctd_reload_groups(t, next);
	int r;

	t->cfg->subscribe = next->subscribe;
	t->cfg->record_labels = next->record_labels;
	if (!t->nlsrc || want == ctd_nlsrc_subscribed(t->nlsrc))
		return;
	r = ctd_nlsrc_subscribe(t->nlsrc, want);
	if (r < 0)
		log_err("reload: cannot change the event groups: %s", strerror(-r));
	else
		log_info("reload: now subscribed to %s", want == CTD_NLSRC_DESTROY ?
			 "DESTROY events only" : "NEW, UPDATE and DESTROY events");
}

void ctd_reload_log_labels(const struct ctd_config *o)
{
	struct ctd_connlabel *m = NULL;
	const char *path;
	size_t skipped;
	int r;

	if (!o->record_labels)
		return;
	r = ctd_connlabel_system(&m, &path, &skipped);
	if (r < 0)
		log_warn("record-labels: cannot read connlabel.conf: %s; labels "
			 "shown by bit number", strerror(-r));
	else if (!path)
		log_info("record-labels: no connlabel.conf; labels shown by bit "
			 "number");
	else
		log_info("record-labels: %zu label names from %s (%zu lines "
			 "not used)", ctd_connlabel_count(m), path, skipped);
	ctd_connlabel_free(m);
}

int ctd_reload_apply(struct ctd_reload_target *t,
		     const struct ctd_config *next)
{
	int r = ctd_deliver_reload(t->deliver, next);

	if (r < 0) {
		log_err("reload: the new configuration is not applied; the "
			"running one stays in force");
		return r;
	}
	ctd_config_diff(t->cfg, next, restart_needed, NULL);
	outputs_switched(t->cfg, next);
	apply_filter(t, next);
	apply_subscribe(t, next);
	ctd_reload_log_labels(next);
	ctd_config_take_live(t->cfg, next);
	log_info("SIGHUP: configuration reloaded, reopening output files");
	ctd_deliver_reopen(t->deliver);
	return 0;
}
