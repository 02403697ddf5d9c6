/* ctd-storebench: fills a flow store through ctd's own output (out_store:
 * the same rows, rollups and batches as the daemon) with N synthetic
 * finished flows ending evenly over the last SPAN seconds, and prints
 * the insert rate and the store's bytes per flow. bench/report_bench.py
 * then times `ctd report` on it.
 *
 * -f: the flows end over the coming SPAN seconds instead, as if time
 * ran while they were written, and the store's upkeep (the fold of each
 * hour over into its hour and day cells, the prune) runs once per
 * minute of that time, as the daemon's does once per minute: the
 * store's cost as it is in the daemon, folds included. (Past flows are
 * each added to every cell: their hours are over before they come.)
 *
 * Flows: 2,000 sources in 10.0.0.0/16 (a tenth IPv6 in 2001:db8::/48),
 * 20,000 destinations, 16 service ports over TCP and UDP, SNAT of a
 * third to 198.51.100.1; counters vary with i.
 *
 * usage: ctd-storebench -n FLOWS [-s SPAN_SECS] [-b BATCH] [-f] PATH
 */
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ctd/flows/record.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"

static const uint16_t ports[16] = { 53, 80, 443, 22, 25, 123, 993, 5432,
				    3306, 8080, 8443, 389, 636, 1194, 51820, 9000 };

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static void put_addr(uint8_t *a, bool v6, uint32_t host, uint8_t net)
{
	memset(a, 0, 16);
	if (v6) {
		memcpy(a, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8, 0, net }, 6);
		a[14] = (uint8_t)(host >> 8);
		a[15] = (uint8_t)host;
		return;
	}
	a[0] = net;
	a[1] = (uint8_t)(host >> 16);
	a[2] = (uint8_t)(host >> 8);
	a[3] = (uint8_t)host;
}

static void make(uint64_t i, uint64_t end_ms, struct ctd_record *r)
{
	uint64_t h = mix(i + 1);
	bool v6 = h % 10 == 0, nat = !v6 && h % 3 == 0;
	struct ctd_tuple *o = &r->tuple[CTD_DIR_ORIG], *re = &r->tuple[CTD_DIR_REPLY];

	memset(r, 0, sizeof(*r));
	r->family = v6 ? AF_INET6 : AF_INET;
	r->proto = h & 64 ? IPPROTO_UDP : IPPROTO_TCP;
	r->end_reason = CTD_END_DESTROY;
	r->nsid = CTD_NSID_SELF;
	r->id = (uint32_t)mix(i ^ 0x5bd1e995);    /* the kernel's look random */
	put_addr(o->src, v6, (uint32_t)(h >> 8) % 2000, 10);
	put_addr(o->dst, v6, (uint32_t)(h >> 24) % 20000, 172);
	o->sport = (uint16_t)(1024 + (h >> 40) % 60000);
	o->dport = ports[(h >> 12) & 15];
	memcpy(re->src, o->dst, 16);
	memcpy(re->dst, o->src, 16);
	re->sport = o->dport;
	re->dport = o->sport;
	if (nat)
		put_addr(re->dst, false, 0x006401, 198);   /* 198.0.100.1 */
	r->cnt[0] = (struct ctd_counters){ 2 + h % 20, 120 + h % 5000 };
	r->cnt[1] = (struct ctd_counters){ 1 + h % 30, 60 + (h >> 16) % 50000 };
	r->end_ns = end_ms * 1000000;
	r->start_ns = r->end_ns - (h % 60000) * 1000000;
}

static double secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double thread_cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* -f: the upkeep at each minute the flows' time passed; it runs on this
 * thread (the writer idle), so its CPU is this thread's meanwhile. */
static double upkeep_cpu;

static void upkeep(struct ctd_output *out, uint64_t *minute, uint64_t t_ms)
{
	double t0;

	if (t_ms / 60000 == *minute)
		return;
	*minute = t_ms / 60000;
	t0 = thread_cpu_secs();
	ctd_out_store_prune(out, t_ms);
	upkeep_cpu += thread_cpu_secs() - t0;
}

static int fill(struct ctd_output *out, uint64_t n, uint64_t span_ms,
		unsigned batch, bool ahead)
{
	struct timespec ts;
	uint64_t now_ms, start, minute = 0;
	struct ctd_record r;

	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000 - 1000;
	start = ahead ? now_ms : now_ms - span_ms;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t end = start + span_ms * i / n;

		if (ahead)
			upkeep(out, &minute, end);
		make(i, end, &r);
		if (out->ops->submit(out, &r) != CTD_OUT_DELIVERED)
			return -1;
		if ((i + 1) % batch == 0)
			out->ops->flush(out);
		if ((i + 1) % 1000000 == 0)
			fprintf(stderr, "%llu flows\n", (unsigned long long)i + 1);
	}
	out->ops->flush(out);
	return ctd_output_counter(out, "store_commit_errors") ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct ctd_out_store_cfg cfg = { NULL, 30 * 86400, 400 * 86400, 1ULL << 40, false };
	uint64_t n = 100000, span = 86400;
	unsigned batch = 4096;
	struct ctd_output *out;
	bool ahead = false;
	double t, cpu;
	int c;

	while ((c = getopt(argc, argv, "n:s:b:f")) != -1) {
		if (c == 'f')
			ahead = true;
		else if (c == 'n')
			n = strtoull(optarg, NULL, 10);
		else if (c == 's')
			span = strtoull(optarg, NULL, 10);
		else if (c == 'b')
			batch = (unsigned)strtoul(optarg, NULL, 10);
		else
			return 2;
	}
	if (optind + 1 != argc || !batch || batch > 8192 || !n) {
		fprintf(stderr, "usage: ctd-storebench -n FLOWS [-s SPAN_SECS] "
			"[-b BATCH<=8192] [-f] PATH\n");
		return 2;
	}
	cfg.path = argv[optind];
	if (ctd_out_store_new(&cfg, NULL, &out) < 0)
		return 1;
	t = secs();
	cpu = cpu_secs();
	if (fill(out, n, span * 1000, batch, ahead) < 0) {
		fprintf(stderr, "ctd-storebench: the store refused a batch\n");
		return 1;
	}
	t = secs() - t;
	cpu = cpu_secs() - cpu;
	ctd_out_store_trim(out);
	printf("flows %llu in %.1f s: %.0f rows/s, %.1f us CPU per row "
	       "(user+sys; commits took %.1f s)\nstore bytes %llu, bytes per "
	       "flow %llu\n", (unsigned long long)n, t, (double)n / t,
	       cpu * 1e6 / (double)n, (double)ctd_output_counter(out, "store_commit_us") / 1e6,
	       (unsigned long long)ctd_output_counter(out, "store_bytes"),
	       (unsigned long long)ctd_output_counter(out, "store_bytes_per_flow"));
	if (ahead)
		printf("upkeep (folds and prunes, included above): %.2f us "
		       "CPU per row\n", upkeep_cpu * 1e6 / (double)n);
	out->ops->free(out);
	return 0;
}
