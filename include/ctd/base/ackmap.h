/* ackmap: which plaintext bytes of an encrypted stream a peer's TCP has
 * acknowledged. TLS turns each write of plaintext into ciphertext of
 * another length (record headers, tags, padding, handshake and ticket
 * messages in between), so the socket's acknowledged byte count says
 * nothing about plaintext until each write is marked with where its
 * ciphertext ends. A mark (plain P, cipher C) says: all plaintext before
 * P is inside the first C ciphertext bytes. Pure; a fixed ring, no
 * allocation: when it is full the newest mark is moved forward instead,
 * which only makes acknowledgement later (coarser), never earlier. */
#ifndef CTD_ACKMAP_H
#define CTD_ACKMAP_H

#include <stddef.h>
#include <stdint.h>

#define CTD_ACKMAP_MARKS 256

struct ctd_ackmap_mark {
	uint64_t plain, cipher;     /* stream totals, both only grow */
};

struct ctd_ackmap {
	struct ctd_ackmap_mark mark[CTD_ACKMAP_MARKS];
	size_t head, n;
	uint64_t plain_acked;       /* plaintext known acknowledged */
};

/* A new stream (a new connection): both totals start at 0. */
void ctd_ackmap_reset(struct ctd_ackmap *m);
/* Plaintext up to plain is inside ciphertext up to cipher. */
void ctd_ackmap_note(struct ctd_ackmap *m, uint64_t plain, uint64_t cipher);
/* The peer acknowledged ciphertext up to cipher: returns the plaintext
 * total acknowledged with it. */
uint64_t ctd_ackmap_advance(struct ctd_ackmap *m, uint64_t cipher);

#endif
