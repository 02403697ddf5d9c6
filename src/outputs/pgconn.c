/* pgconn: a PostgreSQL connection that never blocks the loop.
 *
 * libpq's asynchronous connect (PQconnectStart, then PQconnectPoll each
 * time the socket is ready the way the last poll asked) runs under an
 * ev_io; the socket may change between polls (libpq tries each host of
 * a list), so the watcher is set anew each time. A connect that does not
 * finish within CONNECT_TIMEOUT is failed like a refused one. Once up,
 * the ev_io watches reads (results, and the server's goodbye when it
 * shuts down) and writes only while libpq holds output the socket did
 * not take (PQflush returned 1), as its manual asks of non-blocking
 * senders.
 *
 * Every failure closes the connection (the server rolls back an open
 * transaction), is counted by reason, and schedules the next attempt
 * after ctd_pgconn_backoff_ms; the first of a streak is logged with the
 * server's words and the connection string with its passwords hidden,
 * the rest only counted, and a success after a streak logs once. */
#include <errno.h>
#include <ev.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/config/config.h"
#include "ctd/config/conninfo.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/pgconn.h"

#define CONNECT_TIMEOUT 10.0
#define BACKOFF_MIN_MS 250u
#define BACKOFF_MAX_MS 5000u

enum state { DOWN, CONNECTING, UP, STOPPED };

struct ctd_pgconn {
	struct ev_loop *loop;
	PGconn *conn;
	ev_io io;
	ev_timer timer;              /* backoff, connect timeout */
	ev_timer deadline;           /* the owner's operation in flight */
	enum state state;
	unsigned failures;           /* in a row; 0 when up */
	bool want_write;
	uint64_t rnd;
	const struct ctd_pgconn_ops *ops;
	void *arg;
	struct ctd_out_stats *st;
	struct ctd_pgconn_counters *counters;
	char *conninfo;
	char shown[CTD_CONFIG_PATH_MAX];   /* conninfo, passwords hidden */
};

uint32_t ctd_pgconn_backoff_ms(unsigned failures, uint32_t rnd)
{
	uint32_t ms = BACKOFF_MIN_MS;

	for (unsigned i = 1; i < failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	/* ms/2 + (0 .. ms/2): 0.5 to 1 times the step. */
	return ms / 2 + (uint32_t)((uint64_t)(ms / 2) * rnd / UINT32_MAX);
}

/* xorshift64*: spreading reconnects needs no more. */
static uint32_t next_rnd(struct ctd_pgconn *c)
{
	c->rnd ^= c->rnd >> 12;
	c->rnd ^= c->rnd << 25;
	c->rnd ^= c->rnd >> 27;
	return (uint32_t)((c->rnd * 0x2545F4914F6CDD1DULL) >> 32);
}

static void watch(struct ctd_pgconn *c, int events)
{
	ev_io_stop(c->loop, &c->io);
	if (!c->conn || PQsocket(c->conn) < 0)
		return;
	ev_io_set(&c->io, PQsocket(c->conn), events);
	ev_io_start(c->loop, &c->io);
}

static void close_conn(struct ctd_pgconn *c)
{
	ev_io_stop(c->loop, &c->io);
	ev_timer_stop(c->loop, &c->deadline);
	PQfinish(c->conn);
	c->conn = NULL;
	c->want_write = false;
}

static void count(struct ctd_pgconn *c, enum ctd_pg_fail reason)
{
	uint64_t *n[CTD_PG_FAIL__COUNT] = {
		[CTD_PG_FAIL_CONNECT] = &c->counters->connect_errors,
		[CTD_PG_FAIL_LOST] = &c->counters->lost,
		[CTD_PG_FAIL_QUERY] = &c->counters->query_errors,
		[CTD_PG_FAIL_TIMEOUT] = &c->counters->timeouts,
	};

	++*n[reason];
}

/* libpq's messages end with a newline and may span lines. */
static void log_failure(struct ctd_pgconn *c, enum ctd_pg_fail reason,
			const char *why)
{
	static const char *const what[CTD_PG_FAIL__COUNT] = {
		"cannot connect", "connection lost", "statement failed",
		"no answer in time",
	};
	size_t n = strcspn(why, "\n");

	log_err("postgresql %s: %s: %.*s; records are held, reconnecting",
		c->shown, what[reason], (int)n, why);
}

void ctd_pgconn_fail(struct ctd_pgconn *c, enum ctd_pg_fail reason,
		     const char *why)
{
	bool was_up = c->state == UP;
	double wait;

	count(c, reason);
	if (!c->failures++)
		log_failure(c, reason, why);
	close_conn(c);
	c->state = DOWN;
	c->counters->connected = 0;
	if (was_up)
		c->st->reconnects++;
	wait = ctd_pgconn_backoff_ms(c->failures, next_rnd(c)) / 1000.0;
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_set(&c->timer, wait, 0.);
	ev_timer_start(c->loop, &c->timer);
	if (was_up)
		c->ops->down(c->arg);
}

static void fail_conn(struct ctd_pgconn *c, enum ctd_pg_fail reason)
{
	ctd_pgconn_fail(c, reason, c->conn ? PQerrorMessage(c->conn) :
			"out of memory");
}

/* Notices (a DO block's, a server shutting down) are not errors. */
static void on_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("postgresql: %.*s", (int)strcspn(message, "\n"), message);
}

