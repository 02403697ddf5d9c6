/* jsonfmt: renders a record as one JSON line (docs/json-records.md).
 * Pure: writes into the caller's buffer, never allocates. */
#ifndef CTD_JSONFMT_H
#define CTD_JSONFMT_H

#include <stddef.h>
#include <stdint.h>

struct ctd_record;

/* Room for the longest line ctd_jsonfmt_record() can produce, newline
 * included (1,089 bytes today: IPv6, every status bit, 64-bit counters and
 * deltas; test_jsonfmt checks it fits). */
#define CTD_JSON_MAX 2048

/* Returns the length written (newline included, not NUL-terminated),
 * or 0 when cap is too small. */
size_t ctd_jsonfmt_record(const struct ctd_record *rec, char *buf, size_t cap);

/* Writes s as a quoted, escaped JSON string; same return convention. */
size_t ctd_jsonfmt_string(const char *s, char *buf, size_t cap);

/* An IPv6 address as inet_ntop writes it (RFC 5952), without a NUL;
 * out has room for INET6_ADDRSTRLEN. Returns its length. */
size_t ctd_jsonfmt_ipv6(const uint8_t *addr, char *out);

#endif
