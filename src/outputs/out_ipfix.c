/* out_ipfix: IPFIX export over UDP or TCP.
 *
 * The buffer holds whole messages in order: [head, sent) written to the
 * socket, [sent, len) not yet, and the message being filled after len.
 * Records are encoded into the open message as they come; the loop's
 * flush closes it, so a burst packs many records per message and a quiet
 * flow still goes out at once.
 *
 * TCP: a write is not delivery. The socket's unacknowledged bytes
 * (SIOCOUTQ) tell how far the collector's TCP has taken the stream, and
 * only whole messages before that point leave the buffer. When the
 * connection breaks, the rest is sent again on the next one, after the
 * templates, with fresh sequence numbers (a new connection is a new
 * transport session). What the collector's kernel acknowledged but the
 * collector never read is beyond any exporter's sight (RFC 7011 10.4).
 *
 * TLS (RFC 7011 10.4.2): the same stream through tlslink after a
 * handshake; x->sent is then the plaintext OpenSSL took, and tlslink
 * turns SIOCOUTQ's count of unacknowledged ciphertext into the
 * plaintext not acknowledged, so the rule above holds byte for byte.
 * A refused certificate or session is one log line and a counter
 * (tls_failures), then the usual backoff.
 *
 * UDP: templates go first and again every template_interval seconds and
 * template_messages messages, each time with the exporter's reliability
 * statistics. A datagram is done once the kernel took it.
 *
 * Namespaces: each is an observation domain of its own (ipfix.h), and
 * RFC 7011 scopes templates and sequence numbers to the domain. A
 * message holds one domain's records, so the open message is closed
 * when the next record is of another domain (records of namespaces
 * that interleave make smaller messages); a domain gets its templates
 * before its first data message, again with every UDP refresh and on
 * every new TCP connection, where the room they need is kept free.
 *
 * Deadlines (reconnect, connect timeout, template refresh) are integer
 * monotonic microseconds from the injected clock, and export times its
 * wall clock; the one-second ev_timer only makes sure they are looked at. */
#include <errno.h>
#include <ev.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/config/cfgcheck.h"
#include "ctd/config/config.h"
#include "ctd/flows/record.h"
#include "ctd/format/ipfix.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/out_ipfix.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "ctd/outputs/settle.h"
#include "ctd/outputs/tlslink.h"

/* Room kept free so the templates always fit before resent data: the
 * first domain's with the statistics, and each further one's. */
#define TEMPLATE_ROOM 4096
#define DOMAIN_TEMPLATE_ROOM 2048
#define TCP_MSG_MAX 16384
#define BATCH 64
#define SETTLE_MAX 65536          /* records not acknowledged yet */
#define BACKOFF_MIN_US 1000000
#define BACKOFF_MAX_US 60000000
#define CONNECT_TIMEOUT_US 10000000
/* TLS 1.3: a server that sends no session ticket has still accepted us
 * if no alert came this long after the handshake (tlslink.h). */
#define ACCEPT_WAIT_US 2000000
#define TLS_RELOG_US 600000000    /* a failure that repeats: said again */

enum state { DOWN, CONNECTING, HANDSHAKE, UP };

/* An observation domain in use: a namespace's, or one a replayed
 * message names. */
struct domain {
	uint32_t id;
	uint32_t seq;               /* data records in this session */
	bool templated;             /* its templates are in the buffer */
};

/* What IPFIX counts beside delivery (ctd -s, metrics). */
struct ipfix_counters {
	uint64_t templates;     /* template messages sent */
	uint64_t tls_failures;  /* TLS handshakes or sessions refused (a
	                         * certificate, its name, an alert) */
	uint64_t tls_resumed;   /* ... connections that resumed a session */
};

