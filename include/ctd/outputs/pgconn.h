/* pgconn: one libpq connection driven by the libev loop, never
 * blocking: PQconnectStart/PQconnectPoll with the socket watched, a
 * connect timeout, reconnects under a jittered exponential backoff, and
 * while up the socket's reads consumed and libpq's output flushed as the
 * socket takes it. What is sent on the connection is the owner's
 * business (out_pg.c): it is told when the connection is up, when the
 * socket had something, and when it went down. Failures are counted by
 * reason in the owner's output counters and logged once per streak. */
#ifndef CTD_PGCONN_H
#define CTD_PGCONN_H

#include <stdbool.h>
#include <stdint.h>

struct ctd_out_stats;
struct ctd_pgconn;
struct ev_loop;
struct pg_conn;              /* libpq's PGconn */

enum ctd_pg_fail {
	CTD_PG_FAIL_CONNECT,     /* could not connect (down, refused, auth) */
	CTD_PG_FAIL_LOST,        /* the connection broke */
	CTD_PG_FAIL_QUERY,       /* the server refused a statement */
	CTD_PG_FAIL_TIMEOUT,     /* no answer in time */
	CTD_PG_FAIL__COUNT
};

struct ctd_pgconn_ops {
	/* Connected: the owner may send (non-blocking mode is set), and
	 * calls ctd_pgconn_working once something it sent succeeded. */
	void (*up)(void *arg, struct pg_conn *conn);
	/* While up: input was consumed (results may be ready) or output
	 * flushed; the owner advances what it sent. */
	void (*io)(void *arg, struct pg_conn *conn);
	/* The connection is gone (the owner's failure or the loop's); a
	 * reconnect is scheduled. What was in flight may or may not have
	 * been committed. */
	void (*down)(void *arg);
};

/* Backoff before reconnect attempt number failures (1: after the first
 * failure), in milliseconds: 250 ms doubling to 5 s, times a factor
 * from 0.5 to 1 taken from rnd, so a fleet does not reconnect in step.
 * Pure, for tests. */
uint32_t ctd_pgconn_backoff_ms(unsigned failures, uint32_t rnd);

/* What a connection counts, in its output's own counters. */
struct ctd_pgconn_counters {
	uint64_t connect_errors; /* attempts that failed (down, refused,
	                          * authentication) */
	uint64_t lost;           /* connections that broke */
	uint64_t query_errors;   /* statements the server refused */
	uint64_t timeouts;       /* connects or batches not answered in time */
	uint64_t connected;      /* gauge: 1 while connected */
};

/* Connects from the loop's next turn. conninfo is copied; st gets
 * reconnects, counters the rest. NULL when out of memory. */
struct ctd_pgconn *ctd_pgconn_new(struct ev_loop *loop, const char *conninfo,
				  const struct ctd_pgconn_ops *ops, void *arg,
				  struct ctd_out_stats *st,
				  struct ctd_pgconn_counters *counters);
void ctd_pgconn_free(struct ctd_pgconn *c);

/* Flushes what libpq buffered after a send: 0 when all went, 1 when
 * the rest waits for the socket (watched; io is called when it took
 * more), -EIO when the connection broke (then it is failed). */
int ctd_pgconn_flush(struct ctd_pgconn *c);
/* The owner gives up on the connection: counted by reason, logged
 * (once per streak, with why), closed, reconnect scheduled. */
void ctd_pgconn_fail(struct ctd_pgconn *c, enum ctd_pg_fail reason,
		     const char *why);
/* The owner's work succeeded on this connection: the failure streak
 * (log line, backoff) ends. */
void ctd_pgconn_working(struct ctd_pgconn *c);
/* Fails the connection with CTD_PG_FAIL_TIMEOUT unless disarmed within
 * secs (an operation in flight); 0 disarms. */
void ctd_pgconn_deadline(struct ctd_pgconn *c, double secs);
/* Closes the connection for good (shutdown): no reconnect. */
void ctd_pgconn_stop(struct ctd_pgconn *c);
bool ctd_pgconn_is_up(const struct ctd_pgconn *c);

#endif
