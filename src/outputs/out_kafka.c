/* out_kafka: records to a Kafka topic, at least once.
 *
 * librdkafka does the protocol, batching, broker discovery and its
 * idempotent producer (acks=all, no re-ordering, no duplicates from its
 * own retries while the producer session lives). What it does not do is
 * keep a message past message.timeout.ms or past the process: a message
 * that times out is dropped with an error report, and whatever is queued
 * at exit is gone. So every record produced stays here, in one of a
 * bounded set of slots, until its delivery report says the brokers
 * persisted it, and only then is it settled (output.h): until then
 * delivery keeps it in its write-ahead log, so neither a shutdown nor a
 * crash loses it. A report with an error puts it on the re-produce ring.
 * (submit_raw still takes the raw entries of older spools.) Records
 * re-produced may already be in the topic: they are counted in resent,
 * and each message carries a de-duplication header (kafkamsg.c).
 *
 * librdkafka runs its own threads; ctd's side never blocks: the main
 * queue (delivery reports, statistics, errors and librdkafka's log
 * lines) writes a byte to a non-blocking pipe when it gets work, the
 * loop's ev_io drains it with rd_kafka_poll(rk, 0), so every callback
 * runs on the loop. No rd_kafka_flush: deliver.c's shutdown runs the
 * loop until nothing is held or --shutdown-timeout passed, which is the
 * bounded flush. A full local queue is CTD_OUT_AGAIN, and the output
 * calls ready once reports freed room. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/config/config.h"
#include "ctd/flows/record.h"
#include "ctd/format/jsonfmt.h"
#include "ctd/format/kafkamsg.h"
#include "ctd/kernel/connlabel.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/out_kafka.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"

#define POLL_MAX 64               /* rd_kafka_poll rounds per wakeup */
#define LOG_WINDOW_S 10.0         /* librdkafka's lines: at most ... */
#define LOG_LINES 10              /* ... this many per window */
#define STATS_INTERVAL_MS "5000"

enum slot_state { FREE, QUEUED, FAILED_REPORT };

struct slot {
	struct ctd_record rec;
	uint64_t seq;                 /* submit order; NO_SEQ: not delivery's */
	uint32_t gen;                 /* bumped when freed: stale reports */
	uint8_t state;
};

#define NO_SEQ UINT64_MAX
/* kafka-option lines kept at most, and their bytes ("NAME=VALUE\n"
 * each, NUL after the last). */
#define KAFKA_OPTIONS 32
#define KAFKA_OPTIONS_BYTES 8192

/* What Kafka counts beside delivery (ctd -s, metrics). */
struct kafka_counters {
	uint64_t queue_full;      /* records refused: the producer's local
	                           * queue was full */
	uint64_t report_timeouts; /* delivery reports that timed out
	                           * (message.timeout.ms); produced again */
	uint64_t report_errors;   /* ... other failures; produced again */
	uint64_t brokers;         /* gauge: brokers known */
	uint64_t brokers_up;      /* gauge: ... connected */
	uint64_t queue;           /* gauge: messages in librdkafka's queues */
	uint64_t rtt_us;          /* gauge: slowest broker's average round
	                           * trip (librdkafka's statistics) */
};