#define IC(name, prom, help) \
	{ #name, offsetof(struct ipfix_counters, name), false, prom, help, false }

static const struct ctd_counter_def ipfix_counter_rows[] = {
	IC(templates, "templates_total", "IPFIX template messages sent."),
	IC(tls_failures, "tls_failures_total", "IPFIX/TLS: handshakes or sessions refused (certificate, name, expiry, alert)."),
	IC(tls_resumed, "tls_resumed_total", "IPFIX/TLS: connections that resumed a TLS session."),
};

static const struct ctd_counter_defs ipfix_counters = {
	ipfix_counter_rows,
	sizeof(ipfix_counter_rows) / sizeof(ipfix_counter_rows[0]),
	CTD_SHOWS_ACKS | CTD_SHOWS_LINK,
};

struct out_ipfix {
	struct ctd_output base;
	struct ipfix_counters own;
	struct ev_loop *loop;
	struct ctd_out_ipfix_cfg cfg;
	char *target;
	bool tcp;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int fd;
	enum state state;
	ev_io io;
	ev_timer tick;
	int64_t backoff_us;
	int64_t retry_at;           /* TCP: next connect attempt (mono µs) */
	int64_t connect_by;         /* TCP: give up on a pending connect */
	int64_t templates_at;       /* UDP: next template refresh */
	unsigned since_templates;   /* UDP: messages since the templates */
	uint8_t *buf;
	size_t cap, head, sent, len;
	struct ctd_ipfix_msg msg;
	bool open;
	bool templates_msg;         /* the open message is templates */
	bool refusing;              /* said AGAIN: call ready when room */
	bool failing;               /* in an error streak: logged already */
	size_t msg_max;
	struct domain *doms;        /* [0]: cfg.enc.domain */
	size_t ndoms, doms_cap;
	size_t cur;                 /* the open message's domain */
	struct ctd_ipfix_stats xs;  /* for the options record */
	bool unreachable;           /* UDP: the collector refused; probing */
	uint64_t taken, released;   /* flow records since the start */
	struct ctd_settle settle;
	struct ctd_tlslink *link;   /* tls: the session; NULL otherwise */
	char *ca;                   /* tls: for the log line */
	struct ctd_owner owner;
	int64_t up_at;              /* tls: the handshake's end */
	uint64_t wire_seen;         /* tls: ciphertext counted in bytes */
	char said[256];             /* tls: the failure logged last */
	int64_t said_at;
	bool trusted;               /* tls: the collector accepted us */
	bool closed_once;           /* tls: ... or closed before it did */
};

static struct out_ipfix *to_ipfix(struct ctd_output *out)
{
	return (struct out_ipfix *)out;
}

static int64_t mono_us(const struct out_ipfix *x)
{
	return ctd_clock_read(&x->cfg.clock).mono_us;
}

/* Seconds since the epoch, for the message header (RFC 7011 3.1). */
static uint32_t export_time(const struct out_ipfix *x)
{
	return (uint32_t)(ctd_clock_read(&x->cfg.clock).wall_ns / 1000000000u);
}

static size_t msg_len_at(struct out_ipfix *x, size_t off)
{
	return ctd_ipfix_msg_len(x->buf + off, x->len - off);
}

/* Closes the open message: it joins the complete ones. */
static void finish_open(struct out_ipfix *x)
{
	size_t n;

	if (!x->open)
		return;
	x->open = false;
	if (!x->msg.records && !x->templates_msg)
		return;
	x->templates_msg = false;
	n = ctd_ipfix_msg_finish(&x->msg, export_time(x), x->doms[x->cur].seq,
				 x->doms[x->cur].id);
	x->doms[x->cur].seq += x->msg.records;
	x->len += n;
	x->base.stats.unacked += x->msg.flow_records;
	x->xs.messages++;
	x->since_templates++;
}

static void compact(struct out_ipfix *x)
{
	if (!x->head)
		return;
	memmove(x->buf, x->buf + x->head, x->len - x->head);
	x->sent -= x->head;
	x->len -= x->head;
	x->head = 0;
}

/* The domain's slot, added when new (-1 when out of memory). A linear
 * search, only when the domain changes: domains are namespaces. */
static ssize_t domain_slot(struct out_ipfix *x, uint32_t id)
{
	struct domain *d;

	if (x->doms[x->cur].id == id)
		return (ssize_t)x->cur;
	for (size_t i = 0; i < x->ndoms; i++)
		if (x->doms[i].id == id)
			return (ssize_t)i;
	if (x->ndoms == x->doms_cap) {
		d = realloc(x->doms, 2 * x->doms_cap * sizeof(*d));
		if (!d)
			return -1;
		x->doms = d;
		x->doms_cap *= 2;
	}
	x->doms[x->ndoms] = (struct domain){ id, 0, false };
	return (ssize_t)x->ndoms++;
}

static size_t template_room(const struct out_ipfix *x)
{
	return TEMPLATE_ROOM + (x->ndoms - 1) * DOMAIN_TEMPLATE_ROOM;
}

/* Starts a message of domain slot dom after len when there is room for
 * one of at least need bytes; the room templates need stays free. */
static bool begin(struct out_ipfix *x, size_t dom, size_t need,
		  bool templates)
{
	size_t keep = templates ? 0 : template_room(x), room, limit;

	if (keep >= x->cap)
		return false;
	limit = x->cap - keep;

	if (x->len + need > limit)
		compact(x);
	if (x->len + need > limit)
		return false;
	room = limit - x->len;
	ctd_ipfix_msg_begin(&x->msg, x->buf + x->len,
			    room < x->msg_max ? room : x->msg_max);
	x->open = true;
	x->cur = dom;
	return true;
}

static bool append_templates(struct out_ipfix *x, size_t dom);

/* The open message takes records of domain slot dom from here on: one
 * of another domain is closed, and a domain's first data message comes
 * after its templates. */
static bool switch_domain(struct out_ipfix *x, uint32_t id, size_t need)
{
	ssize_t dom;

	if (x->open && x->doms[x->cur].id == id)
		return true;
	finish_open(x);
	dom = domain_slot(x, id);
	if (dom < 0 || (!x->doms[dom].templated &&
			!append_templates(x, (size_t)dom)))
		return false;
	return begin(x, (size_t)dom, need, false);
}

static bool add_record(struct out_ipfix *x, const struct ctd_record *rec)
{
	size_t need = CTD_IPFIX_HDR + 4 + 2 * 160;
	uint32_t id = ctd_ipfix_domain(&x->cfg.enc, rec->nsid);

	if (!switch_domain(x, id, need))
		return false;
	if (ctd_ipfix_msg_add_record(&x->msg, &x->cfg.enc, rec))
		return true;
	finish_open(x);
	return begin(x, x->cur, need, false) &&
	       ctd_ipfix_msg_add_record(&x->msg, &x->cfg.enc, rec);
}

static enum ctd_out_status ipfix_submit(struct ctd_output *out,
					const struct ctd_record *rec)
{
	struct out_ipfix *x = to_ipfix(out);

	if (rec->events) {
		out->stats.skipped++;
		ctd_settle_take(&x->settle, x->taken);
		return CTD_OUT_DELIVERED;
	}
	if (ctd_settle_pending(&x->settle) < SETTLE_MAX && add_record(x, rec)) {
		ctd_settle_take(&x->settle, ++x->taken);
		return CTD_OUT_DELIVERED;
	}
	x->refusing = true;
	return CTD_OUT_AGAIN;
}

/* A template message of domain slot dom after the complete ones; the
 * first domain's carries the statistics. */
static bool append_templates(struct out_ipfix *x, size_t dom)
{
	finish_open(x);
	x->xs.not_sent = x->base.stats.failed;
	if (!begin(x, dom, 2048, true))
		return false;
	x->templates_msg = true;
	if (!ctd_ipfix_msg_add_templates(&x->msg, &x->cfg.enc) ||
	    (dom == 0 && !ctd_ipfix_msg_add_stats(&x->msg, &x->xs))) {
		x->open = x->templates_msg = false;
		return false;
	}
	finish_open(x);
	x->doms[dom].templated = true;
	x->own.templates++;
	return true;
}

/* Every domain's templates: the UDP refresh, a new TCP session. */
static bool append_all_templates(struct out_ipfix *x)
{
	for (size_t i = 0; i < x->ndoms; i++)
		if (!append_templates(x, i))
			return false;
	x->since_templates = 0;
	x->templates_at = mono_us(x) +
			  (int64_t)x->cfg.template_interval * 1000000;
	return true;
}

/* Numbers the messages in [from, len) anew from their domains' counts
 * in the session. */
static void restamp(struct out_ipfix *x, size_t from)
{
	uint32_t flows;

	for (size_t off = from, n; off < x->len && (n = msg_len_at(x, off));
	     off += n) {
		ssize_t d = domain_slot(x, ctd_ipfix_msg_domain(x->buf + off));
		struct domain *dom = &x->doms[d < 0 ? 0 : d];

		ctd_ipfix_msg_restamp(x->buf + off, export_time(x), dom->seq);
		dom->seq += ctd_ipfix_msg_count(&x->cfg.enc, x->buf + off, n,
						&flows);
	}
}

static void reverse(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n / 2; i++) {
		uint8_t t = p[i];

		p[i] = p[n - 1 - i];
		p[n - 1 - i] = t;
	}
}

