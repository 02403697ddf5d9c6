/* mountinfo: why a path is on a read-only file system, from
 * /proc/self/mountinfo, so EROFS is reported with its real cause: a
 * read-only bind mount (systemd's ProtectSystem= outside ReadWritePaths=)
 * or a file system that is itself read-only (ext4 remounts itself so
 * after a disk error). Pure: the caller opens the file. */
#ifndef CTD_MOUNTINFO_H
#define CTD_MOUNTINFO_H

#include <stdio.h>

enum ctd_rofs {
	CTD_ROFS_UNKNOWN,    /* no mount found, or it says rw */
	CTD_ROFS_BIND,       /* this mount is read-only, its file system not */
	CTD_ROFS_FS,         /* the file system itself is read-only */
};

/* The cause for path (absolute), by the mount with the longest mount
 * point that contains it. */
enum ctd_rofs ctd_mountinfo_rofs(FILE *mountinfo, const char *path);
/* One sentence for the log, naming the fix. */
const char *ctd_mountinfo_rofs_text(enum ctd_rofs why);
/* Both, for path, from /proc/self/mountinfo. */
const char *ctd_mountinfo_erofs(const char *path);

#endif
