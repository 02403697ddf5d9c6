/* membudget: one bound, in bytes, on what ctd holds in memory for its
 * outputs (dying lists, taken-record rings), shared by all of them, and
 * the `auto` value derived from the memory cgroup ctd runs in. The
 * budget itself is pure arithmetic; ctd_membudget_auto reads files under
 * a root given by the caller ("/" in ctd, a fake tree in tests). */
#ifndef CTD_MEMBUDGET_H
#define CTD_MEMBUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Without a memory cgroup limit. */
#define CTD_MEMBUDGET_DEFAULT ((size_t)256 << 20)
/* auto never goes below this: a small cgroup still gets a useful list. */
#define CTD_MEMBUDGET_MIN ((size_t)4 << 20)

struct ctd_membudget {
	size_t max;        /* 0: no bound */
	size_t held;       /* bytes charged now */
	size_t peak;
};

/* Charges n bytes; false (nothing charged) when that would pass max. */
bool ctd_membudget_take(struct ctd_membudget *b, size_t n);
/* Charges n bytes even past max (memory that must be had for held
 * memory to drain at all); take then refuses until it is given back. */
void ctd_membudget_charge(struct ctd_membudget *b, size_t n);
/* Gives back n bytes an earlier take charged. */
void ctd_membudget_give(struct ctd_membudget *b, size_t n);
/* Bytes a take can still get. */
size_t ctd_membudget_room(const struct ctd_membudget *b);

/* The memory limit of the cgroup ctd runs in, the lowest along its path
 * (v2: memory.max from /proc/self/cgroup's 0:: line; v1: the memory
 * controller's memory.limit_in_bytes). 0 with *ret_limit = 0 when there
 * is none (no cgroup, "max", v1's page-rounded LLONG_MAX); -errno when
 * /proc/self/cgroup cannot be read. root: "/" or a test's tree. */
int ctd_membudget_cgroup_limit(const char *root, uint64_t *ret_limit);
/* auto: a quarter of limit (clamped to [CTD_MEMBUDGET_MIN,
 * CTD_MEMBUDGET_DEFAULT]), CTD_MEMBUDGET_DEFAULT without one. */
size_t ctd_membudget_auto(uint64_t limit);
/* memory-max as set (SIZE_MAX: auto) in bytes, with how auto came to it
 * in why ("" when it was set). */
size_t ctd_membudget_resolve(size_t configured, const char *root,
			     char *why, size_t len);

#endif
