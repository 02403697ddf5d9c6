/* livedump: the kernel's conntrack table read on demand for listings
 * (`ctd -l`, `ctd -s top`), with live counters, a few datagrams per
 * call so a big table never stalls the loop. Owns one ctnetlink socket
 * for the length of one listing: ctd's flow table holds only what its
 * event subscription and dumps tell it (with DESTROY events alone, not
 * the flows that began since the last dump), the kernel's is complete. */
#ifndef CTD_LIVEDUMP_H
#define CTD_LIVEDUMP_H

struct ctd_event;
struct ctd_livedump;

typedef void ctd_livedump_fn(void *arg, const struct ctd_event *ev);

/* Opens a socket and asks for the table. Returns 0 or -errno. */
int ctd_livedump_open(struct ctd_livedump **ret);
/* Reads up to max datagrams, calling fn for each live conntrack (dying
 * ones are left out). Returns 1 while more is to come, 0 at the end,
 * -errno on failure (the listing is then cut short). */
int ctd_livedump_read(struct ctd_livedump *d, unsigned max,
		      ctd_livedump_fn *fn, void *arg);
void ctd_livedump_free(struct ctd_livedump *d);

#endif
