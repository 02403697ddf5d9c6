/* Fuzz target: a spool file as a crash, a full disk or a bad sector may
 * leave it. The input is a script of steps, each appending a well-formed
 * entry (so the fuzzer gets past the checksums to the record contents),
 * raw bytes, or a flipped byte. The file is then read back as after a
 * restart, and every record in it is rendered by each output's renderer.
 * Invariants: the reader ends; well-formed entries written after the
 * last damage come back intact and in order; damage is counted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctd/delivery/spool.h"
#include "ctd/flows/record.h"
#include "render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static uint8_t scratch[CTD_SPOOL_MAX_ENTRY];


/* Runs the script; returns how many entries written since the last
 * damage must come back at the end. */
static size_t write_steps(struct ctd_spool *sp, int fd, const uint8_t *data,
			  size_t size)
{
	size_t intact = 0;
	int r;

	while (size >= 3) {
		uint8_t op = data[0];
		size_t len = (size_t)(data[1] | data[2] << 8);

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		switch (op % 4) {
		case 0: {   /* a record: the fuzzer's bytes as its contents */
			struct ctd_record rec = { 0 };

			memcpy(&rec, data, len < sizeof(rec) ? len : sizeof(rec));
			if (ctd_spool_append(sp, CTD_SPOOL_RECORD, &rec,
					     sizeof(rec)) == 0)
				intact++;
			break;
		}
		case 1:     /* rendered bytes */
			if (ctd_spool_append(sp, CTD_SPOOL_RAW, data, len) == 0)
				intact++;
			break;
		case 2:     /* a torn or foreign write */
			if (pwrite(fd, data, len, lseek(fd, 0, SEEK_END)) < 0)
				abort();
			intact = 0;
			break;
		default: {  /* a flipped byte */
			off_t end = lseek(fd, 0, SEEK_END);
			uint8_t b;

			if (end > 0 && len > 0 &&
			    pread(fd, &b, 1, (off_t)(data[0] * 257 % end)) == 1) {
				b ^= (uint8_t)(op | 1);
				if (pwrite(fd, &b, 1, data[0] * 257 % end) != 1)
					abort();
				intact = 0;
			}
			break;
		}
		}
		data += len;
		size -= len;
		if (op % 4 >= 2) {
			/* The appender's idea of the size is stale now. */
			ctd_spool_free(sp);
			r = ctd_spool_open(path, NULL, &sp);
			if (r == -EBADMSG)
				return 0;
			if (r < 0)
				abort();
		}
	}
	ctd_spool_free(sp);
	return intact;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctd_spool *sp;
	enum ctd_spool_kind kind;
	size_t len, entries = 0, intact;
	int fd, r;

	if (!path[0])
		snprintf(path, sizeof(path), "/dev/shm/ctd-fuzz-spool-%ld",
			 (long)getpid());
	unlink(path);
	if (ctd_spool_open(path, NULL, &sp) < 0)
		abort();
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		abort();
	intact = write_steps(sp, fd, data, size);
	close(fd);
	/* Every magic flipped: not a spool any more, and left alone. */
	r = ctd_spool_open(path, NULL, &sp);
	if (r == -EBADMSG)
		return 0;
	if (r < 0)
		abort();
	while ((r = ctd_spool_peek(sp, scratch, sizeof(scratch), &kind,
				   &len)) == 1) {
		if (kind == CTD_SPOOL_RECORD) {
			if (len != sizeof(struct ctd_record))
				abort();
			fuzz_render_record((const struct ctd_record *)scratch);
		}
		ctd_spool_consume(sp);
		entries++;
		if (entries % 7 == 3 && ctd_spool_drop_read(sp) < 0)
			abort();
	}
	if (r < 0 || entries < intact || ctd_spool_unread(sp) != 0 ||
	    ctd_spool_reset(sp) < 0 || ctd_spool_size(sp) != 0)
		abort();
	ctd_spool_free(sp);
	return 0;
}
