/* leftover: finds the spools and write-ahead logs no configured output
 * will replay. An output's files are named after it (<output>.spool,
 * <output>.wal), so one whose name is not in use belongs to an output
 * that was turned off; an empty one (truncated once delivered) holds
 * nothing worth a word. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctd/delivery/leftover.h"

/* The output a file belongs to: its name before ".spool" or ".wal" into
 * out; false for any other file. */
static bool output_of(const char *file, char *out, size_t cap)
{
	static const char *const ext[] = { ".spool", ".wal" };
	size_t len = strlen(file);

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t n = strlen(ext[i]);

		if (len > n && len - n < cap && strcmp(file + len - n, ext[i]) == 0) {
			memcpy(out, file, len - n);
			out[len - n] = '\0';
			return true;
		}
	}
	return false;
}

static bool used(const char *name, const char *const *in_use, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, in_use[i]) == 0)
			return true;
	return false;
}

/* Its size when it is a leftover: a non-empty regular file of an output
 * not in use; else 0. */
static uint64_t leftover_bytes(int dfd, const char *file,
			       const char *const *in_use, size_t n)
{
	char name[64];
	struct stat st;

	if (!output_of(file, name, sizeof(name)) || used(name, in_use, n))
		return 0;
	if (fstatat(dfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return 0;
	return (uint64_t)st.st_size;
}

int ctd_leftover_scan(const char *dir, const char *const *in_use, size_t n,
		      struct ctd_leftover *ret, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		uint64_t bytes = leftover_bytes(dirfd(d), e->d_name, in_use, n);

		if (!bytes || strlen(e->d_name) >= sizeof(ret->file))
			continue;
		if ((size_t)found < cap) {
			strcpy(ret[found].file, e->d_name);
			ret[found].bytes = bytes;
		}
		found++;
	}
	closedir(d);
	return found;
}
