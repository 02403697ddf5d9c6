/* ipfix: encodes flow records as IPFIX messages (RFC 7011, information
 * elements from RFC 7012 and the IANA registry, reverse elements from
 * RFC 5103). Pure: the caller gives the buffer, the time and the
 * sequence number; nothing here does I/O or reads a clock. A message is
 * built in place and sets switch as records with other templates come. */
#ifndef CTD_IPFIX_H
#define CTD_IPFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_record;

#define CTD_IPFIX_PORT 4739
#define CTD_IPFIX_HDR 16
#define CTD_IPFIX_MSG_MAX 65535
/* RFC 5103's enterprise number for reverse information elements. */
#define CTD_IPFIX_PEN_REVERSE 29305u

/* How a flow's two directions are exported. */
enum ctd_ipfix_shape {
	CTD_IPFIX_BIFLOW,     /* one record, reverse counters (RFC 5103) */
	CTD_IPFIX_UNIFLOW,    /* two records, one per direction */
	CTD_IPFIX_INITIATOR,  /* one record, initiator/responder counters */
	CTD_IPFIX_SHAPE__COUNT
};

/* Data template ids: by address family and whether the flow is NATed. */
enum {
	CTD_IPFIX_TID_V4 = 256,
	CTD_IPFIX_TID_V4_NAT,
	CTD_IPFIX_TID_V6,
	CTD_IPFIX_TID_V6_NAT,
	CTD_IPFIX_TID_STATS,  /* options: the exporter's reliability counters */
	CTD_IPFIX_TID__END
};

/* natEvent in NAT records: RFC 8158's NAT44 session create/delete (4/5),
 * the older create/delete (1/2), or none: pmacct takes a record with
 * natEvent for a NAT event and drops its counters. */
enum ctd_ipfix_nat_event {
	CTD_IPFIX_NATEV_RFC8158,
	CTD_IPFIX_NATEV_LEGACY,
	CTD_IPFIX_NATEV_NONE,
};

struct ctd_ipfix_cfg {
	uint32_t domain;        /* observation domain id (ctd's namespace) */
	uint32_t pen;           /* enterprise number for mark and id; 0: none */
	uint8_t shape;          /* enum ctd_ipfix_shape */
	uint8_t nat_event;      /* enum ctd_ipfix_nat_event */
	bool labels;            /* record-labels: ctLabels too (under pen) */
};

/* The exporting process's reliability statistics (RFC 7011 4.3). */
struct ctd_ipfix_stats {
	uint32_t process_id;
	uint64_t messages;      /* exportedMessageTotalCount */
	uint64_t records;       /* exportedFlowRecordTotalCount */
	uint64_t octets;        /* exportedOctetTotalCount */
	uint64_t not_sent;      /* notSentFlowTotalCount */
};

struct ctd_ipfix_msg {
	uint8_t *buf;
	size_t cap;             /* at most CTD_IPFIX_MSG_MAX */
	size_t len;
	size_t set_off;         /* the open set's header, 0 when none */
	uint16_t set_id;
	uint32_t records;       /* data records in the message */
	uint32_t flow_records;  /* ... of them flow records */
};

/* Starts a message in buf (cap at least CTD_IPFIX_HDR). */
void ctd_ipfix_msg_begin(struct ctd_ipfix_msg *m, uint8_t *buf, size_t cap);
/* Every template: the four data templates and the options template.
 * False when they do not fit (the message is left as it was). */
bool ctd_ipfix_msg_add_templates(struct ctd_ipfix_msg *m,
				 const struct ctd_ipfix_cfg *cfg);
bool ctd_ipfix_msg_add_stats(struct ctd_ipfix_msg *m,
			     const struct ctd_ipfix_stats *st);
/* The record's data records (two for the uniflow shape). Returns how
 * many, or 0 when they do not fit. */
unsigned ctd_ipfix_msg_add_record(struct ctd_ipfix_msg *m,
				  const struct ctd_ipfix_cfg *cfg,
				  const struct ctd_record *rec);
/* Closes the open set and writes the header. Returns the length. */
size_t ctd_ipfix_msg_finish(struct ctd_ipfix_msg *m, uint32_t export_time,
			    uint32_t seq, uint32_t domain);

/* Bytes one record takes in a data set (all data records of a shape). */
size_t ctd_ipfix_record_size(const struct ctd_ipfix_cfg *cfg, uint16_t tid);
/* The observation domain of a record of namespace nsid: each namespace
 * is a domain of its own (RFC 7011 templates and sequence numbers are
 * per domain), cfg->domain + nsid + 1, modulo 2^32; ctd's own namespace
 * (CTD_NSID_SELF) is cfg->domain. */
uint32_t ctd_ipfix_domain(const struct ctd_ipfix_cfg *cfg, int32_t nsid);
/* The observation domain a message header names. */
uint32_t ctd_ipfix_msg_domain(const uint8_t *msg);
/* For messages already built: rewrites the export time and sequence
 * number in a message's header, and counts its flow data records. */
void ctd_ipfix_msg_restamp(uint8_t *msg, uint32_t export_time, uint32_t seq);
uint32_t ctd_ipfix_msg_count(const struct ctd_ipfix_cfg *cfg,
			     const uint8_t *msg, size_t len,
			     uint32_t *ret_flow_records);
/* The length a message header says, 0 when it is not an IPFIX header. */
size_t ctd_ipfix_msg_len(const uint8_t *msg, size_t avail);

enum ctd_ipfix_shape ctd_ipfix_shape_parse(const char *s, bool *ret_ok);
const char *ctd_ipfix_shape_name(enum ctd_ipfix_shape shape);

/* A collector, "udp:HOST:PORT", "tcp:HOST:PORT" or "tls:HOST:PORT"
 * (TCP with TLS: *ret_tcp set too; an IPv6 host in brackets): split in
 * place into its parts; NULL when good, else what is wrong. */
const char *ctd_ipfix_split_target(char *s, bool *ret_tcp, char **ret_host,
				   char **ret_port);
/* The same check without changing target. */
const char *ctd_ipfix_check_target(const char *target);
/* Whether a good target is a TLS one. */
bool ctd_ipfix_target_tls(const char *target);

#endif
