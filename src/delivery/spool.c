/* spool: undelivered records on disk, so a stop, a crash or a dying list
 * over its bound loses nothing.
 *
 * Each entry is a 16-byte header (magic, kind, layout version, payload
 * length, CRC-32 of header fields and payload) and the payload, written
 * with one writev at the end of the file. A crash mid-write leaves at
 * most one torn entry at the tail: its length runs past the end or its
 * checksum fails, and the reader skips it. Any entry whose checksum
 * fails means the reader lost its place (its length may be what was
 * damaged): it looks for the next header with the magic, whose checksum
 * then decides whether it is one, and counts the bytes in between. The read
 * position lives only in
 * memory: after a crash the file is read again from the start, so a
 * record may be delivered twice but never lost. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "ctd/base/safefile.h"
#include "ctd/delivery/spool.h"
#include "ctd/flows/record.h"

#define SPOOL_MAGIC 0x4c4f5053u   /* "SPOL" little-endian */
/* Changes whenever struct ctd_record changes shape. */
#define SPOOL_VERSION ((uint16_t)(1u << 12 | sizeof(struct ctd_record)))

struct entry_hdr {
	uint32_t magic;
	uint16_t kind;
	uint16_t version;
	uint32_t len;
	uint32_t crc;
};

struct ctd_spool {
	int fd;
	int dfd;                  /* its directory: the rewrite's rename */
	struct ctd_owner owner;   /* who the rewritten file is handed to */
	uint64_t size;
	uint64_t read_off;
	uint64_t peeked_end;      /* end of the entry peek returned, or 0 */
	uint64_t consumed_mark;   /* the last CONSUMED entry's offset */
	struct ctd_spool_stats stats;
	char *path;
	const char *name;         /* last component of path */
};

static uint32_t entry_crc(const struct entry_hdr *h, const void *data,
			  size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);

	c = crc32(c, (const Bytef *)&h->kind, sizeof(h->kind));
	c = crc32(c, (const Bytef *)&h->version, sizeof(h->version));
	c = crc32(c, (const Bytef *)&h->len, sizeof(h->len));
	c = crc32(c, (const Bytef *)data, (uInt)len);
	return (uint32_t)c;
}

int ctd_spool_build_path(const char *dir, const char *name, char *buf,
			 size_t cap)
{
	int n = snprintf(buf, cap, "%s/%s.spool", dir, name);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Only a file that is empty or holds an entry's magic near its start is
 * ours to truncate and rewrite (one damaged header must not disown the
 * rest): anything else at the path was put there by someone else (see
 * safefile.c) and is left alone. */
static int check_magic(int fd, uint64_t size)
{
	static const uint32_t magic = SPOOL_MAGIC;
	unsigned char head[65536];
	size_t n = size < sizeof(head) ? (size_t)size : sizeof(head);

	if (!size)
		return 0;
	if (pread(fd, head, n, 0) != (ssize_t)n)
		return -EIO;
	if (n < sizeof(magic))
		return memcmp(head, &magic, n) == 0 ? 0 : -EBADMSG;
	return memmem(head, n, &magic, sizeof(magic)) ? 0 : -EBADMSG;
}

static int spool_open_fd(struct ctd_spool *sp, const struct ctd_owner *owner)
{
	char dir[4096];
	struct stat st;
	int r = ctd_safefile_split(sp->path, dir, sizeof(dir), &sp->name);

	if (r < 0)
		return r;
	sp->dfd = ctd_safefile_dir(dir, false, 0, owner);
	if (sp->dfd < 0)
		return sp->dfd;
	sp->fd = ctd_safefile_openat(sp->dfd, sp->name, O_RDWR | O_CREAT, 0600,
				     CTD_SAFE_REGULAR, owner);
	if (sp->fd < 0)
		return sp->fd;
	if (fstat(sp->fd, &st) < 0)
		return -errno;
	sp->size = (uint64_t)st.st_size;
	return check_magic(sp->fd, sp->size);
}

int ctd_spool_open(const char *path, const struct ctd_owner *owner,
		   struct ctd_spool **ret)
{
	struct ctd_spool *sp = calloc(1, sizeof(*sp));
	int r;

	if (!sp || !(sp->path = strdup(path))) {
		free(sp);
		return -ENOMEM;
	}
	sp->fd = sp->dfd = -1;
	sp->owner = owner ? *owner : CTD_OWNER_NONE;
	r = spool_open_fd(sp, owner);
	if (r < 0) {
		ctd_spool_free(sp);
		return r;
	}
	*ret = sp;
	return 0;
}

void ctd_spool_free(struct ctd_spool *sp)
{
	if (!sp)
		return;
	if (sp->fd >= 0)
		close(sp->fd);
	if (sp->dfd >= 0)
		close(sp->dfd);
	free(sp->path);
	free(sp);
}

int ctd_spool_append(struct ctd_spool *sp, enum ctd_spool_kind kind,
		     const void *data, size_t len)
{
	struct entry_hdr h = { SPOOL_MAGIC, (uint16_t)kind, SPOOL_VERSION,
			       (uint32_t)len, 0 };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };
	size_t want = sizeof(h) + len;
	ssize_t n;

	if (len > CTD_SPOOL_MAX_ENTRY)
		return -EMSGSIZE;
	h.crc = entry_crc(&h, data, len);
	n = pwritev(sp->fd, iov, 2, (off_t)sp->size);
	if (n == (ssize_t)want) {
		sp->size += want;
		return 0;
	}
	n = n < 0 ? -errno : -ENOSPC;
	/* No partial entry may stay behind a later, complete one. */
	if (ftruncate(sp->fd, (off_t)sp->size) < 0)
		return -errno;
	return (int)n;
}

