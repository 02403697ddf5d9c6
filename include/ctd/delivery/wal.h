/* wal: one output's write-ahead log of the records delivery holds only
 * in memory (refused ones on the dying list, taken ones the output has
 * not made final), so a crash loses none of them. A record is added when
 * delivery starts holding it, written before the next batch of events is
 * read (one write for the batch), and marked done once final. The log is
 * a few segment files (the path, then "<path>.1" up to "<path>.7"); a
 * segment whose records are all done is emptied without being read, and
 * only when every slot is taken is one rewritten with its live records
 * alone. At the next start what a ctd that died left live goes to the
 * output's spool, all or none. Owns the segment files (journal.c files
 * of the log's own entry kinds) and the batch not written yet. */
#ifndef CTD_WAL_H
#define CTD_WAL_H

#include <stddef.h>
#include <stdint.h>

struct ctd_owner;
struct ctd_record;
struct ctd_wal;

/* Opens (creating) the log at path and any segments a previous run left
 * beside it (none are created for that), as safefile.c says. */
int ctd_wal_open(const char *path, const struct ctd_owner *owner,
		 struct ctd_wal **ret);
void ctd_wal_free(struct ctd_wal *w);

/* Whether a recovery was cut short (a crash, or fn failed) before every
 * record was moved: returns 1 with the token that recovery was given, 0
 * when none was (one that had moved them all but not emptied the log is
 * finished here), or -errno.
 * The caller undoes what fn did up to then (deliver.c: cuts the spool
 * back to the token, its size then) before recovering again. */
int ctd_wal_interrupted(struct ctd_wal *w, uint64_t *ret_token);
/* Notes token in the log, calls fn for each live record (a previous
 * run's, or this one's at shutdown; oldest segment first), notes that
 * all were moved, then empties the log; nothing is emptied when fn fails
 * (returns < 0). Returns the number of records, or -errno. A log with a
 * previous run's records must be recovered before its first commit. */
int ctd_wal_recover(struct ctd_wal *w, uint64_t token,
		    int (*fn)(void *arg, const struct ctd_record *rec),
		    void *arg);

/* Holds rec (a copy) for the next commit; returns its sequence number,
 * never 0, or 0 when memory ran out (the record is then not logged). */
uint64_t ctd_wal_add(struct ctd_wal *w, const struct ctd_record *rec);
/* Record seq is final: not written at all when the commit has not come
 * yet, else marked done. */
void ctd_wal_done(struct ctd_wal *w, uint64_t seq);
/* Writes what was added and marked since the last commit (each done to
 * the segment holding its record). Returns 0, or -errno with what was
 * not written kept for the next try (-EBUSY: not recovered yet). */
int ctd_wal_commit(struct ctd_wal *w);

/* Records in the log (written, not done) and its size (all segments). */
uint64_t ctd_wal_live(const struct ctd_wal *w);
/* Records added, not done and not written yet (a commit failed). */
uint64_t ctd_wal_pending(const struct ctd_wal *w);
uint64_t ctd_wal_size(const struct ctd_wal *w);

#endif
