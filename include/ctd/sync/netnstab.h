/* netnstab: the network namespaces ctd watches besides its own, by nsid
 * (the number ctd's namespace gives each), with the name each goes by
 * and its state, and which names the `netns` setting asks for. Owns the
 * entries and their names; the descriptors in them belong to netns.c.
 * Pure: no I/O, no clock (deadlines come in). */
#ifndef CTD_NETNSTAB_H
#define CTD_NETNSTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_netnstab;

/* nsids at or above this are not watched (ctd assigns the lowest free
 * ones; only a hand-set nsid is that high). */
#define CTD_NETNS_NSID_MAX 65536
#define CTD_NETNS_NAME_LEN 256        /* NAME_MAX + 1 */

enum ctd_netns_state {
	CTD_NETNS_WATCHED,    /* events, dumps, sysctls */
	CTD_NETNS_GOING,      /* unmounted: flushed, its DESTROYs awaited */
};

struct ctd_netns {
	int32_t nsid;
	uint8_t state;                /* enum ctd_netns_state */
	int fd;                       /* the namespace (netns.c's), or -1 */
	int flush_fd;                 /* its dying-list probe while going */
	uint64_t dev, ino;            /* identity of the namespace file */
	int64_t deadline_us;          /* GOING: let go then without progress */
	int64_t cap_us;               /* ... and then in any case */
	uint64_t records;             /* records from it */
	uint64_t pending;             /* its dying list at the last gauge */
	int dump_err;                 /* its part of the last dump round */
	bool learned;                 /* a table dump listed it since set-up */
	int64_t setup_us;             /* /run/netns showed it -> set up */
	char name[CTD_NETNS_NAME_LEN];
};

/* spec: the `netns` setting ("self", "all" or NAME,...). NULL on a bad
 * spec or no memory. */
struct ctd_netnstab *ctd_netnstab_new(const char *spec);
void ctd_netnstab_free(struct ctd_netnstab *t);
/* Whether the setting watches anything besides ctd's own namespace. */
bool ctd_netnstab_enabled(const char *spec);
/* Whether the setting asks for the namespace called name. */
bool ctd_netnstab_wants(const struct ctd_netnstab *t, const char *name);
/* "all": events of namespaces not in the table are kept too. */
bool ctd_netnstab_all(const struct ctd_netnstab *t);

/* Adds a zeroed entry (fd -1) for nsid. -ERANGE past CTD_NETNS_NSID_MAX,
 * -EEXIST, -ENOMEM. */
int ctd_netnstab_add(struct ctd_netnstab *t, int32_t nsid, const char *name,
		     struct ctd_netns **ret);
struct ctd_netns *ctd_netnstab_get(const struct ctd_netnstab *t, int32_t nsid);
struct ctd_netns *ctd_netnstab_find(const struct ctd_netnstab *t,
				    const char *name);
void ctd_netnstab_remove(struct ctd_netnstab *t, int32_t nsid);
size_t ctd_netnstab_count(const struct ctd_netnstab *t);
/* Walks the entries: start with *pos = 0; NULL at the end. */
struct ctd_netns *ctd_netnstab_next(const struct ctd_netnstab *t, size_t *pos);

/* What records of nsid call the namespace: its name when it has one that
 * fits in len, else "nsid:N"; "" for ctd's own (CTD_NSID_SELF). */
void ctd_netnstab_label(const struct ctd_netnstab *t, int32_t nsid,
			char *buf, size_t len);

/* Whether events of nsid are kept: ctd's own, a watched namespace, or
 * (with "all") any. */
bool ctd_netnstab_admits(const struct ctd_netnstab *t, int32_t nsid);

#endif
