/* connlabel: the bit -> name table of the conntrack labels.
 *
 * The file is the one iptables' connlabel match, conntrack-tools and
 * nftables already read, so a label has the same name in the ruleset
 * and in ctd's records. Its syntax is libnetfilter_conntrack's, which
 * is lenient: a line it cannot use is skipped, not an error; the count
 * of such lines comes back for the caller to mention. Names are kept
 * only as that library accepts them (letters, digits, space, '-'), so
 * a name never needs escaping in a JSON string or a log line. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/kernel/connlabel.h"

/* libnetfilter_conntrack reads lines of at most this many bytes. */
#define LINE_MAX_BYTES 1024

struct ctd_connlabel {
	size_t count;
	char name[CTD_CONNLABEL_BITS][CTD_CONNLABEL_NAME_MAX + 1];
};

struct ctd_connlabel *ctd_connlabel_new(void)
{
	return calloc(1, sizeof(struct ctd_connlabel));
}

void ctd_connlabel_free(struct ctd_connlabel *m)
{
	free(m);
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' ||
	       ch == '\v' || ch == '\n';
}

static bool name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == ' ' || ch == '-'))
			return false;
	}
	return n > 0 && n <= CTD_CONNLABEL_NAME_MAX;
}

static bool name_taken(const struct ctd_connlabel *m, const char *s)
{
	for (unsigned b = 0; b < CTD_CONNLABEL_BITS; b++)
		if (strcmp(m->name[b], s) == 0)
			return true;
	return false;
}

/* One line without its newline; false when it names nothing usable. */
static bool add_line(struct ctd_connlabel *m, char *line)
{
	char *end, *last;
	unsigned long bit = strtoul(line, &end, 0);

	if (end == line || bit >= CTD_CONNLABEL_BITS || *m->name[bit])
		return false;
	while (is_blank(*end))
		end++;
	last = end + strlen(end);
	while (last > end && is_blank(last[-1]))
		*--last = '\0';
	if (!name_ok(end, (size_t)(last - end)) || name_taken(m, end))
		return false;
	strcpy(m->name[bit], end);
	m->count++;
	return true;
}

static bool blank_line(const char *s)
{
	while (is_blank(*s))
		s++;
	return !*s;
}

/* The rest of a line longer than the buffer; it counts as unused. */
static void skip_rest(FILE *f)
{
	int ch;

	while ((ch = getc(f)) != EOF && ch != '\n')
		;
}

size_t ctd_connlabel_read(struct ctd_connlabel *m, FILE *f)
{
	char line[LINE_MAX_BYTES];
	size_t skipped = 0;

	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		if (n && line[n - 1] != '\n' && !feof(f)) {
			skip_rest(f);
			skipped++;
			continue;
		}
		if (line[0] == '#' || blank_line(line))
			continue;
		if (!add_line(m, line))
			skipped++;
	}
	return skipped;
}

int ctd_connlabel_load(struct ctd_connlabel *m, const char *path,
		       size_t *ret_skipped)
{
	FILE *f = fopen(path, "re");
	int r = 0;

	if (!f)
		return -errno;
	*ret_skipped = ctd_connlabel_read(m, f);
	if (ferror(f))
		r = -EIO;
	fclose(f);
	return r;
}

int ctd_connlabel_system(struct ctd_connlabel **ret, const char **ret_path,
			 size_t *ret_skipped)
{
	static const char *const paths[] = CTD_CONNLABEL_PATHS;
	struct ctd_connlabel *m = ctd_connlabel_new();
	int r = -ENOENT;

	*ret_path = NULL;
	*ret_skipped = 0;
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; r == -ENOENT && i < sizeof(paths) / sizeof(*paths); i++) {
		r = ctd_connlabel_load(m, paths[i], ret_skipped);
		if (r == 0)
			*ret_path = paths[i];
	}
	if (r < 0 && r != -ENOENT) {
		ctd_connlabel_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

struct ctd_connlabel *ctd_connlabel_open(bool on)
{
	struct ctd_connlabel *m = NULL;
	const char *path;
	size_t skipped;

	if (!on)
		return NULL;
	if (ctd_connlabel_system(&m, &path, &skipped) < 0)
		m = ctd_connlabel_new();
	return m;
}

const char *ctd_connlabel_name(const struct ctd_connlabel *m, unsigned bit)
{
	if (!m || bit >= CTD_CONNLABEL_BITS || !*m->name[bit])
		return NULL;
	return m->name[bit];
}

size_t ctd_connlabel_count(const struct ctd_connlabel *m)
{
	return m ? m->count : 0;
}

bool ctd_connlabel_test(const uint8_t labels[16], unsigned bit)
{
	uint32_t word;

	if (bit >= CTD_CONNLABEL_BITS)
		return false;
	memcpy(&word, labels + bit / 32 * 4, sizeof(word));
	return word >> (bit % 32) & 1u;
}

bool ctd_connlabel_any(const uint8_t labels[16])
{
	static const uint8_t zero[16];

	return memcmp(labels, zero, sizeof(zero)) != 0;
}