/* [0, mid) and [mid, len) swap places, in place. */
static void rotate(uint8_t *p, size_t mid, size_t len)
{
	reverse(p, mid);
	reverse(p + mid, len - mid);
	reverse(p, len);
}

static void new_session(struct out_ipfix *x)
{
	for (size_t i = 0; i < x->ndoms; i++)
		x->doms[i].seq = 0, x->doms[i].templated = false;
}

/* Whole messages before byte `upto` are done: they leave the buffer. */
static void release(struct out_ipfix *x, size_t upto)
{
	uint32_t flows;
	size_t n;

	while (x->head < x->len && (n = msg_len_at(x, x->head)) &&
	       x->head + n <= upto) {
		ctd_ipfix_msg_count(&x->cfg.enc, x->buf + x->head, n, &flows);
		x->base.stats.acked += flows;
		x->base.stats.unacked -= flows;
		x->released += flows;
		x->xs.records += flows;
		x->head += n;
	}
	if (x->head == x->len)
		x->head = x->sent = x->len = 0;
	if (x->refusing && x->cap - x->len + x->head > x->cap / 4) {
		x->refusing = false;
		ctd_output_ready(&x->base);
	}
}

static void poll_acks(struct out_ipfix *x)
{
	int outq;

	if (x->state != UP || x->sent == x->head)
		return;
	if (ioctl(x->fd, SIOCOUTQ, &outq) < 0 || outq < 0)
		return;
	if (x->link)
		release(x, x->sent - ctd_tlslink_unacked(x->link, (uint64_t)outq));
	else
		release(x, x->sent - (size_t)outq);
}

static void set_io(struct out_ipfix *x, int events)
{
	if ((x->io.events & (EV_READ | EV_WRITE)) == events &&
	    x->io.fd == x->fd && ev_is_active(&x->io))
		return;
	ev_io_stop(x->loop, &x->io);
	ev_io_set(&x->io, x->fd, events);
	if (events)
		ev_io_start(x->loop, &x->io);
}

static void note_error(struct out_ipfix *x, const char *what, int err)
{
	x->base.stats.write_errors++;
	if (x->failing)
		return;
	x->failing = true;
	log_err("ipfix %s: %s: %s", x->target, what, strerror(err));
}

static void note_working(struct out_ipfix *x)
{
	if (x->failing)
		log_info("ipfix %s: exporting again", x->target);
	x->failing = false;
}

/* Flow records in [from, to): whole messages only. */
static uint64_t flows_in(struct out_ipfix *x, size_t from, size_t to)
{
	uint64_t total = 0;
	uint32_t flows;

	for (size_t off = from, n; off < to && (n = msg_len_at(x, off));
	     off += n) {
		ctd_ipfix_msg_count(&x->cfg.enc, x->buf + off, n, &flows);
		total += flows;
	}
	return total;
}

static void disconnect(struct out_ipfix *x, const char *why, int err)
{
	if (x->state == UP) {
		poll_acks(x);
		x->base.stats.resent += flows_in(x, x->head, x->sent);
	}
	note_error(x, why, err);
	set_io(x, 0);
	if (x->link)
		ctd_tlslink_stop(x->link);
	close(x->fd);
	x->fd = -1;
	x->state = DOWN;
	x->sent = x->head;
	x->base.stats.reconnects++;
	x->retry_at = mono_us(x) + x->backoff_us;
	x->backoff_us = x->backoff_us * 2 < BACKOFF_MAX_US ? x->backoff_us * 2 :
							      BACKOFF_MAX_US;
}

