/* journal: entries on disk that a crash, a full disk or a damaged
 * sector cannot make ctd trust wrongly.
 *
 * Each entry is a 16-byte header (magic, kind, layout version, payload
 * length, CRC-32C of header fields and payload) and the payload, written
 * with one writev at the end of the file. A crash mid-write leaves at
 * most one torn entry at the tail: its length runs past the end or its
 * checksum fails, and the reader skips it. Any entry whose checksum
 * fails means the reader lost its place (its length may be what was
 * damaged): it looks for the next header with the magic, whose checksum
 * then decides whether it is one, and counts the bytes in between. The
 * read position lives only in memory: after a crash the file is read
 * again from the start (or from where its owner's own marks say). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "ctd/base/crc32c.h"
#include "ctd/base/safefile.h"
#include "ctd/delivery/journal.h"
#include "ctd/flows/record.h"

#define JOURNAL_MAGIC 0x4c4f5053u /* "SPOL" little-endian: the spool's first */
/* Changes whenever struct ctd_record changes shape. The top bits say
 * the checksum: 2 CRC-32C, 1 (entries of earlier versions, still read)
 * zlib's CRC-32, which cost 165 ns a record entry against 33. */
#define JOURNAL_VERSION ((uint16_t)(2u << 12 | sizeof(struct ctd_record)))
#define JOURNAL_VERSION_ZLIB ((uint16_t)(1u << 12 | sizeof(struct ctd_record)))

struct entry_hdr {
	uint32_t magic;
	uint16_t kind;
	uint16_t version;
	uint32_t len;
	uint32_t crc;
};

struct ctd_journal {
	int fd;
	int dfd;                  /* its directory: the rewrite's rename */
	struct ctd_owner owner;   /* who the rewritten file is handed to */
	uint64_t size;
	uint64_t read_off;
	uint64_t peeked_end;      /* end of the entry peek returned, or 0 */
	ctd_journal_fits *fits;   /* the owner's kinds */
	struct ctd_journal_stats stats;
	char *path;
	const char *name;         /* last component of path */
};

/* The header's kind, version and length, checksummed as one part. */
#define HDR_SUMMED 8
_Static_assert(offsetof(struct entry_hdr, len) + sizeof(uint32_t) -
	       offsetof(struct entry_hdr, kind) == HDR_SUMMED,
	       "kind, version and len are contiguous");

/* One more part of an entry's checksum, by the entry's version. */
static uint32_t crc_part(uint16_t version, uint32_t c, const void *p,
			 size_t n)
{
	if (!n)
		return c;
	if (version == JOURNAL_VERSION_ZLIB)
		return (uint32_t)crc32(c, (const Bytef *)p, (uInt)n);
	return ctd_crc32c(c, p, n);
}

static uint32_t entry_crc(const struct entry_hdr *h, const void *data,
			  size_t len)
{
	uint32_t c = crc_part(h->version, 0, &h->kind, HDR_SUMMED);

	return crc_part(h->version, c, data, len);
}

/* Only a file that is empty or holds an entry's magic near its start is
 * ours to truncate and rewrite (one damaged header must not disown the
 * rest): anything else at the path was put there by someone else (see
 * safefile.c) and is left alone. */
static int check_magic(int fd, uint64_t size)
{
	static const uint32_t magic = JOURNAL_MAGIC;
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

static int open_fd(struct ctd_journal *j, const struct ctd_owner *owner,
		   int flags)
{
	char dir[4096];
	struct stat st;
	int r = ctd_safefile_split(j->path, dir, sizeof(dir), &j->name);

	if (r < 0)
		return r;
	j->dfd = ctd_safefile_dir(dir, false, 0, owner);
	if (j->dfd < 0)
		return j->dfd;
	j->fd = ctd_safefile_openat(j->dfd, j->name, flags, 0600,
				    CTD_SAFE_REGULAR, owner);
	if (j->fd < 0)
		return j->fd;
	if (fstat(j->fd, &st) < 0)
		return -errno;
	j->size = (uint64_t)st.st_size;
	return check_magic(j->fd, j->size);
}

static int open_journal(const char *path, const struct ctd_owner *owner,
			ctd_journal_fits *fits, int flags,
			struct ctd_journal **ret)
{
	struct ctd_journal *j = calloc(1, sizeof(*j));
	int r;

	if (!j || !(j->path = strdup(path))) {
		free(j);
		return -ENOMEM;
	}
	j->fd = j->dfd = -1;
	j->fits = fits;
	j->owner = owner ? *owner : CTD_OWNER_NONE;
	r = open_fd(j, owner, flags);
	if (r < 0) {
		ctd_journal_free(j);
		return r;
	}
	*ret = j;
	return 0;
}

int ctd_journal_open(const char *path, const struct ctd_owner *owner,
		     ctd_journal_fits *fits, struct ctd_journal **ret)
{
	return open_journal(path, owner, fits, O_RDWR | O_CREAT, ret);
}

int ctd_journal_open_existing(const char *path, const struct ctd_owner *owner,
			      ctd_journal_fits *fits, struct ctd_journal **ret)
{
	return open_journal(path, owner, fits, O_RDWR, ret);
}

void ctd_journal_free(struct ctd_journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	if (j->dfd >= 0)
		close(j->dfd);
	free(j->path);
	free(j);
}

int ctd_journal_append(struct ctd_journal *j, unsigned kind,
		       const void *data, size_t len)
{
	struct entry_hdr h = { JOURNAL_MAGIC, (uint16_t)kind, JOURNAL_VERSION,
			       (uint32_t)len, 0 };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };
	size_t want = sizeof(h) + len;
	ssize_t n;

	if (len > CTD_JOURNAL_MAX_ENTRY)
		return -EMSGSIZE;
	h.crc = entry_crc(&h, data, len);
	n = pwritev(j->fd, iov, 2, (off_t)j->size);
	if (n == (ssize_t)want) {
		j->size += want;
		return 0;
	}
	n = n < 0 ? -errno : -ENOSPC;
	/* No partial entry may stay behind a later, complete one. */
	if (ftruncate(j->fd, (off_t)j->size) < 0)
		return -errno;
	return (int)n;
}

