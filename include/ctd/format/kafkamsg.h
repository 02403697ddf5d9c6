/* kafkamsg: the parts of a Kafka message that are not the JSON record —
 * the key that keeps one flow's records on one partition, the
 * de-duplication key a consumer drops at-least-once's duplicates by —
 * and the summary of librdkafka's statistics that ctd -s shows. Pure:
 * writes into the caller's buffers, never allocates. */
#ifndef CTD_KAFKAMSG_H
#define CTD_KAFKAMSG_H

#include <stddef.h>
#include <stdint.h>

struct ctd_record;

/* Longest key or de-duplication key, NUL included. */
#define CTD_KAFKAMSG_KEY_MAX 160
/* The header that carries the de-duplication key. */
#define CTD_KAFKAMSG_DEDUP_HEADER "ctd-dedup"

/* The original tuple, "PROTO SRC SPORT DST DPORT ZONE" with numbers and
 * plain addresses ("17 10.0.0.1 40001 10.0.0.2 53 0"). Returns the
 * length (no NUL counted), or 0 when cap is too small. */
size_t ctd_kafkamsg_key(const struct ctd_record *rec, char *buf, size_t cap);

/* "ID KEY START_NS KIND END_NS": one record of one flow. The end and
 * the kind (end reason, or "ev" plus event bits) are there because a
 * long flow's interim records and its event records share id, tuple
 * and start, and must not read as duplicates of each other. */
size_t ctd_kafkamsg_dedup(const struct ctd_record *rec, char *buf, size_t cap);

/* librdkafka's statistics (its JSON, statistics.interval.ms), reduced. */
struct ctd_kafka_summary {
	uint64_t brokers;       /* known brokers (the bootstrap ones and the
	                         * cluster's), not librdkafka's internal one */
	uint64_t brokers_up;    /* ... with a connection up */
	uint64_t queue_msgs;    /* messages in librdkafka's queues */
	uint64_t rtt_us;        /* slowest average round trip of a broker up */
};

/* Returns 0, or -EINVAL when json is not librdkafka's statistics. */
int ctd_kafkamsg_summary(const char *json, struct ctd_kafka_summary *ret);

#endif
