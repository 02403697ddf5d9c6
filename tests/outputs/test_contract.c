/* The output contract (output.h), one script run against every output
 * through delivery, each with a local endpoint in this process: temp
 * files, a Unix stream reader, a Unix datagram socket for /dev/log, a
 * UDP socket and a TCP listener on loopback for IPFIX, the same listener
 * speaking TLS (OpenSSL, certificates from testcert.h) for IPFIX over
 * TLS, librdkafka's mock cluster for Kafka, a temp SQLite file for the
 * store, and a throw-away PostgreSQL server (pgserver.h: initdb in a
 * temp directory, a Unix socket) for postgresql.
 *
 * The script, with records = delivered + failed + held checked after
 * every commit (the held gauge is brought up to date there, once per
 * batch of events) and so after every step and every turn of the loop:
 *   submit     records reach the endpoint and become final
 *   partial    the endpoint stops taking data: the output takes records
 *              while it has room, then refuses (deferred), and the
 *              refused ones wait on the retry list
 *   refusal    every further record is refused and held
 *   settled    the endpoint takes data again: everything held becomes
 *              final, nothing fails, each record reached it once
 *   abandon    stopped again, records taken but not final are abandoned
 *              at shutdown and go, with the held ones, to the spool
 *   shutdown   a new instance carries them and delivers them all
 *   reopen     SIGHUP's reopen: nothing lost or counted twice
 * An output that cannot do a step says so in its adapter, and the test
 * checks what it does instead: IPFIX over UDP never refuses (a datagram
 * is done once sent, so a receiver that does not read loses it) and so
 * holds nothing to abandon; only the file outputs reopen. Over TCP and
 * TLS the collector may see a record twice, but only one the instance
 * before held at its shutdown (sent, not acknowledged, so replayed):
 * the collector counts distinct flows and the repeats apart. The text
 * stream of ctd -f is not a delivery output (no struct ctd_output): its
 * adapter checks what it documents instead, that a stuck terminal skips
 * lines and counts them, never blocking or holding. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <ev.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "ctd/base/stats.h"
#include "ctd/config/config.h"
#include "ctd/delivery/deliver.h"
#include "ctd/flows/filter.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/out_file.h"
#include "ctd/outputs/out_ipfix.h"
#include "ctd/outputs/out_kafka.h"
#include "ctd/outputs/out_pg.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/out_stream.h"
#include "ctd/outputs/out_syslog.h"
#include "ctd/outputs/out_text.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "pgserver.h"
#include "testcert.h"
#include "tmpdir.h"

#define FIRST 10                 /* records of the submit step */
#define REFUSE_MAX 70000         /* records to make any output refuse (the
                                  * store holds two batches of 32,768: it
                                  * grows them only with MEMORY_MAX's room) */
#define MEMORY_MAX (4u << 20)    /* delivery's memory budget */
#define MORE 5                   /* records of the refusal step */
#define ABANDON 40               /* records of the abandon step */
#define PUMP_MS 20000            /* longest wait for a step's end */
/* The file outputs start past a hole this big, so blocking their file
 * with RLIMIT_FSIZE leaves room for the spool and the log beside it. */
#define FILLER (64u << 20)
#define PEERS 4                  /* collector: connections at once */
#define PEER_BUF (1u << 17)      /* ... each one's unparsed bytes */
#define TEMPLATES 8              /* ... template ids 256 to 263 */

struct env;

struct adapter {
	const char *name;
	void (*setup)(struct env *e);
	struct ctd_output *(*make)(struct env *e);
	void (*block)(struct env *e);     /* the endpoint stops taking data */
	void (*unblock)(struct env *e);
	void (*drain)(struct env *e);     /* reads what arrived, if unblocked */
	void (*teardown)(struct env *e);
	bool refuses;       /* says AGAIN once its endpoint is stuck */
	bool exact;         /* drain counts each record the endpoint got */
	bool reopens;       /* has a reopen op */
};

struct env {
	const struct adapter *a;
	struct ev_loop *loop;
	ev_timer beat;               /* keeps ev_run(ONCE) from sleeping long */
	struct ctd_stats stats;
	char dir[TMPDIR_MAX];
	char path[200];              /* the endpoint: file or socket */
	char spool[200];
	struct ctd_deliver *d;
	struct ctd_output *out;
	uint32_t next_id;
	bool blocked;
	uint64_t received;           /* records the endpoint got */
	uint64_t dups;               /* ... and got again (IPFIX) */
	uint64_t may_repeat;         /* held at the last shutdown */
	uint64_t delivered_before;   /* by the instances before this one */
	off_t read_off;              /* file outputs: counted up to here */
	char rotated[220];           /* file outputs: the name before reopen */
	off_t rotated_off;
	int fd, conn;                /* endpoint sockets */
	char buf[1 << 16];
	/* Kafka */
	rd_kafka_t *mock_rk;
	rd_kafka_mock_cluster_t *mock;
	/* store */
	sqlite3 *locker;
	/* IPFIX over TCP and TLS: the collector */
	SSL_CTX *tls;                /* NULL: plain TCP */
	char tls_files[3][220];      /* the client's CA, cert, key */
	struct peer *peers;          /* [PEERS] */
	uint8_t seen[65536 / 8];     /* flows got, by source port */
	/* postgresql */
	struct pgserver *pg;
};

