/* tlslink: a TLS client connection over a BIO pair (tlslink.h).
 *
 * Why a BIO pair and not a socket BIO: OpenSSL writes each record into
 * the pair in one piece, so the count of bytes it wrote there after a
 * write is exactly where that write's ciphertext ends; this module
 * alone moves the bytes to the socket (BIO_nread: no copy) and knows
 * how many the kernel took. Subtracting the socket's unacknowledged
 * bytes gives the ciphertext the peer acknowledged, and the ackmap turns
 * that into plaintext. A write is offered to OpenSSL only when the pair
 * has room for its whole record, so SSL_write never stops half way (it
 * would then have to be repeated with the same arguments).
 *
 * Sessions: the client cache is ours alone (no internal store): the
 * newest session the server gave is kept and offered on the next
 * connection, which then skips the certificate exchange. A new context
 * (new certificates, a new CA) forgets it, so a changed trust is always
 * checked in full. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ctd/base/ackmap.h"
#include "ctd/outputs/tlslink.h"

#define PAIR_SIZE (64u << 10)
#define RECORD_MAX 16384u       /* plaintext per TLS record */
#define RECORD_ROOM (RECORD_MAX + 1024u)
#define WHY_MAX 512

struct ctd_tlslink {
	char *name;
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *net;                   /* our end of the pair */
	SSL_SESSION *session;       /* to resume */
	int fd;
	bool accepted;
	uint64_t plain;             /* plaintext written, this connection */
	uint64_t wire;              /* ciphertext the kernel took */
	struct ctd_ackmap map;
	char why[WHY_MAX];
};

int ctd_tlslink_new(const char *name, struct ctd_tlslink **ret)
{
	struct ctd_tlslink *l = calloc(1, sizeof(*l));

	if (!l || !(l->name = strdup(name))) {
		free(l);
		return -ENOMEM;
	}
	l->fd = -1;
	*ret = l;
	return 0;
}

void ctd_tlslink_free(struct ctd_tlslink *l)
{
	if (!l)
		return;
	ctd_tlslink_stop(l);
	SSL_SESSION_free(l->session);
	SSL_CTX_free(l->ctx);
	free(l->name);
	free(l);
}

/* A session ticket came: the server took our Finished (and certificate),
 * and this is what the next connection resumes. */
static int new_session(SSL *ssl, SSL_SESSION *s)
{
	struct ctd_tlslink *l = SSL_get_app_data(ssl);

	SSL_SESSION_free(l->session);
	l->session = s;
	l->accepted = true;
	return 1;    /* the reference is ours */
}

/* A server may refuse a session it cannot resume (OpenSSL servers that
 * check client certificates without a session id context answer with
 * an internal error alert): the next attempt is a full handshake. */
static void forget_session(struct ctd_tlslink *l)
{
	SSL_SESSION_free(l->session);
	l->session = NULL;
}

void ctd_tlslink_set_ctx(struct ctd_tlslink *l, SSL_CTX *ctx)
{
	SSL_CTX_up_ref(ctx);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
				       SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	SSL_CTX_free(l->ctx);
	l->ctx = ctx;
	forget_session(l);
}

static void cert_text(X509 *x, char *buf, size_t cap)
{
	char subject[160] = "?", expiry[64] = "?";
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
	if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)) &&
	    (n = BIO_read(b, expiry, sizeof(expiry) - 1)) > 0)
		expiry[n] = '\0';
	BIO_free(b);
	snprintf(buf, cap, "%s, expires %s", subject, expiry);
}

/* Keeps the first failure of a chain for the log line: which
 * certificate, its expiry, OpenSSL's words for what is wrong. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
		xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct ctd_tlslink *l = SSL_get_app_data(ssl);
	X509 *x = X509_STORE_CTX_get_current_cert(xs);
	char cert[256] = "no certificate";

	if (ok || *l->why)
		return ok;
	if (x)
		cert_text(x, cert, sizeof(cert));
	snprintf(l->why, sizeof(l->why), "server certificate for '%s' "
		 "refused: %s (%s)", l->name, X509_verify_cert_error_string(
		 X509_STORE_CTX_get_error(xs)), cert);
	return ok;
}

/* The name to check: an address against the certificate's IP entries,
 * otherwise a DNS name, also sent as SNI. */
static bool set_name(struct ctd_tlslink *l)
{
	unsigned char a[16];
	bool ip = inet_pton(AF_INET, l->name, a) == 1 ||
		  inet_pton(AF_INET6, l->name, a) == 1;

	if (ip)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(l->ssl),
						     l->name) == 1;
	return SSL_set1_host(l->ssl, l->name) == 1 &&
	       SSL_set_tlsext_host_name(l->ssl, l->name) == 1;
}

int ctd_tlslink_start(struct ctd_tlslink *l, int fd)
{
	BIO *inner = NULL;

	ctd_tlslink_stop(l);
	l->why[0] = '\0';
	if (!l->ctx || !(l->ssl = SSL_new(l->ctx)))
		return -ENOMEM;
	if (!BIO_new_bio_pair(&inner, PAIR_SIZE, &l->net, PAIR_SIZE)) {
		ctd_tlslink_stop(l);
		return -ENOMEM;
	}
	SSL_set_bio(l->ssl, inner, inner);
	SSL_set_app_data(l->ssl, l);
	SSL_set_verify(l->ssl, SSL_VERIFY_PEER, verify_cb);
	if (!set_name(l) || (l->session && !SSL_set_session(l->ssl, l->session))) {
		ctd_tlslink_stop(l);
		return -EINVAL;
	}
	SSL_set_connect_state(l->ssl);
	l->fd = fd;
	l->plain = l->wire = 0;
	l->accepted = false;
	ctd_ackmap_reset(&l->map);
	return 0;
}

