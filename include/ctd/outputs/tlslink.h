/* tlslink: one TLS client connection over a non-blocking socket the
 * caller owns, driven from the loop: never blocks, never touches the
 * socket's watchers. OpenSSL talks to a BIO pair whose network end this
 * module moves to and from the socket, so it counts every ciphertext
 * byte the kernel took and can say which plaintext the peer's TCP has
 * acknowledged (ackmap.h): an output's delivery rule stays "final when
 * the collector's TCP acknowledged it", as strict as over plain TCP.
 * Owns the SSL object, the pair, the last session (resumed on the next
 * connection) and a reference on the context. */
#ifndef CTD_TLSLINK_H
#define CTD_TLSLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctd_tlslink;
struct ssl_ctx_st;

/* name: the server's host name or address, checked against its
 * certificate (and sent as SNI when a name). */
int ctd_tlslink_new(const char *name, struct ctd_tlslink **ret);
void ctd_tlslink_free(struct ctd_tlslink *l);
/* The context for the next connections (a reload's new certificates);
 * takes a reference and forgets the saved session. */
void ctd_tlslink_set_ctx(struct ctd_tlslink *l, struct ssl_ctx_st *ctx);

/* A new connection on connected socket fd (resuming the last session
 * when there is one); stop ends it, keeping the session. */
int ctd_tlslink_start(struct ctd_tlslink *l, int fd);
void ctd_tlslink_stop(struct ctd_tlslink *l);

/* Drives the handshake: 0 done, -EAGAIN wait for the socket, -EPROTO
 * refused (why says by what), other -errno from the socket. */
int ctd_tlslink_handshake(struct ctd_tlslink *l);
/* Encrypts up to n bytes, whole TLS records, as far as the pair has
 * room; *ret_taken says how many. Then pushes. */
int ctd_tlslink_write(struct ctd_tlslink *l, const uint8_t *p, size_t n,
		      size_t *ret_taken);
/* Sends the ciphertext waiting in the pair: 0 all of it, -EAGAIN the
 * socket is full, -errno. */
int ctd_tlslink_push(struct ctd_tlslink *l);
/* Reads what the peer sent (session tickets, alerts, close_notify):
 * 0, -ECONNRESET closed, -EPROTO an alert (why), -errno. */
int ctd_tlslink_pull(struct ctd_tlslink *l);
/* Plaintext handed to write on this connection and not acknowledged by
 * the peer's TCP yet, given the socket's unacknowledged bytes (outq). */
uint64_t ctd_tlslink_unacked(struct ctd_tlslink *l, uint64_t outq);

/* TLS 1.3 ends the client's handshake before the server has checked
 * the client's certificate: bytes the server's TCP acknowledges may
 * still be thrown away with a "certificate required" alert. So nothing
 * counts as acknowledged until the server has shown it accepted us (a
 * session ticket; TLS 1.2: its Finished), or the caller decides enough
 * time passed without an alert. */
bool ctd_tlslink_accepted(const struct ctd_tlslink *l);
void ctd_tlslink_accept(struct ctd_tlslink *l);

bool ctd_tlslink_pending(const struct ctd_tlslink *l);  /* ciphertext waits */
bool ctd_tlslink_resumed(const struct ctd_tlslink *l);
const char *ctd_tlslink_version(const struct ctd_tlslink *l);
uint64_t ctd_tlslink_wire_bytes(const struct ctd_tlslink *l);
/* Why the last call failed, one line. */
const char *ctd_tlslink_why(const struct ctd_tlslink *l);

#endif
