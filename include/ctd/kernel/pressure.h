/* pressure: what reliable delivery costs the firewall, and when to stop
 * paying it. With NETLINK_BROADCAST_ERROR every DESTROY the kernel could
 * not deliver keeps its conntrack on the namespace's dying list, counted
 * in nf_conntrack_count; a slow or stopped reader can fill the table and
 * make the firewall drop new connections. This module decides, from
 * gauges read each tick, when to clear the flag (fail open: the kernel
 * frees what it held, drops what does not fit, counted as lost) and when
 * to set it again, with hysteresis. Owns that state and its counters.
 * Pure: gauges and `now` come in; the caller reads them and applies the
 * decision to the socket. */
#ifndef CTD_PRESSURE_H
#define CTD_PRESSURE_H

#include <stdbool.h>
#include <stdint.h>

struct ctd_pressure_cfg {
	bool hold;              /* never fail open (completeness over uptime) */
	unsigned high_pct;      /* fail open at this table fill ... */
	unsigned low_pct;       /* ... reliable again under this one */
	int64_t lag_us;         /* events older than this: the reader is behind */
	int64_t min_open_us;    /* at least this long open before re-arming */
};

/* One tick's readings. */
struct ctd_pressure_gauges {
	uint64_t count;         /* nf_conntrack_count of the namespace */
	uint64_t max;           /* nf_conntrack_max; 0: unknown */
	uint32_t rmem;          /* bytes queued in the reader's socket */
	uint32_t rcvbuf;        /* its receive buffer as the kernel keeps it */
	uint32_t drops;         /* its SK_MEMINFO_DROPS, wrapping */
	uint64_t progress;      /* messages the reader has handled, ever */
	int64_t lag_us;         /* age of the newest event it handled */
};

/* Why the table fills, as far as the gauges tell. */
enum ctd_pressure_cause {
	CTD_PRESSURE_NONE,      /* under the high mark */
	CTD_PRESSURE_SLOW,      /* ctd reads, slower than flows end (CPU) */
	CTD_PRESSURE_STALLED,   /* ctd reads nothing: stopped or hung */
	CTD_PRESSURE_OTHER,     /* ctd keeps up: live flows or another
	                         * reliable listener hold the table */
	CTD_PRESSURE_CAUSE__COUNT
};

enum ctd_pressure_action {
	CTD_PRESSURE_KEEP,
	CTD_PRESSURE_FAIL_OPEN, /* clear NETLINK_BROADCAST_ERROR now */
	CTD_PRESSURE_REARM,     /* set it again, then call _rearmed */
};

struct ctd_pressure_state {
	bool open;              /* failed open now */
	enum ctd_pressure_cause cause;
	int64_t since_us;       /* when the mode last changed */
	uint64_t fail_opens;
	uint64_t rearms;
	uint64_t lost;          /* events dropped while open */
	uint64_t fill_pct;      /* the last reading, percent */
	uint64_t peak_pct;
	uint64_t released;      /* conntracks freed by the last fail-open */
};

struct ctd_pressure;

struct ctd_pressure *ctd_pressure_new(const struct ctd_pressure_cfg *cfg);
void ctd_pressure_free(struct ctd_pressure *p);

/* A tick: the readings and the time they were taken. */
enum ctd_pressure_action ctd_pressure_step(struct ctd_pressure *p,
					   const struct ctd_pressure_gauges *g,
					   int64_t now_us);
/* Before failing open: the socket's drop count read just before the flag
 * is cleared, so only drops from there on count as lost (drops since the
 * tick's reading were failed deliveries the kernel still holds). */
void ctd_pressure_opening(struct ctd_pressure *p, uint32_t drops);
/* After re-arming: the socket's drop count read once the flag was set,
 * so drops between the tick's reading and the flag count as lost. */
void ctd_pressure_rearmed(struct ctd_pressure *p, uint32_t drops);
/* ctd died: fail open when the last tick found the table past the low
 * mark (and not holding); else stay reliable for the next ctd. */
enum ctd_pressure_action ctd_pressure_orphaned(struct ctd_pressure *p,
					       int64_t now_us);
const struct ctd_pressure_state *ctd_pressure_state(const struct ctd_pressure *p);
const char *ctd_pressure_cause_name(enum ctd_pressure_cause cause);

#endif
