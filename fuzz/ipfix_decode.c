/* ipfix_decode: see ipfix_decode.h. */
#include <errno.h>
#include <string.h>

#include "ipfix_decode.h"

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)be16(p) << 16 | be16(p + 2);
}

uint64_t dec_uint(const struct dec_field *f)
{
	uint64_t v = 0;

	for (uint16_t i = 0; i < f->len; i++)
		v = v << 8 | f->val[i];
	return v;
}

/* One template record at p (set ends at end); returns its size or < 0. */
static int read_template(const uint8_t *p, const uint8_t *end, int options,
			 struct dec_template *t)
{
	const uint8_t *start = p;
	uint16_t n;

	if (end - p < (options ? 6 : 4))
		return -1;
	t->tid = be16(p);
	n = be16(p + 2);
	t->scope = options ? be16(p + 4) : 0;
	p += options ? 6 : 4;
	if (t->tid < 256 || n == 0 || n > DEC_FIELDS_MAX || t->scope > n)
		return -2;
	t->n = n;
	for (uint16_t i = 0; i < n; i++) {
		if (end - p < 4)
			return -3;
		t->f[i].id = be16(p) & 0x7fff;
		t->f[i].len = be16(p + 2);
		t->f[i].pen = 0;
		t->f[i].val = NULL;
		if (t->f[i].len == 0xffff)   /* variable length: not ours */
			return -4;
		if (be16(p) & 0x8000) {
			if (end - p < 8)
				return -5;
			t->f[i].pen = be32(p + 4);
			p += 4;
		}
		p += 4;
	}
	return (int)(p - start);
}

static int template_set(struct dec_msg *m, const uint8_t *p,
			const uint8_t *end, int options)
{
	while (end - p >= 4) {
		struct dec_template *t;
		int r;

		if (m->ntemplates == DEC_TEMPLATES_MAX)
			return -10;
		t = &m->t[m->ntemplates];
		r = read_template(p, end, options, t);
		if (r < 0)
			return r - 10;
		m->ntemplates++;
		p += r;
	}
	return 0;
}

static const struct dec_template *find_template(const struct dec_msg *m,
						uint16_t tid)
{
	for (size_t i = 0; i < m->ntemplates; i++)
		if (m->t[i].tid == tid)
			return &m->t[i];
	return NULL;
}

static int data_set(struct dec_msg *m, uint16_t tid, const uint8_t *p,
		    const uint8_t *end)
{
	const struct dec_template *t = find_template(m, tid);
	size_t rlen = 0;

	if (!t)
		return -20;
	for (uint16_t i = 0; i < t->n; i++)
		rlen += t->f[i].len;
	/* Padding shorter than a record may end a set (RFC 7011 3.3.1). */
	while ((size_t)(end - p) >= rlen) {
		struct dec_record *r;

		if (m->nrecords == DEC_RECORDS_MAX)
			return -21;
		r = &m->r[m->nrecords++];
		r->tid = tid;
		r->n = t->n;
		for (uint16_t i = 0; i < t->n; i++) {
			r->f[i] = t->f[i];
			r->f[i].val = p;
			p += t->f[i].len;
		}
	}
	return p == end ? 0 : -22;
}

int dec_message(const uint8_t *buf, size_t len, struct dec_msg *m)
{
	const uint8_t *p = buf + 16, *end;

	memset(m, 0, sizeof(*m));
	if (len < 16)
		return -1;
	m->version = be16(buf);
	m->length = be16(buf + 2);
	m->export_time = be32(buf + 4);
	m->seq = be32(buf + 8);
	m->domain = be32(buf + 12);
	if (m->version != 10 || m->length != len)
		return -2;
	end = buf + len;
	while (p < end) {
		uint16_t id, slen;
		int r;

		if (end - p < 4)
			return -3;
		id = be16(p);
		slen = be16(p + 2);
		if (slen < 4 || slen > end - p)
			return -4;
		if (id == 2 || id == 3)
			r = template_set(m, p + 4, p + slen, id == 3);
		else if (id >= 256)
			r = data_set(m, id, p + 4, p + slen);
		else
			r = -5;
		if (r < 0)
			return r;
		p += slen;
	}
	return 0;
}

const struct dec_field *dec_find(const struct dec_record *r, uint32_t pen,
				 uint16_t id)
{
	for (uint16_t i = 0; i < r->n; i++)
		if (r->f[i].pen == pen && r->f[i].id == id)
			return &r->f[i];
	return NULL;
}
