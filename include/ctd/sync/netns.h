/* netns: the other network namespaces one ctd watches (`netns all` or a
 * list). Finds them in /run/netns at start and as they come and go
 * (inotify), gives each an nsid in ctd's namespace (without one the
 * kernel sends ctd none of its events), sets its sysctls, hands a dump
 * socket opened inside it to ctdump, and sees a deleted one out: its
 * table flushed from inside so the kernel reports every flow's end, and
 * its name on every record. Owns the namespace table (netnstab), the
 * descriptors of the namespaces, an rtnetlink socket for nsids and its
 * RTM_DELNSID watcher, the inotify watcher and the flush timer. */
#ifndef CTD_NETNS_H
#define CTD_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/base/timeutil.h"
#include "ctd/kernel/ctdump.h"

struct ev_loop;
struct nlmsghdr;
struct ctd_engine;
struct ctd_nlsrc;
struct ctd_netns_watch;
struct ctd_netnstab;
struct ctd_record;
struct ctd_stats;

struct ctd_netns_cfg {
	const char *spec;             /* the `netns` setting */
	const char *run_dir;          /* /run/netns */
	bool sysctl;                  /* set each namespace's sysctls */
	struct ctd_engine *engine;
	struct ctd_nlsrc *nlsrc;      /* drained before a namespace's end */
	struct ctd_ctdump *dump;      /* gets each namespace's dump socket */
	struct ctd_stats *stats;
	struct ctd_clock clock;
};

int ctd_netns_new(struct ev_loop *loop, const struct ctd_netns_cfg *cfg,
		  struct ctd_netns_watch **ret);
void ctd_netns_free(struct ctd_netns_watch *w);
/* Watches what /run/netns holds now, then follows it. */
void ctd_netns_start(struct ctd_netns_watch *w);
void ctd_netns_stop(struct ctd_netns_watch *w);

/* Keeps the messages of namespaces ctd watches (in out, with their nsid,
 * ctd's own as CTD_NSID_SELF) and counts the rest. Returns how many. */
size_t ctd_netns_admit(struct ctd_netns_watch *w,
		       const struct nlmsghdr *const *msgs, const int32_t *nsids,
		       size_t n, const struct nlmsghdr **out, int32_t *out_nsids);
/* Names the record's namespace (rec->netns) and counts it. */
void ctd_netns_name(struct ctd_netns_watch *w, struct ctd_record *rec);
/* One namespace's part of a dump round ended (reconcile_ev's part). */
void ctd_netns_dump_part(void *arg, enum ctd_dump_kind kind, int32_t nsid,
			 int err, size_t entries);
const struct ctd_netnstab *ctd_netns_table(const struct ctd_netns_watch *w);

#endif
