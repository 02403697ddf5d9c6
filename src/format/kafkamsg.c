/* kafkamsg: message key, de-duplication key and the statistics summary
 * of the Kafka output.
 *
 * Keys are text, so any consumer (kcat, a stream processor's SQL) can
 * split them without knowing ctd's structs, and are built from the
 * record alone: a record re-produced after a failure, or replayed from
 * the spool by the next ctd, gets exactly the same key and header.
 *
 * The statistics JSON is librdkafka's documented layout (STATISTICS.md):
 * a top-level "msg_cnt" and one object per broker under "brokers" with
 * "nodeid" (-1 for its internal one), "state" and "rtt" {"avg": µs}.
 * Only those fields are read, by scanning for their names in the broker
 * objects, which is all ctd -s needs and keeps a JSON parser out. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctd/flows/record.h"
#include "ctd/format/kafkamsg.h"

static size_t fit(int n, size_t cap)
{
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t ctd_kafkamsg_key(const struct ctd_record *rec, char *buf, size_t cap)
{
	const struct ctd_tuple *t = &rec->tuple[CTD_DIR_ORIG];
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	int family = rec->family == AF_INET6 ? AF_INET6 : AF_INET;

	if (!inet_ntop(family, t->src, src, sizeof(src)) ||
	    !inet_ntop(family, t->dst, dst, sizeof(dst)))
		return 0;
	return fit(snprintf(buf, cap, "%u %s %u %s %u %u", rec->proto, src,
			    t->sport, dst, t->dport, rec->zone), cap);
}

size_t ctd_kafkamsg_dedup(const struct ctd_record *rec, char *buf, size_t cap)
{
	char key[CTD_KAFKAMSG_KEY_MAX], kind[16];

	if (!ctd_kafkamsg_key(rec, key, sizeof(key)))
		return 0;
	if (rec->events)
		snprintf(kind, sizeof(kind), "ev%u", rec->events);
	else
		snprintf(kind, sizeof(kind), "%s",
			 ctd_end_reason_name((enum ctd_end_reason)rec->end_reason));
	return fit(snprintf(buf, cap, "%" PRIu32 " %s %" PRIu64 " %s %" PRIu64,
			    rec->id, key, rec->start_ns, kind, rec->end_ns),
		   cap);
}

/* The unsigned number after "name": at or after p, before end. */
static int number_after(const char *p, const char *end, const char *name,
			long long *ret)
{
	const char *at = strstr(p, name);
	char *stop;

	if (!at || (end && at >= end))
		return -EINVAL;
	at += strlen(name);
	*ret = strtoll(at, &stop, 10);
	return stop == at ? -EINVAL : 0;
}

/* One broker object starting at p (its "nodeid"), ending before next. */
static void add_broker(const char *p, const char *next,
		       struct ctd_kafka_summary *s)
{
	const char *state = strstr(p, "\"state\":\"");
	long long nodeid, rtt;

	if (number_after(p, next, "\"nodeid\":", &nodeid) < 0 || nodeid < 0)
		return;
	s->brokers++;
	if (!state || (next && state >= next) ||
	    strncmp(state + 9, "UP\"", 3) != 0)
		return;
	s->brokers_up++;
	p = strstr(p, "\"rtt\":");
	if (p && (!next || p < next) &&
	    number_after(p, next, "\"avg\":", &rtt) == 0 && rtt > 0 &&
	    (uint64_t)rtt > s->rtt_us)
		s->rtt_us = (uint64_t)rtt;
}

int ctd_kafkamsg_summary(const char *json, struct ctd_kafka_summary *ret)
{
	const char *brokers = strstr(json, "\"brokers\":{"), *p, *next;
	long long cnt;

	memset(ret, 0, sizeof(*ret));
	if (!brokers || number_after(json, brokers, "\"msg_cnt\":", &cnt) < 0 ||
	    cnt < 0)
		return -EINVAL;
	ret->queue_msgs = (uint64_t)cnt;
	for (p = strstr(brokers, "\"nodeid\":"); p; p = next) {
		next = strstr(p + 1, "\"nodeid\":");
		add_broker(p, next, ret);
	}
	return 0;
}
