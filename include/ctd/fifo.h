/* fifo: an intrusive doubly linked FIFO of expiry nodes, O(1) append and
 * unlink. Shared by the expiry classes and the engine's suspect queue. */
#ifndef CTD_FIFO_H
#define CTD_FIFO_H

#include <stddef.h>

#include "ctd/expiry.h"

struct ctd_fifo {
	struct ctd_expiry_node *head;
	struct ctd_expiry_node *tail;
	size_t count;
};

static inline void ctd_fifo_unlink(struct ctd_fifo *l, struct ctd_expiry_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l->tail = n->prev;
	n->prev = n->next = NULL;
	n->linked = false;
	l->count--;
}

static inline void ctd_fifo_append(struct ctd_fifo *l, struct ctd_expiry_node *n)
{
	n->prev = l->tail;
	n->next = NULL;
	if (l->tail)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
	n->linked = true;
	l->count++;
}

#endif
