/* out_ipfix: exports records to an IPFIX collector over UDP, TCP or TLS
 * (tlslink.h: acknowledged by ciphertext bytes, as strict as TCP).
 * Owns the socket, a buffer of encoded messages and its loop watchers.
 * Over TCP a message stays in the buffer until the collector's TCP has
 * acknowledged it (SIOCOUTQ) and is sent again after a reconnect; over
 * UDP a message is done once sent. A full buffer refuses records, which
 * then wait on the dying list. */
#ifndef CTD_OUT_IPFIX_H
#define CTD_OUT_IPFIX_H

#include <stdbool.h>
#include <stddef.h>

#include "ctd/base/safefile.h"
#include "ctd/base/timeutil.h"
#include "ctd/base/tlsfile.h"
#include "ctd/format/ipfix.h"

struct ctd_output;
struct ctd_output_desc;
struct ctd_setting_group;
struct ev_loop;

#define CTD_OUT_IPFIX_BUF (4u << 20)

struct ctd_out_ipfix_cfg {
	const char *target;            /* "udp:HOST:PORT" or "tcp:HOST:PORT" */
	struct ctd_ipfix_cfg enc;
	unsigned mtu;                  /* UDP: path MTU the messages fit */
	unsigned template_interval;    /* UDP: re-send templates (seconds) */
	unsigned template_messages;    /* UDP: ... and after this many messages */
	size_t buf_size;               /* 0: CTD_OUT_IPFIX_BUF */
	struct ctd_clock clock;        /* zeroed: the system clock */
	struct ctd_tls_files tls;      /* tls: the CA, our certificate, key */
	const char *tls_name;          /* tls: name to verify, "" the host */
	struct ctd_owner owner;        /* who may own those files besides root */
};

/* Resolves the host (once, here) and opens the socket; TCP connects in
 * the background and keeps reconnecting. */
int ctd_out_ipfix_new(struct ev_loop *loop, const struct ctd_out_ipfix_cfg *cfg,
		      struct ctd_output **ret);

/* The table's row (outputs.h): `ipfix` and the ipfix-* settings. */
extern const struct ctd_output_desc ctd_out_ipfix_desc;
extern const struct ctd_setting_group ctd_out_ipfix_settings;

#endif