#define KC(name, gauge, prom, help) \
	{ #name, offsetof(struct kafka_counters, name), gauge, prom, help, false }
/* A gauge of the brokers, which every shard's producer sees alike. */
#define KS(name, prom, help) \
	{ #name, offsetof(struct kafka_counters, name), true, prom, help, true }

static const struct ctd_counter_def kafka_counter_rows[] = {
	KC(queue_full, false, "queue_full_total", "Kafka: records refused because librdkafka's queue was full."),
	KC(report_timeouts, false, "report_timeouts_total", "Kafka: delivery reports that timed out (record produced again)."),
	KC(report_errors, false, "report_errors_total", "Kafka: delivery reports with another error (record produced again)."),
	KS(brokers, "kafka_brokers", "Kafka brokers known."),
	KS(brokers_up, "kafka_brokers_up", "Kafka brokers connected."),
	KC(queue, true, "kafka_queue", "Messages in librdkafka's queue."),
	KS(rtt_us, "kafka_rtt_seconds", "Kafka: the slowest broker's average round-trip time."),
};

static const struct ctd_counter_defs kafka_counters = {
	kafka_counter_rows,
	sizeof(kafka_counter_rows) / sizeof(kafka_counter_rows[0]),
	CTD_SHOWS_EVENTS | CTD_SHOWS_ACKS | CTD_SHOWS_GIVE_UP,
};

struct out_kafka {
	struct ctd_output base;
	struct kafka_counters own;
	struct ev_loop *loop;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	rd_kafka_queue_t *mainq;
	int pipe[2];
	ev_io io;
	ev_timer tick;
	bool key_tuple;
	bool refusing;                /* said AGAIN: call ready when room */
	bool fatal_logged;
	struct slot *slots;
	uint32_t *free_idx;           /* stack of free slots */
	uint32_t *ring;               /* slots to produce again, in order */
	size_t cap, nfree, ring_head, ring_len;
	/* Reports come in any order, delivery counts settled records in
	 * submit order: done[seq % cap] marks persisted ones, low is the
	 * first not yet, and seqs in flight never span more than cap. */
	uint8_t *done;
	uint64_t next_seq, low;
	double log_window;
	unsigned log_lines;
	struct ctd_connlabel *names;  /* record-labels; NULL: off */
	char json[CTD_JSON_MAX];
};

_Static_assert(sizeof(uintptr_t) >= 8, "a slot's opaque holds index and gen");

static struct out_kafka *to_kafka(struct ctd_output *out)
{
	return (struct out_kafka *)out;
}

static size_t held(const struct out_kafka *k)
{
	return k->cap - k->nfree;
}

static void *slot_opaque(const struct out_kafka *k, uint32_t i)
{
	return (void *)(((uintptr_t)k->slots[i].gen << 32) | (i + 1u));
}

/* The slot a delivery report is for, or NULL when it was freed since
 * (spooled at shutdown: the report of a purge comes after). */
static struct slot *opaque_slot(struct out_kafka *k, void *op)
{
	uintptr_t v = (uintptr_t)op;
	uint32_t i = (uint32_t)(v & 0xffffffffu) - 1u;

	if (i >= k->cap || k->slots[i].gen != (uint32_t)(v >> 32) ||
	    k->slots[i].state != QUEUED)
		return NULL;
	return &k->slots[i];
}

static void release(struct out_kafka *k, uint32_t i)
{
	k->slots[i].state = FREE;
	k->slots[i].gen++;
	k->free_idx[k->nfree++] = i;
	k->base.stats.unacked = held(k);
}

/* Slot i's record is final (persisted, or given up): settled counts it
 * once every earlier one is. */
static void settle_slot(struct out_kafka *k, uint32_t i)
{
	if (k->slots[i].seq != NO_SEQ)
		k->done[k->slots[i].seq % k->cap] = 1;
	release(k, i);
}

static uint32_t claim(struct out_kafka *k, const struct ctd_record *rec,
		      uint64_t seq)
{
	uint32_t i = k->free_idx[--k->nfree];

	k->slots[i].rec = *rec;
	k->slots[i].seq = seq;
	k->slots[i].state = FAILED_REPORT;
	k->base.stats.unacked = held(k);
	return i;
}

static rd_kafka_headers_t *dedup_header(const struct ctd_record *rec)
{
	char dedup[CTD_KAFKAMSG_KEY_MAX + 64];
	size_t n = ctd_kafkamsg_dedup(rec, dedup, sizeof(dedup));
	rd_kafka_headers_t *h = rd_kafka_headers_new(1);

	if (h && n)
		rd_kafka_header_add(h, CTD_KAFKAMSG_DEDUP_HEADER, -1, dedup,
				    (ssize_t)n);
	return h;
}

/* Hands slot i to librdkafka (it copies). */
static rd_kafka_resp_err_t produce(struct out_kafka *k, uint32_t i)
{
	const struct ctd_record *rec = &k->slots[i].rec;
	char key[CTD_KAFKAMSG_KEY_MAX];
	size_t klen = k->key_tuple ? ctd_kafkamsg_key(rec, key, sizeof(key)) : 0;
	size_t len = ctd_jsonfmt_record_labels(rec, k->names, k->json,
					       sizeof(k->json));
	rd_kafka_headers_t *h;
	rd_kafka_resp_err_t err;

	if (!len)
		return RD_KAFKA_RESP_ERR__INVALID_ARG;
	h = dedup_header(rec);
	if (!h)
		return RD_KAFKA_RESP_ERR__QUEUE_FULL;
	/* The file's line without its newline: one record per message. */
	err = rd_kafka_producev(k->rk, RD_KAFKA_V_RKT(k->rkt),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				RD_KAFKA_V_VALUE(k->json, len - 1),
				RD_KAFKA_V_KEY(klen ? key : NULL, klen),
				RD_KAFKA_V_HEADERS(h),
				RD_KAFKA_V_OPAQUE(slot_opaque(k, i)),
				RD_KAFKA_V_END);
	if (err) {
		rd_kafka_headers_destroy(h);
		return err;
	}
	k->slots[i].state = QUEUED;
	k->base.stats.bytes += len - 1;
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Errors a later try can get past; the others fail the record. */
static bool transient(rd_kafka_resp_err_t err)
{
	return err != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE &&
	       err != RD_KAFKA_RESP_ERR__INVALID_ARG;
}

static void ring_push(struct out_kafka *k, uint32_t i)
{
	k->ring[(k->ring_head + k->ring_len++) % k->cap] = i;
}

/* Produces the ring's records again, in order, while librdkafka takes
 * them. Each may be in the topic already: resent. */
static void pump(struct out_kafka *k)
{
	while (k->ring_len) {
		uint32_t i = k->ring[k->ring_head];
		rd_kafka_resp_err_t err = produce(k, i);

		if (err && transient(err)) {
			if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				k->own.queue_full++;
			return;
		}
		k->ring_head = (k->ring_head + 1) % k->cap;
		k->ring_len--;
		if (err) {
			k->base.stats.failed_output++;
			k->base.given_up++;
			settle_slot(k, i);
		} else {
			k->base.stats.resent++;
		}
	}
}

static void maybe_ready(struct out_kafka *k)
{
	if (!k->refusing || !k->nfree || k->ring_len)
		return;
	k->refusing = false;
	ctd_output_ready(&k->base);
}

static void on_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *arg)
{
	struct out_kafka *k = arg;
	struct slot *s = opaque_slot(k, m->_private);

	(void)rk;
	if (!s)
		return;
	if (!m->err &&
	    rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_PERSISTED) {
		k->base.stats.acked++;
		settle_slot(k, (uint32_t)(s - k->slots));
		return;
	}
	if (m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
		k->own.report_timeouts++;
	else
		k->own.report_errors++;
	s->state = FAILED_REPORT;
	ring_push(k, (uint32_t)(s - k->slots));
}

static void on_stats_summary(struct out_kafka *k, const char *json)
{
	struct ctd_kafka_summary s;

	if (ctd_kafkamsg_summary(json, &s) < 0)
		return;
	k->own.brokers = s.brokers;
	k->own.brokers_up = s.brokers_up;
	k->own.queue = s.queue_msgs;
	k->own.rtt_us = s.rtt_us;
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *arg)
{
	(void)rk;
	(void)len;
	on_stats_summary(arg, json);
	return 0;    /* librdkafka frees json */
}

/* librdkafka repeats a broker's connection errors while it is down:
 * LOG_LINES per window, the rest only counted by librdkafka. */
static bool log_due(struct out_kafka *k)
{
	double now = ev_now(k->loop);

	if (now - k->log_window >= LOG_WINDOW_S) {
		k->log_window = now;
		k->log_lines = 0;
	}
	return k->log_lines++ < LOG_LINES;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
		   const char *buf)
{
	struct out_kafka *k = rd_kafka_opaque(rk);
	enum ctd_log_level l = level <= 3 ? CTD_LOG_ERR :
			       level == 4 ? CTD_LOG_WARN :
			       level <= 6 ? CTD_LOG_INFO : CTD_LOG_DEBUG;

	if (l <= CTD_LOG_WARN && !log_due(k))
		return;
	ctd_log(l, "kafka: %s: %s", fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *arg)
{
	struct out_kafka *k = arg;
	char why[512];

	if (err == RD_KAFKA_RESP_ERR__FATAL && !k->fatal_logged) {
		rd_kafka_fatal_error(rk, why, sizeof(why));
		log_err("kafka: the producer failed for good (%s): records wait "
			"in the dying list and spool; restart ctd", why);
		k->fatal_logged = true;
		return;
	}
	if (log_due(k))
		log_warn("kafka: %s", reason);
}

/* The main queue's work, all on this thread. */
static void serve(struct out_kafka *k)
{
	char drain[256];

	while (read(k->pipe[0], drain, sizeof(drain)) > 0)
		;
	for (int i = 0; i < POLL_MAX && rd_kafka_poll(k->rk, 0) > 0; i++)
		;
	pump(k);
	maybe_ready(k);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	serve(w->data);
}

/* A safety net: the pipe is written only when the queue was empty. */
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	serve(w->data);
}

static enum ctd_out_status kafka_submit(struct ctd_output *out,
					const struct ctd_record *rec)
{
	struct out_kafka *k = to_kafka(out);
	rd_kafka_resp_err_t err;
	uint32_t i;

	if (!k->nfree || k->ring_len || k->next_seq - k->low >= k->cap) {
		k->refusing = true;
		return CTD_OUT_AGAIN;
	}
	i = claim(k, rec, k->next_seq);
	err = produce(k, i);
	if (!err) {
		k->next_seq++;
		return CTD_OUT_DELIVERED;
	}
	release(k, i);
	if (!transient(err))
		return CTD_OUT_FAILED;
	if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		k->own.queue_full++;
	k->refusing = true;
	return CTD_OUT_AGAIN;
}

/* Records the previous ctd spooled unacknowledged: held again and
 * produced from the ring, as possible duplicates. */
static enum ctd_out_status kafka_submit_raw(struct ctd_output *out,
					    const void *data, size_t len)
{
	struct out_kafka *k = to_kafka(out);
	const struct ctd_record *rec = data;
	size_t n = len / sizeof(*rec);

	if (len % sizeof(*rec) || n > k->cap)
		return CTD_OUT_FAILED;
	if (n > k->nfree) {
		k->refusing = true;
		return CTD_OUT_AGAIN;
	}
	for (size_t j = 0; j < n; j++) {
		struct ctd_record r;

		memcpy(&r, &rec[j], sizeof(r));
		ring_push(k, claim(k, &r, NO_SEQ));
	}
	pump(k);
	return CTD_OUT_DELIVERED;
}

static void kafka_flush(struct ctd_output *out)
{
	struct out_kafka *k = to_kafka(out);

	if (k->ring_len)
		pump(k);
}

static uint64_t kafka_settled(struct ctd_output *out)
{
	struct out_kafka *k = to_kafka(out);

	while (k->low < k->next_seq && k->done[k->low % k->cap]) {
		k->done[k->low % k->cap] = 0;
		k->low++;
	}
	return k->low;
}

/* Shutdown: librdkafka's copies are purged, nothing held is produced
 * again (delivery's write-ahead log has the records, for the spool). */
static void kafka_abandon(struct ctd_output *out)
{
	struct out_kafka *k = to_kafka(out);

	rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE |
		       RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
	k->ring_len = 0;
	for (uint32_t i = 0; i < k->cap; i++)
		if (k->slots[i].state != FREE)
			release(k, i);
	memset(k->done, 0, k->cap);
	k->low = k->next_seq;
}

static void kafka_free(struct ctd_output *out)
{
	struct out_kafka *k = to_kafka(out);

	if (!k)
		return;
	if (k->loop) {
		ev_io_stop(k->loop, &k->io);
		ev_timer_stop(k->loop, &k->tick);
	}
	if (k->rk) {
		/* What is still queued was spooled (unsent) or is lost with
		 * the process anyway: no waiting for brokers here. */
		rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE |
			       RD_KAFKA_PURGE_F_INFLIGHT);
		if (k->mainq)
			rd_kafka_queue_destroy(k->mainq);
		if (k->rkt)
			rd_kafka_topic_destroy(k->rkt);
		rd_kafka_destroy(k->rk);
	}
	for (int i = 0; i < 2; i++)
		if (k->pipe[i] >= 0)
			close(k->pipe[i]);
	free(k->slots);
	free(k->free_idx);
	free(k->ring);
	free(k->done);
	ctd_connlabel_free(k->names);
	free(k);
}

/* record-labels and connlabel.conf, as the file output takes them;
 * messages produced again after a failure get the new rendering. */
static int kafka_reload(struct ctd_output *out, const struct ctd_config *next)
{
	struct out_kafka *k = to_kafka(out);

	ctd_connlabel_free(k->names);
	k->names = ctd_connlabel_open(next->record_labels);
	return 0;
}

static const struct ctd_output_ops kafka_ops = {
	.submit = kafka_submit,
	.submit_raw = kafka_submit_raw,
	.flush = kafka_flush,
	.settled = kafka_settled,
	.abandon = kafka_abandon,
	.free = kafka_free,
	.reload = kafka_reload,
};

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char err[512];

	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) ==
	    RD_KAFKA_CONF_OK)
		return 0;
	log_err("kafka: %s=%s: %s", name, value, err);
	return -EINVAL;
}

