/* listsort: reads the numbers back out of ctd -l's lines. They are what
 * ctd_textfmt_flow writes (" age=S.mmms", " orig=Pp/BB reply=Pp/BB");
 * test_listsort formats flows with it and sorts them, so a change of the
 * line shows there. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/control/listsort.h"

struct row {
	const char *line;
	size_t len;
	size_t index;
	uint64_t key;
	bool has_key;
};

int ctd_listsort_parse(const char *name, enum ctd_listsort_key *ret)
{
	static const char *const names[CTD_LISTSORT__COUNT] = {
		"bytes", "packets", "age",
	};

	for (int i = 0; i < CTD_LISTSORT__COUNT; i++) {
		if (strcmp(name, names[i]) == 0) {
			*ret = (enum ctd_listsort_key)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* The key of one line (NUL-terminated copy); false when it has none. */
static bool line_key(const char *line, enum ctd_listsort_key key,
		     uint64_t *ret)
{
	uint64_t op, ob, rp, rb, s, ms;
	const char *p;

	if (key == CTD_LISTSORT_AGE) {
		p = strstr(line, " age=");
		if (!p || sscanf(p, " age=%" SCNu64 ".%" SCNu64 "s", &s, &ms) != 2)
			return false;
		*ret = s * 1000 + ms;
		return true;
	}
	p = strstr(line, " orig=");
	if (!p || sscanf(p, " orig=%" SCNu64 "p/%" SCNu64 "B reply=%" SCNu64
			 "p/%" SCNu64 "B", &op, &ob, &rp, &rb) != 4)
		return false;
	*ret = key == CTD_LISTSORT_BYTES ? ob + rb : op + rp;
	return true;
}

static int by_key(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->has_key != y->has_key)
		return x->has_key ? -1 : 1;
	if (x->has_key && x->key != y->key)
		return x->key > y->key ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static void fill_row(struct row *r, const char *line, size_t len,
		     enum ctd_listsort_key key)
{
	char buf[1024];
	size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;

	memcpy(buf, line, n);
	buf[n] = '\0';
	r->line = line;
	r->len = len;
	r->has_key = line[0] != '#' && line_key(buf, key, &r->key);
}

/* Lines of text into rows (each with its newline); the count or -ENOMEM. */
static long split(const char *text, size_t len, enum ctd_listsort_key key,
		  struct row **ret)
{
	size_t n = 0, cap = 0;
	struct row *rows = NULL;

	for (size_t at = 0, end; at < len; at = end) {
		const char *nl = memchr(text + at, '\n', len - at);

		end = nl ? (size_t)(nl - text) + 1 : len;
		if (n == cap) {
			struct row *more = realloc(rows, (cap = cap ? 2 * cap : 256) *
						   sizeof(*rows));
			if (!more) {
				free(rows);
				return -ENOMEM;
			}
			rows = more;
		}
		fill_row(&rows[n], text + at, end - at, key);
		rows[n].index = n;
		n++;
	}
	*ret = rows;
	return (long)n;
}

int ctd_listsort_print(const char *text, size_t len, enum ctd_listsort_key key,
		       FILE *out)
{
	struct row *rows = NULL;
	long n = split(text, len, key, &rows);

	if (n < 0)
		return (int)n;
	qsort(rows, (size_t)n, sizeof(*rows), by_key);
	for (long i = 0; i < n; i++)
		fwrite(rows[i].line, 1, rows[i].len, out);
	free(rows);
	return 0;
}