/* One sendmmsg for up to BATCH messages. Returns false when the socket
 * takes no more now. */
static bool send_batch(struct out_ipfix *x, unsigned max)
{
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	size_t off = x->sent, n;
	unsigned k = 0;
	int r;

	for (; k < max && off < x->len && (n = msg_len_at(x, off)); off += n) {
		iov[k] = (struct iovec){ x->buf + off, n };
		mm[k] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[k],
						       .msg_iovlen = 1 } };
		k++;
	}
	r = sendmmsg(x->fd, mm, k, MSG_DONTWAIT);
	if (r < 0) {
		/* ECONNREFUSED reports an earlier datagram (the collector
		 * is not listening); this one was not sent: try again. */
		if (errno == EAGAIN || errno == ENOBUFS)
			set_io(x, EV_WRITE);
		else
			note_error(x, "send", errno);
		return false;
	}
	note_working(x);
	for (int i = 0; i < r; i++) {
		x->sent += iov[i].iov_len;
		x->base.stats.bytes += iov[i].iov_len;
		x->xs.octets += iov[i].iov_len;
	}
	return true;
}

/* A connected UDP socket learns of the collector's ICMP port
 * unreachable (or a host unreachable) as a pending error, on loopback
 * at once and otherwise by the next send: the datagrams sent since the
 * last check may be gone, so they are sent again later, not counted. */
static bool udp_refused(struct out_ipfix *x)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || !err)
		return false;
	note_error(x, "collector unreachable", err);
	x->base.stats.resent += flows_in(x, x->head, x->sent);
	x->sent = x->head;
	x->unreachable = true;
	x->retry_at = mono_us(x) + x->backoff_us;
	x->backoff_us = x->backoff_us * 2 < BACKOFF_MAX_US ? x->backoff_us * 2 :
							      BACKOFF_MAX_US;
	return true;
}

static void send_udp(struct out_ipfix *x)
{
	if (udp_refused(x) || (x->unreachable && mono_us(x) < x->retry_at))
		return;
	/* Probing: one datagram tells whether the collector is back. */
	if (x->unreachable) {
		send_batch(x, 1);
		if (udp_refused(x))
			return;
		x->unreachable = false;
		x->backoff_us = BACKOFF_MIN_US;
	}
	while (x->sent < x->len && send_batch(x, BATCH))
		;
	if (x->sent == x->len)
		set_io(x, 0);
	if (!udp_refused(x))
		release(x, x->sent);
}

/* A refused certificate, name or session: one line per new reason (or
 * every TLS_RELOG_US while it lasts), every time counted. A session
 * closed before the collector accepted it is such a refusal whose alert
 * a reset may have swallowed (the collector closed with our data unread):
 * said only when nothing else was, and not the first time, since the
 * next attempt usually reads the alert. */
static void tls_failed(struct out_ipfix *x, const char *stage, bool closed)
{
	const char *why = closed ? "closed by the collector before it accepted "
			  "the session (no alert read: a client certificate it "
			  "wants, or one it refuses?)" : ctd_tlslink_why(x->link);
	int64_t now = mono_us(x);

	x->own.tls_failures++;
	if (closed && *x->said && now - x->said_at < TLS_RELOG_US)
		why = x->said;
	else if (closed && !*x->said && !x->closed_once)
		why = "";    /* counted, not said yet */
	x->closed_once |= closed;
	if (*why && (strcmp(why, x->said) != 0 ||
		     now - x->said_at >= TLS_RELOG_US)) {
		log_err("ipfix %s: TLS %s refused: %s (CA file %s)", x->target,
			stage, why, x->ca);
		snprintf(x->said, sizeof(x->said), "%s", why);
		x->said_at = now;
	}
	x->failing = true;    /* said: disconnect adds no line */
	disconnect(x, "TLS", EPROTO);
}

static void count_wire(struct out_ipfix *x)
{
	uint64_t wire = ctd_tlslink_wire_bytes(x->link);

	x->base.stats.bytes += wire - x->wire_seen;
	x->wire_seen = wire;
}

/* Plaintext into TLS records and out, while OpenSSL's pair and the
 * socket take it. */
static void send_tls(struct out_ipfix *x)
{
	size_t took;
	int r;

	do {
		r = ctd_tlslink_write(x->link, x->buf + x->sent,
				      x->len - x->sent, &took);
		x->sent += took;
		x->xs.octets += took;
	} while (r == 0 && took && x->sent < x->len);
	count_wire(x);
	if (r == -EPROTO)
		tls_failed(x, "session", false);
	else if (r < 0 && r != -EAGAIN && !ctd_tlslink_accepted(x->link))
		tls_failed(x, "session", true);
	else if (r < 0 && r != -EAGAIN)
		disconnect(x, "send", -r);
	else
		set_io(x, EV_READ | (ctd_tlslink_pending(x->link) ||
				     x->sent < x->len ? EV_WRITE : 0));
}

static void send_tcp(struct out_ipfix *x)
{
	ssize_t n;

	if (x->link) {
		send_tls(x);
		return;
	}

	while (x->sent < x->len) {
		n = send(x->fd, x->buf + x->sent, x->len - x->sent,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			set_io(x, EV_READ | EV_WRITE);
			return;
		}
		if (n < 0) {
			disconnect(x, "send", errno);
			return;
		}
		x->sent += (size_t)n;
		x->base.stats.bytes += (size_t)n;
		x->xs.octets += (size_t)n;
	}
	set_io(x, EV_READ);
}

/* The connection works: the next failure starts from the shortest
 * backoff and is logged. */