/* ctd's settings: delivery means persisted on every in-sync replica,
 * never re-ordered or doubled by librdkafka's own retries; messages wait
 * long (ctd re-produces those that time out anyway) and a broker back
 * is found soon. */
static const char *const defaults[][2] = {
	{ "acks", "all" },
	{ "enable.idempotence", "true" },
	{ "message.timeout.ms", "300000" },
	{ "reconnect.backoff.ms", "100" },
	{ "reconnect.backoff.max.ms", "2000" },
	{ "statistics.interval.ms", STATS_INTERVAL_MS },
	{ "log.queue", "true" },
};

/* "NAME=VALUE" lines, each applied in turn. */
static int conf_options(rd_kafka_conf_t *conf, const char *options)
{
	char line[CTD_CONFIG_PATH_MAX];

	while (options && *options) {
		size_t n = strcspn(options, "\n");
		char *eq;

		if (n >= sizeof(line))
			return -EINVAL;
		memcpy(line, options, n);
		line[n] = '\0';
		options += n + (options[n] == '\n');
		eq = strchr(line, '=');
		if (!eq)
			return -EINVAL;
		*eq = '\0';
		if (conf_set(conf, line, eq + 1) < 0)
			return -EINVAL;
	}
	return 0;
}

static rd_kafka_conf_t *make_conf(struct out_kafka *k,
				  const struct ctd_out_kafka_cfg *cfg)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int r = conf_set(conf, "bootstrap.servers", cfg->brokers);

	for (size_t i = 0; r == 0 && i < sizeof(defaults) / sizeof(defaults[0]);
	     i++)
		r = conf_set(conf, defaults[i][0], defaults[i][1]);
	if (r == 0)
		r = conf_options(conf, cfg->options);
	if (r < 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_dr_msg_cb(conf, on_report);
	rd_kafka_conf_set_stats_cb(conf, on_stats);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_log_cb(conf, on_log);
	return conf;
}

