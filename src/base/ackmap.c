/* ackmap: plaintext acknowledged from ciphertext acknowledged, for an
 * encrypted stream (ackmap.h). Owns nothing beyond its ring. Marks come
 * in stream order, so the acknowledged ones are always at the head. */
#include <string.h>

#include "ctd/base/ackmap.h"

void ctd_ackmap_reset(struct ctd_ackmap *m)
{
	m->head = m->n = 0;
	m->plain_acked = 0;
}

static struct ctd_ackmap_mark *at(struct ctd_ackmap *m, size_t i)
{
	return &m->mark[(m->head + i) % CTD_ACKMAP_MARKS];
}

void ctd_ackmap_note(struct ctd_ackmap *m, uint64_t plain, uint64_t cipher)
{
	/* Full: the newest mark covers this write too. Its plaintext is
	 * then acknowledged only with the later ciphertext end. */
	if (m->n == CTD_ACKMAP_MARKS) {
		*at(m, m->n - 1) = (struct ctd_ackmap_mark){ plain, cipher };
		return;
	}
	*at(m, m->n++) = (struct ctd_ackmap_mark){ plain, cipher };
}

uint64_t ctd_ackmap_advance(struct ctd_ackmap *m, uint64_t cipher)
{
	while (m->n && at(m, 0)->cipher <= cipher) {
		m->plain_acked = at(m, 0)->plain;
		m->head = (m->head + 1) % CTD_ACKMAP_MARKS;
		m->n--;
	}
	return m->plain_acked;
}
