/* store_writer: the flow store's writer thread and its two batches.
 *
 * The loop copies records into `fill`; send swaps it with `held` (the
 * thread's) when the thread has none, and wakes the thread, which
 * writes `held` without the lock and then, under it, marks it done or
 * failed and publishes its tally. A failed batch stays in `held` until
 * the loop's next send asks for it again, so a broken disk is retried
 * at the loop's pace, as the store did before it had a thread, while the
 * loop goes on filling the other batch.
 *
 * Why a thread in a one-loop daemon: SQLite has no asynchronous API, its
 * statements read and write pages of the file, and a commit waits for
 * fsync; on a slow or failing disk that is seconds in which the loop
 * would read no conntrack event.
 *
 * Signals are blocked on the thread: they belong to the loop. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ctd/flows/record.h"
#include "ctd/outputs/store_writer.h"

struct ctd_store_writer {
	struct ctd_store_writer_cfg cfg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t kick;       /* the thread: go or stop */
	pthread_cond_t idle;       /* the loop: a write ended */
	struct ctd_record *fill;   /* the loop's, no lock */
	size_t nfill;              /* the loop's, no lock */
	size_t fill_cap, held_cap; /* the loop's: cfg.cap, or more (grow) */
	bool fill_waited;          /* the loop's: counted in waits */
	/* Under mu: */
	struct ctd_record *held;
	size_t nheld;
	uint64_t mark;
	bool busy, go, writing, failed, drop, stop;
	struct ctd_store_writer_state st;
	struct ctd_store_tally tally;   /* published */
	struct ctd_store_tally mine;    /* the thread's (or call's, locked) */
};

/* One write, mu held on entry and exit. */
static void write_held(struct ctd_store_writer *w)
{
	int r;

	w->go = false;
	w->writing = true;
	pthread_mutex_unlock(&w->mu);
	r = w->cfg.write(w->cfg.arg, w->held, w->nheld, &w->mine);
	pthread_mutex_lock(&w->mu);
	w->writing = false;
	w->failed = r < 0;
	if (r == 0) {
		w->st.done = w->mark;
		w->st.batches++;
	}
	if (r == 0 || w->drop) {
		w->busy = w->failed = w->drop = false;
		w->nheld = 0;
	}
	w->tally = w->mine;
	pthread_cond_broadcast(&w->idle);
}

static void *run(void *arg)
{
	struct ctd_store_writer *w = arg;

	/* Linux: a thread's own nice (the process's threads differ). */
	if (w->cfg.nice)
		setpriority(PRIO_PROCESS, (id_t)gettid(), w->cfg.nice);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && !w->go)
			pthread_cond_wait(&w->kick, &w->mu);
		if (w->stop)
			break;
		write_held(w);
		pthread_mutex_unlock(&w->mu);
		if (w->cfg.notify)
			w->cfg.notify(w->cfg.notify_arg);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int start(struct ctd_store_writer *w)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&w->thread, NULL, run, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0)
		pthread_setname_np(w->thread, "ctd-store");   /* top -H, ps -L */
	return -r;
}

int ctd_store_writer_new(const struct ctd_store_writer_cfg *cfg,
			 struct ctd_store_writer **ret)
{
	struct ctd_store_writer *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->cfg = *cfg;
	w->fill = malloc(cfg->cap * sizeof(*w->fill));
	w->held = malloc(cfg->cap * sizeof(*w->held));
	w->fill_cap = w->held_cap = cfg->cap;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->kick, NULL);
	pthread_cond_init(&w->idle, NULL);
	r = !w->fill || !w->held ? -ENOMEM : start(w);
	if (r < 0) {
		w->stop = true;      /* no thread to join */
		free(w->fill);
		free(w->held);
		pthread_cond_destroy(&w->kick);
		pthread_cond_destroy(&w->idle);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void ctd_store_writer_free(struct ctd_store_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->kick);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->kick);
	pthread_cond_destroy(&w->idle);
	pthread_mutex_destroy(&w->mu);
	free(w->fill);
	free(w->held);
	free(w);
}

