/* ctd-replay: drives recorded ctnetlink messages through ctd's real hot
 * path (parse -> flow table -> expiry lists -> delivery -> JSON output)
 * as fast as it can, and prints what that costs per event.
 *
 * A recording (`ctd --record FILE`, or the .nl files in tests/data) holds a few
 * flows' lives. With -n, copies of it are made until there are that many
 * events: copy k has k folded into the source address of the original
 * tuple, the destination of the reply tuple and the conntrack id, so
 * every copy is a distinct flow. Copies are interleaved -w at a time, so
 * the table holds that many flows' worth while they run, as on a busy
 * firewall. Messages are handed over in batches of 64 (one recvmmsg's
 * worth, through ctd_engine_messages as ctd does) with one clock read
 * per batch and the outputs flushed every 4096 messages, as ctd's
 * netlink source and loop do.
 *
 * usage: ctd-replay [-n EVENTS] [-w WINDOW] [-o FILE] [-r ROUNDS] RECORDING...
 */
#include <errno.h>
#include <getopt.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <ev.h>
#include <libmnl/libmnl.h>

#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/delivery/deliver.h"
#include "ctd/flows/engine.h"
#include "ctd/flows/sysctl.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/out_file.h"
#include "ctd/outputs/output.h"

#define BATCH 64          /* datagrams per recvmmsg in nlsrc.c */
#define FLUSH_EVERY 4096  /* ctd's default budget per wakeup */

struct msgs {
	uint8_t *buf;
	size_t len, cap;
	size_t count;
	size_t *off;          /* start of each message */
};

__attribute__((noreturn)) static void die(const char *what)
{
	fprintf(stderr, "ctd-replay: %s\n", what);
	exit(1);
}

static void append(struct msgs *m, const void *data, size_t len)
{
	size_t need = MNL_ALIGN(len);

	if (m->len + need > m->cap) {
		m->cap = (m->len + need) * 2;
		m->buf = realloc(m->buf, m->cap);
		if (!m->buf)
			die("out of memory");
	}
	if ((m->count & (m->count + 1)) == 0) {
		m->off = realloc(m->off, (m->count + 1) * 2 * sizeof(*m->off));
		if (!m->off)
			die("out of memory");
	}
	memcpy(m->buf + m->len, data, len);
	memset(m->buf + m->len + len, 0, need - len);
	m->off[m->count++] = m->len;
	m->len += need;
}

static void load(struct msgs *m, const char *path)
{
	FILE *f = fopen(path, "rb");
	static uint8_t data[1 << 24];
	const struct nlmsghdr *nlh;
	size_t n;
	int left;

	if (!f)
		die(path);
	n = fread(data, 1, sizeof(data), f);
	fclose(f);
	left = (int)n;
	for (nlh = (const void *)data; ctd_nlmsg_ok(nlh, left);
	     nlh = mnl_nlmsg_next(nlh, &left))
		append(m, nlh, nlh->nlmsg_len);
	if (left != 0)
		die("recording ends in a partial message");
}

static struct nlattr *find(void *start, size_t len, uint16_t type)
{
	struct nlattr *a = start;

	while (mnl_attr_ok(a, (int)((char *)start + len - (char *)a))) {
		if (mnl_attr_get_type(a) == type)
			return a;
		a = mnl_attr_next(a);
	}
	return NULL;
}

static struct nlattr *nested(struct nlattr *a, uint16_t type)
{
	return a ? find(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a),
			type) : NULL;
}

/* Folds k into three bytes of an address (XOR: distinct k, distinct
 * address), the same bytes for the two places one host appears. */
static void fold(struct nlattr *tuple, uint16_t v4, uint16_t v6, uint32_t k)
{
	struct nlattr *ip = nested(tuple, CTA_TUPLE_IP), *a;
	uint8_t *p;

	if ((a = nested(ip, v4))) {
		p = mnl_attr_get_payload(a);
		p += 1;
	} else if ((a = nested(ip, v6))) {
		p = mnl_attr_get_payload(a);
		p += 9;
	} else {
		return;
	}
	p[0] ^= (uint8_t)(k >> 16);
	p[1] ^= (uint8_t)(k >> 8);
	p[2] ^= (uint8_t)k;
}

