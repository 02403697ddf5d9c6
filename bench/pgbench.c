/* ctd-pgbench: rows per second the postgresql output sustains. Drives
 * the real output (out_pg.c: COPY text encoding, batches, the async
 * connection) in its own libev loop with N synthetic flow records, as
 * delivery would: a burst of records, the flush, one loop turn, until
 * every record is settled (committed). Prints rows/s and the output's
 * counters. Run it twice on the same database: the second run inserts
 * nothing (every row a repeat), which is what a replay costs.
 *
 * The rollups cost one upsert per distinct (minute, host) of a batch,
 * so the number of source hosts (-H, default 1024; the records all end
 * within the same minute or two) matters as much as the row count.
 *
 * usage: ctd-pgbench -d CONNINFO [-n ROWS] [-H HOSTS] [-6 IPV6_PERCENT]
 *                    [-e EXPORTER] [-s SEED]
 */
#include <ev.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctd/flows/record.h"
#include "ctd/outputs/out_pg.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"

#define BURST 1024     /* records per loop turn, as one event batch */

struct opts {
	const char *conninfo, *exporter;
	unsigned long n, v6, seed, hosts;
};

/* Flow i of run seed: distinct ids, sources over o->hosts hosts. */
static void make(unsigned long i, const struct opts *o, struct ctd_record *r)
{
	struct ctd_tuple *t = &r->tuple[CTD_DIR_ORIG];
	bool v6 = i % 100 < o->v6;
	unsigned long h = i % o->hosts;

	memset(r, 0, sizeof(*r));
	r->flags = CTD_REC_COUNTERS | CTD_REC_KERNEL_TIME;
	r->family = v6 ? AF_INET6 : AF_INET;
	r->proto = i % 3 ? IPPROTO_UDP : IPPROTO_TCP;
	r->id = (uint32_t)(i + o->seed * 7919);
	r->start_ns = 1795536579852000000ull + o->seed * 1000000000000ull + i;
	r->end_ns = r->start_ns + 250000000ull;
	r->nsid = -1;
	t->src[0] = v6 ? 0x20 : 10;
	t->src[v6 ? 13 : 1] = (uint8_t)(h >> 16);
	t->src[v6 ? 14 : 2] = (uint8_t)(h >> 8);
	t->src[v6 ? 15 : 3] = (uint8_t)h;
	t->dst[0] = v6 ? 0x20 : 192;
	t->dst[v6 ? 15 : 3] = (uint8_t)(i % 7);
	t->sport = (uint16_t)(1024 + i % 60000);
	t->dport = 53;
	r->tuple[CTD_DIR_REPLY] = *t;
	memcpy(r->tuple[CTD_DIR_REPLY].src, t->dst, 16);
	memcpy(r->tuple[CTD_DIR_REPLY].dst, t->src, 16);
	r->tuple[CTD_DIR_REPLY].sport = 53;
	r->tuple[CTD_DIR_REPLY].dport = t->sport;
	r->cnt[0] = (struct ctd_counters){ 1 + i % 5, 60 + i % 900 };
	r->cnt[1] = (struct ctd_counters){ 1, 120 };
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run(struct ev_loop *loop, struct ctd_output *out,
	       const struct opts *o)
{
	unsigned long sent = 0;
	struct ctd_record rec;

	while (out->ops->settled(out) < o->n) {
		bool refused = false;

		for (int k = 0; k < BURST && sent < o->n && !refused; k++) {
			make(sent, o, &rec);
			refused = out->ops->submit(out, &rec) == CTD_OUT_AGAIN;
			sent += !refused;
		}
		out->ops->flush(out);
		ev_run(loop, refused || sent == o->n ? EVRUN_ONCE : EVRUN_NOWAIT);
		if (ctd_output_counter(out, "pg_query_errors")) {
			fprintf(stderr, "ctd-pgbench: the server refused a batch\n");
			return 1;
		}
	}
	return 0;
}

static void report(const struct ctd_output *out, const struct opts *o,
		   double secs)
{
	uint64_t commits = ctd_output_counter(out, "store_commits");

	printf("%lu rows in %.2f s: %.0f rows/s; %llu batches (mean %.0f rows,"
	       " commit %.1f ms), %llu inserted, %llu repeats, %llu "
	       "connection failures\n", o->n, secs, o->n / secs,
	       (unsigned long long)commits,
	       commits ? (double)o->n / commits : 0.0,
	       commits ? ctd_output_counter(out, "pg_commit_us") / 1e3 / commits :
	       0.0,
	       (unsigned long long)ctd_output_counter(out, "store_rows"),
	       (unsigned long long)ctd_output_counter(out, "store_repeats"),
	       (unsigned long long)(ctd_output_counter(out, "pg_connect_errors") +
				    ctd_output_counter(out, "pg_lost")));
}

int main(int argc, char **argv)
{
	struct opts o = { NULL, "pgbench", 200000, 0, 1, 1024 };
	struct ev_loop *loop = ev_default_loop(0);
	struct ctd_output *out;
	double t0;
	int c, r;

	while ((c = getopt(argc, argv, "d:n:6:e:s:H:")) != -1) {
		if (c == 'd')
			o.conninfo = optarg;
		else if (c == 'e')
			o.exporter = optarg;
		else if (c == 'n' || c == '6' || c == 's' || c == 'H')
			*(c == 'n' ? &o.n : c == '6' ? &o.v6 : c == 's' ?
			  &o.seed : &o.hosts) = strtoul(optarg, NULL, 10);
		else
			return 2;
	}
	if (!o.conninfo || !o.hosts) {
		fprintf(stderr, "usage: ctd-pgbench -d CONNINFO [-n ROWS] "
			"[-H HOSTS] [-6 IPV6_PERCENT] [-e EXPORTER] [-s SEED]\n");
		return 2;
	}
	struct ctd_out_pg_cfg cfg = { o.conninfo, o.exporter, 0, 0 };

	if (ctd_out_pg_new(loop, &cfg, &out) < 0)
		return 1;
	t0 = now_s();
	r = run(loop, out, &o);
	if (r == 0)
		report(out, &o, now_s() - t0);
	out->ops->free(out);
	return r;
}
