/* runlock: the spool directory's lock, and a crash's trace.
 *
 * A second ctd writing the same spool would replay and truncate what the
 * first still holds, so it must not start. flock(2) on a file in the
 * directory decides, and dies with its holder, so a crashed ctd never
 * leaves a stale lock behind; the text in the file survives it and tells
 * the next ctd that the last run did not stop cleanly. The file is
 * opened as safefile.c says: the directory may belong to ctd's user.
 * Two ctds appending to one record file would interleave and double
 * records, so each output file is flock()ed the same way; /proc/locks
 * names the holder for the refusal. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ctd/base/safefile.h"
#include "ctd/service/runlock.h"

#define LOCK_NAME "ctd.lock"

struct ctd_runlock {
	int fd;
};

enum ctd_runlock_last ctd_runlock_parse(const char *text, long *ret_pid)
{
	long pid = 0;

	*ret_pid = 0;
	if (strncmp(text, "stopped", 7) == 0)
		return CTD_LAST_STOPPED;
	if (sscanf(text, "reexec %ld", &pid) == 1) {
		*ret_pid = pid;
		return CTD_LAST_REEXEC;
	}
	if (sscanf(text, "running %ld", &pid) == 1) {
		*ret_pid = pid;
		return CTD_LAST_UNCLEAN;
	}
	return CTD_LAST_NONE;
}

static void read_text(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
}

static int write_text(int fd, const char *text)
{
	size_t len = strlen(text);

	if (ftruncate(fd, 0) < 0 || pwrite(fd, text, len, 0) != (ssize_t)len)
		return -errno ? -errno : -EIO;
	return 0;
}

static int open_lock(const char *dir, const struct ctd_owner *owner)
{
	int dfd = ctd_safefile_dir(dir, true, 0700, owner), fd;

	if (dfd < 0)
		return dfd;
	fd = ctd_safefile_openat(dfd, LOCK_NAME, O_RDWR | O_CREAT, 0644,
				 CTD_SAFE_REGULAR, owner);
	close(dfd);
	return fd;
}

int ctd_runlock_take(const char *dir, const struct ctd_owner *owner,
		     struct ctd_runlock **ret, enum ctd_runlock_last *ret_last,
		     long *ret_pid)
{
	char text[64];
	int fd = open_lock(dir, owner), r;

	*ret_pid = 0;
	if (fd < 0)
		return fd;
	read_text(fd, text, sizeof(text));
	*ret_last = ctd_runlock_parse(text, ret_pid);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return r;
	}
	*ret = calloc(1, sizeof(**ret));
	if (!*ret) {
		close(fd);
		return -ENOMEM;
	}
	(*ret)->fd = fd;
	snprintf(text, sizeof(text), "running %ld\n", (long)getpid());
	return write_text(fd, text);
}

int ctd_runlock_mark(struct ctd_runlock *l, enum ctd_runlock_last state)
{
	char text[64];

	if (!l)
		return 0;
	if (state == CTD_LAST_REEXEC)
		snprintf(text, sizeof(text), "reexec %ld\n", (long)getpid());
	else
		snprintf(text, sizeof(text), "stopped\n");
	return write_text(l->fd, text);
}

static int lock_file(int fd, int how, long *ret_pid)
{
	struct stat st;

	*ret_pid = 0;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	if (flock(fd, how | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return -errno;
	*ret_pid = ctd_runlock_holder(fd);
	return -EBUSY;
}

int ctd_runlock_file(int fd, long *ret_pid)
{
	return lock_file(fd, LOCK_EX, ret_pid);
}

int ctd_runlock_file_shared(int fd, long *ret_pid)
{
	return lock_file(fd, LOCK_SH, ret_pid);
}

/* One line of /proc/locks: "1: FLOCK  ADVISORY  WRITE 1234 08:02:5678
 * 0 EOF"; waiters' lines ("1: -> FLOCK ...") do not match. */
static bool holds(const char *line, const struct stat *st, long *ret_pid)
{
	unsigned maj, min;
	unsigned long ino;
	long pid;

	if (sscanf(line, "%*u: FLOCK %*s %*s %ld %x:%x:%lu", &pid, &maj, &min,
		   &ino) != 4 || maj != major(st->st_dev) ||
	    min != minor(st->st_dev) || ino != st->st_ino)
		return false;
	*ret_pid = pid;
	return true;
}

long ctd_runlock_holder(int fd)
{
	char line[256];
	struct stat st;
	long pid = 0;
	FILE *f;

	if (fstat(fd, &st) < 0)
		return 0;
	f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (holds(line, &st, &pid))
			break;
	fclose(f);
	return pid;
}

void ctd_runlock_free(struct ctd_runlock *l)
{
	if (!l)
		return;
	close(l->fd);
	free(l);
}