#define BATCH_ENTRIES 256     /* 3 iovecs each, under IOV_MAX */

static void fill_entry(const struct ctd_journal_entry *e,
		       struct entry_hdr *h, struct iovec *iov)
{
	uint32_t c;

	*h = (struct entry_hdr){ JOURNAL_MAGIC, (uint16_t)e->kind, JOURNAL_VERSION,
				 (uint32_t)(e->head_len + e->body_len), 0 };
	c = crc_part(JOURNAL_VERSION, 0, &h->kind, HDR_SUMMED);
	c = crc_part(JOURNAL_VERSION, c, e->head, e->head_len);
	h->crc = crc_part(JOURNAL_VERSION, c, e->body, e->body_len);
	iov[0] = (struct iovec){ h, sizeof(*h) };
	iov[1] = (struct iovec){ (void *)e->head, e->head_len };
	iov[2] = (struct iovec){ (void *)e->body, e->body_len };
}

static int write_chunk(struct ctd_journal *j,
		       const struct ctd_journal_entry *e, size_t n)
{
	struct entry_hdr h[BATCH_ENTRIES];
	struct iovec iov[3 * BATCH_ENTRIES];
	size_t want = 0;
	ssize_t got;

	for (size_t i = 0; i < n; i++) {
		if (e[i].head_len + e[i].body_len > CTD_JOURNAL_MAX_ENTRY)
			return -EMSGSIZE;
		fill_entry(&e[i], &h[i], &iov[3 * i]);
		want += sizeof(h[i]) + e[i].head_len + e[i].body_len;
	}
	got = pwritev(j->fd, iov, (int)(3 * n), (off_t)j->size);
	if (got != (ssize_t)want)
		return got < 0 ? -errno : -ENOSPC;
	j->size += want;
	return 0;
}

int ctd_journal_append_many(struct ctd_journal *j,
			    const struct ctd_journal_entry *e, size_t n)
{
	uint64_t start = j->size;
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i += BATCH_ENTRIES)
		r = write_chunk(j, e + i,
				n - i < BATCH_ENTRIES ? n - i : BATCH_ENTRIES);
	if (r == 0)
		return 0;
	/* No partial entry may stay behind a later, complete one. */
	if (ftruncate(j->fd, (off_t)start) == 0)
		j->size = start;
	return r;
}

int ctd_journal_cut(struct ctd_journal *j, uint64_t size)
{
	if (size > j->size || size < j->read_off)
		return -EINVAL;
	if (ftruncate(j->fd, (off_t)size) < 0)
		return -errno;
	j->size = size;
	return 0;
}

