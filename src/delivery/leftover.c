/* leftover: finds the spools and write-ahead logs no configured output
 * will replay. An output's files are named after it (<output>.spool,
 * <output>.wal and its segments <output>.wal.1 to .wal.7), so one whose
 * name is not in use belongs to an output
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

/* The length of file without a log segment's ".1" to ".7" (wal.c). */
static size_t segment_base(const char *file, size_t len)
{
	if (len > 6 && file[len - 2] == '.' && file[len - 1] >= '1' &&
	    file[len - 1] <= '7' && strncmp(file + len - 6, ".wal", 4) == 0)
		return len - 2;
	return len;
}

/* The output a file belongs to: its name before ".spool" or ".wal" (or
 * a log segment's ".wal.N") into out; false for any other file. */
static bool output_of(const char *file, char *out, size_t cap)
{
	static const char *const ext[] = { ".spool", ".wal" };
	size_t len = segment_base(file, strlen(file));

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t n = strlen(ext[i]);

		if (len > n && len - n < cap &&
		    strncmp(file + len - n, ext[i], n) == 0) {
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
