/* wbuf: append-only byte buffer drained to a descriptor. Callers format
 * straight into the reserved tail (no intermediate copy), and the loop's
 * prepare hook flushes once per iteration, so write() is called per
 * batch of events, not per record. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctd/base/wbuf.h"

struct ctd_wbuf {
	int fd;
	size_t cap;
	size_t head;   /* first unwritten byte */
	size_t tail;   /* end of data */
	uint64_t *written;   /* bytes written are added here, if set */
	uint64_t total_in;   /* bytes committed since the start */
	uint64_t total_out;  /* ... and written (or cleared) */
	char *data;
};

struct ctd_wbuf *ctd_wbuf_new(int fd, size_t cap)
{
	struct ctd_wbuf *wb = calloc(1, sizeof(*wb));

	if (!wb)
		return NULL;
	wb->data = malloc(cap);
	if (!wb->data) {
		free(wb);
		return NULL;
	}
	wb->fd = fd;
	wb->cap = cap;
	return wb;
}

void ctd_wbuf_free(struct ctd_wbuf *wb)
{
	if (!wb)
		return;
	free(wb->data);
	free(wb);
}

int ctd_wbuf_flush(struct ctd_wbuf *wb)
{
	ssize_t n;

	while (wb->head < wb->tail) {
		n = write(wb->fd, wb->data + wb->head, wb->tail - wb->head);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0)
			return -EAGAIN;
		wb->head += (size_t)n;
		wb->total_out += (uint64_t)n;
		if (wb->written)
			*wb->written += (uint64_t)n;
	}
	wb->head = wb->tail = 0;
	return 0;
}

int ctd_wbuf_flush_to(struct ctd_wbuf *wb, uint64_t pos)
{
	ssize_t n;

	if (pos > wb->total_in)
		pos = wb->total_in;
	while (wb->total_out < pos) {
		n = write(wb->fd, wb->data + wb->head,
			  (size_t)(pos - wb->total_out));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EAGAIN;
		wb->head += (size_t)n;
		wb->total_out += (uint64_t)n;
		if (wb->written)
			*wb->written += (uint64_t)n;
	}
	return 0;
}

static void compact(struct ctd_wbuf *wb)
{
	if (!wb->head)
		return;
	memmove(wb->data, wb->data + wb->head, wb->tail - wb->head);
	wb->tail -= wb->head;
	wb->head = 0;
}

char *ctd_wbuf_reserve(struct ctd_wbuf *wb, size_t len)
{
	if (wb->cap - wb->tail >= len)
		return wb->data + wb->tail;
	ctd_wbuf_flush(wb);
	compact(wb);
	if (wb->cap - wb->tail < len)
		return NULL;
	return wb->data + wb->tail;
}

void ctd_wbuf_commit(struct ctd_wbuf *wb, size_t len)
{
	wb->tail += len;
	wb->total_in += len;
}

uint64_t ctd_wbuf_total_in(const struct ctd_wbuf *wb)
{
	return wb->total_in;
}

uint64_t ctd_wbuf_total_out(const struct ctd_wbuf *wb)
{
	return wb->total_out;
}

size_t ctd_wbuf_pending(const struct ctd_wbuf *wb)
{
	return wb->tail - wb->head;
}

size_t ctd_wbuf_room(const struct ctd_wbuf *wb)
{
	return wb->cap - (wb->tail - wb->head);
}

const char *ctd_wbuf_data(const struct ctd_wbuf *wb)
{
	return wb->data + wb->head;
}

void ctd_wbuf_clear(struct ctd_wbuf *wb)
{
	wb->total_out += wb->tail - wb->head;
	wb->head = wb->tail = 0;
}

void ctd_wbuf_set_fd(struct ctd_wbuf *wb, int fd)
{
	wb->fd = fd;
}

void ctd_wbuf_count_into(struct ctd_wbuf *wb, uint64_t *written)
{
	wb->written = written;
}
