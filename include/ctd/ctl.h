/* ctl: the control socket behind `ctd -s` and `ctd -l`. Owns the
 * listening Unix socket (root only), its path and each connected
 * client; the answers come from a callback, a chunk at a time, so a
 * listing of a million flows never sits in memory at once. Also the
 * client side that the command line uses. */
#ifndef CTD_CTL_H
#define CTD_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct ctd_ctl;
struct ctd_stats;
struct ev_loop;

#define CTD_CTL_MAX_CLIENTS 8
#define CTD_CTL_MAX_REQUEST 256
#define CTD_CTL_MAX_HTTP_REQUEST 4096

/* Writes (the next part of) the answer to request into out; *cursor is
 * 0 at first and the callback's own afterwards. Returns true when more
 * is to come, false when this part ends the answer. */
typedef bool ctd_ctl_answer(void *arg, const char *request, FILE *out,
			    size_t *cursor);

int ctd_ctl_new(struct ev_loop *loop, const char *path, ctd_ctl_answer *answer,
		void *arg, struct ctd_stats *stats, struct ctd_ctl **ret);
/* The same server speaking just enough HTTP/1.0 for a Prometheus scrape
 * of GET /metrics (answered through answer with request "metrics"), on
 * a loopback TCP address ("127.0.0.1:9477"). */
int ctd_ctl_new_http(struct ev_loop *loop, const char *addrport,
		     ctd_ctl_answer *answer, void *arg, struct ctd_stats *stats,
		     struct ctd_ctl **ret);
void ctd_ctl_free(struct ctd_ctl *ctl);

/* Client: sends "query[ json]" to the ctd at path and copies the answer
 * to stdout. Returns 0, or -errno after printing why. */
int ctd_ctl_query(const char *path, const char *query, bool json);

#endif
