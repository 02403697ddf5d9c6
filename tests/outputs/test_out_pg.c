/* Tests for src/outputs/out_pg.c and pgconn.c without a server (the
 * kernel test test_postgresql.py runs a real one): the reconnect
 * backoff's range and growth; a server that cannot be reached is
 * counted and logged once per streak with the password hidden, and
 * reconnects are tried again; meanwhile flow records are refused (they
 * wait in delivery's dying list and spool) and interim and event records
 * are final at once; a conninfo libpq cannot parse is refused. */
#include <errno.h>
#include <ev.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "logcap.h"

#include "ctd/flows/record.h"
#include "ctd/outputs/out_pg.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "ctd/outputs/pgconn.h"

#define UNREACHABLE "host=/nonexistent/ctd-test dbname=x password=s3cret"

static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(ctd_pgconn_backoff_ms(1, 0), 125);
	assert_int_equal(ctd_pgconn_backoff_ms(1, UINT32_MAX), 250);
	assert_int_equal(ctd_pgconn_backoff_ms(2, 0), 250);
	assert_int_equal(ctd_pgconn_backoff_ms(3, UINT32_MAX), 1000);
	/* Capped at 5 s, even after a long outage. */
	assert_int_equal(ctd_pgconn_backoff_ms(6, UINT32_MAX), 5000);
	assert_int_equal(ctd_pgconn_backoff_ms(100000, UINT32_MAX), 5000);
	assert_int_equal(ctd_pgconn_backoff_ms(100000, 0), 2500);
	for (unsigned f = 1; f < 20; f++)
		for (uint32_t r = 0; r < 0xf0000000u; r += 0x10000000u)
			assert_true(ctd_pgconn_backoff_ms(f, r) <=
				    ctd_pgconn_backoff_ms(f + 1, r));
}

static void flow(struct ctd_record *r, uint32_t id, enum ctd_end_reason why)
{
	memset(r, 0, sizeof(*r));
	r->flags = CTD_REC_COUNTERS;
	r->family = 2;    /* AF_INET */
	r->proto = 17;
	r->id = id;
	r->nsid = -1;
	r->end_reason = (uint8_t)why;
}

/* Runs the loop until the output counted n connect failures. */
static void until_failures(struct ev_loop *loop, struct ctd_output *out,
			   uint64_t n)
{
	for (int i = 0; i < 2000 && ctd_output_counter(out, "pg_connect_errors") < n; i++)
		ev_run(loop, EVRUN_ONCE);
	assert_int_equal(ctd_output_counter(out, "pg_connect_errors"), n);
}

static void test_unreachable_holds(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct ctd_out_pg_cfg cfg = { UNREACHABLE, "host1", 0, 0 };
	struct ctd_output *out;
	struct ctd_record rec;
	struct logcap lc;
	const char *log;

	(void)state;
	logcap_begin(&lc);
	assert_int_equal(ctd_out_pg_new(loop, &cfg, &out), 0);
	until_failures(loop, out, 1);
	log = logcap_end(&lc);
	assert_non_null(strstr(log, "ctd: error: postgresql host=/nonexistent/"
			       "ctd-test dbname=x password=(hidden): cannot "
			       "connect: "));
	assert_null(strstr(log, "s3cret"));
	assert_int_equal(ctd_output_counter(out, "pg_connected"), 0);
	/* The next attempt comes after the backoff, and says nothing. */
	logcap_begin(&lc);
	until_failures(loop, out, 2);
	assert_string_equal(logcap_end(&lc), "");
	flow(&rec, 1, CTD_END_DESTROY);
	assert_int_equal(out->ops->submit(out, &rec), CTD_OUT_AGAIN);
	flow(&rec, 2, CTD_END_EXPIRED);
	assert_int_equal(out->ops->submit(out, &rec), CTD_OUT_AGAIN);
	out->ops->flush(out);
	assert_int_equal(out->ops->settled(out), 0);
	out->ops->abandon(out);
	assert_int_equal(out->ops->settled(out), 0);
	out->ops->free(out);
	ev_loop_destroy(loop);
}

static void test_interim_final_at_once(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct ctd_out_pg_cfg cfg = { UNREACHABLE, "host1", 0, 0 };
	struct ctd_output *out;
	struct ctd_record rec;

	(void)state;
	assert_int_equal(ctd_out_pg_new(loop, &cfg, &out), 0);
	flow(&rec, 1, CTD_END_ACTIVE);
	assert_int_equal(out->ops->submit(out, &rec), CTD_OUT_DELIVERED);
	rec.end_reason = CTD_END_DESTROY;
	rec.events = 1;         /* an event record: not stored either */
	assert_int_equal(out->ops->submit(out, &rec), CTD_OUT_DELIVERED);
	assert_int_equal(out->ops->settled(out), 2);
	out->ops->free(out);
	ev_loop_destroy(loop);
}

static void test_bad_conninfo(void **state)
{
	struct ctd_out_pg_cfg cfg = { "host=db nosuchkey=1", "h", 0, 0 };
	struct ctd_output *out = NULL;
	struct logcap lc;

	(void)state;
	logcap_begin(&lc);
	assert_int_equal(ctd_out_pg_new(EV_DEFAULT, &cfg, &out), -EINVAL);
	assert_string_equal(logcap_end(&lc), "ctd: error: postgresql: invalid "
			    "connection option \"nosuchkey\"\n");
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_unreachable_holds),
		cmocka_unit_test(test_interim_final_at_once),
		cmocka_unit_test(test_bad_conninfo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