static int read_at(struct ctd_journal *j, uint64_t off, void *buf, size_t len)
{
	ssize_t n = pread(j->fd, buf, len, (off_t)off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* The next offset after the read position where the magic is, or the
 * end of the file. */
static int find_magic(struct ctd_journal *j, uint64_t *ret)
{
	static const uint32_t magic = JOURNAL_MAGIC;
	uint8_t buf[65536];
	uint64_t off = j->read_off + 1;

	while (off + sizeof(magic) <= j->size) {
		size_t want = j->size - off < sizeof(buf) ?
			      (size_t)(j->size - off) : sizeof(buf);
		const uint8_t *hit;
		int r = read_at(j, off, buf, want);

		if (r < 0)
			return r;
		hit = memmem(buf, want, &magic, sizeof(magic));
		if (hit) {
			*ret = off + (uint64_t)(hit - buf);
			return 0;
		}
		off += want - (sizeof(magic) - 1);
	}
	*ret = j->size;
	return 0;
}

/* A damaged header: skip to the next candidate, counting what was lost
 * as torn when nothing follows (a write cut short), else corrupt. */
static int lost_place(struct ctd_journal *j)
{
	uint64_t next;
	int r = find_magic(j, &next);

	if (r < 0)
		return r;
	if (next == j->size)
		j->stats.torn++;
	else
		j->stats.corrupt++;
	j->stats.skipped_bytes += next - j->read_off;
	j->read_off = next;
	return 0;
}

/* Reads the entry at the read position into h and buf: 1 when it is
 * whole and its checksum matches, 0 when the reader lost its place, or
 * -errno when a read failed. Only a checksum that matches makes the
 * length trustworthy: skipping by a damaged length could jump over good
 * entries. */
static int read_entry(struct ctd_journal *j, struct entry_hdr *h, void *buf,
		      size_t cap)
{
	int r = read_at(j, j->read_off, h, sizeof(*h));

	if (r < 0)
		return r;
	if (h->magic != JOURNAL_MAGIC || h->len > cap ||
	    j->read_off + sizeof(*h) + h->len > j->size)
		return 0;
	r = read_at(j, j->read_off + sizeof(*h), buf, h->len);
	if (r == -EIO)                  /* short: the file ends inside it */
		return 0;
	if (r < 0)
		return r;
	return entry_crc(h, buf, h->len) == h->crc;
}

/* Fewer bytes than a header left: a write cut short. */
static void torn_tail(struct ctd_journal *j)
{
	j->stats.torn++;
	j->stats.skipped_bytes += j->size - j->read_off;
	j->read_off = j->size;
}

int ctd_journal_peek(struct ctd_journal *j, void *buf, size_t cap,
		     unsigned *ret_kind, size_t *ret_len)
{
	struct entry_hdr h;
	uint64_t end;
	int r;

	while (j->read_off < j->size) {
		if (j->size - j->read_off < sizeof(h)) {
			torn_tail(j);
			break;
		}
		r = read_entry(j, &h, buf, cap);
		if (r == 0 && (r = lost_place(j)) == 0)
			continue;
		if (r < 0)
			return r;
		end = j->read_off + sizeof(h) + h.len;
		/* Whole, but not for this build (an older record layout) or
		 * not of its owner's kinds. */
		if ((h.version != JOURNAL_VERSION &&
		     h.version != JOURNAL_VERSION_ZLIB) ||
		    !j->fits(h.kind, h.len)) {
			j->stats.corrupt++;
			j->stats.skipped_bytes += end - j->read_off;
			j->read_off = end;
			continue;
		}
		j->peeked_end = end;
		*ret_kind = h.kind;
		*ret_len = h.len;
		return 1;
	}
	return 0;
}

void ctd_journal_seek(struct ctd_journal *j, uint64_t off)
{
	j->read_off = off < j->size ? off : j->size;
	j->peeked_end = 0;
}

uint64_t ctd_journal_peeked_end(const struct ctd_journal *j)
{
	return j->peeked_end;
}

void ctd_journal_consume(struct ctd_journal *j)
{
	if (j->peeked_end > j->read_off)
		j->read_off = j->peeked_end;
	j->peeked_end = 0;
}

int ctd_journal_truncate(struct ctd_journal *j)
{
	if (ftruncate(j->fd, 0) < 0)
		return -errno;
	j->size = j->read_off = j->peeked_end = 0;
	return 0;
}

uint64_t ctd_journal_size(const struct ctd_journal *j)
{
	return j->size;
}

uint64_t ctd_journal_unread(const struct ctd_journal *j)
{
	return j->size - j->read_off;
}

const struct ctd_journal_stats *ctd_journal_stats(const struct ctd_journal *j)
{
	return &j->stats;
}

const char *ctd_journal_path(const struct ctd_journal *j)
{
	return j->path;
}

/* The rewrite goes to a new file beside this one, made with O_EXCL
 * relative to the directory's descriptor, then renamed over it. */
static int open_tmp(struct ctd_journal *j, char *tmp, size_t cap)
{
	if ((size_t)snprintf(tmp, cap, "%s.tmp", j->name) >= cap)
		return -ENAMETOOLONG;
	if (unlinkat(j->dfd, tmp, 0) < 0 && errno != ENOENT)
		return -errno;
	return ctd_safefile_openat(j->dfd, tmp, O_RDWR | O_CREAT | O_EXCL,
				   0600, CTD_SAFE_REGULAR, &j->owner);
}

int ctd_journal_rewrite(struct ctd_journal *j,
			int (*fill)(void *arg, struct ctd_journal *into),
			void *arg)
{
	struct ctd_journal into = { .fd = -1, .dfd = j->dfd,
				    .owner = j->owner, .fits = j->fits };
	char tmp[4096];
	int r;

	into.fd = open_tmp(j, tmp, sizeof(tmp));
	if (into.fd < 0)
		return into.fd;
	r = fill(arg, &into);
	if (r >= 0 && (fsync(into.fd) < 0 ||
		       renameat(j->dfd, tmp, j->dfd, j->name) < 0))
		r = -errno;
	if (r < 0) {
		close(into.fd);
		unlinkat(j->dfd, tmp, 0);
		return r;
	}
	close(j->fd);
	j->fd = into.fd;
	j->size = into.size;
	j->read_off = j->peeked_end = 0;
	return 0;
}
