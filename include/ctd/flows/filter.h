/* filter: which flows get records, by protocol, source and destination
 * prefix (to keep or to ignore), TCP state, zone, mark/mask and network
 * namespace (to keep or to ignore). Compiled
 * from the filter settings' text once; matching a record is a few bit
 * tests and at most CTD_FILTER_MAX_PREFIXES prefix compares. Pure. */
#ifndef CTD_FILTER_H
#define CTD_FILTER_H

#include <stdbool.h>
#include <stddef.h>

struct ctd_event;
struct ctd_filter;
struct ctd_record;

#define CTD_FILTER_MAX_PREFIXES 64
#define CTD_FILTER_MAX_ZONES 64
#define CTD_FILTER_MAX_NETNS 64
/* The name filter-netns and ignore-netns give ctd's own namespace. */
#define CTD_FILTER_NETNS_SELF "self"

enum ctd_filter_key {
	CTD_FILTER_PROTO,        /* "tcp,udp,47" */
	CTD_FILTER_SRC,          /* "10.0.0.0/8,2001:db8::/32": keep only */
	CTD_FILTER_DST,
	CTD_FILTER_IGNORE_SRC,   /* drop these */
	CTD_FILTER_IGNORE_DST,
	CTD_FILTER_TCP_STATE,    /* "ESTABLISHED,TIME_WAIT" */
	CTD_FILTER_ZONE,         /* "0,7" */
	CTD_FILTER_MARK,         /* "0x10/0xf0" */
	CTD_FILTER_NETNS,        /* "self,qrouter-1,nsid:7": keep only */
	CTD_FILTER_IGNORE_NETNS, /* drop these */
	CTD_FILTER__COUNT
};

/* An empty filter: everything matches. */
struct ctd_filter *ctd_filter_new(void);
void ctd_filter_free(struct ctd_filter *f);

/* Sets one criterion from its text ("any" clears it). Returns 0 or
 * -EINVAL with what was expected in err. */
int ctd_filter_set(struct ctd_filter *f, enum ctd_filter_key key,
		   const char *text, char *err, size_t errlen);

bool ctd_filter_match(const struct ctd_filter *f, const struct ctd_record *rec);
/* The same for a NEW or UPDATE event (`ctd -f` lines), by what the
 * event itself says: its tuple, zone, mark and TCP state; netns is the
 * name of the event's namespace (NULL or "": "nsid:N"). */
bool ctd_filter_match_event(const struct ctd_filter *f,
			    const struct ctd_event *ev, const char *netns);
/* Whether any criterion is set. */
bool ctd_filter_active(const struct ctd_filter *f);

#endif
