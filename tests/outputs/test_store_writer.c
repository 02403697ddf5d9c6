/* Tests for src/outputs/store_writer.c with a write function of the
 * test's own, which can be held at a gate or made to fail: a filled
 * batch goes to the thread whole and in order and is known done by its
 * mark; while the thread writes, the loop's send never waits (it fills
 * the other batch, is refused with -EBUSY and a batch waiting is counted
 * once); a failed batch is kept and written again at the next send;
 * abandon drops what is not being written; an empty send runs the
 * upkeep; call runs on the caller's thread between writes; notify comes
 * once per batch, from the thread. Under helgrind or a TSan build this
 * is also the data-race test of the handoff. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/flows/record.h"
#include "ctd/outputs/store_writer.h"

#define CAP 8
#define MAX_CALLS 16

struct fixture {
	struct ctd_store_writer *w;
	pthread_mutex_t gate_mu;
	pthread_cond_t gate_cv;
	bool gate_closed;
	int fail;                 /* writes left to fail */
	/* Written on the writer's thread, read after wait or poll. */
	size_t calls;
	size_t n[MAX_CALLS];
	uint32_t first_id[MAX_CALLS], last_id[MAX_CALLS];
	sem_t notified;
	sem_t entered;            /* a write began */
};

static int write_fn(void *arg, const struct ctd_record *rec, size_t n,
		    struct ctd_store_tally *t)
{
	struct fixture *f = arg;
	size_t c = f->calls++;

	sem_post(&f->entered);
	pthread_mutex_lock(&f->gate_mu);
	while (f->gate_closed)
		pthread_cond_wait(&f->gate_cv, &f->gate_mu);
	pthread_mutex_unlock(&f->gate_mu);
	f->n[c] = n;
	f->first_id[c] = n ? rec[0].id : 0;
	f->last_id[c] = n ? rec[n - 1].id : 0;
	if (f->fail > 0) {
		f->fail--;
		t->errors++;
		return -EIO;
	}
	t->commits++;
	t->rows += n;
	return 0;
}

static void notify_fn(void *arg)
{
	sem_post(&((struct fixture *)arg)->notified);
}

static void gate(struct fixture *f, bool closed)
{
	pthread_mutex_lock(&f->gate_mu);
	f->gate_closed = closed;
	pthread_cond_broadcast(&f->gate_cv);
	pthread_mutex_unlock(&f->gate_mu);
}

static int setup(void **state)
{
	static struct fixture f;
	struct ctd_store_writer_cfg cfg = { .cap = CAP, .write = write_fn,
					    .arg = &f, .notify = notify_fn,
					    .notify_arg = &f, .nice = 5 };

	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.gate_mu, NULL);
	pthread_cond_init(&f.gate_cv, NULL);
	sem_init(&f.notified, 0, 0);
	sem_init(&f.entered, 0, 0);
	assert_int_equal(ctd_store_writer_new(&cfg, &f.w), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	gate(f, false);
	ctd_store_writer_free(f->w);
	pthread_mutex_destroy(&f->gate_mu);
	pthread_cond_destroy(&f->gate_cv);
	sem_destroy(&f->notified);
	sem_destroy(&f->entered);
	return 0;
}

/* Adds records id from .. from + n - 1. */
static void add_n(struct fixture *f, uint32_t from, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct ctd_record r = { .id = from + (uint32_t)i };

		assert_true(ctd_store_writer_add(f->w, &r));
	}
}

static struct ctd_store_writer_state poll_state(struct fixture *f,
						struct ctd_store_tally *t)
{
	struct ctd_store_writer_state st;

	ctd_store_writer_poll(f->w, &st, t);
	return st;
}

/* One batch: all of it, in order, known by its mark once written, and
 * the loop told once. An empty batch is not sent. */
