/* journal: the file format the spool and the write-ahead log share: an
 * append-only file of checksummed entries, read back in order, where a
 * torn or damaged entry is skipped and counted, never trusted. Owns the
 * file descriptor, its directory's and the read position; knows nothing
 * of what entries mean: each owner (spool.c, wal.c) numbers its own
 * kinds and says which lengths they may have. Host-local: the format
 * follows this build's record layout and byte order. */
#ifndef CTD_JOURNAL_H
#define CTD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_journal;
struct ctd_owner;

#define CTD_JOURNAL_MAX_ENTRY (2u << 20)

/* Whether an entry of kind may be len bytes long: the owner's kinds.
 * An intact entry it refuses (an older layout, another file's kind) is
 * skipped and counted as corrupt. */
typedef bool ctd_journal_fits(unsigned kind, size_t len);

/* One entry for ctd_journal_append_many: its payload in two parts. */
struct ctd_journal_entry {
	unsigned kind;
	const void *head;
	size_t head_len;
	const void *body;
	size_t body_len;
};

struct ctd_journal_stats {
	uint64_t torn;            /* entries cut short (crash mid-write) */
	uint64_t corrupt;         /* damaged stretches skipped (a checksum that
				   * did not match, up to the next good entry) */
	uint64_t skipped_bytes;   /* bytes given up on */
};

/* Opens (creating) the file at path without following symbolic links
 * (safefile.c), handing it to owner when ctd is root (owner may be
 * NULL). -EBADMSG: a file that is not empty and not a journal is there,
 * and is left untouched. */
int ctd_journal_open(const char *path, const struct ctd_owner *owner,
		     ctd_journal_fits *fits, struct ctd_journal **ret);
/* The same without creating it: -ENOENT when nothing is at path (how
 * wal.c finds the segments a previous run left, without making any). */
int ctd_journal_open_existing(const char *path, const struct ctd_owner *owner,
			      ctd_journal_fits *fits, struct ctd_journal **ret);
void ctd_journal_free(struct ctd_journal *j);

/* Appends one entry with a single write; on failure the file is cut back
 * so no partial entry stays. */
int ctd_journal_append(struct ctd_journal *j, unsigned kind,
		       const void *data, size_t len);
/* Appends n entries with as few writes as the iovec limit allows; all
 * or none stay (a failure cuts the file back to where it was). */
int ctd_journal_append_many(struct ctd_journal *j,
			    const struct ctd_journal_entry *e, size_t n);
/* Cuts the file back to size (undoes appends; size must not be below
 * the read position). */
int ctd_journal_cut(struct ctd_journal *j, uint64_t size);
/* Replaces the whole file: fill appends the new content to into, a
 * fresh file made with O_EXCL in the same directory, which is then
 * renamed over this one (read position back to 0). If fill returns a
 * negative errno or the rename fails, the file stays as it was and
 * that error is returned. */
int ctd_journal_rewrite(struct ctd_journal *j,
			int (*fill)(void *arg, struct ctd_journal *into),
			void *arg);

/* Reads the next unread entry into buf without consuming it. Returns 1
 * with the kind and length set, 0 at the end, or -errno. Damaged entries
 * on the way are skipped and counted. */
int ctd_journal_peek(struct ctd_journal *j, void *buf, size_t cap,
		     unsigned *ret_kind, size_t *ret_len);
/* The offset just past the entry peek returned. */
uint64_t ctd_journal_peeked_end(const struct ctd_journal *j);
/* The entry peek returned is taken: move past it. */
void ctd_journal_consume(struct ctd_journal *j);
/* Reads from offset off on (an entry's start; the end at most). */
void ctd_journal_seek(struct ctd_journal *j, uint64_t off);
/* Empties the file whatever was read. */
int ctd_journal_truncate(struct ctd_journal *j);

uint64_t ctd_journal_size(const struct ctd_journal *j);
uint64_t ctd_journal_unread(const struct ctd_journal *j);
const struct ctd_journal_stats *ctd_journal_stats(const struct ctd_journal *j);
const char *ctd_journal_path(const struct ctd_journal *j);

#endif