static void working(struct out_ipfix *x)
{
	x->backoff_us = BACKOFF_MIN_US;
	x->said[0] = '\0';
	x->closed_once = false;
	note_working(x);
}

/* TLS: a session works only once the collector accepted our
 * certificate (tlslink.h); until then a refusal is still the same
 * failure, under a growing backoff. */
static void check_trusted(struct out_ipfix *x, int64_t now)
{
	if (x->state != UP || !x->link || x->trusted)
		return;
	if (!ctd_tlslink_accepted(x->link) && now - x->up_at >= ACCEPT_WAIT_US)
		ctd_tlslink_accept(x->link);
	if (!ctd_tlslink_accepted(x->link))
		return;
	x->trusted = true;
	working(x);
}

/* A new connection is a new session: templates first, then every
 * message not acknowledged on the old one. */
static void connected(struct out_ipfix *x)
{
	size_t old_head, tlen;
	bool again;

	finish_open(x);
	compact(x);
	old_head = x->len;
	/* Every domain ctd knows: those of what waits are among them. */
	new_session(x);
	if (!append_all_templates(x)) {
		disconnect(x, "no room for templates", ENOSPC);
		return;
	}
	/* The template messages go to the front. */
	tlen = x->len - old_head;
	rotate(x->buf, old_head, x->len);
	for (size_t i = 0; i < x->ndoms; i++)
		x->doms[i].seq = 0;
	restamp(x, 0);
	again = x->len > tlen;
	x->state = UP;
	if (!x->link)
		working(x);
	log_info("ipfix %s: connected%s", x->target,
		 again ? ", sending what waited" : "");
	send_tcp(x);
}

/* The handshake as far as the socket allows; its end is connected(). */
static void step_handshake(struct out_ipfix *x)
{
	int r = ctd_tlslink_handshake(x->link);

	count_wire(x);
	if (r == -EAGAIN) {
		set_io(x, EV_READ | (ctd_tlslink_pending(x->link) ? EV_WRITE : 0));
		return;
	}
	if (r == -EPROTO) {
		tls_failed(x, "handshake", false);
		return;
	}
	if (r < 0) {
		disconnect(x, "TLS handshake", -r);
		return;
	}
	x->up_at = mono_us(x);
	x->trusted = false;
	if (ctd_tlslink_resumed(x->link))
		x->own.tls_resumed++;
	log_info("ipfix %s: %s session %s", x->target,
		 ctd_tlslink_version(x->link),
		 ctd_tlslink_resumed(x->link) ? "resumed" : "established");
	connected(x);
}

/* TCP is up: IPFIX starts, or the TLS handshake first. */
static void tcp_up(struct out_ipfix *x)
{
	int r;

	if (!x->link) {
		connected(x);
		return;
	}
	r = ctd_tlslink_start(x->link, x->fd);
	if (r < 0) {
		disconnect(x, "TLS", -r);
		return;
	}
	x->state = HANDSHAKE;
	x->wire_seen = 0;
	step_handshake(x);
}

static void try_connect(struct out_ipfix *x)
{
	int fd = socket(x->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
			SOCK_CLOEXEC, 0);

	if (fd < 0) {
		note_error(x, "socket", errno);
		x->retry_at = mono_us(x) + x->backoff_us;
		return;
	}
	x->fd = fd;
	x->state = CONNECTING;
	x->connect_by = mono_us(x) + CONNECT_TIMEOUT_US;
	if (connect(fd, (struct sockaddr *)&x->addr, x->addrlen) == 0) {
		tcp_up(x);
		return;
	}
	if (errno != EINPROGRESS) {
		disconnect(x, "connect", errno);
		return;
	}
	set_io(x, EV_WRITE);
}

/* Collectors send tickets and alerts, never data; an alert ends it. */
static void tls_read(struct out_ipfix *x)
{
	int r = ctd_tlslink_pull(x->link);

	if (r == -EPROTO)
		tls_failed(x, "session", false);
	else if (r < 0 && !ctd_tlslink_accepted(x->link))
		tls_failed(x, "session", true);
	else if (r < 0)
		disconnect(x, "connection closed by the collector", -r);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct out_ipfix *x = w->data;
	int err = 0;
	char sink[512];
	ssize_t n;

	(void)loop;
	if (x->state == CONNECTING) {
		socklen_t len = sizeof(err);

		getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err)
			disconnect(x, "connect", err);
		else
			tcp_up(x);
		return;
	}
	if (x->state == HANDSHAKE) {
		step_handshake(x);
		return;
	}
	if (x->link && revents & EV_READ) {
		tls_read(x);
		if (x->state != UP)
			return;
	} else if (x->tcp && revents & EV_READ) {
		/* Collectors send nothing; data or EOF means the end. */
		n = recv(x->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			disconnect(x, "connection closed by the collector",
				   n == 0 ? ECONNRESET : errno);
			return;
		}
	}
	x->base.ops->flush(&x->base);
}

static void ipfix_flush(struct ctd_output *out)
{
	struct out_ipfix *x = to_ipfix(out);
	int64_t now = mono_us(x);

	finish_open(x);
	if (!x->tcp) {
		if (!x->unreachable && (now >= x->templates_at ||
		    x->since_templates >= x->cfg.template_messages))
			append_all_templates(x);
		send_udp(x);
		return;
	}
	if ((x->state == CONNECTING || x->state == HANDSHAKE) &&
	    now >= x->connect_by)
		disconnect(x, x->state == CONNECTING ? "connect" :
			   "TLS handshake", ETIMEDOUT);
	check_trusted(x, now);
	if (x->state == DOWN && now >= x->retry_at)
		try_connect(x);
	if (x->state == UP) {
		poll_acks(x);
		send_tcp(x);
	}
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct out_ipfix *x = w->data;

	(void)loop;
	(void)revents;
	ipfix_flush(&x->base);
}