static void test_batch_goes_whole(void **state)
{
	struct fixture *f = *state;
	struct ctd_store_writer_state st;
	struct ctd_store_tally t;

	assert_int_equal(ctd_store_writer_send(f->w, 0, false), -ENODATA);
	add_n(f, 1, 5);
	assert_int_equal(ctd_store_writer_filling(f->w), 5);
	assert_int_equal(ctd_store_writer_send(f->w, 42, false), 0);
	assert_int_equal(ctd_store_writer_filling(f->w), 0);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	st = poll_state(f, &t);
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->n[0], 5);
	assert_int_equal(f->first_id[0], 1);
	assert_int_equal(f->last_id[0], 5);
	assert_int_equal(st.done, 42);
	assert_int_equal(st.batches, 1);
	assert_false(st.busy);
	assert_int_equal(t.rows, 5);
	assert_int_equal(t.commits, 1);
	assert_int_equal(sem_trywait(&f->notified), -1);
}

/* While the thread is held in a write, the loop fills the other batch
 * to its bound and is refused, never kept waiting; the waiting batch is
 * counted once; it goes as soon as the first is done. */
static void test_loop_never_waits(void **state)
{
	struct fixture *f = *state;
	struct ctd_record extra = { .id = 99 };
	struct ctd_store_writer_state st;

	gate(f, true);
	add_n(f, 1, 3);
	assert_int_equal(ctd_store_writer_send(f->w, 3, false), 0);
	add_n(f, 4, CAP);
	assert_false(ctd_store_writer_add(f->w, &extra));
	assert_int_equal(ctd_store_writer_send(f->w, 3 + CAP, false), -EBUSY);
	assert_int_equal(ctd_store_writer_send(f->w, 3 + CAP, false), -EBUSY);
	st = poll_state(f, NULL);
	assert_true(st.busy);
	assert_int_equal(st.done, 0);
	assert_int_equal(st.waits, 1);
	assert_int_equal(ctd_store_writer_filling(f->w), CAP);
	gate(f, false);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	assert_int_equal(poll_state(f, NULL).done, 3);
	assert_int_equal(ctd_store_writer_send(f->w, 3 + CAP, false), 0);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	st = poll_state(f, NULL);
	assert_int_equal(st.done, 3 + CAP);
	assert_int_equal(st.batches, 2);
	assert_int_equal(st.waits, 1);
	assert_int_equal(f->first_id[1], 4);
	assert_int_equal(f->last_id[1], 3 + CAP);
}

/* A burst: while the thread writes, the batch being filled grows past
 * CAP and goes whole, in order; grown, it costs extra bytes until it is
 * handed over and empty again, when it shrinks back to CAP. */
static void test_grow_for_burst(void **state)
{
	struct fixture *f = *state;
	struct ctd_record more = { .id = 99 };
	const size_t rec = sizeof(struct ctd_record);

	gate(f, true);
	add_n(f, 1, 2);
	assert_int_equal(ctd_store_writer_send(f->w, 2, false), 0);
	add_n(f, 3, CAP);
	assert_false(ctd_store_writer_add(f->w, &more));
	assert_int_equal(ctd_store_writer_extra(f->w), 0);
	assert_int_equal(ctd_store_writer_grow(f->w, 2 * CAP), 0);
	assert_int_equal(ctd_store_writer_room(f->w), 2 * CAP);
	assert_int_equal(ctd_store_writer_extra(f->w), CAP * rec);
	add_n(f, 3 + CAP, CAP);
	assert_false(ctd_store_writer_add(f->w, &more));
	gate(f, false);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	assert_int_equal(ctd_store_writer_send(f->w, 2 + 2 * CAP, false), 0);
	/* The grown batch is the thread's now; the empty one is CAP. */
	assert_int_equal(ctd_store_writer_room(f->w), CAP);
	assert_int_equal(ctd_store_writer_extra(f->w), CAP * rec);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	assert_int_equal(f->n[1], 2 * CAP);
	assert_int_equal(f->first_id[1], 3);
	assert_int_equal(f->last_id[1], 2 + 2 * CAP);
	/* Written: the next poll shrinks it. */
	assert_int_equal(poll_state(f, NULL).done, 2 + 2 * CAP);
	assert_int_equal(ctd_store_writer_extra(f->w), 0);
	add_n(f, 100, 1);
	assert_int_equal(ctd_store_writer_send(f->w, 3 + 2 * CAP, false), 0);
	assert_int_equal(ctd_store_writer_room(f->w), CAP);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	assert_int_equal(f->n[2], 1);
}

