/* Tests for src/safefile.c on real files, as a hostile local user would
 * arrange them in a directory of theirs: a symbolic link, a hard link, a
 * FIFO or another user's file where ctd expects its own is refused and
 * the target stays as it was; a link root made in a directory only root
 * writes is followed; what ctd creates or opens for its user is handed
 * over on the descriptor; a spool file that is not a spool is left
 * alone. The owner cases need root (the suite runs as root). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tmpdir.h"

#include "ctd/base/safefile.h"
#include "ctd/delivery/journal.h"
#include "ctd/delivery/spool.h"

#define USER_UID 4242           /* a user that owns nothing else here */
#define USER_GID 4243
#define SECRET "root:secret-hash:19000:0:99999:7:::\n"

struct fixture {
	char dir[64];           /* root's, 0755: like /var/lib */
	char user_dir[96];      /* the unprivileged user's: like the spool dir */
	char target[96];        /* a root file the attacker aims at */
	char path[160];
};

static const struct ctd_owner user = { USER_UID, USER_GID };

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void assert_target_untouched(const struct fixture *f)
{
	char buf[128] = { 0 };
	struct stat st;
	int fd = open(f->target, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(SECRET));
	close(fd);
	assert_string_equal(buf, SECRET);
	assert_int_equal(stat(f->target, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(geteuid(), 0);   /* chown: the suite runs as root */
	tmpdir_make(f->dir, "safefile");
	assert_int_equal(chmod(f->dir, 0755), 0);
	snprintf(f->user_dir, sizeof(f->user_dir), "%s/user", f->dir);
	assert_int_equal(mkdir(f->user_dir, 0700), 0);
	assert_int_equal(chown(f->user_dir, USER_UID, USER_GID), 0);
	snprintf(f->target, sizeof(f->target), "%s/shadow", f->dir);
	write_file(f->target, SECRET);
	snprintf(f->path, sizeof(f->path), "%s/json.spool", f->user_dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void test_symlink_refused(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(symlink(f->target, f->path), 0);
	assert_int_equal(ctd_safefile_open(f->path, O_RDWR | O_CREAT, 0600,
					   CTD_SAFE_REGULAR, &user), -ELOOP);
	assert_target_untouched(f);
}

static void test_hardlink_refused(void **state)
{
	struct fixture *f = *state;

	/* As root: protected_hardlinks would stop the user, not root. */
	assert_int_equal(link(f->target, f->path), 0);
	assert_int_equal(ctd_safefile_open(f->path, O_WRONLY | O_APPEND, 0600,
					   CTD_SAFE_OUTPUT, &user), -EMLINK);
	assert_target_untouched(f);
}

static void test_fifo_refused_without_hanging(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(mkfifo(f->path, 0600), 0);
	assert_int_equal(ctd_safefile_open(f->path, O_RDWR, 0600,
					   CTD_SAFE_OUTPUT, &user), -EBADFD);
}

static void test_other_users_file_refused(void **state)
{
	struct fixture *f = *state;

	write_file(f->path, "x");
	assert_int_equal(chown(f->path, USER_UID + 1, USER_GID), 0);
	assert_int_equal(ctd_safefile_open(f->path, O_WRONLY, 0, CTD_SAFE_OUTPUT,
					   &user), -EPERM);
	/* The user's own file is fine with that user as owner, not without. */
	assert_int_equal(chown(f->path, USER_UID, USER_GID), 0);
	assert_int_equal(ctd_safefile_open(f->path, O_WRONLY, 0, CTD_SAFE_OUTPUT,
					   NULL), -EPERM);
	int fd = ctd_safefile_open(f->path, O_WRONLY, 0, CTD_SAFE_OUTPUT, &user);
	assert_true(fd >= 0);
	close(fd);
}

static void test_created_file_handed_over(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	int fd = ctd_safefile_open(f->path, O_WRONLY | O_CREAT | O_APPEND,
				   0640, CTD_SAFE_OUTPUT, &user);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_uid, USER_UID);
	assert_int_equal(st.st_gid, USER_GID);
	assert_int_equal(st.st_mode & 07777, 0640);
	/* Blocking again for the caller that did not ask otherwise. */
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
}

static void test_truncate_flag_refused(void **state)
{
	struct fixture *f = *state;

	write_file(f->path, "keep");
	assert_int_equal(ctd_safefile_open(f->path, O_WRONLY | O_TRUNC, 0,
					   CTD_SAFE_REGULAR, &user), -EINVAL);
	/* Nor is a directory of the user's ctd's without that owner. */
	assert_int_equal(ctd_safefile_open(f->path, O_WRONLY, 0,
					   CTD_SAFE_REGULAR, NULL), -EPERM);
}

static void test_device_only_for_outputs(void **state)
{
	int fd = ctd_safefile_open("/dev/null", O_WRONLY | O_APPEND, 0,
				   CTD_SAFE_OUTPUT, NULL);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ctd_safefile_open("/dev/null", O_WRONLY, 0,
					   CTD_SAFE_REGULAR, NULL), -EBADFD);
}

/* The user swaps a directory on the way for a link to root's. */
static void test_user_link_in_path_refused(void **state)
{
	struct fixture *f = *state;
	char link_dir[192], path[224];

	snprintf(link_dir, sizeof(link_dir), "%s/spool", f->user_dir);
	assert_int_equal(symlink(f->dir, link_dir), 0);
	assert_int_equal(lchown(link_dir, USER_UID, USER_GID), 0);
	snprintf(path, sizeof(path), "%s/shadow", link_dir);
	assert_int_equal(ctd_safefile_open(path, O_WRONLY | O_APPEND, 0,
					   CTD_SAFE_OUTPUT, &user), -ELOOP);
	assert_int_equal(ctd_safefile_dir(link_dir, true, 0700, &user), -ELOOP);
	assert_target_untouched(f);
}

/* /var/run -> /run: root's link in a directory only root writes. */
static void test_root_link_followed(void **state)
{
	struct fixture *f = *state;
	char real[96], link_dir[96], path[128];
	int fd;

	snprintf(real, sizeof(real), "%s/real", f->dir);
	snprintf(link_dir, sizeof(link_dir), "%s/alias", f->dir);
	assert_int_equal(mkdir(real, 0755), 0);
	assert_int_equal(symlink("real", link_dir), 0);
	snprintf(path, sizeof(path), "%s/flows.json", link_dir);
	fd = ctd_safefile_open(path, O_WRONLY | O_CREAT | O_APPEND, 0640,
			       CTD_SAFE_OUTPUT, NULL);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/flows.json", real);
	assert_int_equal(access(path, F_OK), 0);
}

static void test_dir_created_for_user(void **state)
{
	struct fixture *f = *state;
	char dir[128];
	struct stat st;
	int fd;

	snprintf(dir, sizeof(dir), "%s/spool", f->dir);
	fd = ctd_safefile_dir(dir, true, 0700, &user);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_uid, USER_UID);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* Another user's directory is not ctd's to write in. */
	assert_int_equal(chown(dir, USER_UID + 1, USER_GID), 0);
	assert_int_equal(ctd_safefile_dir(dir, false, 0, &user), -EPERM);
}

static void test_spool_not_a_spool_left_alone(void **state)
{
	struct fixture *f = *state;
	struct ctd_spool *sp = NULL;
	struct stat st;

	write_file(f->path, SECRET);
	assert_int_equal(chown(f->path, USER_UID, USER_GID), 0);
	assert_int_equal(ctd_spool_open(f->path, &user, &sp), -EBADMSG);
	assert_null(sp);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, (off_t)strlen(SECRET));
}

