/* endpoints: the control socket and the metrics endpoint opened as the
 * configuration says, with the checks and log lines they have always
 * had (moved from main.c so the parent of shards opens the same). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ctd/base/listen.h"
#include "ctd/base/log.h"
#include "ctd/base/safefile.h"
#include "ctd/base/tlsfile.h"
#include "ctd/config/config.h"
#include "ctd/control/ctl.h"
#include "ctd/endpoints.h"
#include "ctd/service/daemon.h"

int ctd_endpoints_control(const struct ctd_endpoints *e, struct ctd_ctl **ret)
{
	const char *path = e->cfg->control;
	char why[CTD_CONFIG_PATH_MAX + 128];
	gid_t group;
	int r;

	*ret = NULL;
	if (!*path)
		return 0;
	if (strcmp(path, CTD_CONFIG_DEFAULT_CONTROL) == 0 &&
	    (r = ctd_safefile_dir(CTD_CONFIG_DEFAULT_CONTROL_DIR, true, 0755,
				  NULL)) >= 0)
		close(r);
	if (ctd_daemon_find_group(e->cfg->control_group, &group) < 0)
		return 0;    /* cfgcheck refused it before */
	r = ctd_ctl_new(e->loop, path, group, e->answer, e->arg, e->stats, ret);
	if (r == 0)
		return 0;
	ctd_listen_refusal(r, path, why, sizeof(why));
	if (r != -EADDRINUSE) {
		log_warn("%s; ctd -s will not work", why);
		return 0;
	}
	log_err("%s", why);
	return r;
}

/* HTTPS with client certificates (any address: cfgcheck demands the
 * three files off loopback). */
static void open_metrics_tls(const struct ctd_endpoints *e, struct ctd_ctl **ret)
{
	const struct ctd_config *o = e->cfg;
	struct ctd_tls_files f = { o->metrics_client_ca, o->metrics_tls_cert,
				   o->metrics_tls_key };
	struct ssl_ctx_st *ctx;
	char why[CTD_CONFIG_PATH_MAX + 256];
	int r = ctd_tlsfile_server_ctx(&f, e->owner, &ctx, why, sizeof(why));

	if (r < 0) {
		log_warn("no metrics endpoint on %s: %s", o->metrics, why);
		return;
	}
	r = ctd_ctl_new_https(e->loop, o->metrics, ctx, e->answer, e->arg,
			      e->stats, ret);
	ctd_tlsfile_ctx_free(ctx);
	if (r < 0)
		log_warn("no metrics endpoint on %s: %s", o->metrics,
			 strerror(-r));
	else
		log_info("metrics on https://%s/metrics (client certificates "
			 "of %s)", o->metrics, o->metrics_client_ca);
}

/* Off by default; loopback only unless over TLS (open_metrics_tls). */
void ctd_endpoints_metrics(const struct ctd_endpoints *e, struct ctd_ctl **ret)
{
	int r;

	*ret = NULL;
	if (!*e->cfg->metrics)
		return;
	if (*e->cfg->metrics_tls_cert) {
		open_metrics_tls(e, ret);
		return;
	}
	r = ctd_ctl_new_http(e->loop, e->cfg->metrics, e->answer, e->arg,
			     e->stats, ret);
	if (r < 0)
		log_warn("no metrics endpoint on %s: %s", e->cfg->metrics,
			 strerror(-r));
}

/* SIGHUP: the metrics certificates again, from the paths ctd started
 * with (moving them needs a restart): rotated files take effect for the
 * next scrapers without closing the endpoint; those connected finish
 * with the old ones. ctd -t's checks loaded them a moment ago, so a
 * failure here is a file replaced since: the old ones stay. */
int ctd_endpoints_reload_tls(const struct ctd_endpoints *e,
			     struct ctd_ctl *metrics)
{
	const struct ctd_config *o = e->cfg;
	struct ctd_tls_files f = { o->metrics_client_ca, o->metrics_tls_cert,
				   o->metrics_tls_key };
	struct ssl_ctx_st *ctx;
	char why[CTD_CONFIG_PATH_MAX + 256];
	int r;

	if (!metrics || !*o->metrics_tls_cert)
		return 0;
	r = ctd_tlsfile_server_ctx(&f, e->owner, &ctx, why, sizeof(why));
	if (r == 0) {
		r = ctd_ctl_set_tls(metrics, ctx);
		ctd_tlsfile_ctx_free(ctx);
		if (r < 0)
			snprintf(why, sizeof(why), "%s", strerror(-r));
	}
	if (r < 0) {
		log_err("reload: metrics https://%s: %s; the certificates read "
			"before stay in use", o->metrics, why);
		return r;
	}
	log_info("reload: metrics https://%s: certificates read again",
		 o->metrics);
	return 0;
}
