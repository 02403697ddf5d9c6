/* spool: one output's durable, append-only file of undelivered data,
 * read back in order and truncated once everything read was delivered.
 * Owns its journal (journal.h: the checksummed entry format) and the
 * spool's entry kinds: records, rendered bytes, and CONSUMED marks of
 * how far a reader got. */
#ifndef CTD_SPOOL_H
#define CTD_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "ctd/delivery/journal.h"

struct ctd_spool;

/* The numbers are on disk; the write-ahead log's kinds (wal.c) keep
 * 3, 4 and 6, so no number means two things in old files. */
enum ctd_spool_kind {
	CTD_SPOOL_RECORD = 1,     /* a struct ctd_record */
	CTD_SPOOL_RAW    = 2,     /* rendered bytes the output had accepted */
	CTD_SPOOL_CONSUMED = 5,   /* everything before this offset was read
				   * and is kept elsewhere (never returned) */
};

#define CTD_SPOOL_MAX_ENTRY CTD_JOURNAL_MAX_ENTRY
#define CTD_SPOOL_PATH_MAX 4096

/* The one place the spool file of an output is named: dir/name.spool.
 * Returns 0, or -ENAMETOOLONG when it does not fit in cap. */
int ctd_spool_build_path(const char *dir, const char *name, char *buf,
			 size_t cap);

struct ctd_owner;

/* Opens (creating) the spool at path without following symbolic links
 * (safefile.c), handing it to owner when ctd is root (owner may be
 * NULL). -EBADMSG: a file that is not empty and not a spool is there,
 * and is left untouched. */
int ctd_spool_open(const char *path, const struct ctd_owner *owner,
		   struct ctd_spool **ret);
void ctd_spool_free(struct ctd_spool *sp);

/* Appends one entry with a single write; on failure the file is cut back
 * so no partial entry stays. */
int ctd_spool_append(struct ctd_spool *sp, enum ctd_spool_kind kind,
		     const void *data, size_t len);
/* Cuts the file back to size, where it ended before appends this run
 * made (undoes them; size must not be below the read position). */
int ctd_spool_cut(struct ctd_spool *sp, uint64_t size);

/* Reads the next unread entry into buf without consuming it. Returns 1
 * with the kind and length set, 0 at the end, or -errno. Damaged entries
 * on the way are skipped and counted. */
int ctd_spool_peek(struct ctd_spool *sp, void *buf, size_t cap,
		   enum ctd_spool_kind *ret_kind, size_t *ret_len);
/* The offset just past the entry peek returned. */
uint64_t ctd_spool_peeked_end(const struct ctd_spool *sp);
/* The entry peek returned is taken: move past it. */
void ctd_spool_consume(struct ctd_spool *sp);
/* Appends a CONSUMED mark saying everything before off (an entry's
 * boundary, at most the size) is read and kept or delivered elsewhere,
 * when off is past the last mark: a reader after a crash starts there,
 * not at 0. */
int ctd_spool_mark_consumed(struct ctd_spool *sp, uint64_t off);
/* The offset the last CONSUMED entry read so far gave (0: none). */
uint64_t ctd_spool_consumed_mark(const struct ctd_spool *sp);
/* Reads from offset off on (an entry's start). */
void ctd_spool_seek(struct ctd_spool *sp, uint64_t off);
/* Reads from the start again. */
void ctd_spool_rewind(struct ctd_spool *sp);
/* Empties the file whatever was read (everything is elsewhere). */
int ctd_spool_truncate(struct ctd_spool *sp);
/* Empties the file when every entry was read; the caller knows whether
 * what it read was also delivered. Returns 0 or -errno. */
int ctd_spool_reset(struct ctd_spool *sp);

uint64_t ctd_spool_size(const struct ctd_spool *sp);
uint64_t ctd_spool_unread(const struct ctd_spool *sp);
const struct ctd_journal_stats *ctd_spool_stats(const struct ctd_spool *sp);
const char *ctd_spool_path(const struct ctd_spool *sp);

#endif
