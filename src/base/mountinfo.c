/* mountinfo: reads /proc/self/mountinfo lines (proc(5): ID, parent, dev,
 * root, mount point, mount options, optional fields up to "-", type,
 * source, super options). The per-mount "ro" without a read-only super
 * block is a bind mount made read-only (what systemd does outside
 * ReadWritePaths=); a read-only super block is the file system itself
 * (mounted so, or remounted by ext4's errors=remount-ro). */
#include <stdbool.h>
#include <string.h>

#include "ctd/base/mountinfo.h"

#define LINE_MAX_LEN 4096

/* Whether the comma-separated list opts has word. */
static bool has_word(const char *opts, const char *word)
{
	size_t n = strlen(opts), len = strlen(word);

	for (const char *p = opts; p < opts + n; p += strcspn(p, ",") + 1)
		if (strncmp(p, word, len) == 0 &&
		    (p[len] == ',' || p[len] == '\0'))
			return true;
	return false;
}

/* After an error 6.18's ext4 leaves the super block "rw" and says
 * emergency_ro in its options instead (measured with trigger_fs_error). */
static bool super_ro(const char *super)
{
	return has_word(super, "ro") || has_word(super, "emergency_ro");
}

/* Whether the mount point mp contains path, as whole components. */
static bool contains(const char *mp, const char *path)
{
	size_t n = strlen(mp);

	if (strcmp(mp, "/") == 0)
		return true;
	return strncmp(path, mp, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* The mount point, mount options and super options of one line. */
static bool fields(char *line, char **ret_mp, char **ret_opts,
		   char **ret_super)
{
	char *save, *tok;
	int i = 0;

	*ret_mp = *ret_opts = *ret_super = NULL;
	for (tok = strtok_r(line, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save), i++) {
		if (i == 4)
			*ret_mp = tok;
		else if (i == 5)
			*ret_opts = tok;
		else if (i > 5 && strcmp(tok, "-") == 0) {
			strtok_r(NULL, " \n", &save);       /* type */
			strtok_r(NULL, " \n", &save);       /* source */
			*ret_super = strtok_r(NULL, " \n", &save);
			break;
		}
	}
	return *ret_super && *ret_mp && *ret_opts;
}

enum ctd_rofs ctd_mountinfo_rofs(FILE *mountinfo, const char *path)
{
	char line[LINE_MAX_LEN], *mp = NULL, *opts = NULL, *super;
	enum ctd_rofs best = CTD_ROFS_UNKNOWN;
	size_t best_len = 0;

	while (fgets(line, sizeof(line), mountinfo)) {
		if (!fields(line, &mp, &opts, &super) || !contains(mp, path) ||
		    strlen(mp) < best_len)
			continue;
		best_len = strlen(mp);
		best = super_ro(super) ? CTD_ROFS_FS :
		       has_word(opts, "ro") ? CTD_ROFS_BIND : CTD_ROFS_UNKNOWN;
	}
	return best;
}

const char *ctd_mountinfo_rofs_text(enum ctd_rofs why)
{
	switch (why) {
	case CTD_ROFS_BIND:
		return "read-only file system: a read-only bind mount (under "
		       "systemd, outside the unit's ReadWritePaths=: add the "
		       "directory in a drop-in, see ctd(8))";
	case CTD_ROFS_FS:
		return "read-only file system: the file system itself is "
		       "read-only (after a disk error ext4 remounts read-only: "
		       "see dmesg); ctd holds the records and opens the path "
		       "again when it changes";
	default:
		return "read-only file system";
	}
}

const char *ctd_mountinfo_erofs(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	enum ctd_rofs why = CTD_ROFS_UNKNOWN;

	if (f) {
		why = ctd_mountinfo_rofs(f, path);
		fclose(f);
	}
	return ctd_mountinfo_rofs_text(why);
}
