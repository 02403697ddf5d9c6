/* ipfix_decode: a small, independent IPFIX reader for the round-trip
 * fuzz target: it learns templates from the message itself and hands
 * back each data record's fields by (enterprise, element id). Written
 * from RFC 7011 alone, not from src/ipfix.c, so the two can disagree. */
#ifndef CTD_FUZZ_IPFIX_DECODE_H
#define CTD_FUZZ_IPFIX_DECODE_H

#include <stddef.h>
#include <stdint.h>

#define DEC_FIELDS_MAX 64
#define DEC_TEMPLATES_MAX 16
#define DEC_RECORDS_MAX 16

struct dec_field {
	uint32_t pen;
	uint16_t id;
	uint16_t len;
	const uint8_t *val;      /* in the message; NULL in a template */
};

struct dec_template {
	uint16_t tid;
	uint16_t scope;          /* scope fields (options templates) */
	uint16_t n;
	struct dec_field f[DEC_FIELDS_MAX];
};

struct dec_record {
	uint16_t tid;
	uint16_t n;
	struct dec_field f[DEC_FIELDS_MAX];
};

struct dec_msg {
	uint16_t version, length;
	uint32_t export_time, seq, domain;
	size_t ntemplates, nrecords;
	struct dec_template t[DEC_TEMPLATES_MAX];
	struct dec_record r[DEC_RECORDS_MAX];
};

/* 0, or a negative number naming the first thing that was wrong. */
int dec_message(const uint8_t *buf, size_t len, struct dec_msg *m);
/* The field (pen, id) of a record, or NULL. */
const struct dec_field *dec_find(const struct dec_record *r, uint32_t pen,
				 uint16_t id);
uint64_t dec_uint(const struct dec_field *f);

#endif
