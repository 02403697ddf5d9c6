/* ctdump: table and dying-list dumps on a second ctnetlink socket, read
 * incrementally from the loop so a big table never freezes event
 * handling. Owns that socket, its watcher and its receive buffer; one
 * dump runs at a time. */
#ifndef CTD_CTDUMP_H
#define CTD_CTDUMP_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
