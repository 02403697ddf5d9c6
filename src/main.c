/* main: command line, start-up in dependency order, the event loop and
 * shutdown. Owns the one libev loop and every module instance; signal
 * handling is synchronous through ev_signal, so nothing runs in an async
 * signal context. ctd never forks: run it under systemd, or with -f in a
 * terminal. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ev.h>

#include "ctd/engine.h"
#include "ctd/flowtable.h"
#include "ctd/kernel.h"
#include "ctd/log.h"
#include "ctd/nlsrc.h"
#include "ctd/out_json.h"
#include "ctd/out_text.h"
#include "ctd/stats.h"
#include "ctd/timeutil.h"

#define DEFAULT_OUTPUT "/var/log/ctd/flows.json"
#define DEFAULT_RCVBUF (8u << 20)
#define DEFAULT_BUDGET 4096
#define PROC_NETFILTER "/proc/sys/net/netfilter"
#define SHUTDOWN_DRAIN_MAX 1000000

struct options {
	bool foreground;
	bool verbose;
	bool set_sysctl;
	const char *output;
	size_t max_flows;
	struct ctd_nlsrc_cfg nl;
};

struct ctd {
	struct ev_loop *loop;
	struct ctd_stats stats;
	struct ctd_engine *engine;
	struct ctd_nlsrc *nlsrc;
	struct ctd_out_json *json;
	struct ctd_out_text *text;
	ev_prepare flush;
	ev_signal sigint, sigterm;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: ctd [options]\n"
"Turns the kernel's connection-tracking events into flow records.\n"
"\n"
"  -f, --foreground         print one line per event on stdout (like conntrack -E)\n"
"  -v, --verbose            debug logging; print all counters at exit\n"
"  -o, --output FILE        JSON-lines record file (default " DEFAULT_OUTPUT ");\n"
"                           '-' for stdout, 'none' for no file\n"
"  -b, --rcvbuf SIZE        netlink receive buffer (default 8M; k/M/G suffixes)\n"
"      --budget N           netlink messages handled per loop wakeup (default %d)\n"
"      --max-flows N        flows tracked at most (default net.netfilter.nf_conntrack_max)\n"
"      --no-broadcast-error do not ask the kernel to keep undelivered events\n"
"      --no-sysctl          leave nf_conntrack_events/acct/timestamp alone\n"
"      --record FILE        also write every raw netlink datagram to FILE\n"
"  -h, --help               this text\n"
"  -V, --version            print the version\n"
"\nSee ctd(8).\n", DEFAULT_BUDGET);
}

static int parse_size(const char *s, size_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end || v > (1ULL << 40))
		return -EINVAL;
	*ret = (size_t)v;
	return 0;
}

static void bad_arg(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "ctd: invalid %s '%s': expected %s\n", opt, val, want);
	exit(2);
}

enum { OPT_BUDGET = 256, OPT_MAX_FLOWS, OPT_NO_BCERR, OPT_NO_SYSCTL, OPT_RECORD };

static const struct option longopts[] = {
	{ "foreground", no_argument, NULL, 'f' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "output", required_argument, NULL, 'o' },
	{ "rcvbuf", required_argument, NULL, 'b' },
	{ "budget", required_argument, NULL, OPT_BUDGET },
	{ "max-flows", required_argument, NULL, OPT_MAX_FLOWS },
	{ "no-broadcast-error", no_argument, NULL, OPT_NO_BCERR },
	{ "no-sysctl", no_argument, NULL, OPT_NO_SYSCTL },
	{ "record", required_argument, NULL, OPT_RECORD },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void parse_number_opt(int c, struct options *o)
{
	size_t v;

	if (c == 'b') {
		if (parse_size(optarg, &v) < 0 || v < 1024 || v > (1u << 30))
			bad_arg("--rcvbuf", optarg, "a size from 1k to 1G");
		o->nl.rcvbuf = v;
	} else if (c == OPT_BUDGET) {
		if (parse_size(optarg, &v) < 0 || v < 1 || v > 1000000)
			bad_arg("--budget", optarg, "a number from 1 to 1000000");
		o->nl.budget = (unsigned)v;
	} else {
		if (parse_size(optarg, &v) < 0 || v > (1u << 30))
			bad_arg("--max-flows", optarg, "a number up to 1G (0 = kernel's)");
		o->max_flows = v;
	}
}

static void parse_args(int argc, char **argv, struct options *o)
{
	int c;

	*o = (struct options){
		.set_sysctl = true,
		.output = DEFAULT_OUTPUT,
		.nl = { .rcvbuf = DEFAULT_RCVBUF, .broadcast_error = true,
			.budget = DEFAULT_BUDGET },
	};
	while ((c = getopt_long(argc, argv, "fvo:b:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->foreground = true; break;
		case 'v': o->verbose = true; break;
		case 'o': o->output = optarg; break;
		case OPT_NO_BCERR: o->nl.broadcast_error = false; break;
		case OPT_NO_SYSCTL: o->set_sysctl = false; break;
		case OPT_RECORD: o->nl.record_path = optarg; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("ctd %s\n", CTD_VERSION); exit(0);
		case 'b': case OPT_BUDGET: case OPT_MAX_FLOWS:
			parse_number_opt(c, o);
			break;
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ctd: unexpected argument '%s' (see ctd --help)\n",
			argv[optind]);
		exit(2);
	}
}

static void on_record(void *arg, const struct ctd_record *rec)
{
	struct ctd *ctd = arg;

	if (ctd->json)
		ctd_out_json_submit(ctd->json, rec);
}

static void on_event(void *arg, const struct ctd_event *ev,
		     const struct ctd_record *rec, uint64_t now_ns)
{
	struct ctd *ctd = arg;

	if (ctd->text)
		ctd_out_text_event(ctd->text, ev, rec, now_ns);
}

static void on_message(void *arg, const struct nlmsghdr *nlh, uint64_t now_ns)
{
	struct ctd *ctd = arg;

	ctd_engine_message(ctd->engine, nlh, now_ns);
}

/* Before the loop blocks: one write per output for the whole batch. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct ctd *ctd = w->data;

	(void)loop;
	(void)revents;
	if (ctd->json)
		ctd_out_json_flush(ctd->json);
	if (ctd->text)
		ctd_out_text_flush(ctd->text);
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	log_info("signal %d: shutting down", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

static int open_json(struct ctd *ctd, const char *path)
{
	int r;

	if (strcmp(path, "none") == 0)
		return 0;
	/* Only the default location is ours to create. */
	if (strcmp(path, DEFAULT_OUTPUT) == 0 &&
	    mkdir("/var/log/ctd", 0750) < 0 && errno != EEXIST)
		log_warn("cannot create /var/log/ctd: %s", strerror(errno));
	r = ctd_out_json_new(path, &ctd->stats, &ctd->json);
	if (r < 0)
		log_err("cannot open output %s: %s", path, strerror(-r));
	return r;
}