static void vary(struct nlmsghdr *nlh, uint32_t k)
{
	void *attrs = (char *)mnl_nlmsg_get_payload(nlh) +
		      MNL_ALIGN(sizeof(struct nfgenmsg));
	size_t len = nlh->nlmsg_len - MNL_NLMSG_HDRLEN -
		     MNL_ALIGN(sizeof(struct nfgenmsg));
	struct nlattr *id = find(attrs, len, CTA_ID);

	fold(find(attrs, len, CTA_TUPLE_ORIG), CTA_IP_V4_SRC, CTA_IP_V6_SRC, k);
	fold(find(attrs, len, CTA_TUPLE_REPLY), CTA_IP_V4_DST, CTA_IP_V6_DST, k);
	if (id) {
		uint32_t v;

		memcpy(&v, mnl_attr_get_payload(id), 4);
		v ^= htonl(k);
		memcpy(mnl_attr_get_payload(id), &v, 4);
	}
}

/* n events from the template: copies interleaved window at a time. */
static void synthesize(const struct msgs *tpl, size_t n, size_t window,
		       struct msgs *out)
{
	size_t copies = (n + tpl->count - 1) / tpl->count;

	if (copies > 1u << 24)
		die("too many copies: at most 2^24 (use a longer recording)");
	for (size_t base = 0; base < copies && out->count < n; base += window) {
		size_t end = base + window < copies ? base + window : copies;

		for (size_t j = 0; j < tpl->count; j++) {
			const struct nlmsghdr *t = (const void *)(tpl->buf +
								   tpl->off[j]);

			for (size_t k = base; k < end && out->count < n; k++) {
				append(out, t, t->nlmsg_len);
				vary((struct nlmsghdr *)(out->buf +
					out->off[out->count - 1]), (uint32_t)k);
			}
		}
	}
}

static void on_record(void *arg, const struct ctd_record *rec)
{
	ctd_deliver_record(arg, rec);
}

static double secs(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Instructions retired by this process, where the VM has a PMU. */
static int open_instructions(void)
{
	struct perf_event_attr pa = {
		.type = PERF_TYPE_HARDWARE,
		.size = sizeof(pa),
		.config = PERF_COUNT_HW_INSTRUCTIONS,
		.disabled = 1,
		.exclude_kernel = 1,
		.exclude_hv = 1,
	};

	return (int)syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0);
}

struct run {
	double wall, cpu;
	uint64_t instructions;   /* 0: not measured */
	uint64_t records, bytes, parse_errors;
};

static struct run replay(const struct msgs *m, struct ctd_engine *eng,
			 struct ctd_deliver *d)
{
	int pfd = open_instructions();
	struct run r = { 0 };
	double w0, c0;

	if (pfd >= 0)
		ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0);
	w0 = secs(CLOCK_MONOTONIC);
	c0 = secs(CLOCK_PROCESS_CPUTIME_ID);
	for (size_t i = 0; i < m->count; i += BATCH) {
		struct ctd_now now = ctd_now_read();
		size_t end = i + BATCH < m->count ? i + BATCH : m->count;
		const struct nlmsghdr *batch[BATCH];

		for (size_t j = i; j < end; j++)
			batch[j - i] = (const void *)(m->buf + m->off[j]);
		ctd_engine_messages(eng, batch, end - i, &now);
		if (end % FLUSH_EVERY < BATCH || end == m->count)
			ctd_deliver_flush(d);
	}
	r.wall = secs(CLOCK_MONOTONIC) - w0;
	r.cpu = secs(CLOCK_PROCESS_CPUTIME_ID) - c0;
	if (pfd >= 0) {
		ioctl(pfd, PERF_EVENT_IOC_DISABLE, 0);
		if (read(pfd, &r.instructions, sizeof(r.instructions)) !=
		    sizeof(r.instructions))
			r.instructions = 0;
		close(pfd);
	}
	return r;
}

