/* out_kafka: publishes records to a Kafka topic through librdkafka, one
 * JSON record per message, at least once. Owns the producer, the pipe its
 * main queue signals through, the loop watchers and the records produced
 * but not yet acknowledged: a record counts as delivered to the output
 * when librdkafka took it, stays held here until its delivery report says
 * the brokers persisted it, is produced again when the report says it
 * failed, and goes to the spool (the `unsent` op) when ctd stops first. */
#ifndef CTD_OUT_KAFKA_H
#define CTD_OUT_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

struct ctd_output;
struct ctd_output_desc;
struct ctd_setting_group;
struct ev_loop;

/* Records produced and not yet acknowledged, at most: their copies
 * (192 bytes each) must fit one spool entry at shutdown. */
#define CTD_OUT_KAFKA_INFLIGHT 8192

struct ctd_out_kafka_cfg {
	const char *brokers;       /* bootstrap.servers */
	const char *topic;
	bool key_tuple;            /* key = original tuple; else no key */
	/* "NAME=VALUE" lines for librdkafka, applied after ctd's own, so
	 * they can change them (TLS, SASL, compression); may be NULL. */
	const char *options;
	size_t inflight;           /* 0: CTD_OUT_KAFKA_INFLIGHT */
};

/* Creates the producer; it connects in librdkafka's threads and keeps
 * reconnecting. Logs why it cannot, once, and returns -errno. */
int ctd_out_kafka_new(struct ev_loop *loop, const struct ctd_out_kafka_cfg *cfg,
		      struct ctd_output **ret);

/* The table's row (outputs.h) and its settings, `kafka` and kafka-*. */
extern const struct ctd_output_desc ctd_out_kafka_desc;
extern const struct ctd_setting_group ctd_out_kafka_settings;

#endif
