/* spool: undelivered records on disk, so a stop, a crash or a retry list
 * over its bound loses nothing.
 *
 * The entries are journal.c's (a torn or damaged one is skipped and
 * counted); this module gives them meaning. The read position lives
 * only in memory, so a reader after a crash would start from 0 and
 * deliver some records twice; CONSUMED marks, appended as read-back
 * records become final, say where to start instead. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/delivery/journal.h"
#include "ctd/delivery/spool.h"
#include "ctd/flows/record.h"

struct ctd_spool {
	struct ctd_journal *j;
	uint64_t consumed_mark;   /* the last CONSUMED entry's offset */
};

int ctd_spool_build_path(const char *dir, const char *name, char *buf,
			 size_t cap)
{
	int n = snprintf(buf, cap, "%s/%s.spool", dir, name);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Whether a spool entry of this kind may have this length: anything
 * else (an older record layout, a write-ahead log's entry) is skipped. */
static bool kind_fits(unsigned kind, size_t len)
{
	switch (kind) {
	case CTD_SPOOL_RECORD:
		return len == sizeof(struct ctd_record);
	case CTD_SPOOL_RAW:
		return true;
	case CTD_SPOOL_CONSUMED:
		return len == sizeof(uint64_t);
	default:
		return false;
	}
}

int ctd_spool_open(const char *path, const struct ctd_owner *owner,
		   struct ctd_spool **ret)
{
	struct ctd_spool *sp = calloc(1, sizeof(*sp));
	int r;

	if (!sp)
		return -ENOMEM;
	r = ctd_journal_open(path, owner, kind_fits, &sp->j);
	if (r < 0) {
		free(sp);
		return r;
	}
	*ret = sp;
	return 0;
}

void ctd_spool_free(struct ctd_spool *sp)
{
	if (!sp)
		return;
	ctd_journal_free(sp->j);
	free(sp);
}

int ctd_spool_append(struct ctd_spool *sp, enum ctd_spool_kind kind,
		     const void *data, size_t len)
{
	return ctd_journal_append(sp->j, kind, data, len);
}

int ctd_spool_cut(struct ctd_spool *sp, uint64_t size)
{
	return ctd_journal_cut(sp->j, size);
}

/* A mark of how far a reader got: noted, never returned. */
int ctd_spool_peek(struct ctd_spool *sp, void *buf, size_t cap,
		   enum ctd_spool_kind *ret_kind, size_t *ret_len)
{
	unsigned kind;
	int r;

	while ((r = ctd_journal_peek(sp->j, buf, cap, &kind, ret_len)) == 1) {
		uint64_t mark;

		if (kind != CTD_SPOOL_CONSUMED) {
			*ret_kind = (enum ctd_spool_kind)kind;
			return 1;
		}
		memcpy(&mark, buf, sizeof(mark));
		if (mark > sp->consumed_mark)
			sp->consumed_mark = mark;
		ctd_journal_consume(sp->j);
	}
	return r;
}

int ctd_spool_mark_consumed(struct ctd_spool *sp, uint64_t off)
{
	struct ctd_journal_entry e = { CTD_SPOOL_CONSUMED, &off, sizeof(off),
				       NULL, 0 };
	bool at_end = ctd_journal_unread(sp->j) == 0;
	int r;

	if (off <= sp->consumed_mark)
		return 0;
	if (off > ctd_journal_size(sp->j))
		return -EINVAL;
	r = ctd_journal_append_many(sp->j, &e, 1);
	if (r == 0) {
		sp->consumed_mark = off;
		if (at_end)         /* nothing to read but the mark itself */
			ctd_journal_seek(sp->j, ctd_journal_size(sp->j));
	}
	return r;
}

uint64_t ctd_spool_consumed_mark(const struct ctd_spool *sp)
{
	return sp->consumed_mark;
}

void ctd_spool_seek(struct ctd_spool *sp, uint64_t off)
{
	ctd_journal_seek(sp->j, off);
}

uint64_t ctd_spool_peeked_end(const struct ctd_spool *sp)
{
	return ctd_journal_peeked_end(sp->j);
}

void ctd_spool_consume(struct ctd_spool *sp)
{
	ctd_journal_consume(sp->j);
}

void ctd_spool_rewind(struct ctd_spool *sp)
{
	ctd_journal_seek(sp->j, 0);
}

int ctd_spool_truncate(struct ctd_spool *sp)
{
	int r = ctd_journal_truncate(sp->j);

	if (r == 0)
		sp->consumed_mark = 0;
	return r;
}

int ctd_spool_reset(struct ctd_spool *sp)
{
	if (ctd_journal_unread(sp->j))
		return -EBUSY;
	return ctd_spool_truncate(sp);
}

uint64_t ctd_spool_size(const struct ctd_spool *sp)
{
	return ctd_journal_size(sp->j);
}

uint64_t ctd_spool_unread(const struct ctd_spool *sp)
{
	return ctd_journal_unread(sp->j);
}

const struct ctd_journal_stats *ctd_spool_stats(const struct ctd_spool *sp)
{
	return ctd_journal_stats(sp->j);
}

const char *ctd_spool_path(const struct ctd_spool *sp)
{
	return ctd_journal_path(sp->j);
}
