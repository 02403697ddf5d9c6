/* wbuf: a write buffer in front of one file descriptor, so records cost
 * a memcpy each and the loop pays one write() per iteration. Owns the
 * buffer, not the descriptor. Never blocks: a short or failed write keeps
 * the unwritten bytes for the next flush. */
#ifndef CTD_WBUF_H
#define CTD_WBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_wbuf;

struct ctd_wbuf *ctd_wbuf_new(int fd, size_t cap);
void ctd_wbuf_free(struct ctd_wbuf *wb);

/* Reserves len bytes at the tail; flushes first when needed. Returns
 * NULL when the bytes cannot fit (the output is stuck). */
char *ctd_wbuf_reserve(struct ctd_wbuf *wb, size_t len);
void ctd_wbuf_commit(struct ctd_wbuf *wb, size_t len);
/* Returns 0 when everything was written, -EAGAIN when bytes remain,
 * or another -errno from write(). */
int ctd_wbuf_flush(struct ctd_wbuf *wb);
size_t ctd_wbuf_pending(const struct ctd_wbuf *wb);
/* Bytes a reserve can get at most (it compacts when needed). */
size_t ctd_wbuf_room(const struct ctd_wbuf *wb);
/* The unwritten bytes, and forgetting them (they were saved elsewhere). */
const char *ctd_wbuf_data(const struct ctd_wbuf *wb);
void ctd_wbuf_clear(struct ctd_wbuf *wb);
/* Bytes committed, and written (or cleared), since the start: a stream
 * position for settle.h. */
uint64_t ctd_wbuf_total_in(const struct ctd_wbuf *wb);
uint64_t ctd_wbuf_total_out(const struct ctd_wbuf *wb);
/* Writes up to stream position pos only; 0 when it got there. */
int ctd_wbuf_flush_to(struct ctd_wbuf *wb, uint64_t pos);
/* Later flushes go to fd (a reopened file); unwritten bytes follow. */
void ctd_wbuf_set_fd(struct ctd_wbuf *wb, int fd);
/* Every byte written from now on is added to *written. */
void ctd_wbuf_count_into(struct ctd_wbuf *wb, uint64_t *written);

#endif
