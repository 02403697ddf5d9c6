/* pgserver: see pgserver.h. The binaries are run with fork and execve,
 * no shell; the child takes the server's user with setgroups, setgid and
 * setuid (the groups looked up before the fork). fsync is off: the test
 * is about the protocol, not about the disk. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <libpq-fe.h>

#include "pgserver.h"

#define WAIT_MS 30000            /* longest start or stop */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The end of the server's log, for a failure's message. */
static const char *log_tail(const struct pgserver *s)
{
	static char tail[1500];
	char path[TMPDIR_MAX + 8];
	ssize_t n;
	off_t size;
	int fd;

	snprintf(path, sizeof(path), "%s/log", s->dir);
	tail[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tail;
	size = lseek(fd, 0, SEEK_END);
	size = size > (off_t)sizeof(tail) - 1 ? size - (off_t)sizeof(tail) + 1 : 0;
	n = pread(fd, tail, sizeof(tail) - 1, size);
	tail[n > 0 ? n : 0] = '\0';
	close(fd);
	return tail;
}

/* Who runs the server: postgres when we are root, else we. */
static void pick_user(struct pgserver *s)
{
	struct passwd *pw;

	s->uid = geteuid();
	s->gid = getegid();
	if (s->uid != 0)
		return;
	pw = getpwnam("postgres");
	if (!pw)
		fail_msg("pgserver: no postgres user (apt-get install "
			 "postgresql)");
	s->uid = pw->pw_uid;
	s->gid = pw->pw_gid;
	s->ngroups = (int)(sizeof(s->groups) / sizeof(s->groups[0]));
	if (getgrouplist("postgres", pw->pw_gid, s->groups, &s->ngroups) < 0)
		fail_msg("pgserver: the postgres user has too many groups");
}

/* In the child: stdio to the log, no other descriptor, the server's
 * user, then the binary. Only calls fit for a forked child. */
static void child(const struct pgserver *s, const char *log,
		  char *const argv[])
{
	static char *const envp[] = { "LC_ALL=C", "TZ=UTC",
				      "PATH=/usr/bin:/bin", NULL };
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	int nul = open("/dev/null", O_RDONLY);
	sigset_t none;

	/* What the test ignores (SIGXFSZ) or blocks is not the server's. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGXFSZ, SIG_DFL);
	if (fd < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 ||
	    dup2(fd, 2) < 0)
		_exit(126);
	close_range(3, ~0u, 0);
	if (geteuid() == 0 && (setgroups((size_t)s->ngroups, s->groups) < 0 ||
			       setgid(s->gid) < 0 || setuid(s->uid) < 0))
		_exit(126);
	execve(argv[0], argv, envp);
	_exit(127);
}

static pid_t spawn(const struct pgserver *s, char *const argv[])
{
	char log[TMPDIR_MAX + 8];
	pid_t pid;

	snprintf(log, sizeof(log), "%s/log", s->dir);
	pid = fork();
	if (pid < 0)
		fail_msg("pgserver: fork: %s", strerror(errno));
	if (pid == 0)
		child(s, log, argv);
	return pid;
}

/* Waits up to WAIT_MS for pid: its wait status, or -1 still running. */
static int reap(pid_t pid, long ms)
{
	int status;

	for (long t = 0; t <= ms; t += 5) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			fail_msg("pgserver: waitpid: %s", strerror(errno));
		sleep_ms(5);
	}
	return -1;
}

void pgserver_init(struct pgserver *s)
{
	char data[TMPDIR_MAX + 8];
	char *argv[] = { PGSERVER_BIN "/initdb", "-D", data, "-A", "trust",
			 "-U", "postgres", "--no-sync", "--no-locale",
			 "-E", "UTF8", NULL };
	int status;

	memset(s, 0, sizeof(*s));
	if (access(PGSERVER_BIN "/initdb", X_OK) < 0 ||
	    access(PGSERVER_BIN "/postgres", X_OK) < 0)
		fail_msg("pgserver: no PostgreSQL 15 in " PGSERVER_BIN ": %s "
			 "(apt-get install postgresql)", strerror(errno));
	pick_user(s);
	tmpdir_make(s->dir, "pg");
	assert_int_equal(chown(s->dir, s->uid, s->gid), 0);
	snprintf(data, sizeof(data), "%s/data", s->dir);
	snprintf(s->conninfo, sizeof(s->conninfo),
		 "host=%s dbname=postgres user=postgres", s->dir);
	status = reap(spawn(s, argv), WAIT_MS);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("pgserver: initdb failed (status %d): %s", status,
			 log_tail(s));
}

void pgserver_start(struct pgserver *s)
{
	char data[TMPDIR_MAX + 8];
	char *argv[] = { PGSERVER_BIN "/postgres", "-D", data, "-k", s->dir,
			 "-c", "listen_addresses=", "-c", "fsync=off", NULL };
	int status;

	assert_int_equal(s->pid, 0);
	snprintf(data, sizeof(data), "%s/data", s->dir);
	s->pid = spawn(s, argv);
	for (long t = 0; PQping(s->conninfo) != PQPING_OK; t += 10) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			fail_msg("pgserver: postgres exited (status %d): %s",
				 status, log_tail(s));
		}
		if (t > WAIT_MS)
			fail_msg("pgserver: postgres did not start: %s",
				 log_tail(s));
		sleep_ms(10);
	}
}

void pgserver_stop(struct pgserver *s)
{
	int status;

	assert_int_not_equal(s->pid, 0);
	kill(s->pid, SIGINT);
	status = reap(s->pid, WAIT_MS);
	if (status == -1) {
		kill(s->pid, SIGKILL);
		reap(s->pid, WAIT_MS);
		s->pid = 0;
		fail_msg("pgserver: postgres did not stop: %s", log_tail(s));
	}
	s->pid = 0;
}

void pgserver_free(struct pgserver *s)
{
	PQfinish(s->q);
	s->q = NULL;
	if (s->pid) {
		/* A test that failed midway: an immediate shutdown. */
		kill(s->pid, SIGQUIT);
		if (reap(s->pid, WAIT_MS) == -1) {
			kill(s->pid, SIGKILL);
			reap(s->pid, WAIT_MS);
		}
		s->pid = 0;
	}
	if (s->dir[0])
		tmpdir_remove(s->dir);
	s->dir[0] = '\0';
}

static PGresult *query(struct pgserver *s, const char *sql)
{
	if (!s->q || PQstatus(s->q) != CONNECTION_OK) {
		PQfinish(s->q);
		s->q = PQconnectdb(s->conninfo);
		if (PQstatus(s->q) != CONNECTION_OK)
			fail_msg("pgserver: cannot connect: %s",
				 PQerrorMessage(s->q));
	}
	return PQexec(s->q, sql);
}

int64_t pgserver_number(struct pgserver *s, const char *sql,
			int64_t missing_table)
{
	PGresult *res = query(s, sql);
	const char *state;
	int64_t n;

	/* Our connection from before a restart: once more on a new one. */
	if (PQstatus(s->q) != CONNECTION_OK) {
		PQclear(res);
		res = query(s, sql);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state && strcmp(state, "42P01") == 0) {
			PQclear(res);
			return missing_table;
		}
		fail_msg("pgserver: %s: %s", sql, PQresultErrorMessage(res));
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1)
		fail_msg("pgserver: %s: not one value", sql);
	n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n;
}