static void test_spool_symlink_left_alone(void **state)
{
	struct fixture *f = *state;
	struct ctd_spool *sp = NULL;

	assert_int_equal(symlink(f->target, f->path), 0);
	assert_int_equal(ctd_spool_open(f->path, &user, &sp), -ELOOP);
	assert_target_untouched(f);
}

static bool any_kind(unsigned kind, size_t len)
{
	(void)kind;
	(void)len;
	return true;
}

/* Fills a rewritten journal with one entry. */
static int fill_two(void *arg, struct ctd_journal *into)
{
	(void)arg;
	return ctd_journal_append(into, 2, "two", 3);
}

/* The journal's rewrite (the write-ahead log's compaction) must not
 * follow a link planted at its temporary name either. */
static void test_spool_rewrite_ignores_planted_tmp(void **state)
{
	struct fixture *f = *state;
	struct ctd_journal *j = NULL;
	char tmp[192], buf[64];
	unsigned kind;
	size_t len;

	assert_int_equal(ctd_journal_open(f->path, &user, any_kind, &j), 0);
	assert_int_equal(ctd_journal_append(j, 2, "one", 3), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
	assert_int_equal(symlink(f->target, tmp), 0);
	assert_int_equal(ctd_journal_rewrite(j, fill_two, NULL), 0);
	assert_target_untouched(f);
	assert_int_equal(ctd_journal_peek(j, buf, sizeof(buf), &kind, &len), 1);
	assert_memory_equal(buf, "two", 3);
	ctd_journal_free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_symlink_refused),
		T(test_hardlink_refused),
		T(test_fifo_refused_without_hanging),
		T(test_other_users_file_refused),
		T(test_created_file_handed_over),
		T(test_truncate_flag_refused),
		T(test_device_only_for_outputs),
		T(test_user_link_in_path_refused),
		T(test_root_link_followed),
		T(test_dir_created_for_user),
		T(test_spool_not_a_spool_left_alone),
		T(test_spool_symlink_left_alone),
		T(test_spool_rewrite_ignores_planted_tmp),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
