/* endpoints: the control socket and the metrics endpoint as the
 * configuration asks for them, for a single ctd and for the parent of
 * shards alike. Owns nothing: the servers go to the caller. */
#ifndef CTD_ENDPOINTS_H
#define CTD_ENDPOINTS_H

#include "ctd/control/ctl.h"

struct ctd_config;
struct ctd_owner;
struct ctd_stats;
struct ev_loop;

struct ctd_endpoints {
	struct ev_loop *loop;
	const struct ctd_config *cfg;
	const struct ctd_owner *owner;   /* gets the TLS files' checks */
	ctd_ctl_answer *answer;
	void *arg;
	struct ctd_stats *stats;
};

/* The control socket (none: 0, *ret NULL). It is a convenience: only
 * another ctd answering there (-EADDRINUSE) stops the start. Bound as
 * root, before the privilege drop. */
int ctd_endpoints_control(const struct ctd_endpoints *e, struct ctd_ctl **ret);
/* The metrics endpoint, over HTTPS when its certificate is set; a
 * failure is logged and leaves *ret NULL. */
void ctd_endpoints_metrics(const struct ctd_endpoints *e, struct ctd_ctl **ret);
/* SIGHUP: the metrics endpoint's certificate files read again (same
 * paths); new scrapers get them. -errno (logged) keeps the old ones. */
int ctd_endpoints_reload_tls(const struct ctd_endpoints *e,
			     struct ctd_ctl *metrics);

#endif
