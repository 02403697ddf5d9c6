/* pgserver: a throw-away PostgreSQL 15 server for a unit test, made with
 * initdb in a directory of its own under /tmp and reached only through a
 * Unix socket there (no TCP). Run as the postgres user when the test is
 * root (PostgreSQL refuses root), else as the test's own user. The test
 * starts and stops the server itself, to play an outage. Everything
 * fails the test loudly (with the server's log): a missing PostgreSQL
 * is a failure, never a skip. */
#ifndef CTD_TEST_PGSERVER_H
#define CTD_TEST_PGSERVER_H

#include <stdint.h>
#include <sys/types.h>

#include "tmpdir.h"

#define PGSERVER_BIN "/usr/lib/postgresql/15/bin"

struct pg_conn;

struct pgserver {
	char dir[TMPDIR_MAX];       /* data/, the socket, log */
	char conninfo[160];         /* libpq's, database postgres */
	pid_t pid;                  /* the postmaster; 0 when stopped */
	uid_t uid;                  /* who runs it */
	gid_t gid;
	gid_t groups[64];
	int ngroups;
	struct pg_conn *q;          /* the test's own connection */
};

/* A new cluster (initdb), not started. */
void pgserver_init(struct pgserver *s);
/* Starts the server and waits until it takes connections. */
void pgserver_start(struct pgserver *s);
/* A fast shutdown (SIGINT: sessions are cut, their transactions rolled
 * back), waited for. */
void pgserver_stop(struct pgserver *s);
/* Stops the server if it runs and removes its directory. */
void pgserver_free(struct pgserver *s);
/* The one number sql returns, on the test's own connection (made anew
 * after a restart); missing_table when the table is not there yet. */
int64_t pgserver_number(struct pgserver *s, const char *sql,
			int64_t missing_table);

#endif
