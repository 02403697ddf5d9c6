/* pgcopy: a flow record as one row of PostgreSQL's COPY text format,
 * for the postgresql output's staging table. Pure. */
#ifndef CTD_PGCOPY_H
#define CTD_PGCOPY_H

#include <stddef.h>

struct ctd_record;

/* The row's columns in order, for "COPY table (...) FROM STDIN"; the
 * same names and meaning as the SQLite store's flows table (out_store.h)
 * but exporter, which the output adds. Addresses are inet text. */
#define CTD_PGCOPY_COLUMNS \
	"id, kstart_ns, netns, family, proto, src, dst, sport, dport, " \
	"reply_src, reply_dst, reply_sport, reply_dport, orig_packets, " \
	"orig_bytes, reply_packets, reply_bytes, start_ms, end_ms, " \
	"end_reason, zone, mark"

/* Room one row may need (the longest namespace label escaped, four
 * IPv6 addresses, every number at its widest). */
#define CTD_PGCOPY_ROW_MAX 1024

/* Writes rec's row, newline included, to buf (CTD_PGCOPY_ROW_MAX bytes
 * or more) and returns its length. Counters are NULL (\N) when the
 * record has none (no nf_conntrack_acct), start_ms when its start is
 * unknown; text is escaped for COPY, and bytes that are not UTF-8 (a
 * namespace's file name may be anything) become '?', since the server
 * would refuse the whole batch for one such byte. */
size_t ctd_pgcopy_row(const struct ctd_record *rec, char *buf);

#endif