static int open_outputs(struct ctd *ctd, const struct options *o)
{
	int r = open_json(ctd, o->output);

	if (r < 0)
		return r;
	/* JSON on stdout and the event lines would interleave: JSON wins. */
	if (o->foreground && strcmp(o->output, "-") != 0) {
		ctd->text = ctd_out_text_new(STDOUT_FILENO, &ctd->stats);
		if (!ctd->text)
			return -ENOMEM;
	}
	return 0;
}

static size_t choose_max_flows(const struct options *o)
{
	size_t kmax;

	if (o->max_flows)
		return o->max_flows;
	kmax = ctd_kernel_conntrack_max(PROC_NETFILTER);
	return kmax ? kmax : 262144;
}

static int start(struct ctd *ctd, const struct options *o)
{
	struct ctd_engine_sinks sinks = { on_record, on_event, ctd };
	int r;

	r = open_outputs(ctd, o);
	if (r < 0)
		return r;
	r = ctd_nlsrc_new(&o->nl, &ctd->stats, on_message, ctd, &ctd->nlsrc);
	if (r < 0) {
		log_err("cannot open the ctnetlink socket: %s%s", strerror(-r),
			r == -EPERM ? " (ctd needs CAP_NET_ADMIN)" : "");
		return r;
	}
	ctd_kernel_prepare(PROC_NETFILTER, o->set_sysctl);
	ctd->engine = ctd_engine_new(choose_max_flows(o), &ctd->stats, &sinks);
	if (!ctd->engine)
		return -ENOMEM;
	return 0;
}

static void run(struct ctd *ctd)
{
	ev_prepare_init(&ctd->flush, on_prepare);
	ctd->flush.data = ctd;
	ev_prepare_start(ctd->loop, &ctd->flush);
	ev_signal_init(&ctd->sigint, on_stop_signal, SIGINT);
	ev_signal_init(&ctd->sigterm, on_stop_signal, SIGTERM);
	ev_signal_start(ctd->loop, &ctd->sigint);
	ev_signal_start(ctd->loop, &ctd->sigterm);
	ctd_nlsrc_start(ctd->nlsrc, ctd->loop);
	log_info("listening for conntrack events (rcvbuf %llu bytes)",
		 (unsigned long long)ctd->stats.rcvbuf);
	ev_run(ctd->loop, 0);
	ctd_nlsrc_stop(ctd->nlsrc, ctd->loop);
}

/* Events already queued on the socket at shutdown still become records. */
static void finish(struct ctd *ctd, bool verbose)
{
	const struct ctd_flowtable *ft;
	unsigned n = ctd_nlsrc_drain(ctd->nlsrc, SHUTDOWN_DRAIN_MAX);

	if (n)
		log_info("handled %u queued messages before exit", n);
	ft = ctd_engine_flows(ctd->engine);
	ctd->stats.table_bytes = ctd_flowtable_memory(ft);
	if (verbose)
		ctd_stats_print(&ctd->stats, stderr);
	log_info("exiting: %llu events, %llu records written, %llu dropped",
		 (unsigned long long)ctd->stats.nl_messages,
		 (unsigned long long)ctd->stats.out_records,
		 (unsigned long long)(ctd->stats.out_dropped +
				      ctd->stats.parse_errors));
}

static void teardown(struct ctd *ctd)
{
	ctd_out_text_free(ctd->text);
	ctd_out_json_free(ctd->json);
	ctd_engine_free(ctd->engine);
	ctd_nlsrc_free(ctd->nlsrc);
	if (ctd->loop)
		ev_loop_destroy(ctd->loop);
}

int main(int argc, char **argv)
{
	struct options opts;
	struct ctd ctd = { 0 };
	int r;

	parse_args(argc, argv, &opts);
	ctd_log_init("ctd", opts.verbose ? CTD_LOG_DEBUG : CTD_LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	ctd.loop = ev_default_loop(EVFLAG_AUTO);
	if (!ctd.loop) {
		log_err("cannot create the event loop");
		return 1;
	}
	r = start(&ctd, &opts);
	if (r == 0) {
		run(&ctd);
		finish(&ctd, opts.verbose);
	}
	teardown(&ctd);
	return r == 0 ? 0 : 1;
}