/* Replayed messages name their domains: those without templates in
 * this session get them first. */
static bool raw_templates(struct out_ipfix *x, const uint8_t *p, size_t len)
{
	for (size_t off = 0, n; off < len; off += n) {
		ssize_t d = domain_slot(x, ctd_ipfix_msg_domain(p + off));

		n = ctd_ipfix_msg_len(p + off, len - off);
		if (d < 0 || (!x->doms[d].templated &&
			      !append_templates(x, (size_t)d)))
			return false;
	}
	return true;
}

static enum ctd_out_status ipfix_submit_raw(struct ctd_output *out,
					    const void *data, size_t len)
{
	struct out_ipfix *x = to_ipfix(out);
	const uint8_t *p = data;
	uint64_t flows;
	size_t start;

	for (size_t off = 0, n; off < len; off += n)
		if (!(n = ctd_ipfix_msg_len(p + off, len - off)) || off + n > len)
			return CTD_OUT_FAILED;
	finish_open(x);
	if (!raw_templates(x, p, len))
		return CTD_OUT_AGAIN;
	if (x->len + len + TEMPLATE_ROOM > x->cap)
		compact(x);
	if (x->len + len + TEMPLATE_ROOM > x->cap)
		return len + TEMPLATE_ROOM > x->cap ? CTD_OUT_FAILED : CTD_OUT_AGAIN;
	start = x->len;
	memcpy(x->buf + start, data, len);
	x->len += len;
	restamp(x, start);
	flows = flows_in(x, start, x->len);
	x->base.stats.unacked += flows;
	x->taken += flows;    /* no record of delivery's: no settle entry */
	return CTD_OUT_DELIVERED;
}

/* A flow record is final once the collector's TCP acknowledged its
 * message (UDP: the kernel took the datagram and no error came back). */
static uint64_t ipfix_settled(struct ctd_output *out)
{
	struct out_ipfix *x = to_ipfix(out);

	poll_acks(x);
	return ctd_settle_advance(&x->settle, x->released);
}

/* Shutdown: nothing unacknowledged is sent any more (the records are in
 * delivery's write-ahead log, for the spool). */
static void ipfix_abandon(struct ctd_output *out)
{
	struct out_ipfix *x = to_ipfix(out);

	finish_open(x);
	poll_acks(x);
	x->released += flows_in(x, x->head, x->len);
	x->head = x->sent = x->len = 0;
	x->base.stats.unacked = 0;
	ctd_settle_abandon(&x->settle);
}

static void ipfix_free(struct ctd_output *out)
{
	struct out_ipfix *x = to_ipfix(out);

	if (!x)
		return;
	if (x->loop) {
		ev_io_stop(x->loop, &x->io);
		ev_timer_stop(x->loop, &x->tick);
	}
	if (x->fd >= 0)
		close(x->fd);
	ctd_tlslink_free(x->link);
	free(x->ca);
	free(x->buf);
	free(x->doms);
	free(x->target);
	ctd_settle_free(&x->settle);
	free(x);
}

/* Certificates (again, on a reload): a context for the next
 * connections; the current one keeps its own, so nothing in flight is
 * touched. A file that does not load keeps the old context. */
static int tls_load(struct out_ipfix *x, const struct ctd_tls_files *f,
		    const char *when)
{
	SSL_CTX *ctx;
	char why[512], *ca = strdup(f->ca);
	int r = ca ? ctd_tlsfile_client_ctx(f, &x->owner, &ctx, why,
					    sizeof(why)) : -ENOMEM;

	if (r < 0) {
		log_err("%sipfix %s: %s", when, x->target,
			r == -ENOMEM ? strerror(ENOMEM) : why);
		free(ca);
		return r;
	}
	ctd_tlslink_set_ctx(x->link, ctx);
	SSL_CTX_free(ctx);    /* the link holds its own reference */
	free(x->ca);
	x->ca = ca;
	if (*when)
		log_info("%sipfix %s: certificates read again (CA file %s)",
			 when, x->target, f->ca);
	return 0;
}

/* The ipfix and ipfix-* settings. */
struct ipfix_settings {
	char target[CTD_SETTING_TEXT_MAX];    /* udp:HOST:PORT, ..., "" none */
	char tls_ca[CTD_SETTING_TEXT_MAX];    /* tls: verify the collector */
	char tls_name[CTD_SETTING_TEXT_MAX];  /* ... as this name, "" HOST */
	char tls_cert[CTD_SETTING_TEXT_MAX];  /* ... our certificate */
	char tls_key[CTD_SETTING_TEXT_MAX];   /* ... and its key */
	unsigned shape;                       /* enum ctd_ipfix_shape */
	unsigned domain;
	unsigned mtu;
	unsigned template_refresh;
	unsigned template_messages;
	unsigned nat_event;                   /* enum ctd_ipfix_nat_event */
	unsigned pen;
};

static const char *const shapes[] = { "biflow", "uniflow", "initiator", NULL };
static const char *const nat_events[] = { "rfc8158", "legacy", "none", NULL };

static int check_target(const char *value, char *why, size_t whylen)
{
	const char *bad = ctd_ipfix_check_target(value);

	if (bad)
		snprintf(why, whylen, "udp:HOST:PORT, tcp:HOST:PORT or "
			 "tls:HOST:PORT (%s)", bad);
	return bad ? -EINVAL : 0;
}

