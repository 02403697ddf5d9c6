/* ctd-membench: what a tracked flow costs in memory. Loads N flows into
 * the real engine (flow table, expiry lists) as NEW events and prints
 * bytes per flow twice: the process's RSS growth divided by N, and the
 * table's own accounting (ctd_flowtable_memory, as `ctd -s` reports it).
 *
 * usage: ctd-membench [-n FLOWS] [-s NAT_PERCENT] [-6 IPV6_PERCENT]
 */
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/flows/engine.h"
#include "ctd/flows/flowtable.h"
#include "ctd/kernel/ctevent.h"

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2)
		exit(1);
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Flow i: 10.a.b.c:(1024 + i % 50000) -> 192.0.2.1:53 over UDP; the NAT
 * share's replies come back to 198.51.100.1 (SNAT). */
static void make_event(size_t i, bool nat, bool v6, struct ctd_event *ev)
{
	struct ctd_tuple *o = &ev->tuple[CTD_DIR_ORIG];
	struct ctd_tuple *r = &ev->tuple[CTD_DIR_REPLY];

	memset(ev, 0, sizeof(*ev));
	ev->type = CTD_EV_NEW;
	ev->have = CTD_HAVE_ORIG | CTD_HAVE_REPLY | CTD_HAVE_ID |
		   CTD_HAVE_STATUS | CTD_HAVE_TIMEOUT;
	ev->family = v6 ? AF_INET6 : AF_INET;
	ev->proto = IPPROTO_UDP;
	ev->id = (uint32_t)i + 1;
	ev->timeout = 30;
	if (v6) {
		o->src[0] = 0x20;
		o->src[1] = 0x01;
		o->src[2] = 0x0d;
		o->src[3] = 0xb8;
		o->dst[0] = 0x20;
		o->dst[1] = 0x01;
		o->dst[15] = 1;
		o->src[13] = (uint8_t)(i >> 16);
		o->src[14] = (uint8_t)(i >> 8);
		o->src[15] = (uint8_t)i;
	} else {
		o->src[0] = 10;
		o->src[1] = (uint8_t)(i >> 16);
		o->src[2] = (uint8_t)(i >> 8);
		o->src[3] = (uint8_t)i;
		o->dst[0] = 192;
		o->dst[2] = 2;
		o->dst[3] = 1;
	}
	o->sport = (uint16_t)(1024 + i % 50000);
	o->dport = 53;
	memcpy(r->src, o->dst, 16);
	memcpy(r->dst, o->src, 16);
	r->sport = o->dport;
	r->dport = o->sport;
	if (nat) {
		ev->status |= IPS_SRC_NAT;
		memset(r->dst, 0, 16);
		r->dst[0] = 198;
		r->dst[1] = 51;
		r->dst[2] = 100;
		r->dst[3] = 1;
		r->dport = (uint16_t)(20000 + i % 40000);
	}
}

static void on_record(void *arg, const struct ctd_record *rec)
{
	(void)arg;
	(void)rec;
}

int main(int argc, char **argv)
{
	size_t n = 1000000;
	unsigned nat_pct = 0, v6_pct = 0;
	struct ctd_engine_cfg ec = { .remember_ends = 0 };
	struct ctd_engine_sinks sinks = { .record = on_record };
	struct ctd_now now = ctd_now_read();
	static struct ctd_stats stats;
	struct ctd_engine *eng;
	struct ctd_event ev;
	long before, after;
	size_t table;
	int c;

	while ((c = getopt(argc, argv, "n:s:6:")) != -1) {
		switch (c) {
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 's': nat_pct = (unsigned)strtoul(optarg, NULL, 10); break;
		case '6': v6_pct = (unsigned)strtoul(optarg, NULL, 10); break;
		default:
			fputs("usage: ctd-membench [-n FLOWS] [-s NAT_PERCENT] "
			      "[-6 IPV6_PERCENT]\n", stderr);
			return 2;
		}
	}
	if (n > 1u << 24) {
		fputs("ctd-membench: at most 16777216 flows\n", stderr);
		return 2;
	}
	for (int i = 0; i < CTD_TMO__COUNT; i++)
		ec.timeout_s[i] = 30;
	before = rss_kib();
	eng = ctd_engine_new(&ec, &stats, &sinks);
	if (!eng)
		return 1;
	for (size_t i = 0; i < n; i++) {
		make_event(i, i % 100 < nat_pct, (i / 7) % 100 < v6_pct, &ev);
		ctd_engine_event(eng, &ev, &now);
	}
	after = rss_kib();
	table = ctd_flowtable_memory(ctd_engine_flows(eng));
	if (ctd_flowtable_count(ctd_engine_flows(eng)) != n) {
		fprintf(stderr, "ctd-membench: %zu flows tracked, not %zu\n",
			ctd_flowtable_count(ctd_engine_flows(eng)), n);
		return 1;
	}
	printf("flows           %zu (%u%% NAT, %u%% IPv6)\n", n, nat_pct, v6_pct);
	printf("sizeof flow     %zu bytes\n", sizeof(struct ctd_flow));
	printf("RSS growth      %ld KiB = %.1f bytes/flow\n", after - before,
	       (double)(after - before) * 1024 / (double)n);
	printf("table accounts  %zu bytes = %.1f bytes/flow\n", table,
	       (double)table / (double)n);
	ctd_engine_free(eng);
	return 0;
}