#define BATCH_ENTRIES 256     /* 3 iovecs each, under IOV_MAX */

static void fill_entry(const struct ctd_spool_entry *e, struct entry_hdr *h,
		       struct iovec *iov)
{
	uLong c = crc32(0L, Z_NULL, 0);

	*h = (struct entry_hdr){ SPOOL_MAGIC, (uint16_t)e->kind, SPOOL_VERSION,
				 (uint32_t)(e->head_len + e->body_len), 0 };
	c = crc32(c, (const Bytef *)&h->kind, sizeof(h->kind));
	c = crc32(c, (const Bytef *)&h->version, sizeof(h->version));
	c = crc32(c, (const Bytef *)&h->len, sizeof(h->len));
	/* crc32() with no buffer returns the initial value: skip empty parts. */
	if (e->head_len)
		c = crc32(c, (const Bytef *)e->head, (uInt)e->head_len);
	if (e->body_len)
		c = crc32(c, (const Bytef *)e->body, (uInt)e->body_len);
	h->crc = (uint32_t)c;
	iov[0] = (struct iovec){ h, sizeof(*h) };
	iov[1] = (struct iovec){ (void *)e->head, e->head_len };
	iov[2] = (struct iovec){ (void *)e->body, e->body_len };
}

static int write_chunk(struct ctd_spool *sp, const struct ctd_spool_entry *e,
		       size_t n)
{
	struct entry_hdr h[BATCH_ENTRIES];
	struct iovec iov[3 * BATCH_ENTRIES];
	size_t want = 0;
	ssize_t got;

	for (size_t i = 0; i < n; i++) {
		if (e[i].head_len + e[i].body_len > CTD_SPOOL_MAX_ENTRY)
			return -EMSGSIZE;
		fill_entry(&e[i], &h[i], &iov[3 * i]);
		want += sizeof(h[i]) + e[i].head_len + e[i].body_len;
	}
	got = pwritev(sp->fd, iov, (int)(3 * n), (off_t)sp->size);
	if (got != (ssize_t)want)
		return got < 0 ? -errno : -ENOSPC;
	sp->size += want;
	return 0;
}

int ctd_spool_append_many(struct ctd_spool *sp,
			  const struct ctd_spool_entry *e, size_t n)
{
	uint64_t start = sp->size;
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i += BATCH_ENTRIES)
		r = write_chunk(sp, e + i,
				n - i < BATCH_ENTRIES ? n - i : BATCH_ENTRIES);
	if (r == 0)
		return 0;
	/* No partial entry may stay behind a later, complete one. */
	if (ftruncate(sp->fd, (off_t)start) == 0)
		sp->size = start;
	return r;
}