/* The streak of failures goes on until the owner says it works: a
 * server that accepts connections and refuses every statement (a
 * missing grant) must not be logged and retried at the shortest
 * backoff each time. */
void ctd_pgconn_working(struct ctd_pgconn *c)
{
	if (c->failures)
		log_info("postgresql %s: working again", c->shown);
	c->failures = 0;
}

static void became_up(struct ctd_pgconn *c)
{
	ev_timer_stop(c->loop, &c->timer);
	c->state = UP;
	c->counters->connected = 1;
	watch(c, EV_READ);
	c->ops->up(c->arg, c->conn);
}

/* One PQconnectPoll step; the next waits for what it asked. */
static void connect_step(struct ctd_pgconn *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		watch(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		watch(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		became_up(c);
		break;
	default:
		fail_conn(c, CTD_PG_FAIL_CONNECT);
		break;
	}
}

static void start_connect(struct ctd_pgconn *c)
{
	c->conn = PQconnectStart(c->conninfo);
	if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD ||
	    PQsetnonblocking(c->conn, 1) < 0) {
		fail_conn(c, CTD_PG_FAIL_CONNECT);
		return;
	}
	PQsetNoticeProcessor(c->conn, on_notice, c);
	c->state = CONNECTING;
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_set(&c->timer, CONNECT_TIMEOUT, 0.);
	ev_timer_start(c->loop, &c->timer);
	/* libpq's manual: poll as if the last answer was WRITING. */
	watch(c, EV_WRITE);
}

int ctd_pgconn_flush(struct ctd_pgconn *c)
{
	int r = PQflush(c->conn);

	if (r < 0) {
		fail_conn(c, CTD_PG_FAIL_LOST);
		return -EIO;
	}
	if ((r == 1) != c->want_write) {
		c->want_write = r == 1;
		watch(c, EV_READ | (c->want_write ? EV_WRITE : 0));
	}
	return r;
}

/* Up: take what came, send what waits, and let the owner advance. */
static void serve(struct ctd_pgconn *c, int revents)
{
	if ((revents & EV_WRITE) && ctd_pgconn_flush(c) < 0)
		return;
	if ((revents & EV_READ) && !PQconsumeInput(c->conn)) {
		fail_conn(c, CTD_PG_FAIL_LOST);
		return;
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		fail_conn(c, CTD_PG_FAIL_LOST);
		return;
	}
	c->ops->io(c->arg, c->conn);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctd_pgconn *c = w->data;

	(void)loop;
	if (c->state == CONNECTING)
		connect_step(c);
	else if (c->state == UP)
		serve(c, revents);
}

/* Backoff over: connect. Connecting too long: a failure. */
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctd_pgconn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->state == DOWN)
		start_connect(c);
	else if (c->state == CONNECTING)
		ctd_pgconn_fail(c, CTD_PG_FAIL_TIMEOUT, "connecting took "
				"longer than 10 s");
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctd_pgconn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->state == UP)
		ctd_pgconn_fail(c, CTD_PG_FAIL_TIMEOUT, "the server did not "
				"answer in time");
}

void ctd_pgconn_deadline(struct ctd_pgconn *c, double secs)
{
	ev_timer_stop(c->loop, &c->deadline);
	if (secs <= 0)
		return;
	ev_timer_set(&c->deadline, secs, 0.);
	ev_timer_start(c->loop, &c->deadline);
}

struct ctd_pgconn *ctd_pgconn_new(struct ev_loop *loop, const char *conninfo,
				  const struct ctd_pgconn_ops *ops, void *arg,
				  struct ctd_out_stats *st,
				  struct ctd_pgconn_counters *counters)
{
	struct ctd_pgconn *c = calloc(1, sizeof(*c));

	if (!c || !(c->conninfo = strdup(conninfo))) {
		free(c);
		return NULL;
	}
	c->loop = loop;
	c->ops = ops;
	c->arg = arg;
	c->st = st;
	c->counters = counters;
	c->rnd = (((uint64_t)getpid() << 32) ^ (uint64_t)(ev_time() * 1e6)) | 1;
	ctd_conninfo_mask(conninfo, c->shown, sizeof(c->shown));
	ev_io_init(&c->io, on_io, -1, EV_READ);
	ev_init(&c->timer, on_timer);
	ev_init(&c->deadline, on_deadline);
	c->io.data = c->timer.data = c->deadline.data = c;
	/* From the loop, not here: PQconnectStart may resolve a host name
	 * (blocking), and a start-up must not wait for a database. */
	ev_timer_set(&c->timer, 0., 0.);
	ev_timer_start(loop, &c->timer);
	return c;
}

bool ctd_pgconn_is_up(const struct ctd_pgconn *c)
{
	return c->state == UP;
}

void ctd_pgconn_stop(struct ctd_pgconn *c)
{
	ev_timer_stop(c->loop, &c->timer);
	close_conn(c);
	c->state = STOPPED;
	c->counters->connected = 0;
}

void ctd_pgconn_free(struct ctd_pgconn *c)
{
	if (!c)
		return;
	ctd_pgconn_stop(c);
	free(c->conninfo);
	free(c);
}