/* ---- the records and the loop ---------------------------------------- */

static struct ctd_record rec_of(uint32_t id)
{
	struct ctd_record r = { .family = AF_INET, .proto = IPPROTO_UDP,
				.end_reason = CTD_END_DESTROY, .id = id,
				.nsid = CTD_NSID_SELF };
	struct ctd_tuple *o = &r.tuple[CTD_DIR_ORIG];
	struct ctd_tuple *re = &r.tuple[CTD_DIR_REPLY];

	memcpy(o->src, (uint8_t[]){ 10, 0, 0, 1 }, 4);
	memcpy(o->dst, (uint8_t[]){ 10, 1, 0, 1 }, 4);
	o->sport = (uint16_t)(1024 + id % 60000);
	o->dport = 53;
	memcpy(re->src, o->dst, 4);
	memcpy(re->dst, o->src, 4);
	re->sport = 53;
	re->dport = o->sport;
	r.cnt[CTD_DIR_ORIG] = (struct ctd_counters){ 1, 80 };
	r.cnt[CTD_DIR_REPLY] = (struct ctd_counters){ 1, 120 };
	r.end_ns = (uint64_t)time(NULL) * 1000000000ull;
	r.start_ns = r.end_ns - 1000000000ull;
	return r;
}

static const struct ctd_out_stats *st(const struct env *e)
{
	return &e->out->stats;
}

static void assert_identity(const struct env *e)
{
	const struct ctd_out_stats *s = st(e);

	if (s->records != s->delivered + s->failed + s->held)
		fail_msg("%s: records %llu != delivered %llu + failed %llu + "
			 "held %llu", e->a->name,
			 (unsigned long long)s->records,
			 (unsigned long long)s->delivered,
			 (unsigned long long)s->failed,
			 (unsigned long long)s->held);
	assert_int_equal(s->failed, s->failed_render + s->failed_spool +
			 s->failed_shutdown + s->failed_output);
}