static void usage(void)
{
	fputs("usage: ctd-replay [-n EVENTS] [-w WINDOW] [-o FILE] [-r ROUNDS] "
	      "RECORDING...\n"
	      "  -n EVENTS  synthesize this many events from the recordings\n"
	      "             (default: the recordings as they are)\n"
	      "  -w WINDOW  copies in flight at once (default 10000)\n"
	      "  -o FILE    JSON output (default /dev/null)\n"
	      "  -r ROUNDS  replay this many times, each into a fresh engine\n"
	      "             (default 3; the best round is reported)\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	struct msgs tpl = { 0 }, syn = { 0 }, *m = &tpl;
	const char *out_path = "/dev/null";
	size_t n = 0, window = 10000;
	unsigned rounds = 3;
	struct run best = { 0 };
	static struct ctd_stats stats;
	struct rusage ru;
	int c;

	while ((c = getopt(argc, argv, "n:w:o:r:h")) != -1) {
		switch (c) {
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'w': window = strtoull(optarg, NULL, 10); break;
		case 'o': out_path = optarg; break;
		case 'r': rounds = (unsigned)strtoul(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (optind == argc || !window || !rounds)
		usage();
	for (int i = optind; i < argc; i++)
		load(&tpl, argv[i]);
	if (!tpl.count)
		die("no messages in the recordings");
	if (n) {
		synthesize(&tpl, n, window, &syn);
		m = &syn;
	}
	for (unsigned round = 0; round < rounds; round++) {
		struct ctd_engine_cfg ec = { .remember_ends = 0 };
		struct ctd_deliver_cfg dc = { .grace_ms = 15000,
					      .retry_max = 100000 };
		struct ctd_engine_sinks sinks = { .record = on_record };
		struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
		struct ctd_output *out;
		struct ctd_deliver *d = NULL;
		struct ctd_engine *eng;
		struct run r;

		memset(&stats, 0, sizeof(stats));
		ctd_sysctl_timeouts("/proc/sys/net/netfilter", ec.timeout_s);
		ec.started_ns = ctd_now_read().wall_ns;
		if (!loop || ctd_deliver_new(loop, &dc, &stats, &d) < 0 ||
		    ctd_out_json_new(out_path, 0, NULL, &out) < 0 ||
		    ctd_deliver_add(d, out, 1u << CTD_EV_DESTROY) < 0)
			die("cannot set up the output");
		sinks.arg = d;
		eng = ctd_engine_new(&ec, &stats, &sinks);
		if (!eng)
			die("cannot make the engine");
		r = replay(m, eng, d);
		r.records = stats.out[0]->delivered;
		r.bytes = stats.out[0]->bytes;
		r.parse_errors = stats.parse_errors;
		if (!best.wall || r.wall < best.wall)
			best = r;
		ctd_engine_free(eng);
		ctd_deliver_free(d);
		ev_loop_destroy(loop);
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("events          %zu (%zu template messages%s)\n", m->count,
	       tpl.count, n ? ", synthesized" : "");
	printf("records         %llu\n", (unsigned long long)best.records);
	printf("output          %s, %llu bytes\n", out_path,
	       (unsigned long long)best.bytes);
	printf("parse errors    %llu\n", (unsigned long long)best.parse_errors);
	printf("best of %u      %.3f s wall, %.3f s CPU\n", rounds, best.wall,
	       best.cpu);
	printf("events/s        %.0f\n", (double)m->count / best.wall);
	printf("ns/event        %.1f wall, %.1f CPU\n",
	       best.wall * 1e9 / (double)m->count,
	       best.cpu * 1e9 / (double)m->count);
	if (best.instructions)
		printf("instructions    %.0f per event (user space)\n",
		       (double)best.instructions / (double)m->count);
	else
		printf("instructions    not counted here (no PMU); run under "
		       "valgrind --tool=callgrind\n");
	printf("peak RSS        %ld KiB\n", ru.ru_maxrss);
	free(tpl.buf);
	free(tpl.off);
	free(syn.buf);
	free(syn.off);
	return best.parse_errors ? 1 : 0;
}
