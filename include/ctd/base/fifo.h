/* fifo: an intrusive doubly linked FIFO, O(1) append and unlink. The
 * nodes live inside what is queued (expiry.h embeds one in each flow's
 * expiry node); shared by the expiry classes and the engine's suspect
 * and tombstone queues. Depends on nothing else in ctd. */
#ifndef CTD_FIFO_H
#define CTD_FIFO_H

#include <stdbool.h>
#include <stddef.h>

struct ctd_fifo_node {
	struct ctd_fifo_node *prev;
	struct ctd_fifo_node *next;
};

struct ctd_fifo {
	struct ctd_fifo_node *head;
	struct ctd_fifo_node *tail;
	size_t count;
};

/* Whether n is on l. Unlink clears both links, so a node is on a list
 * exactly when it has a predecessor or is the head, and a zeroed node
 * is on none. */
static inline bool ctd_fifo_linked(const struct ctd_fifo *l,
				   const struct ctd_fifo_node *n)
{
	return n->prev || l->head == n;
}

static inline void ctd_fifo_unlink(struct ctd_fifo *l, struct ctd_fifo_node *n)
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
	l->count--;
}

static inline void ctd_fifo_append(struct ctd_fifo *l, struct ctd_fifo_node *n)
{
	n->prev = l->tail;
	n->next = NULL;
	if (l->tail)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
	l->count++;
}

#endif
