/* pgcopy: COPY text rows (PostgreSQL's manual, "COPY", text format):
 * columns separated by tabs, rows by a newline, \N for NULL, and inside
 * a value a backslash, tab, newline or carriage return written as a
 * backslash sequence. Numbers are written by hand, not with snprintf:
 * the postgresql output encodes every stored flow on its hot path. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "ctd/flows/record.h"
#include "ctd/format/pgcopy.h"
#include "ctd/kernel/ctevent.h"

struct row {
	char *p;
};

static void text(struct row *w, const char *s, size_t n)
{
	memcpy(w->p, s, n);
	w->p += n;
}

static void sep(struct row *w, char c)
{
	*w->p++ = c;
}

static void u64(struct row *w, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*w->p++ = tmp[--n];
}

/* bigint columns: PostgreSQL has no unsigned type; a value past
 * INT64_MAX (never met: counters) is written as the store writes it. */
static void i64(struct row *w, int64_t v)
{
	if (v < 0) {
		*w->p++ = '-';
		u64(w, 0 - (uint64_t)v);
		return;
	}
	u64(w, (uint64_t)v);
}

static void null(struct row *w)
{
	text(w, "\\N", 2);
}

static void addr(struct row *w, const struct ctd_record *rec,
		 const uint8_t *a)
{
	char buf[INET6_ADDRSTRLEN];

	inet_ntop(rec->family == AF_INET6 ? AF_INET6 : AF_INET, a, buf,
		  sizeof(buf));
	text(w, buf, strlen(buf));
}

/* The length of a well-formed UTF-8 sequence at s (as the server's
 * check wants it: no overlong forms, no surrogates, nothing past
 * U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
		   c >= 0xf0 && c <= 0xf4 ? 4 : 0;

	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n && (s[1] < lo || s[1] > hi))
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static void escaped(struct row *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		size_t n = *u < 0x80 ? 1 : utf8_len(u);

		if (*u == '\\') {
			text(w, "\\\\", 2);
		} else if (*u < 0x20 || *u == 0x7f) {
			char esc[4] = { '\\', 'x', hex[*u >> 4], hex[*u & 15] };

			text(w, esc, sizeof(esc));
		} else if (n) {
			text(w, (const char *)u, n);
		} else {
			sep(w, '?');
		}
		u += n ? n : 1;
	}
}

static void tuple(struct row *w, const struct ctd_record *rec,
		  const struct ctd_tuple *t)
{
	addr(w, rec, t->src);
	sep(w, '\t');
	addr(w, rec, t->dst);
	sep(w, '\t');
	u64(w, t->sport);
	sep(w, '\t');
	u64(w, t->dport);
	sep(w, '\t');
}

static void counters(struct row *w, const struct ctd_record *rec)
{
	for (int d = 0; d < CTD_DIR__COUNT; d++) {
		if (rec->flags & CTD_REC_COUNTERS) {
			i64(w, (int64_t)rec->cnt[d].packets);
			sep(w, '\t');
			i64(w, (int64_t)rec->cnt[d].bytes);
		} else {
			null(w);
			sep(w, '\t');
			null(w);
		}
		sep(w, '\t');
	}
}

static void head(struct row *w, const struct ctd_record *rec)
{
	char netns[CTD_NETNS_NAME_MAX + 16];

	ctd_record_netns_label(rec, netns, sizeof(netns));
	u64(w, rec->id);
	sep(w, '\t');
	i64(w, (int64_t)rec->start_ns);
	sep(w, '\t');
	escaped(w, netns);
	sep(w, '\t');
	u64(w, rec->family);
	sep(w, '\t');
	u64(w, rec->proto);
	sep(w, '\t');
}

static void tail(struct row *w, const struct ctd_record *rec)
{
	const char *reason = ctd_end_reason_name(rec->end_reason);

	if (rec->start_ns)
		i64(w, (int64_t)(rec->start_ns / 1000000));
	else
		null(w);
	sep(w, '\t');
	i64(w, (int64_t)(rec->end_ns / 1000000));
	sep(w, '\t');
	escaped(w, reason);
	sep(w, '\t');
	u64(w, rec->zone);
	sep(w, '\t');
	u64(w, rec->mark);
	sep(w, '\n');
}

size_t ctd_pgcopy_row(const struct ctd_record *rec, char *buf)
{
	struct row w = { buf };

	head(&w, rec);
	tuple(&w, rec, &rec->tuple[CTD_DIR_ORIG]);
	tuple(&w, rec, &rec->tuple[CTD_DIR_REPLY]);
	counters(&w, rec);
	tail(&w, rec);
	return (size_t)(w.p - buf);
}
