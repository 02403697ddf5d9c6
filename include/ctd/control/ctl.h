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
#include <sys/types.h>

#include "ctd/control/listsort.h"

struct ctd_ctl;
struct ctd_stats;
struct ev_loop;

#define CTD_CTL_MAX_CLIENTS 256
/* Seconds a client has for its whole request, and for each answer chunk. */
#define CTD_CTL_DEADLINE 5.0
#define CTD_CTL_MAX_REQUEST 256
#define CTD_CTL_MAX_HTTP_REQUEST 4096

/* Writes (the next part of) the answer to request into out; *cursor is
 * 0 at first and the callback's own afterwards. Returns true when more
 * is to come, false when this part ends the answer. A part may be empty
 * (the answer is still being gathered): the next comes on the next loop
 * iteration. When the client leaves before the end, the callback is
 * called once more with out NULL to release what *cursor holds. */
typedef bool ctd_ctl_answer(void *arg, const char *request, FILE *out,
			    size_t *cursor);

/* Root may connect, and members of group unless it is (gid_t)-1. */
int ctd_ctl_new(struct ev_loop *loop, const char *path, gid_t group,
		ctd_ctl_answer *answer, void *arg, struct ctd_stats *stats,
		struct ctd_ctl **ret);
/* The same server speaking just enough HTTP/1.0 for a Prometheus scrape
 * of GET /metrics (answered through answer with request "metrics"), on
 * a loopback TCP address ("127.0.0.1:9477"). */
int ctd_ctl_new_http(struct ev_loop *loop, const char *addrport,
		     ctd_ctl_answer *answer, void *arg, struct ctd_stats *stats,
		     struct ctd_ctl **ret);
/* The same over TLS on any address ("192.0.2.1:9477"): only scrapers
 * whose certificate ctx verifies get an answer (a failed handshake
 * counts in ctl_refused). Takes a reference on ctx. */
struct ssl_ctx_st;
int ctd_ctl_new_https(struct ev_loop *loop, const char *addrport,
		      struct ssl_ctx_st *ctx, ctd_ctl_answer *answer, void *arg,
		      struct ctd_stats *stats, struct ctd_ctl **ret);
/* New certificates for an HTTPS server (a reload): the next scrapers'
 * handshakes use ctx (a reference taken), those connected finish with
 * the old one. -EINVAL when ctl does not speak TLS. */
int ctd_ctl_set_tls(struct ctd_ctl *ctl, struct ssl_ctx_st *ctx);
void ctd_ctl_free(struct ctd_ctl *ctl);

/* The request in the first len bytes a client sent: 1 with its first
 * line copied to line (NUL-terminated; line may be buf), 0 when more is
 * needed, -EMSGSIZE when it is too long or -EBADMSG when it is not
 * printable text. For HTTP the request ends with an empty line. */
int ctd_ctl_request_parse(const char *buf, size_t len, bool http,
			  char *line, size_t cap);

/* Client: sends "query[ json]" to the ctd at path and copies the answer
 * to stdout. Returns 0, or -errno after printing why. */
int ctd_ctl_query(const char *path, const char *query, bool json);
/* The same for a text listing, its lines sorted by key (ctd -l --sort). */
int ctd_ctl_query_sorted(const char *path, const char *query,
			 enum ctd_listsort_key key);

#endif
