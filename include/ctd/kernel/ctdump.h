/* ctdump: table and dying-list dumps on a second ctnetlink socket, read
 * incrementally from the loop so a big table never freezes event
 * handling. Owns that socket, its watcher and its receive buffer; one
 * dump runs at a time. With other namespaces watched it also owns one
 * dump socket opened inside each (netns.c opens them), and a dump is a
 * round over all of them: ctd's own first, then each namespace's. */
#ifndef CTD_CTDUMP_H
#define CTD_CTDUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct ctd_clock;
struct ctd_ctdump;
struct ctd_event;
struct ctd_now;
struct ctd_stats;

enum ctd_dump_kind {
	CTD_DUMP_TABLE,   /* the conntrack table: one entry per conntrack */
	CTD_DUMP_DYING,   /* conntracks whose DESTROY the kernel still holds */
};

struct ctd_ctdump_ops {
	/* One conntrack listed; kind says which list it came from. */
	void (*entry)(void *arg, enum ctd_dump_kind kind,
		      const struct ctd_event *ev, const struct ctd_now *now);
	/* err: 0, or -errno (-EINTR: the table changed under the dump). */
	void (*done)(void *arg, enum ctd_dump_kind kind, int err, size_t entries,
		     const struct ctd_now *now);
	/* Optional: one namespace's part of the round ended. */
	void (*part)(void *arg, enum ctd_dump_kind kind, int32_t nsid, int err,
		     size_t entries);
	void *arg;
};

/* clock: what `now` in the callbacks is read from; NULL: the system's. */
int ctd_ctdump_new(struct ev_loop *loop, const struct ctd_clock *clock,
		   struct ctd_stats *stats, const struct ctd_ctdump_ops *ops,
		   struct ctd_ctdump **ret);
void ctd_ctdump_free(struct ctd_ctdump *d);
/* -EBUSY while another dump runs. */
int ctd_ctdump_start(struct ctd_ctdump *d, enum ctd_dump_kind kind);
bool ctd_ctdump_running(const struct ctd_ctdump *d);
/* Takes a ctnetlink socket opened in namespace nsid (the fd is owned
 * from here on, closed by remove or free); later dumps include it. */
int ctd_ctdump_add_netns(struct ctd_ctdump *d, int32_t nsid, int fd);
/* Closes that namespace's socket; a round under way skips the rest of
 * its part. */
void ctd_ctdump_remove_netns(struct ctd_ctdump *d, int32_t nsid);

#endif