/* Its elements 1 and 2 would read as reverse octets and packets. */
static int check_pen(const char *value, char *why, size_t whylen)
{
	if (strtoul(value, NULL, 10) != CTD_IPFIX_PEN_REVERSE)
		return 0;
	snprintf(why, whylen, "an enterprise number of your own (29305 is "
		 "RFC 5103's reverse elements)");
	return -EINVAL;
}

#define XF(field) offsetof(struct ipfix_settings, field)
#define ROW(key, type, field, lo, hi, ...) \
	CTD_SETTING(key, type, XF(field), lo, hi, false, false, __VA_ARGS__)

static const struct ctd_setting ipfix_rows[] = {
	CTD_SETTING("ipfix", CTD_SET_PATH, XF(target), 0, 0, true, false,
		    .check = check_target),
	ROW("ipfix-shape", CTD_SET_CHOICE, shape, 0, 0, .words = shapes),
	ROW("ipfix-domain", CTD_SET_UINT, domain, 0, 4294967295u, .def = "1"),
	ROW("ipfix-mtu", CTD_SET_UINT, mtu, 576, 65535, .def = "1280"),
	ROW("ipfix-template-refresh", CTD_SET_SECS, template_refresh, 1, 86400,
	    .def = "60"),
	ROW("ipfix-template-messages", CTD_SET_UINT, template_messages, 1,
	    1000000, .def = "1000"),
	ROW("ipfix-nat-event", CTD_SET_CHOICE, nat_event, 0, 0,
	    .words = nat_events),
	ROW("ipfix-pen", CTD_SET_UINT, pen, 0, 4294967295u, .check = check_pen),
	CTD_SETTING("ipfix-tls-ca", CTD_SET_PATH, XF(tls_ca), 0, 0, true, true),
	CTD_SETTING("ipfix-tls-name", CTD_SET_PATH, XF(tls_name), 0, 0, true,
		    false),
	CTD_SETTING("ipfix-tls-cert", CTD_SET_PATH, XF(tls_cert), 0, 0, true,
		    true),
	CTD_SETTING("ipfix-tls-key", CTD_SET_PATH, XF(tls_key), 0, 0, true, true),
};

/* The user ctd runs as may own the TLS files too: it reads them again
 * on SIGHUP. IPFIX over TLS needs a CA to verify against, and both
 * halves of a client identity or neither. */
static void ipfix_check(const void *conf, struct ctd_check *c)
{
	const struct ipfix_settings *set = conf;
	struct ctd_tls_files f = { set->tls_ca, set->tls_cert, set->tls_key };

	bool pair = !*set->tls_cert == !*set->tls_key;

	if (!ctd_ipfix_target_tls(set->target))
		return;
	if (!*set->tls_ca)
		ctd_check_problem(c, "ipfix", "tls: needs ipfix-tls-ca (the CA "
				  "bundle the collector's certificate chains "
				  "to): ", set->target);
	if (!pair)
		ctd_check_problem(c, *set->tls_cert ? "ipfix-tls-cert" :
				  "ipfix-tls-key", "mutual TLS needs both "
				  "ipfix-tls-cert and ipfix-tls-key", "");
	if (*set->tls_ca && pair)
		ctd_check_tls_files(c, &f, (const char *const[3]){
				    "ipfix-tls-ca", "ipfix-tls-cert",
				    "ipfix-tls-key" }, false);
}

const struct ctd_setting_group ctd_out_ipfix_settings = {
	.name = "ipfix",
	.rows = ipfix_rows,
	.n_rows = sizeof(ipfix_rows) / sizeof(ipfix_rows[0]),
	.size = sizeof(struct ipfix_settings),
	.off_key = "ipfix", .off_value = "none",
	.check = ipfix_check,
	.help =
"      --ipfix udp:HOST:PORT|tcp:HOST:PORT  also export IPFIX to a collector\n"
"                           (--ipfix-shape biflow|uniflow|initiator, see\n"
"                           ctd.conf(5) for the other ipfix-* settings)\n"
"      --ipfix tls:HOST:PORT  the same over TLS (port 4740): --ipfix-tls-ca FILE\n"
"                           verifies the collector (as HOST or --ipfix-tls-name),\n"
"                           --ipfix-tls-cert/--ipfix-tls-key FILE for mutual TLS\n",
};

static const struct ipfix_settings *settings_of(const struct ctd_config *cfg)
{
	return ctd_config_group_get(cfg, &ctd_out_ipfix_settings);
}

/* The templates a collector has are the ones sent at the start:
 * changing them live would need withdrawals (TCP) or fresh ids (UDP),
 * so ctLabels comes or goes at a restart. */
static int ipfix_reload(struct ctd_output *out, const struct ctd_config *next)
{
	struct out_ipfix *x = to_ipfix(out);
	const struct ipfix_settings *set = settings_of(next);
	struct ctd_tls_files f = { set->tls_ca, set->tls_cert, set->tls_key };

	if (next->record_labels != x->cfg.enc.labels)
		log_warn("reload: record-labels in IPFIX records needs a "
			 "restart (the templates stay as they are)");
	return x->link ? tls_load(x, &f, "reload: ") : 0;
}

static const struct ctd_output_ops ipfix_ops = {
	.submit = ipfix_submit,
	.submit_raw = ipfix_submit_raw,
	.flush = ipfix_flush,
	.settled = ipfix_settled,
	.abandon = ipfix_abandon,
	.free = ipfix_free,
	.reload = ipfix_reload,
};

