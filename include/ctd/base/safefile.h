/* safefile: opening the files and directories ctd writes while it is
 * root, so that a local user cannot redirect a write, a truncation or a
 * change of owner to a file of root's. Paths are walked one component at
 * a time with O_NOFOLLOW; the file is opened relative to its directory's
 * descriptor and checked on that descriptor (type, owner, link count);
 * ownership is handed over with fchown on it, never by path. Owns
 * nothing: the caller gets descriptors. */
#ifndef CTD_SAFEFILE_H
#define CTD_SAFEFILE_H

#include <stdbool.h>
#include <sys/types.h>

/* The unprivileged user ctd runs as after start-up (`user`): files ctd
 * opens may belong to it besides root, and what ctd creates or opens as
 * root is handed to it. uid (uid_t)-1: no such user. */
struct ctd_owner {
	uid_t uid;
	gid_t gid;
};

#define CTD_OWNER_NONE ((struct ctd_owner){ (uid_t)-1, (gid_t)-1 })

/* What a file may be besides a regular file. */
enum ctd_safefile_kind {
	CTD_SAFE_REGULAR,   /* spool files, state files */
	CTD_SAFE_OUTPUT,    /* also a character device of root's (/dev/null) */
};

/* Opens directory path, creating the last component with mode when
 * create is set (and handing a new directory to owner). A symbolic link
 * is followed only where a user other than root could not have put it:
 * in a directory of root's that only root may write, and owned by root.
 * Returns the descriptor or -errno. */
int ctd_safefile_dir(const char *path, bool create, mode_t mode,
		     const struct ctd_owner *owner);

/* Opens name in directory dfd with flags (O_NOFOLLOW and O_CLOEXEC are
 * added; O_CREAT creates it with mode). The result must be of kind,
 * belong to root, to the running user or to owner, and have one link;
 * when ctd is root and owner is set, it is handed to owner. Returns the
 * descriptor or -errno: -ELOOP a symbolic link, -EMLINK hard-linked,
 * -EPERM another user's, -EBADFD not a regular file. */
int ctd_safefile_openat(int dfd, const char *name, int flags, mode_t mode,
			enum ctd_safefile_kind kind,
			const struct ctd_owner *owner);

/* Both of the above for a whole path. */
int ctd_safefile_open(const char *path, int flags, mode_t mode,
		      enum ctd_safefile_kind kind,
		      const struct ctd_owner *owner);

/* The path's directory part into buf ("." when none) and a pointer to
 * its last component; -ENAMETOOLONG or -EINVAL (no last component). */
int ctd_safefile_split(const char *path, char *buf, size_t cap,
		       const char **ret_name);

/* Whether err is one of the refusals above (the path is there but not
 * safe to use), rather than an ordinary failure such as -ENOENT. */
bool ctd_safefile_refused(int err);
/* Why an error of the functions above refused a path, as a phrase
 * ("is a symbolic link"); strerror for ordinary failures. */
const char *ctd_safefile_strerror(int err);

#endif
