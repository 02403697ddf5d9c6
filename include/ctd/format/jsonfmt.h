/* jsonfmt: renders a record as one JSON line (docs/json-records.md).
 * Pure: writes into the caller's buffer, never allocates. */
#ifndef CTD_JSONFMT_H
#define CTD_JSONFMT_H

#include <stddef.h>
#include <stdint.h>

struct ctd_connlabel;
struct ctd_record;

/* Room for the longest line ctd_jsonfmt_record_labels() can produce,
 * newline included (5,599 bytes today: IPv6, every status bit, 64-bit
 * counters and deltas, all 128 labels named with 32 characters;
 * test_jsonfmt checks it fits). */
#define CTD_JSON_MAX 8192

/* Returns the length written (newline included, not NUL-terminated),
 * or 0 when cap is too small. */
size_t ctd_jsonfmt_record(const struct ctd_record *rec, char *buf, size_t cap);
/* The same with the record's conntrack labels (record-labels) when it
 * has any: "labels":[...], each a name from names or, for a bit names
 * does not name, its number as a decimal string. names NULL: no labels
 * (as ctd_jsonfmt_record). */
size_t ctd_jsonfmt_record_labels(const struct ctd_record *rec,
				 const struct ctd_connlabel *names,
				 char *buf, size_t cap);

/* Writes s as a quoted, escaped JSON string; same return convention. */
size_t ctd_jsonfmt_string(const char *s, char *buf, size_t cap);

/* An IPv6 address as inet_ntop writes it (RFC 5952), without a NUL;
 * out has room for INET6_ADDRSTRLEN. Returns its length. */
size_t ctd_jsonfmt_ipv6(const uint8_t *addr, char *out);

#endif
