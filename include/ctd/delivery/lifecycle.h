/* lifecycle: an output's spool and write-ahead log, opened at start (what
 * a ctd that died left in its log moved to the spool, and counted) and
 * closed at shutdown (everything held moved to the spool). The log-to-
 * spool move is the same at both ends: all or none. Owns no state: the
 * files belong to the dest (dest.h), freed by deliver.c. */
#ifndef CTD_LIFECYCLE_H
#define CTD_LIFECYCLE_H

#include <stddef.h>

struct ctd_dest;
struct ctd_owner;

/* Opens t's spool in dir (made for owner, who gets the files; dir NULL:
 * no spool, 0) and its write-ahead log beside it, recovers the log into
 * the spool, and counts the spooled records in records and carried.
 * scratch holds one spool entry. Returns 0, or -errno when there is no
 * spool (the caller logs it; the output runs without). */
int ctd_lifecycle_open(struct ctd_dest *t, const char *dir,
		       const struct ctd_owner *owner, void *scratch);
/* Shutdown, after the last re-sends: abandons what the output took and
 * did not make final, moves what the retry list and the log hold to the
 * spool, counts what none could keep in failed_shutdown. Returns the
 * records that were held (taken or on the retry list). */
size_t ctd_lifecycle_close(struct ctd_dest *t);

#endif