void ctd_tlslink_stop(struct ctd_tlslink *l)
{
	/* SSL_free marks the session of a connection that was not shut
	 * down unresumable; one the collector accepted stays good after a
	 * dropped connection (that is when resuming saves the most). */
	if (l->ssl && l->accepted)
		SSL_set_shutdown(l->ssl, SSL_SENT_SHUTDOWN);
	SSL_free(l->ssl);      /* frees the inner BIO too */
	BIO_free(l->net);
	l->ssl = NULL;
	l->net = NULL;
	l->fd = -1;
}

int ctd_tlslink_push(struct ctd_tlslink *l)
{
	char *p;
	ssize_t n;
	int avail;

	while ((avail = BIO_nread0(l->net, &p)) > 0) {
		n = send(l->fd, p, (size_t)avail, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -EAGAIN : -errno;
		BIO_nread(l->net, &p, (int)n);
		l->wire += (uint64_t)n;
	}
	return 0;
}

/* Socket bytes into the pair, as far as it has room. */
static int fill(struct ctd_tlslink *l)
{
	char *p;
	ssize_t n;
	int room;

	while ((room = BIO_nwrite0(l->net, &p)) > 0) {
		n = recv(l->fd, p, (size_t)room, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		BIO_nwrite(l->net, &p, (int)n);
	}
	return 0;
}

static int ssl_failed(struct ctd_tlslink *l, int ret)
{
	int e = SSL_get_error(l->ssl, ret);
	unsigned long code;

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return -EAGAIN;
	if (e == SSL_ERROR_ZERO_RETURN)
		return -ECONNRESET;
	if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
		return -ECONNRESET;    /* the peer went away mid-record */
	code = ERR_get_error();
	if (!*l->why)
		snprintf(l->why, sizeof(l->why), "%s",
			 code ? ERR_reason_error_string(code) : "TLS error");
	ERR_clear_error();
	return -EPROTO;
}

int ctd_tlslink_handshake(struct ctd_tlslink *l)
{
	int r = fill(l), ret, p;

	if (r < 0 && r != -ECONNRESET)
		return r;
	ret = SSL_do_handshake(l->ssl);
	if (ret == 1) {
		/* TLS 1.2: the server's Finished came after it checked us. */
		if (SSL_version(l->ssl) < TLS1_3_VERSION ||
		    SSL_session_reused(l->ssl))
			l->accepted = true;
		p = ctd_tlslink_push(l);
		return p == -EAGAIN ? 0 : p;
	}
	ret = ssl_failed(l, ret);
	if (ret != -EAGAIN) {
		forget_session(l);
		return ret;
	}
	p = ctd_tlslink_push(l);
	if (p < 0 && p != -EAGAIN)
		return p;
	return r == -ECONNRESET ? r : -EAGAIN;
}

int ctd_tlslink_write(struct ctd_tlslink *l, const uint8_t *p, size_t n,
		      size_t *ret_taken)
{
	size_t done = 0, chunk;
	int r;

	while (done < n && BIO_ctrl_get_write_guarantee(SSL_get_wbio(l->ssl)) >=
			   RECORD_ROOM) {
		chunk = n - done < RECORD_MAX ? n - done : RECORD_MAX;
		r = SSL_write(l->ssl, p + done, (int)chunk);
		if (r <= 0) {
			*ret_taken = done;
			return ssl_failed(l, r);
		}
		done += (size_t)r;
		l->plain += (uint64_t)r;
		ctd_ackmap_note(&l->map, l->plain,
				BIO_number_written(SSL_get_wbio(l->ssl)));
	}
	*ret_taken = done;
	return ctd_tlslink_push(l);
}

int ctd_tlslink_pull(struct ctd_tlslink *l)
{
	char sink[512];
	int r = fill(l), n;

	/* Tickets and alerts are read even when the socket closed. */
	while ((n = SSL_read(l->ssl, sink, sizeof(sink))) > 0)
		;
	n = ssl_failed(l, n);
	if (n == -EPROTO)
		return n;
	if (r < 0)
		return r;
	return n == -EAGAIN ? 0 : n;
}

uint64_t ctd_tlslink_unacked(struct ctd_tlslink *l, uint64_t outq)
{
	if (!l->accepted || outq > l->wire)
		return l->plain;
	return l->plain - ctd_ackmap_advance(&l->map, l->wire - outq);
}

bool ctd_tlslink_accepted(const struct ctd_tlslink *l)
{
	return l->accepted;
}

void ctd_tlslink_accept(struct ctd_tlslink *l)
{
	l->accepted = true;
}

bool ctd_tlslink_pending(const struct ctd_tlslink *l)
{
	return l->net && BIO_ctrl_pending(l->net) > 0;
}

bool ctd_tlslink_resumed(const struct ctd_tlslink *l)
{
	return l->ssl && SSL_session_reused(l->ssl);
}

const char *ctd_tlslink_version(const struct ctd_tlslink *l)
{
	return l->ssl ? SSL_get_version(l->ssl) : "none";
}

uint64_t ctd_tlslink_wire_bytes(const struct ctd_tlslink *l)
{
	return l->wire;
}

const char *ctd_tlslink_why(const struct ctd_tlslink *l)
{
	return *l->why ? l->why : "TLS error";
}