static int resolve(struct out_ipfix *x, const char *target)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICSERV }, *ai;
	char copy[512], *host, *port;
	const char *why;
	int r;

	if (strlen(target) >= sizeof(copy))
		return -EINVAL;
	strcpy(copy, target);
	why = ctd_ipfix_split_target(copy, &x->tcp, &host, &port);
	if (why) {
		log_err("ipfix %s: %s", target, why);
		return -EINVAL;
	}
	if (ctd_ipfix_target_tls(target) &&
	    ctd_tlslink_new(*x->cfg.tls_name ? x->cfg.tls_name : host,
			    &x->link) < 0)
		return -ENOMEM;
	hints.ai_socktype = x->tcp ? SOCK_STREAM : SOCK_DGRAM;
	r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		log_err("ipfix %s: cannot resolve %s: %s", target, host,
			gai_strerror(r));
		return -EHOSTUNREACH;
	}
	memcpy(&x->addr, ai->ai_addr, ai->ai_addrlen);
	x->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int open_udp(struct out_ipfix *x)
{
	size_t iphdr = x->addr.ss_family == AF_INET6 ? 40 : 20;

	x->fd = socket(x->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
		       SOCK_CLOEXEC, 0);
	if (x->fd < 0)
		return -errno;
	if (connect(x->fd, (struct sockaddr *)&x->addr, x->addrlen) < 0)
		return -errno;
	x->msg_max = x->cfg.mtu > iphdr + 8 + 512 ? x->cfg.mtu - iphdr - 8 : 512;
	x->state = UP;
	append_all_templates(x);
	return 0;
}

static int setup(struct out_ipfix *x)
{
	int r = resolve(x, x->target);

	if (r < 0)
		return r;
	if (x->link && (r = tls_load(x, &x->cfg.tls, "")) < 0)
		return r;
	x->buf = malloc(x->cap);
	if (!x->buf)
		return -ENOMEM;
	ev_io_init(&x->io, on_io, -1, 0);
	x->io.data = x;
	ev_timer_init(&x->tick, on_tick, 1.0, 1.0);
	x->tick.data = x;
	ev_timer_start(x->loop, &x->tick);
	if (!x->tcp)
		return open_udp(x);
	x->msg_max = TCP_MSG_MAX;
	try_connect(x);
	return 0;
}

int ctd_out_ipfix_new(struct ev_loop *loop, const struct ctd_out_ipfix_cfg *cfg,
		      struct ctd_output **ret)
{
	struct out_ipfix *x = calloc(1, sizeof(*x));
	int r;

	if (!x)
		return -ENOMEM;
	x->base.ops = &ipfix_ops;
	x->base.name = ctd_out_ipfix_desc.name;
	x->base.counters = &ipfix_counters;
	x->base.own = &x->own;
	x->fd = -1;
	x->cfg = *cfg;
	x->owner = cfg->owner;
	if (!x->cfg.tls_name)
		x->cfg.tls_name = "";
	ctd_settle_init(&x->settle, SETTLE_MAX);
	x->backoff_us = BACKOFF_MIN_US;
	x->cap = cfg->buf_size ? cfg->buf_size : CTD_OUT_IPFIX_BUF;
	x->xs.process_id = (uint32_t)getpid();
	x->target = strdup(cfg->target);
	x->doms = calloc(4, sizeof(*x->doms));
	x->doms_cap = 4;
	x->ndoms = 1;
	if (!x->target || !x->doms) {
		free(x->doms);
		free(x->target);
		free(x);
		return -ENOMEM;
	}
	x->doms[0].id = cfg->enc.domain;
	x->loop = loop;
	r = setup(x);
	if (r < 0) {
		ipfix_free(&x->base);
		return r;
	}
	*ret = &x->base;
	return 0;
}

static bool ipfix_enabled(const struct ctd_config *cfg)
{
	return *settings_of(cfg)->target;
}

static int ipfix_create(struct ev_loop *loop, const struct ctd_config *cfg,
			const struct ctd_owner *owner, struct ctd_output **ret)
{
	const struct ipfix_settings *set = settings_of(cfg);
	struct ctd_out_ipfix_cfg ic = {
		.target = set->target,
		.enc = {
			/* One session per shard, told apart by the
			 * collector: ipfix-domain + the shard. */
			.domain = set->domain + cfg->shard,
			.pen = set->pen,
			.shape = (uint8_t)set->shape,
			.nat_event = (uint8_t)set->nat_event,
			.labels = cfg->record_labels,
		},
		.mtu = set->mtu,
		.template_interval = set->template_refresh,
		.template_messages = set->template_messages,
		.tls = { set->tls_ca, set->tls_cert, set->tls_key },
		.tls_name = set->tls_name,
		.owner = owner ? *owner : CTD_OWNER_NONE,
	};
	int r = ctd_out_ipfix_new(loop, &ic, ret);

	if (r < 0) {
		log_err("cannot export IPFIX to %s: %s", set->target, strerror(-r));
		return r;
	}
	log_info("exporting IPFIX (%s records) to %s",
		 ctd_ipfix_shape_name(ic.enc.shape), set->target);
	return 0;
}

/* IPFIX exports flows: ends and interim records, no events. */
const struct ctd_output_desc ctd_out_ipfix_desc = {
	.name = "ipfix",
	.settings = &ctd_out_ipfix_settings,
	.counters = &ipfix_counters,
	.enabled = ipfix_enabled,
	.create = ipfix_create,
	.events = 1u << CTD_EV_DESTROY,
	.events_setting = CTD_OUTPUT_EVENTS_FIXED,
};