static void on_beat(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* One turn: the endpoint reads, the loop runs what is ready (at most a
 * few ms), held records are re-sent when due, then the commit every
 * batch of events ends with. */
static void turn(struct env *e)
{
	if (!e->blocked && e->a->drain)
		e->a->drain(e);
	ev_run(e->loop, EVRUN_ONCE);
	ctd_deliver_tick(e->d);
	ctd_deliver_commit(e->d);
	assert_identity(e);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Turns the loop until nothing is held (and the endpoint got what it
 * should), failing after PUMP_MS. */
static void settle_all(struct env *e)
{
	int64_t end = now_ms() + PUMP_MS;

	turn(e);
	while (st(e)->held || (e->a->exact && e->received <
			       e->delivered_before + st(e)->delivered)) {
		if (now_ms() > end)
			fail_msg("%s: still %llu held, %llu of %llu received",
				 e->a->name, (unsigned long long)st(e)->held,
				 (unsigned long long)e->received,
				 (unsigned long long)st(e)->delivered);
		turn(e);
	}
}

static void send_one(struct env *e)
{
	struct ctd_record r = rec_of(e->next_id++);

	ctd_deliver_record(e->d, &r);
}

static void start(struct env *e)
{
	struct ctd_deliver_cfg cfg = { .grace_ms = 50, .retry_max = 100000,
				       .memory_max = MEMORY_MAX,
				       .spool_dir = e->spool };

	assert_int_equal(ctd_deliver_new(e->loop, &cfg, &e->stats, &e->d), 0);
	e->out = e->a->make(e);
	assert_non_null(e->out);
	assert_int_equal(ctd_deliver_add(e->d, e->out,
					 1u << CTD_EV_DESTROY), 0);
	assert_identity(e);
}

/* ---- the script -------------------------------------------------------- */

static void step_submit(struct env *e)
{
	for (int i = 0; i < FIRST; i++)
		send_one(e);
	settle_all(e);
	assert_int_equal(st(e)->records, FIRST);
	assert_int_equal(st(e)->delivered, FIRST);
	assert_int_equal(st(e)->failed, 0);
	if (e->a->exact)
		assert_int_equal(e->received, FIRST);
	assert_int_equal(e->dups, 0);
}

/* Records while the output has room, then its first refusal since the
 * endpoint stopped (postgresql refused the first records of submit too,
 * until it had connected). */
static void step_partial(struct env *e)
{
	uint64_t before = st(e)->records, deferred = st(e)->deferred;

	e->blocked = true;
	e->a->block(e);
	for (int i = 0; i < (e->a->refuses ? REFUSE_MAX : 200) &&
			st(e)->deferred == deferred; i++) {
		send_one(e);
		if (i % 16 == 15)
			turn(e);
	}
	if (!e->a->refuses) {
		/* UDP: every record sent, none refused or held. */
		settle_all(e);
		assert_int_equal(st(e)->deferred, 0);
		assert_int_equal(st(e)->delivered, st(e)->records);
		return;
	}
	assert_int_equal(st(e)->deferred, deferred + 1);
	/* Partial: it took records after the endpoint stopped. */
	assert_true(st(e)->records - before > 1);
	assert_int_equal(st(e)->dying, 1);
	assert_true(st(e)->held >= 1);
}

static void step_refusal(struct env *e)
{
	uint64_t deferred = st(e)->deferred, dying = st(e)->dying;
	uint64_t held = st(e)->held;

	for (int i = 0; i < MORE; i++)
		send_one(e);
	ctd_deliver_commit(e->d);
	assert_identity(e);
	if (!e->a->refuses) {
		settle_all(e);
		assert_int_equal(st(e)->deferred, 0);
		return;
	}
	/* Each one refused (or held without an offer: the taken ring is
	 * full), none failed. */
	assert_int_equal(st(e)->dying, dying + MORE);
	assert_int_equal(st(e)->held, held + MORE);
	assert_true(st(e)->deferred <= deferred + MORE);
	assert_int_equal(st(e)->failed, 0);
}

static void step_settled(struct env *e)
{
	e->blocked = false;
	e->a->unblock(e);
	settle_all(e);
	assert_int_equal(st(e)->delivered, st(e)->records);
	assert_int_equal(st(e)->failed, 0);
	assert_int_equal(st(e)->dying, 0);
	if (e->a->refuses)
		assert_true(st(e)->retried > 0);
	if (e->a->exact)
		assert_int_equal(e->received, st(e)->delivered);
	assert_int_equal(e->dups, 0);
}

/* The endpoint got each record once over both instances; again only
 * what the first held at its shutdown. */
static void assert_received_once(struct env *e)
{
	if (e->a->exact)
		assert_int_equal(e->received,
				 e->delivered_before + st(e)->delivered);
	assert_true(e->dups <= e->may_repeat);
}

/* Stopped again, then a shutdown with no time to re-send: what the
 * output took but did not make final is abandoned, and it and the held
 * ones go to the spool. Returns the records held for the next start. */
static uint64_t step_abandon(struct env *e)
{
	uint64_t held;

	e->blocked = true;
	e->a->block(e);
	/* Some records at least, and until some are held. */
	for (int i = 0; i < REFUSE_MAX && (i < ABANDON ||
					    (e->a->refuses && !st(e)->held)); i++) {
		send_one(e);
		if (i % 8 == 7)
			turn(e);
	}
	ctd_deliver_commit(e->d);
	held = st(e)->held;
	/* Taken and not final (not on the retry list): what abandon is
	 * for. UDP holds nothing: a datagram is final once sent. */
	if (e->a->refuses)
		assert_true(held > st(e)->dying);
	else
		assert_int_equal(held, 0);
	ctd_deliver_finish(e->d, 0);
	assert_identity(e);
	assert_int_equal(st(e)->failed, 0);
	assert_int_equal(st(e)->dying, 0);
	/* Nothing held is lost: it is all in the spool now (abandoned
	 * records too, or they were final after all). */
	assert_true(st(e)->held <= held);
	assert_int_equal(st(e)->held, st(e)->records - st(e)->delivered);
	return st(e)->held;
}

/* A new instance on the same spool delivers what the last one held. */
static void step_shutdown(struct env *e, uint64_t held)
{
	e->delivered_before += st(e)->delivered;
	ctd_deliver_free(e->d);
	e->d = NULL;
	e->out = NULL;
	e->blocked = false;
	e->a->unblock(e);
	start(e);
	assert_int_equal(st(e)->carried, held);
	assert_int_equal(st(e)->records, held);
	settle_all(e);
	assert_int_equal(st(e)->delivered, held);
	assert_int_equal(st(e)->failed, 0);
	assert_int_equal(st(e)->replayed, held);
	/* Each record reached the endpoint once: the instance before
	 * delivered some while the endpoint was stuck, this one the rest. */
	if (e->a->exact)
		assert_int_equal(e->received, e->delivered_before + held);
	e->may_repeat = held;
	assert_received_once(e);
}

static void step_reopen(struct env *e)
{
	struct ctd_out_stats before = *st(e);

	if (e->a->reopens) {
		snprintf(e->rotated, sizeof(e->rotated), "%s.1", e->path);
		assert_int_equal(rename(e->path, e->rotated), 0);
		e->rotated_off = e->read_off;
		e->read_off = 0;
	}
	ctd_deliver_reopen(e->d);
	assert_identity(e);
	assert_int_equal(st(e)->records, before.records);
	assert_int_equal(st(e)->delivered, before.delivered);
	for (int i = 0; i < MORE; i++)
		send_one(e);
	settle_all(e);
	assert_int_equal(st(e)->delivered, before.delivered + MORE);
	assert_int_equal(st(e)->failed, 0);
	assert_received_once(e);
	if (e->a->reopens)     /* the new file has the new records */
		assert_true(e->read_off > 0);
}

static void run_script(void **state)
{
	struct env *e = *state;
	uint64_t held;

	start(e);
	step_submit(e);
	step_partial(e);
	step_refusal(e);
	step_settled(e);
	held = step_abandon(e);
	step_shutdown(e, held);
	step_reopen(e);
	ctd_deliver_finish(e->d, 1);
	assert_identity(e);
	assert_int_equal(st(e)->held, 0);
	ctd_deliver_free(e->d);
	e->d = NULL;
}

/* ---- file outputs (JSON lines, conntrackd log) ------------------------- */

/* Lines written past off in path; off moves on. */
static uint64_t count_lines(const char *path, off_t *off, char *buf,
			    size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t n = 0;
	ssize_t got;

	if (fd < 0)
		return 0;
	while ((got = pread(fd, buf, cap, *off)) > 0) {
		for (ssize_t i = 0; i < got; i++)
			n += buf[i] == '\n';
		*off += got;
	}
	close(fd);
	return n;
}

static void file_setup(struct env *e)
{
	int fd;

	snprintf(e->path, sizeof(e->path), "%s/flows.log", e->dir);
	/* A hole, then a line end, so the output finds no torn line. */
	fd = open(e->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\n", 1, FILLER), 1);
	close(fd);
	e->read_off = FILLER + 1;
}

static void file_drain(struct env *e)
{
	if (e->rotated[0])
		e->received += count_lines(e->rotated, &e->rotated_off, e->buf,
					   sizeof(e->buf));
	e->received += count_lines(e->path, &e->read_off, e->buf,
				   sizeof(e->buf));
}

/* The file cannot grow past its size: writes fail (EFBIG), as on a
 * full disk. The spool and the log beside it stay below the bound. */
static void file_block(struct env *e)
{
	struct stat sb;
	struct rlimit rl;

	assert_int_equal(stat(e->path, &sb), 0);
	rl.rlim_cur = (rlim_t)sb.st_size;
	rl.rlim_max = RLIM_INFINITY;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static void file_unblock(struct env *e)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	(void)e;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static struct ctd_output *json_make(struct env *e)
{
	struct ctd_output *out = NULL;

	assert_int_equal(ctd_out_json_new(e->path, 16384, NULL, &out), 0);
	return out;
}

static struct ctd_output *ctlog_make(struct env *e)
{
	struct ctd_output *out = NULL;
	struct ctd_config c;
	char err[CTD_CONFIG_ERR_MAX];

	ctd_config_init(&c, ctd_output_settings);
	assert_int_equal(ctd_config_set(&c, "conntrackd-log", e->path, err,
					sizeof(err)), 0);
	assert_int_equal(ctd_out_ctlog_desc.create(e->loop, &c, NULL, &out), 0);
	return out;
}

/* ---- stream: a reader on the Unix socket ------------------------------- */

static void stream_setup(struct env *e)
{
	snprintf(e->path, sizeof(e->path), "%s/flows.sock", e->dir);
	e->conn = -1;
}

static void stream_drain(struct env *e)
{
	ssize_t got;

	while (e->conn >= 0 &&
	       (got = recv(e->conn, e->buf, sizeof(e->buf), MSG_DONTWAIT)) > 0)
		for (ssize_t i = 0; i < got; i++)
			e->received += e->buf[i] == '\n';
}

/* A new listener (a new instance), and this test's reader on it: what
 * the old connection still holds is read first. */
static struct ctd_output *stream_make(struct env *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctd_output *out = NULL;
	int small = 4096;

	stream_drain(e);
	if (e->conn >= 0)
		close(e->conn);
	assert_int_equal(ctd_out_stream_new(e->loop, e->path, (gid_t)-1, &out),
			 0);
	e->conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(e->conn >= 0);
	setsockopt(e->conn, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	strcpy(sa.sun_path, e->path);
	assert_int_equal(connect(e->conn, (struct sockaddr *)&sa, sizeof(sa)),
			 0);
	/* The output accepts on the loop. */
	for (int i = 0; i < 100 && !ctd_output_counter(out, "consumers"); i++)
		ev_run(e->loop, EVRUN_ONCE);
	assert_int_equal(ctd_output_counter(out, "consumers"), 1);
	return out;
}

static void stream_teardown(struct env *e)
{
	if (e->conn >= 0)
		close(e->conn);
}

/* ---- syslog: a datagram socket standing in for /dev/log ---------------- */

static void syslog_setup(struct env *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int small = 4096;

	snprintf(e->path, sizeof(e->path), "%s/log", e->dir);
	e->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(e->fd >= 0);
	setsockopt(e->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	strcpy(sa.sun_path, e->path);
	assert_int_equal(bind(e->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static void dgram_drain(struct env *e)
{
	while (recv(e->fd, e->buf, sizeof(e->buf), MSG_DONTWAIT) > 0)
		e->received++;
}

static struct ctd_output *syslog_make(struct env *e)
{
	struct ctd_out_syslog_cfg cfg = { e->path, 1, 6, false };
	struct ctd_output *out = NULL;

	assert_int_equal(ctd_out_syslog_new(e->loop, &cfg, &out), 0);
	return out;
}

static void close_fd(struct env *e)
{
	close(e->fd);
}

/* ---- IPFIX: a UDP socket, a TCP listener ------------------------------- */

static uint16_t bound_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	return ntohs(sa.sin_port);
}

static int loopback_socket(int type)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	int small = 4096;

	assert_true(fd >= 0);
	/* A small receive buffer (inherited by an accepted connection): a
	 * collector that stops reading stops the sender soon. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void udp_setup(struct env *e)
{
	e->fd = loopback_socket(SOCK_DGRAM);
	snprintf(e->path, sizeof(e->path), "udp:127.0.0.1:%u", bound_port(e->fd));
}

/* The collector reads every connection it accepted (an instance's old
 * one too, to its end) as a stream of IPFIX messages, learns each
 * connection's templates (RFC 7011 3.4) and counts the flows of the
 * data records by their source port (the script's records have one
 * each). Written from the RFC, not with ctd's encoder: a message or set
 * that does not parse, or data before its template, fails the test. */
struct peer {
	int fd;
	SSL *ssl;
	uint8_t *buf;
	size_t len;
	struct {
		uint16_t reclen;         /* 0: not defined */
		int sport_off;           /* sourceTransportPort; -1 none */
	} t[TEMPLATES];
};

static void tcp_setup(struct env *e)
{
	e->fd = loopback_socket(SOCK_STREAM | SOCK_NONBLOCK);
	assert_int_equal(listen(e->fd, 4), 0);
	snprintf(e->path, sizeof(e->path), "tcp:127.0.0.1:%u", bound_port(e->fd));
	e->peers = calloc(PEERS, sizeof(*e->peers));
	assert_non_null(e->peers);
	for (int i = 0; i < PEERS; i++)
		e->peers[i].fd = -1;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* A template's field specifiers from q + off (count of them, up to len):
 * the record's length, where sourceTransportPort (7) is in it (-1 none)
 * and the offset past them. */
static size_t template_fields(const uint8_t *q, size_t len, size_t off,
			      unsigned count, size_t *ret_reclen, int *ret_sport)
{
	*ret_reclen = 0;
	*ret_sport = -1;
	for (unsigned i = 0; i < count; i++) {
		uint16_t ie, flen;

		assert_true(off + 4 <= len);
		ie = be16(q + off);
		flen = be16(q + off + 2);
		assert_int_not_equal(flen, 0xffff);   /* none variable */
		if (ie == 7)
			*ret_sport = (int)*ret_reclen;
		off += ie & 0x8000 ? 8 : 4;           /* an enterprise number */
		*ret_reclen += flen;
	}
	assert_true(off <= len);
	return off;
}

/* One template record at q (len bytes left; an options template has a
 * scope count too); returns its length. */
static size_t parse_template(struct peer *p, const uint8_t *q, size_t len,
			     bool options)
{
	size_t off = options ? 6 : 4, reclen;
	uint16_t tid, count;
	int sport;

	assert_true(len >= off);
	tid = be16(q);
	count = be16(q + 2);
	if (!count)      /* a withdrawal: ctd sends none */
		fail_msg("template %u withdrawn", tid);
	if (tid < 256 || tid >= 256 + TEMPLATES)
		fail_msg("template id %u", tid);
	off = template_fields(q, len, off, count, &reclen, &sport);
	p->t[tid - 256].reclen = (uint16_t)reclen;
	p->t[tid - 256].sport_off = sport;
	return off;
}

static void count_flows(struct env *e, struct peer *p, uint16_t sid,
			const uint8_t *q, size_t len)
{
	size_t reclen;
	int sport;

	if (sid >= 256 + TEMPLATES || !p->t[sid - 256].reclen)
		fail_msg("%s: data set %u before its template", e->a->name, sid);
	reclen = p->t[sid - 256].reclen;
	sport = p->t[sid - 256].sport_off;
	/* What is left over is padding, shorter than a record. */
	for (size_t off = 0; sport >= 0 && off + reclen <= len; off += reclen) {
		uint16_t key = be16(q + off + (size_t)sport);

		if (e->seen[key / 8] & (1u << key % 8)) {
			e->dups++;
			continue;
		}
		e->seen[key / 8] |= (uint8_t)(1u << key % 8);
		e->received++;
	}
}

static void parse_message(struct env *e, struct peer *p, const uint8_t *m,
			  size_t mlen)
{
	for (size_t off = 16; off < mlen;) {
		uint16_t sid, slen;

		assert_true(off + 4 <= mlen);
		sid = be16(m + off);
		slen = be16(m + off + 2);
		assert_true(slen >= 4 && off + slen <= mlen);
		if (sid == 2 || sid == 3)
			for (size_t q = 4; q + 4 <= slen;)
				q += parse_template(p, m + off + q, slen - q,
						    sid == 3);
		else if (sid >= 256)
			count_flows(e, p, sid, m + off + 4, slen - 4u);
		else
			fail_msg("%s: set id %u", e->a->name, sid);
		off += slen;
	}
}

/* Whole messages out of the peer's bytes. */
static void parse_stream(struct env *e, struct peer *p)
{
	size_t off = 0, mlen;

	while (p->len - off >= 4) {
		assert_int_equal(be16(p->buf + off), 10);
		mlen = be16(p->buf + off + 2);
		assert_true(mlen >= 16);
		if (p->len - off < mlen)
			break;
		parse_message(e, p, p->buf + off, mlen);
		off += mlen;
	}
	memmove(p->buf, p->buf + off, p->len - off);
	p->len -= off;
}

/* Bytes read (> 0), 0 none now, -1 the connection ended. */
static ssize_t peer_recv(struct peer *p, uint8_t *buf, size_t n)
{
	ssize_t r;
	int err;

	if (!p->ssl) {
		r = recv(p->fd, buf, n, MSG_DONTWAIT);
		return r > 0 ? r : r < 0 && errno == EAGAIN ? 0 : -1;
	}
	r = SSL_read(p->ssl, buf, (int)n);
	if (r > 0)
		return r;
	err = SSL_get_error(p->ssl, (int)r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return 0;
	/* The handshake must work; after it, an end is an end. */
	if (err == SSL_ERROR_SSL && !SSL_is_init_finished(p->ssl))
		fail_msg("collector: TLS handshake: %s",
			 ERR_reason_error_string(ERR_get_error()));
	ERR_clear_error();
	return -1;
}

static void peer_close(struct peer *p)
{
	SSL_free(p->ssl);
	p->ssl = NULL;
	close(p->fd);
	p->fd = -1;
	free(p->buf);
	p->buf = NULL;
}

static void peer_accept(struct env *e, int c)
{
	struct peer *p;
	int i = 0;

	while (i < PEERS && e->peers[i].fd >= 0)
		i++;
	if (i == PEERS)
		fail_msg("more than %d connections at once", PEERS);
	p = &e->peers[i < PEERS ? i : 0];
	memset(p, 0, sizeof(*p));
	p->fd = c;
	p->buf = malloc(PEER_BUF);
	assert_non_null(p->buf);
	if (!e->tls)
		return;
	p->ssl = SSL_new(e->tls);
	assert_non_null(p->ssl);
	SSL_set_fd(p->ssl, c);
	SSL_set_accept_state(p->ssl);
}

/* Accepts the exporter's connections and reads each as far as it can;
 * one that ended is parsed to its end (a message cut short there was
 * not acknowledged, so it is sent again) and closed. */
static void tcp_drain(struct env *e)
{
	int c;
	ssize_t r;

	while ((c = accept4(e->fd, NULL, NULL,
			    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		peer_accept(e, c);
	for (int i = 0; i < PEERS; i++) {
		struct peer *p = &e->peers[i];

		while (p->fd >= 0 &&
		       (r = peer_recv(p, p->buf + p->len, PEER_BUF - p->len)) != 0) {
			if (r < 0) {
				peer_close(p);
				break;
			}
			p->len += (size_t)r;
			parse_stream(e, p);
		}
	}
}

static struct ctd_output *ipfix_make(struct env *e)
{
	struct ctd_out_ipfix_cfg cfg = { .target = e->path, .mtu = 1500,
					 .template_interval = 600,
					 .template_messages = 0,
					 .buf_size = 16384 };
	struct ctd_output *out = NULL;

	assert_int_equal(ctd_out_ipfix_new(e->loop, &cfg, &out), 0);
	return out;
}

static void tcp_teardown(struct env *e)
{
	for (int i = 0; e->peers && i < PEERS; i++)
		if (e->peers[i].fd >= 0)
			peer_close(&e->peers[i]);
	free(e->peers);
	SSL_CTX_free(e->tls);
	close(e->fd);
}

/* ---- IPFIX over TLS: the collector above behind OpenSSL --------------- */

/* Mutual TLS, as test_tlslink's server: our CA's client certificate
 * required. An end without close_notify is an end (the exporter's
 * shutdown closes its socket). */
static SSL_CTX *collector_ctx(const char *dir)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char path[TMPDIR_MAX + 16];

	assert_non_null(ctx);
	snprintf(path, sizeof(path), "%s/server.pem", dir);
	assert_int_equal(SSL_CTX_use_certificate_file(ctx, path,
						      SSL_FILETYPE_PEM), 1);
	snprintf(path, sizeof(path), "%s/server.key", dir);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, path,
						     SSL_FILETYPE_PEM), 1);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
			   SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	return ctx;
}

static void tls_setup(struct env *e)
{
	static const char *const names[3] = { "ca.pem", "client.pem",
					      "client.key" };

	tcp_setup(e);
	snprintf(e->path, sizeof(e->path), "tls:127.0.0.1:%u", bound_port(e->fd));
	testcert_make(e->dir);
	e->tls = collector_ctx(e->dir);
	for (int i = 0; i < 3; i++)
		snprintf(e->tls_files[i], sizeof(e->tls_files[i]), "%s/%s",
			 e->dir, names[i]);
}

static struct ctd_output *tls_make(struct env *e)
{
	struct ctd_out_ipfix_cfg cfg = {
		.target = e->path, .mtu = 1500, .template_interval = 600,
		.buf_size = 16384,
		.tls = { e->tls_files[0], e->tls_files[1], e->tls_files[2] },
		.owner = CTD_OWNER_NONE,
	};
	struct ctd_output *out = NULL;

	assert_int_equal(ctd_out_ipfix_new(e->loop, &cfg, &out), 0);
	return out;
}

/* ---- Kafka: librdkafka's mock cluster in this process ------------------ */

static void kafka_setup(struct env *e)
{
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	assert_int_equal(rd_kafka_conf_set(conf, "log_level", "0", err,
					   sizeof(err)), RD_KAFKA_CONF_OK);
	e->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	assert_non_null(e->mock_rk);
	e->mock = rd_kafka_mock_cluster_new(e->mock_rk, 1);
	assert_non_null(e->mock);
	assert_int_equal(rd_kafka_mock_topic_create(e->mock, "flows", 1, 1), 0);
	snprintf(e->path, sizeof(e->path), "%s",
		 rd_kafka_mock_cluster_bootstraps(e->mock));
}

static struct ctd_output *kafka_make(struct env *e)
{
	struct ctd_out_kafka_cfg cfg = {
		.brokers = e->path, .topic = "flows",
		.options = "reconnect.backoff.ms=10\n"
			   "reconnect.backoff.max.ms=100\n"
			   "linger.ms=0\nlog_level=0\n",
		.inflight = 64,
	};
	struct ctd_output *out = NULL;

	assert_int_equal(ctd_out_kafka_new(e->loop, &cfg, &out), 0);
	return out;
}

static void kafka_block(struct env *e)
{
	assert_int_equal(rd_kafka_mock_broker_set_down(e->mock, 1), 0);
}

static void kafka_unblock(struct env *e)
{
	assert_int_equal(rd_kafka_mock_broker_set_up(e->mock, 1), 0);
}

static void kafka_teardown(struct env *e)
{
	rd_kafka_mock_cluster_destroy(e->mock);
	rd_kafka_destroy(e->mock_rk);
}

/* ---- store: a temp SQLite file, locked by a second writer -------------- */

static void store_setup(struct env *e)
{
	snprintf(e->path, sizeof(e->path), "%s/flows.db", e->dir);
}

static struct ctd_output *store_make(struct env *e)
{
	struct ctd_out_store_cfg cfg = { e->path, 30 * 86400, 400 * 86400,
					  1ull << 30, false };
	struct ctd_output *out = NULL;

	assert_int_equal(ctd_out_store_new(&cfg, NULL, &out), 0);
	return out;
}

static void store_drain(struct env *e)
{
	sqlite3_stmt *q;

	if (!e->locker)
		assert_int_equal(sqlite3_open(e->path, &e->locker), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(e->locker,
		"SELECT count(*) FROM flows", -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		e->received = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
}

/* Another writer holds the write lock: the output's commits fail and
 * its batch stays taken, not final, until the batch is full. */
static void store_block(struct env *e)
{
	if (!e->locker)
		assert_int_equal(sqlite3_open(e->path, &e->locker), SQLITE_OK);
	assert_int_equal(sqlite3_exec(e->locker, "BEGIN IMMEDIATE", NULL, NULL,
				      NULL), SQLITE_OK);
}

static void store_unblock(struct env *e)
{
	if (sqlite3_get_autocommit(e->locker))
		return;
	assert_int_equal(sqlite3_exec(e->locker, "ROLLBACK", NULL, NULL, NULL),
			 SQLITE_OK);
}

static void store_teardown(struct env *e)
{
	sqlite3_close(e->locker);
}

/* ---- postgresql: a throw-away server, stopped and started ------------ */

static void pg_setup(struct env *e)
{
	e->pg = calloc(1, sizeof(*e->pg));
	assert_non_null(e->pg);
	pgserver_init(e->pg);
	pgserver_start(e->pg);
}

/* Through the table's row, as ctd makes it from the config. */
static struct ctd_output *pg_make(struct env *e)
{
	struct ctd_output *out = NULL;
	struct ctd_config c;
	char err[CTD_CONFIG_ERR_MAX];

	ctd_config_init(&c, ctd_output_settings);
	assert_int_equal(ctd_config_set(&c, "postgresql", e->pg->conninfo, err,
					sizeof(err)), 0);
	assert_int_equal(ctd_out_pg_desc.create(e->loop, &c, NULL, &out), 0);
	return out;
}

/* A fast shutdown cuts the output's session (its transaction rolls
 * back): the batch it had taken stays taken, not final, and it refuses
 * records until it has reconnected. */
static void pg_block(struct env *e)
{
	pgserver_stop(e->pg);
}

static void pg_unblock(struct env *e)
{
	if (!e->pg->pid)
		pgserver_start(e->pg);
}

static void pg_drain(struct env *e)
{
	e->received = (uint64_t)pgserver_number(e->pg,
		"SELECT count(*) FROM flows", 0);
}

static void pg_teardown(struct env *e)
{
	pgserver_free(e->pg);
	free(e->pg);
}

static void no_op(struct env *e)
{
	(void)e;
}

/* What each output does at the steps it cannot take like the others is
 * said here, not guessed: refuses false (UDP: a datagram is final once
 * sent, so a collector that does not read loses it, and nothing is ever
 * held); exact false where this endpoint cannot count records (IPFIX
 * over UDP: what a collector that did not read dropped is gone by
 * design; Kafka: counted by the brokers' reports); reopens only for the
 * file outputs (the others have no reopen op). */
static const struct adapter adapters[] = {
	{ .name = "json", .setup = file_setup, .make = json_make,
	  .block = file_block, .unblock = file_unblock, .drain = file_drain,
	  .refuses = true, .exact = true, .reopens = true },
	{ .name = "conntrackd-log", .setup = file_setup, .make = ctlog_make,
	  .block = file_block, .unblock = file_unblock, .drain = file_drain,
	  .refuses = true, .exact = true, .reopens = true },
	{ .name = "stream", .setup = stream_setup, .make = stream_make,
	  .block = no_op, .unblock = no_op, .drain = stream_drain,
	  .teardown = stream_teardown, .refuses = true, .exact = true },
	{ .name = "syslog", .setup = syslog_setup, .make = syslog_make,
	  .block = no_op, .unblock = no_op, .drain = dgram_drain,
	  .teardown = close_fd, .refuses = true, .exact = true },
	{ .name = "ipfix-udp", .setup = udp_setup, .make = ipfix_make,
	  .block = no_op, .unblock = no_op, .drain = dgram_drain,
	  .teardown = close_fd, .refuses = false },
	{ .name = "ipfix-tcp", .setup = tcp_setup, .make = ipfix_make,
	  .block = no_op, .unblock = no_op, .drain = tcp_drain,
	  .teardown = tcp_teardown, .refuses = true, .exact = true },
	{ .name = "ipfix-tls", .setup = tls_setup, .make = tls_make,
	  .block = no_op, .unblock = no_op, .drain = tcp_drain,
	  .teardown = tcp_teardown, .refuses = true, .exact = true },
	{ .name = "kafka", .setup = kafka_setup, .make = kafka_make,
	  .block = kafka_block, .unblock = kafka_unblock,
	  .teardown = kafka_teardown, .refuses = true },
	{ .name = "store", .setup = store_setup, .make = store_make,
	  .block = store_block, .unblock = store_unblock, .drain = store_drain,
	  .teardown = store_teardown, .refuses = true, .exact = true },
	{ .name = "postgresql", .setup = pg_setup, .make = pg_make,
	  .block = pg_block, .unblock = pg_unblock, .drain = pg_drain,
	  .teardown = pg_teardown, .refuses = true, .exact = true },
};

static int setup_env(void **state, const struct adapter *a)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->a = a;
	e->fd = e->conn = -1;
	tmpdir_make(e->dir, "contract");
	snprintf(e->spool, sizeof(e->spool), "%s/spool", e->dir);
	e->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(e->loop);
	ev_timer_init(&e->beat, on_beat, 0.005, 0.005);
	ev_timer_start(e->loop, &e->beat);
	a->setup(e);
	*state = e;
	return 0;
}

static int teardown_env(void **state)
{
	struct env *e = *state;

	file_unblock(e);
	if (e->d)
		ctd_deliver_free(e->d);
	if (e->a->teardown)
		e->a->teardown(e);
	ev_timer_stop(e->loop, &e->beat);
	ev_loop_destroy(e->loop);
	tmpdir_remove(e->dir);
	free(e);
	return 0;
}

#define ADAPTER(i)                                                        \
	static int setup_##i(void **state)                                \
	{                                                                 \
		return setup_env(state, &adapters[i]);                    \
	}
ADAPTER(0) ADAPTER(1) ADAPTER(2) ADAPTER(3)
ADAPTER(4) ADAPTER(5) ADAPTER(6) ADAPTER(7)
ADAPTER(8) ADAPTER(9)

/* ---- text: not a delivery output ---------------------------------------- */

/* ctd -f's lines: a terminal that does not read makes lines skipped and
 * counted (text_dropped), never held and never blocking; once it reads
 * again, lines flow. */
static void test_text_skips_when_stuck(void **state)
{
	struct ctd_stats stats = { 0 };
	struct ctd_filter *filter = ctd_filter_new();
	struct ctd_event ev = { .type = CTD_EV_DESTROY };
	struct ctd_record r = rec_of(1);
	struct ctd_out_text *t;
	int p[2];
	char buf[4096];
	uint64_t lines = 0;

	(void)state;
	assert_non_null(filter);
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	t = ctd_out_text_new(p[1], &stats, true);
	assert_non_null(t);
	for (int i = 0; i < 100000 && !stats.text_dropped; i++) {
		ctd_out_text_event(t, filter, &ev, &r, NULL, r.end_ns);
		if (i % 64 == 63)
			ctd_out_text_flush(t);
	}
	assert_true(stats.text_dropped > 0);
	/* The terminal reads again: what was buffered goes out. */
	do {
		while (read(p[0], buf, sizeof(buf)) > 0)
			;
	} while (ctd_out_text_flush(t) != 0);
	while (read(p[0], buf, sizeof(buf)) > 0)
		;
	ctd_out_text_event(t, filter, &ev, &r, NULL, r.end_ns);
	assert_int_equal(ctd_out_text_flush(t), 0);
	for (ssize_t n = read(p[0], buf, sizeof(buf)), i = 0; i < n; i++)
		lines += buf[i] == '\n';
	assert_int_equal(lines, 1);
	ctd_out_text_free(t);
	ctd_filter_free(filter);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		{ "json", run_script, setup_0, teardown_env, NULL },
		{ "conntrackd-log", run_script, setup_1, teardown_env, NULL },
		{ "stream", run_script, setup_2, teardown_env, NULL },
		{ "syslog", run_script, setup_3, teardown_env, NULL },
		{ "ipfix-udp", run_script, setup_4, teardown_env, NULL },
		{ "ipfix-tcp", run_script, setup_5, teardown_env, NULL },
		{ "ipfix-tls", run_script, setup_6, teardown_env, NULL },
		{ "kafka", run_script, setup_7, teardown_env, NULL },
		{ "store", run_script, setup_8, teardown_env, NULL },
		{ "postgresql", run_script, setup_9, teardown_env, NULL },
		cmocka_unit_test(test_text_skips_when_stuck),
	};

	/* Writes past RLIMIT_FSIZE fail with EFBIG instead of killing. */
	signal(SIGXFSZ, SIG_IGN);
	/* CONTRACT_ONLY=name runs that output's script alone. */
	if (getenv("CONTRACT_ONLY"))
		cmocka_set_test_filter(getenv("CONTRACT_ONLY"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
