/* safefile: paths opened as root in directories a local user may write.
 *
 * After a run with `user U`, U owns ctd's spool directory and the files
 * ctd handed over; a later start as root must not let U turn them into
 * symbolic or hard links to root's files (a truncation or a chown of
 * /etc/shadow would make U root). So every component is opened with
 * O_NOFOLLOW relative to its parent's descriptor. A symbolic link is
 * followed only where only root could have made it (owned by root, in a
 * directory of root's that nobody else may write: /var/run -> /run).
 * The file itself is checked on its descriptor: its type, its owner
 * (root, the running user or ctd's user) and its link count (a hard link
 * to someone else's file has two). Nothing here truncates; callers that
 * do check first that the file is theirs. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/base/safefile.h"

static bool has_owner(const struct ctd_owner *owner)
{
	return owner && owner->uid != (uid_t)-1;
}

static bool owner_ok(const struct stat *st, const struct ctd_owner *owner)
{
	return st->st_uid == 0 || st->st_uid == geteuid() ||
	       (has_owner(owner) && st->st_uid == owner->uid);
}

/* A directory only root can change: root's, not writable by others. */
static bool root_only(int dfd)
{
	struct stat st;

	return fstat(dfd, &st) == 0 && st.st_uid == 0 &&
	       !(st.st_mode & (S_IWGRP | S_IWOTH));
}

static int open_dir_at(int dfd, const char *name, bool follow)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
			(follow ? 0 : O_NOFOLLOW));

	return fd < 0 ? -errno : fd;
}

/* name in dfd is a symbolic link: followed only when root made it. */
static int follow_root_link(int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISLNK(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != 0 || !root_only(dfd))
		return -ELOOP;
	return open_dir_at(dfd, name, true);
}

static int make_dir_at(int dfd, const char *name, mode_t mode,
		       const struct ctd_owner *owner)
{
	bool made = mkdirat(dfd, name, mode) == 0;
	int fd;

	if (!made && errno != EEXIST)
		return -errno;
	fd = open_dir_at(dfd, name, false);
	if (fd >= 0 && made && has_owner(owner) && geteuid() == 0 &&
	    fchown(fd, owner->uid, owner->gid) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static int step(int dfd, const char *name, bool create, mode_t mode,
		const struct ctd_owner *owner)
{
	int fd = open_dir_at(dfd, name, false);

	if (fd == -ENOENT && create)
		return make_dir_at(dfd, name, mode, owner);
	if (fd == -ELOOP || fd == -ENOTDIR)
		return follow_root_link(dfd, name);
	return fd;
}

/* The last directory must be root's, the running user's or ctd's user's:
 * anyone else could swap what ctd writes there. */
static int check_dir(int fd, const struct ctd_owner *owner)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return owner_ok(&st, owner) ? fd : -EPERM;
}

int ctd_safefile_dir(const char *path, bool create, mode_t mode,
		     const struct ctd_owner *owner)
{
	char buf[4096], *save = NULL, *name, *next;
	int dfd;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	dfd = open_dir_at(AT_FDCWD, path[0] == '/' ? "/" : ".", false);
	for (name = strtok_r(buf, "/", &save); name && dfd >= 0; name = next) {
		int fd;

		next = strtok_r(NULL, "/", &save);
		if (strcmp(name, ".") == 0)
			continue;
		fd = step(dfd, name, create && !next, mode, owner);
		close(dfd);
		dfd = fd;
	}
	if (dfd < 0)
		return dfd;
	dfd = check_dir(dfd, owner);
	return dfd;
}

static int check_file(int fd, enum ctd_safefile_kind kind,
		      const struct ctd_owner *owner, struct stat *st)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (S_ISCHR(st->st_mode) && kind == CTD_SAFE_OUTPUT && st->st_uid == 0)
		return 0;
	if (!S_ISREG(st->st_mode))
		return -EBADFD;
	if (st->st_nlink != 1)
		return -EMLINK;
	return owner_ok(st, owner) ? 0 : -EPERM;
}

static int hand_over(int fd, const struct stat *st,
		     const struct ctd_owner *owner)
{
	if (!has_owner(owner) || geteuid() != 0 || !S_ISREG(st->st_mode) ||
	    (st->st_uid == owner->uid && st->st_gid == owner->gid))
		return 0;
	return fchown(fd, owner->uid, owner->gid) < 0 ? -errno : 0;
}

int ctd_safefile_openat(int dfd, const char *name, int flags, mode_t mode,
			enum ctd_safefile_kind kind,
			const struct ctd_owner *owner)
{
	struct stat st;
	int fd, r;

	/* A truncation before the checks would be the attack itself. */
	if (flags & O_TRUNC)
		return -EINVAL;
	/* O_NONBLOCK: a FIFO put there must not hang the open. */
	fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		    O_NONBLOCK, mode);
	if (fd < 0)
		return -errno;
	r = check_file(fd, kind, owner, &st);
	if (r == 0 && !(flags & O_NONBLOCK) && fcntl(fd, F_SETFL,
		      fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		r = -errno;
	if (r == 0)
		r = hand_over(fd, &st, owner);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int ctd_safefile_split(const char *path, char *buf, size_t cap,
		       const char **ret_name)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	*ret_name = slash ? slash + 1 : path;
	if (!**ret_name || strcmp(*ret_name, ".") == 0 ||
	    strcmp(*ret_name, "..") == 0)
		return -EINVAL;
	if (n + 2 > cap)
		return -ENAMETOOLONG;
	if (!slash)
		strcpy(buf, ".");
	else if (n == 0)
		strcpy(buf, "/");
	else {
		memcpy(buf, path, n);
		buf[n] = '\0';
	}
	return 0;
}

int ctd_safefile_open(const char *path, int flags, mode_t mode,
		      enum ctd_safefile_kind kind,
		      const struct ctd_owner *owner)
{
	char dir[4096];
	const char *name;
	int dfd, fd, r = ctd_safefile_split(path, dir, sizeof(dir), &name);

	if (r < 0)
		return r;
	dfd = ctd_safefile_dir(dir, false, 0, owner);
	if (dfd < 0)
		return dfd;
	fd = ctd_safefile_openat(dfd, name, flags, mode, kind, owner);
	close(dfd);
	return fd;
}

bool ctd_safefile_refused(int err)
{
	return err == -ELOOP || err == -EMLINK || err == -EPERM ||
	       err == -EBADFD || err == -EBADMSG;
}

const char *ctd_safefile_strerror(int err)
{
	switch (err) {
	case -ELOOP:
		return "is or passes through a symbolic link a local user could "
		       "have made";
	case -EMLINK:
		return "has more than one hard link";
	case -EPERM:
		return "belongs to a user other than root or ctd's user";
	case -EBADFD:
		return "is not a regular file";
	case -EBADMSG:
		return "is not a ctd spool file";
	default:
		return ctd_log_errstr(-err);
	}
}