/* A failed write keeps its batch on the thread; the next send has it
 * written again (the same records) and leaves the filled one waiting. */
static void test_failed_batch_kept(void **state)
{
	struct fixture *f = *state;
	struct ctd_store_writer_state st;
	struct ctd_store_tally t;

	f->fail = 1;
	add_n(f, 1, 4);
	assert_int_equal(ctd_store_writer_send(f->w, 4, false), 0);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	st = poll_state(f, &t);
	assert_true(st.busy);
	assert_true(st.failed);
	assert_int_equal(st.done, 0);
	assert_int_equal(t.errors, 1);
	add_n(f, 5, 2);
	assert_int_equal(ctd_store_writer_send(f->w, 6, false), -EBUSY);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	st = poll_state(f, NULL);
	assert_false(st.busy);
	assert_int_equal(st.done, 4);
	assert_int_equal(f->calls, 2);
	assert_int_equal(f->n[1], 4);
	assert_int_equal(f->first_id[1], 1);
	assert_int_equal(ctd_store_writer_send(f->w, 6, false), 0);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	assert_int_equal(poll_state(f, NULL).done, 6);
	assert_int_equal(f->first_id[2], 5);
}

/* Abandon drops a failed batch and the filled one; a batch being
 * written when abandoned and failing is dropped too, one that commits
 * still counts. */
static void test_abandon(void **state)
{
	struct fixture *f = *state;
	struct ctd_store_writer_state st;

	f->fail = 1;
	add_n(f, 1, 2);
	assert_int_equal(ctd_store_writer_send(f->w, 2, false), 0);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	add_n(f, 3, 2);
	ctd_store_writer_abandon(f->w);
	st = poll_state(f, NULL);
	assert_false(st.busy);
	assert_int_equal(ctd_store_writer_filling(f->w), 0);
	assert_int_equal(ctd_store_writer_send(f->w, 4, false), -ENODATA);

	gate(f, true);
	f->fail = 1;
	add_n(f, 5, 1);
	while (sem_trywait(&f->entered) == 0)
		;                   /* the writes before */
	assert_int_equal(ctd_store_writer_send(f->w, 5, false), 0);
	sem_wait(&f->entered);      /* this batch's write, at the gate */
	ctd_store_writer_abandon(f->w);
	gate(f, false);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	st = poll_state(f, NULL);
	assert_false(st.busy);
	assert_int_equal(st.done, 0);

	gate(f, true);
	add_n(f, 6, 1);
	assert_int_equal(ctd_store_writer_send(f->w, 6, false), 0);
	sem_wait(&f->entered);
	ctd_store_writer_abandon(f->w);
	gate(f, false);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	assert_int_equal(poll_state(f, NULL).done, 6);
}

static int64_t count_call(void *arg, struct ctd_store_tally *t)
{
	t->pruned += 7;
	return *(int64_t *)arg;
}

/* An empty send runs the write function with no records (upkeep); call
 * runs between writes and its tally is published. */
static void test_upkeep_and_call(void **state)
{
	struct fixture *f = *state;
	struct ctd_store_tally t;
	int64_t v = 123;

	assert_int_equal(ctd_store_writer_send(f->w, 0, true), 0);
	sem_wait(&f->notified);
	ctd_store_writer_wait(f->w);
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->n[0], 0);
	assert_int_equal(ctd_store_writer_call(f->w, count_call, &v), 123);
	poll_state(f, &t);
	assert_int_equal(t.pruned, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_batch_goes_whole),
		T(test_loop_never_waits),
		T(test_grow_for_burst),
		T(test_failed_batch_kept),
		T(test_abandon),
		T(test_upkeep_and_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
