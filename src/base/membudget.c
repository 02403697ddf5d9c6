/* membudget: the bytes ctd holds for its outputs, against one bound.
 *
 * Why one bound for all outputs: the thing that kills ctd is the cgroup's
 * limit on the whole process, not any one list. A per-output record
 * count (dying-max) multiplies with the number of stalled outputs and
 * says nothing about bytes; a shared byte budget lets one stalled output
 * use what the healthy ones do not, and past it records go to the spool
 * on disk instead of growing ctd into the OOM killer.
 *
 * auto: the memory cgroup's limit (the lowest along ctd's path, since a
 * parent's limit binds its children too). A quarter of it: the flow
 * table, which is fullest exactly when a flush turns every tracked flow
 * into records, the netlink and IPFIX buffers and the write-ahead log's
 * batch need the rest (measured in the kernel test test_membudget.py). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/base/membudget.h"

/* v1 says "no limit" with LLONG_MAX rounded down to a page. */
#define NO_LIMIT (1ULL << 60)

bool ctd_membudget_take(struct ctd_membudget *b, size_t n)
{
	if (b->max && n > ctd_membudget_room(b))
		return false;
	ctd_membudget_charge(b, n);
	return true;
}

void ctd_membudget_charge(struct ctd_membudget *b, size_t n)
{
	b->held += n;
	if (b->held > b->peak)
		b->peak = b->held;
}

void ctd_membudget_give(struct ctd_membudget *b, size_t n)
{
	b->held = n > b->held ? 0 : b->held - n;
}

size_t ctd_membudget_room(const struct ctd_membudget *b)
{
	if (!b->max)
		return SIZE_MAX;
	return b->held >= b->max ? 0 : b->max - b->held;
}

size_t ctd_membudget_auto(uint64_t limit)
{
	uint64_t share = limit / 4;

	if (!limit)
		return CTD_MEMBUDGET_DEFAULT;
	if (share < CTD_MEMBUDGET_MIN)
		return CTD_MEMBUDGET_MIN;
	return share > CTD_MEMBUDGET_DEFAULT ? CTD_MEMBUDGET_DEFAULT :
					       (size_t)share;
}

/* One limit file: its number, or 0 for "max", a missing file or one
 * that says no limit. */
static uint64_t read_limit(const char *path)
{
	char buf[64];
	FILE *f = fopen(path, "re");
	uint64_t v = 0;

	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && strncmp(buf, "max", 3) != 0)
		v = strtoull(buf, NULL, 10);
	fclose(f);
	return v >= NO_LIMIT ? 0 : v;
}

static uint64_t lower(uint64_t a, uint64_t b)
{
	if (!a)
		return b;
	return b && b < a ? b : a;
}

/* The lowest limit from dir/cg up to dir itself. */
static uint64_t walk_up(const char *root, const char *dir, const char *cg,
			const char *file)
{
	char path[4096], rel[2048];
	uint64_t limit = 0;
	char *slash;

	snprintf(rel, sizeof(rel), "%s", cg);
	for (;;) {
		snprintf(path, sizeof(path), "%s/%s%s/%s", root, dir, rel, file);
		limit = lower(limit, read_limit(path));
		slash = strrchr(rel, '/');
		if (!slash || !*rel)
			return limit;
		*slash = '\0';
	}
}

static bool has_memory(const char *controllers, size_t len)
{
	char list[256];

	snprintf(list, sizeof(list), ",%.*s,", (int)len, controllers);
	return strstr(list, ",memory,") != NULL;
}

/* One line of /proc/self/cgroup: "ID:CONTROLLERS:PATH". */
static uint64_t line_limit(const char *root, char *line)
{
	char *c = strchr(line, ':'), *p = c ? strchr(c + 1, ':') : NULL;

	if (!p)
		return 0;
	p[strcspn(p, "\n")] = '\0';
	if (strncmp(line, "0::", 3) == 0)
		return walk_up(root, "sys/fs/cgroup", p + 1, "memory.max");
	if (has_memory(c + 1, (size_t)(p - c - 1)))
		return walk_up(root, "sys/fs/cgroup/memory", p + 1,
			       "memory.limit_in_bytes");
	return 0;
}

int ctd_membudget_cgroup_limit(const char *root, uint64_t *ret_limit)
{
	char path[4096], line[4096];
	uint64_t limit = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/self/cgroup", root);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		limit = lower(limit, line_limit(root, line));
	fclose(f);
	*ret_limit = limit;
	return 0;
}

size_t ctd_membudget_resolve(size_t configured, const char *root,
			     char *why, size_t len)
{
	uint64_t limit = 0;

	snprintf(why, len, "%s", "");
	if (configured != SIZE_MAX)
		return configured;
	if (ctd_membudget_cgroup_limit(root, &limit) < 0 || !limit) {
		snprintf(why, len, "auto: no memory cgroup limit");
		return ctd_membudget_auto(0);
	}
	snprintf(why, len, "auto: a quarter of the memory cgroup limit of "
		 "%" PRIu64 " MiB, between %zu and %zu MiB", limit >> 20,
		 CTD_MEMBUDGET_MIN >> 20, CTD_MEMBUDGET_DEFAULT >> 20);
	return ctd_membudget_auto(limit);
}