static int alloc_slots(struct out_kafka *k)
{
	k->slots = calloc(k->cap, sizeof(*k->slots));
	k->free_idx = calloc(k->cap, sizeof(*k->free_idx));
	k->ring = calloc(k->cap, sizeof(*k->ring));
	k->done = calloc(k->cap, 1);
	if (!k->slots || !k->free_idx || !k->ring || !k->done)
		return -ENOMEM;
	for (size_t i = 0; i < k->cap; i++)
		k->free_idx[i] = (uint32_t)(k->cap - 1 - i);
	k->nfree = k->cap;
	return 0;
}

/* The main queue (reports, statistics, errors, log lines) signals the
 * pipe; the loop serves it. */
static int attach(struct out_kafka *k)
{
	if (pipe2(k->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	k->mainq = rd_kafka_queue_get_main(k->rk);
	if (!k->mainq)
		return -ENOMEM;
	rd_kafka_set_log_queue(k->rk, NULL);
	rd_kafka_queue_io_event_enable(k->mainq, k->pipe[1], "1", 1);
	ev_io_init(&k->io, on_io, k->pipe[0], EV_READ);
	k->io.data = k;
	ev_io_start(k->loop, &k->io);
	ev_timer_init(&k->tick, on_tick, 1.0, 1.0);
	k->tick.data = k;
	ev_timer_start(k->loop, &k->tick);
	return 0;
}

static int setup(struct out_kafka *k, const struct ctd_out_kafka_cfg *cfg)
{
	rd_kafka_conf_t *conf;
	char err[512];
	int r = alloc_slots(k);

	if (r < 0)
		return r;
	conf = make_conf(k, cfg);
	if (!conf)
		return -EINVAL;
	k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!k->rk) {
		rd_kafka_conf_destroy(conf);
		log_err("kafka: %s", err);
		return -EINVAL;
	}
	k->rkt = rd_kafka_topic_new(k->rk, cfg->topic, NULL);
	if (!k->rkt) {
		log_err("kafka: topic %s: %s", cfg->topic,
			rd_kafka_err2str(rd_kafka_last_error()));
		return -EINVAL;
	}
	return attach(k);
}

int ctd_out_kafka_new(struct ev_loop *loop, const struct ctd_out_kafka_cfg *cfg,
		      struct ctd_output **ret)
{
	struct out_kafka *k = calloc(1, sizeof(*k));
	int r;

	if (!k)
		return -ENOMEM;
	k->base.ops = &kafka_ops;
	k->base.name = ctd_out_kafka_desc.name;
	k->base.counters = &kafka_counters;
	k->base.own = &k->own;
	k->pipe[0] = k->pipe[1] = -1;
	k->loop = loop;
	k->key_tuple = cfg->key_tuple;
	k->cap = cfg->inflight ? cfg->inflight : CTD_OUT_KAFKA_INFLIGHT;
	r = setup(k, cfg);
	if (r < 0) {
		kafka_free(&k->base);
		return r;
	}
	*ret = &k->base;
	return 0;
}

/* The kafka-* settings (ctd.conf(5)), its part of struct ctd_config. */
struct kafka_settings {
	char brokers[CTD_SETTING_TEXT_MAX];  /* bootstrap servers, "" none */
	char topic[CTD_SETTING_TEXT_MAX];
	/* Every kafka-option as "NAME=VALUE\n", in the order given. */
	char options[KAFKA_OPTIONS_BYTES];
	unsigned key;                        /* 0 the original tuple, 1 none */
	unsigned events;
};

static const char *const key_words[] = { "tuple", "none", NULL };

#define KF(field) offsetof(struct kafka_settings, field)

static const struct ctd_setting kafka_rows[] = {
	CTD_SETTING("kafka", CTD_SET_PATH, KF(brokers), 0, 0, true, false),
	CTD_SETTING("kafka-topic", CTD_SET_PATH, KF(topic), 0, 0, false, false,
		    .def = "ctd-flows"),
	CTD_SETTING("kafka-key", CTD_SET_CHOICE, KF(key), 0, 0, false, false,
		    .words = key_words),
	CTD_SETTING("kafka-option", CTD_SET_OPTIONS, KF(options),
		    KAFKA_OPTIONS, KAFKA_OPTIONS_BYTES, true, false),
	CTD_SETTING("kafka-events", CTD_SET_EVENTS, KF(events), 0, 0, false,
		    false, .def = "destroy"),
};

const struct ctd_setting_group ctd_out_kafka_settings = {
	.name = "kafka",
	.rows = kafka_rows,
	.n_rows = sizeof(kafka_rows) / sizeof(kafka_rows[0]),
	.size = sizeof(struct kafka_settings),
	.off_key = "kafka", .off_value = "none",
	.help =
"      --kafka HOST:PORT,...  also publish records to Kafka, at least once\n"
"                           (--kafka-topic, --kafka-key tuple|none,\n"
"                           --kafka-option NAME=VALUE, --kafka-events)\n",
};

static const struct kafka_settings *settings_of(const struct ctd_config *cfg)
{
	return ctd_config_group_get(cfg, &ctd_out_kafka_settings);
}

static bool kafka_enabled(const struct ctd_config *cfg)
{
	return *settings_of(cfg)->brokers;
}

static int kafka_create(struct ev_loop *loop, const struct ctd_config *cfg,
			const struct ctd_owner *owner, struct ctd_output **ret)
{
	const struct kafka_settings *set = settings_of(cfg);
	struct ctd_out_kafka_cfg kc = {
		.brokers = set->brokers,
		.topic = set->topic,
		.key_tuple = set->key == 0,
		.options = set->options,
	};
	int r = ctd_out_kafka_new(loop, &kc, ret);

	(void)owner;    /* no files */
	if (r < 0) {
		log_err("cannot publish to Kafka %s: %s", set->brokers,
			strerror(-r));
		return r;
	}
	kafka_reload(*ret, cfg);
	log_info("publishing records to Kafka topic %s at %s", set->topic,
		 set->brokers);
	return 0;
}

const struct ctd_output_desc ctd_out_kafka_desc = {
	.name = "kafka",
	.settings = &ctd_out_kafka_settings,
	.counters = &kafka_counters,
	.enabled = kafka_enabled,
	.create = kafka_create,
	.events_setting = KF(events),
};