int ctd_spool_cut(struct ctd_spool *sp, uint64_t size)
{
	if (size > sp->size || size < sp->read_off)
		return -EINVAL;
	if (ftruncate(sp->fd, (off_t)size) < 0)
		return -errno;
	sp->size = size;
	return 0;
}

static int read_at(struct ctd_spool *sp, uint64_t off, void *buf, size_t len)
{
	ssize_t n = pread(sp->fd, buf, len, (off_t)off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* The next offset after the read position where the magic is, or the
 * end of the file. */
static int find_magic(struct ctd_spool *sp, uint64_t *ret)
{
	static const uint32_t magic = SPOOL_MAGIC;
	uint8_t buf[65536];
	uint64_t off = sp->read_off + 1;

	while (off + sizeof(magic) <= sp->size) {
		size_t want = sp->size - off < sizeof(buf) ?
			      (size_t)(sp->size - off) : sizeof(buf);
		const uint8_t *hit;
		int r = read_at(sp, off, buf, want);

		if (r < 0)
			return r;
		hit = memmem(buf, want, &magic, sizeof(magic));
		if (hit) {
			*ret = off + (uint64_t)(hit - buf);
			return 0;
		}
		off += want - (sizeof(magic) - 1);
	}
	*ret = sp->size;
	return 0;
}

/* A damaged header: skip to the next candidate, counting what was lost
 * as torn when nothing follows (a write cut short), else corrupt. */
static int lost_place(struct ctd_spool *sp)
{
	uint64_t next;
	int r = find_magic(sp, &next);

	if (r < 0)
		return r;
	if (next == sp->size)
		sp->stats.torn++;
	else
		sp->stats.corrupt++;
	sp->stats.skipped_bytes += next - sp->read_off;
	sp->read_off = next;
	return 0;
}

/* Whether an entry of this kind may have this length. */
static bool kind_fits(uint16_t kind, uint32_t len)
{
	switch (kind) {
	case CTD_SPOOL_RECORD:
		return len == sizeof(struct ctd_record);
	case CTD_SPOOL_RAW:
		return true;
	case CTD_SPOOL_WAL_RECORD:
		return len == sizeof(uint64_t) + sizeof(struct ctd_record);
	case CTD_SPOOL_CONSUMED:
	case CTD_SPOOL_WAL_ABSORB:
		return len == sizeof(uint64_t);
	case CTD_SPOOL_WAL_DONE:
		return len % sizeof(uint64_t) == 0;
	default:
		return false;
	}
}

int ctd_spool_peek(struct ctd_spool *sp, void *buf, size_t cap,
		   enum ctd_spool_kind *ret_kind, size_t *ret_len)
{
	struct entry_hdr h;
	uint64_t end;
	int r;

	while (sp->read_off < sp->size) {
		r = 0;
		if (sp->size - sp->read_off < sizeof(h)) {
			sp->stats.torn++;
			sp->stats.skipped_bytes += sp->size - sp->read_off;
			sp->read_off = sp->size;
			break;
		}
		r = read_at(sp, sp->read_off, &h, sizeof(h));
		if (r < 0)
			return r;
		end = sp->read_off + sizeof(h) + h.len;
		/* Only a checksum that matches makes the length trustworthy:
		 * anything else means the place is lost, and skipping by a
		 * damaged length could jump over good entries. */
		if (h.magic != SPOOL_MAGIC || h.len > cap || end > sp->size ||
		    (r = read_at(sp, sp->read_off + sizeof(h), buf, h.len)) < 0 ||
		    entry_crc(&h, buf, h.len) != h.crc) {
			if (r < 0 && r != -EIO)    /* the read failed */
				return r;
			r = lost_place(sp);
			if (r < 0)
				return r;
			continue;
		}
		/* Whole, but not for this build (an older record layout). */
		if (h.version != SPOOL_VERSION || !kind_fits(h.kind, h.len)) {
			sp->stats.corrupt++;
			sp->stats.skipped_bytes += end - sp->read_off;
			sp->read_off = end;
			continue;
		}
		/* A mark of how far a reader got: noted, never returned. */
		if (h.kind == CTD_SPOOL_CONSUMED) {
			uint64_t mark;

			memcpy(&mark, buf, sizeof(mark));
			if (mark > sp->consumed_mark)
				sp->consumed_mark = mark;
			sp->read_off = end;
			continue;
		}
		sp->peeked_end = end;
		*ret_kind = (enum ctd_spool_kind)h.kind;
		*ret_len = h.len;
		return 1;
	}
	return 0;
}

int ctd_spool_mark_consumed(struct ctd_spool *sp, uint64_t off)
{
	struct ctd_spool_entry e = { CTD_SPOOL_CONSUMED, &off, sizeof(off),
				     NULL, 0 };
	bool at_end = sp->read_off == sp->size;
	int r;

	if (off <= sp->consumed_mark)
		return 0;
	if (off > sp->size)
		return -EINVAL;
	r = ctd_spool_append_many(sp, &e, 1);
	if (r == 0) {
		sp->consumed_mark = off;
		if (at_end)         /* nothing to read but the mark itself */
			sp->read_off = sp->size;
	}
	return r;
}

uint64_t ctd_spool_consumed_mark(const struct ctd_spool *sp)
{
	return sp->consumed_mark;
}

void ctd_spool_seek(struct ctd_spool *sp, uint64_t off)
{
	sp->read_off = off < sp->size ? off : sp->size;
	sp->peeked_end = 0;
}

uint64_t ctd_spool_peeked_end(const struct ctd_spool *sp)
{
	return sp->peeked_end;
}

void ctd_spool_consume(struct ctd_spool *sp)
{
	if (sp->peeked_end > sp->read_off)
		sp->read_off = sp->peeked_end;
	sp->peeked_end = 0;
}

void ctd_spool_rewind(struct ctd_spool *sp)
{
	sp->read_off = sp->peeked_end = 0;
}

int ctd_spool_truncate(struct ctd_spool *sp)
{
	if (ftruncate(sp->fd, 0) < 0)
		return -errno;
	sp->size = sp->read_off = sp->peeked_end = sp->consumed_mark = 0;
	return 0;
}

int ctd_spool_reset(struct ctd_spool *sp)
{
	if (sp->read_off < sp->size)
		return -EBUSY;
	if (ftruncate(sp->fd, 0) < 0)
		return -errno;
	sp->size = sp->read_off = sp->peeked_end = sp->consumed_mark = 0;
	return 0;
}

uint64_t ctd_spool_size(const struct ctd_spool *sp)
{
	return sp->size;
}

uint64_t ctd_spool_unread(const struct ctd_spool *sp)
{
	return sp->size - sp->read_off;
}

const struct ctd_spool_stats *ctd_spool_stats(const struct ctd_spool *sp)
{
	return &sp->stats;
}

const char *ctd_spool_path(const struct ctd_spool *sp)
{
	return sp->path;
}

/* The rewrite goes to a new file beside the spool, made with O_EXCL
 * relative to the directory's descriptor, then renamed over it. */
static int open_tmp(struct ctd_spool *sp, char *tmp, size_t cap)
{
	if ((size_t)snprintf(tmp, cap, "%s.tmp", sp->name) >= cap)
		return -ENAMETOOLONG;
	if (unlinkat(sp->dfd, tmp, 0) < 0 && errno != ENOENT)
		return -errno;
	return ctd_safefile_openat(sp->dfd, tmp, O_RDWR | O_CREAT | O_EXCL,
				   0600, CTD_SAFE_REGULAR, &sp->owner);
}

int ctd_spool_rewrite(struct ctd_spool *sp,
		      int (*fill)(void *arg, struct ctd_spool *into), void *arg)
{
	struct ctd_spool into = { .fd = -1, .dfd = sp->dfd,
				  .owner = sp->owner };
	char tmp[4096];
	int r;

	into.fd = open_tmp(sp, tmp, sizeof(tmp));
	if (into.fd < 0)
		return into.fd;
	r = fill(arg, &into);
	if (r >= 0 && (fsync(into.fd) < 0 ||
		       renameat(sp->dfd, tmp, sp->dfd, sp->name) < 0))
		r = -errno;
	if (r < 0) {
		close(into.fd);
		unlinkat(sp->dfd, tmp, 0);
		return r;
	}
	close(sp->fd);
	sp->fd = into.fd;
	sp->size = into.size;
	sp->read_off = sp->peeked_end = sp->consumed_mark = 0;
	return 0;
}
