/* netnstab: watched namespaces by nsid.
 *
 * nsids are small integers the kernel hands out lowest-free first, so
 * the table is an array indexed by nsid, grown to the largest one seen:
 * a record's namespace is found in O(1) on the record path. The `netns`
 * setting is kept as a list of names; "all" matches every name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/kernel/ctevent.h"
#include "ctd/sync/netnstab.h"

struct ctd_netnstab {
	struct ctd_netns **by_nsid;
	size_t cap;                   /* slots in by_nsid */
	size_t count;
	bool all;
	char *names;                  /* NAME,... from the setting, or NULL */
};

bool ctd_netnstab_enabled(const char *spec)
{
	return spec && *spec && strcmp(spec, "self") != 0;
}

/* A name list: non-empty names, no slash, no "." or "..". */
static bool valid_list(const char *spec)
{
	const char *p = spec;

	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 0 || n >= CTD_NETNS_NAME_LEN || memchr(p, '/', n) ||
		    (n == 1 && p[0] == '.') || (n == 2 && !strncmp(p, "..", 2)))
			return false;
		p += n;
		if (*p == ',' && !*++p)
			return false;
	}
	return true;
}

struct ctd_netnstab *ctd_netnstab_new(const char *spec)
{
	struct ctd_netnstab *t;

	if (!spec || (strcmp(spec, "all") && strcmp(spec, "self") &&
		      !valid_list(spec)))
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->all = strcmp(spec, "all") == 0;
	if (!t->all && strcmp(spec, "self") && !(t->names = strdup(spec))) {
		free(t);
		return NULL;
	}
	return t;
}

void ctd_netnstab_free(struct ctd_netnstab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->cap; i++)
		free(t->by_nsid[i]);
	free(t->by_nsid);
	free(t->names);
	free(t);
}

bool ctd_netnstab_all(const struct ctd_netnstab *t)
{
	return t->all;
}

bool ctd_netnstab_wants(const struct ctd_netnstab *t, const char *name)
{
	size_t len = strlen(name);
	const char *p = t->names;

	if (t->all)
		return true;
	while (p && *p) {
		size_t n = strcspn(p, ",");

		if (n == len && strncmp(p, name, n) == 0)
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

static int reserve(struct ctd_netnstab *t, size_t slot)
{
	size_t cap = t->cap ? t->cap : 16;
	struct ctd_netns **a;

	while (cap <= slot)
		cap *= 2;
	if (cap == t->cap)
		return 0;
	a = realloc(t->by_nsid, cap * sizeof(*a));
	if (!a)
		return -ENOMEM;
	memset(a + t->cap, 0, (cap - t->cap) * sizeof(*a));
	t->by_nsid = a;
	t->cap = cap;
	return 0;
}

int ctd_netnstab_add(struct ctd_netnstab *t, int32_t nsid, const char *name,
		     struct ctd_netns **ret)
{
	struct ctd_netns *e;

	if (nsid < 0 || nsid >= CTD_NETNS_NSID_MAX)
		return -ERANGE;
	if (ctd_netnstab_get(t, nsid))
		return -EEXIST;
	if (reserve(t, (size_t)nsid) < 0 || !(e = calloc(1, sizeof(*e))))
		return -ENOMEM;
	e->nsid = nsid;
	e->fd = e->flush_fd = -1;
	snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
	t->by_nsid[nsid] = e;
	t->count++;
	*ret = e;
	return 0;
}

struct ctd_netns *ctd_netnstab_get(const struct ctd_netnstab *t, int32_t nsid)
{
	if (nsid < 0 || (size_t)nsid >= t->cap)
		return NULL;
	return t->by_nsid[nsid];
}

struct ctd_netns *ctd_netnstab_find(const struct ctd_netnstab *t,
				    const char *name)
{
	for (size_t i = 0; i < t->cap; i++)
		if (t->by_nsid[i] && strcmp(t->by_nsid[i]->name, name) == 0)
			return t->by_nsid[i];
	return NULL;
}

void ctd_netnstab_remove(struct ctd_netnstab *t, int32_t nsid)
{
	struct ctd_netns *e = ctd_netnstab_get(t, nsid);

	if (!e)
		return;
	t->by_nsid[nsid] = NULL;
	t->count--;
	free(e);
}

size_t ctd_netnstab_count(const struct ctd_netnstab *t)
{
	return t->count;
}

struct ctd_netns *ctd_netnstab_next(const struct ctd_netnstab *t, size_t *pos)
{
	while (*pos < t->cap) {
		struct ctd_netns *e = t->by_nsid[(*pos)++];

		if (e)
			return e;
	}
	return NULL;
}

void ctd_netnstab_label(const struct ctd_netnstab *t, int32_t nsid,
			char *buf, size_t len)
{
	const struct ctd_netns *e = t ? ctd_netnstab_get(t, nsid) : NULL;

	if (!len)
		return;
	if (nsid == CTD_NSID_SELF)
		buf[0] = '\0';
	else if (e && *e->name && strlen(e->name) < len)
		memcpy(buf, e->name, strlen(e->name) + 1);
	else
		snprintf(buf, len, "nsid:%ld", (long)nsid);
}

bool ctd_netnstab_admits(const struct ctd_netnstab *t, int32_t nsid)
{
	return nsid == CTD_NSID_SELF || t->all || ctd_netnstab_get(t, nsid);
}