bool ctd_store_writer_add(struct ctd_store_writer *w,
			  const struct ctd_record *rec)
{
	if (w->nfill == w->fill_cap)
		return false;
	w->fill[w->nfill++] = *rec;
	return true;
}

size_t ctd_store_writer_filling(const struct ctd_store_writer *w)
{
	return w->nfill;
}

size_t ctd_store_writer_room(const struct ctd_store_writer *w)
{
	return w->fill_cap;
}

int ctd_store_writer_grow(struct ctd_store_writer *w, size_t cap)
{
	struct ctd_record *f = realloc(w->fill, cap * sizeof(*f));

	if (!f)
		return -ENOMEM;
	w->fill = f;
	w->fill_cap = cap;
	return 0;
}

size_t ctd_store_writer_extra(const struct ctd_store_writer *w)
{
	return (w->fill_cap + w->held_cap - 2 * w->cfg.cap) * sizeof(*w->fill);
}

/* A batch grown for a burst goes back to cfg.cap once it is empty
 * again (realloc gives a large block's pages back). */
static void shrink(struct ctd_store_writer *w, struct ctd_record **b,
		   size_t *cap)
{
	struct ctd_record *s;

	if (*cap == w->cfg.cap)
		return;
	s = realloc(*b, w->cfg.cap * sizeof(*s));
	if (s) {
		*b = s;
		*cap = w->cfg.cap;
	}
}

/* mu held: the filled batch becomes the thread's. */
static void hand_over(struct ctd_store_writer *w, uint64_t mark)
{
	struct ctd_record *t = w->held;
	size_t cap = w->held_cap;

	w->held = w->fill;
	w->held_cap = w->fill_cap;
	w->nheld = w->nfill;
	w->fill = t;
	w->fill_cap = cap;
	w->nfill = 0;
	shrink(w, &w->fill, &w->fill_cap);
	w->fill_waited = false;
	w->mark = mark;
	w->busy = w->go = true;
	pthread_cond_signal(&w->kick);
}

int ctd_store_writer_send(struct ctd_store_writer *w, uint64_t mark,
			  bool empty)
{
	int r = 0;

	pthread_mutex_lock(&w->mu);
	if (w->busy) {
		if (w->failed && !w->writing && !w->go) {
			w->go = true;
			pthread_cond_signal(&w->kick);
		}
		if (w->nfill && !w->fill_waited) {
			w->fill_waited = true;
			w->st.waits++;
		}
		r = -EBUSY;
	} else if (!w->nfill && !empty) {
		r = -ENODATA;
	} else {
		hand_over(w, mark);
	}
	pthread_mutex_unlock(&w->mu);
	return r;
}

void ctd_store_writer_poll(struct ctd_store_writer *w,
			   struct ctd_store_writer_state *st,
			   struct ctd_store_tally *t)
{
	pthread_mutex_lock(&w->mu);
	if (!w->busy)
		shrink(w, &w->held, &w->held_cap);
	w->st.busy = w->busy;
	w->st.failed = w->failed;
	*st = w->st;
	if (t)
		*t = w->tally;
	pthread_mutex_unlock(&w->mu);
}

void ctd_store_writer_wait(struct ctd_store_writer *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->writing || w->go)
		pthread_cond_wait(&w->idle, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

void ctd_store_writer_abandon(struct ctd_store_writer *w)
{
	w->nfill = 0;
	shrink(w, &w->fill, &w->fill_cap);
	pthread_mutex_lock(&w->mu);
	if (w->writing) {
		w->drop = true;
	} else {
		w->busy = w->go = w->failed = false;
		w->nheld = 0;
	}
	pthread_mutex_unlock(&w->mu);
}

int64_t ctd_store_writer_call(struct ctd_store_writer *w,
			      int64_t (*fn)(void *arg, struct ctd_store_tally *t),
			      void *arg)
{
	int64_t r;

	pthread_mutex_lock(&w->mu);
	while (w->writing || w->go)
		pthread_cond_wait(&w->idle, &w->mu);
	r = fn(arg, &w->mine);
	w->tally = w->mine;
	pthread_mutex_unlock(&w->mu);
	return r;
}
