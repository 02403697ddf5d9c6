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

#include "ctd/ctdump.h"
#include "ctd/ctevent.h"
#include "ctd/daemon.h"
#include "ctd/deliver.h"
#include "ctd/engine.h"
#include "ctd/flowtable.h"
#include "ctd/kernel.h"
#include "ctd/log.h"
#include "ctd/nlsrc.h"
#include "ctd/out_json.h"
#include "ctd/out_stream.h"
#include "ctd/out_text.h"
#include "ctd/output.h"
#include "ctd/record.h"
#include "ctd/stats.h"
#include "ctd/timeutil.h"

#define DEFAULT_OUTPUT "/var/log/ctd/flows.json"
#define DEFAULT_SPOOL_DIR "/var/lib/ctd"
#define DEFAULT_RCVBUF (8u << 20)
#define DEFAULT_RCVBUF_MAX (64u << 20)
#define DEFAULT_BUDGET 4096
#define SWEEP_BUDGET 10000
#define PROC_NETFILTER "/proc/sys/net/netfilter"
#define SHUTDOWN_DRAIN_MAX 1000000

struct options {
	bool foreground;
	bool verbose;
	bool set_sysctl;
	const char *output;
	size_t max_flows;
	size_t remember_ends;      /* ended flows kept to drop repeats */
	unsigned expiry_slack;     /* seconds */
	unsigned check_interval;   /* seconds between suspect-check dumps */
	unsigned pending_interval; /* seconds between dying-list polls; 0 off */
	bool resync;               /* lossy mode: dump and sweep after overruns */
	unsigned active_timeout;   /* seconds; interim records; 0 off */
	const char *stream;        /* stream socket path, or NULL */
	unsigned json_events;      /* 1 << CTD_EV_*: what each output takes */
	unsigned stream_events;
	const char *spool_dir;     /* "none": no spool */
	unsigned grace_ms;         /* dying-list re-send spread */
	size_t dying_max;          /* records held per output */
	unsigned shutdown_timeout; /* seconds to deliver held records at exit */
	struct ctd_nlsrc_cfg nl;
};

struct ctd {
	struct ev_loop *loop;
	struct ctd_stats stats;
	struct ctd_engine *engine;
	struct ctd_nlsrc *nlsrc;
	struct ctd_deliver *deliver;
	struct ctd_out_text *text;
	struct ctd_ctdump *dump;
	const struct options *opts;
	ev_prepare flush;
	ev_signal sigint, sigterm, sighup, sigusr2;
	int stop_signal;
	uint64_t rand_state;       /* xorshift64*: dying-list spread */
	ev_timer expiry;           /* armed at the engine's next deadline */
	ev_timer pending;          /* dying-list gauge */
	ev_timer counters;         /* table dumps that feed interim records */
	int64_t armed_us;          /* deadline the expiry timer is set for */
	int64_t last_check_us;     /* last suspect-check dump */
	bool startup_dump;         /* the running table dump is the first */
	bool check_dying;          /* the running dying dump ends a table check */
	bool resync_pending;       /* events were lost: resync at next chance */
	uint64_t enobufs_seen;
	uint64_t evicted_logged;   /* evictions already reported */
	int64_t evicted_log_us;    /* when, to log once per burst */
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
"      --rcvbuf-max SIZE    grow the buffer on overruns up to SIZE (default 64M)\n"
"      --budget N           netlink messages handled per loop wakeup (default %d)\n"
"      --max-flows N        flows tracked at most (default net.netfilter.nf_conntrack_max)\n"
"      --remember-ends N    ended flows remembered to drop DESTROYs the kernel\n"
"                           sends again (default 65536, 0 = off)\n"
"      --expiry-slack SECS  added to the kernel's timeouts before a silent flow\n"
"                           is checked against the kernel (default 60)\n"
"      --check-interval SECS  at most one such check dump per SECS (default 10)\n"
"      --pending-interval SECS  poll the kernel's undelivered DESTROYs (default 10,\n"
"                           0 = off)\n"
"      --no-broadcast-error lossy mode: do not ask the kernel to keep undelivered events\n"
"      --no-resync          lossy mode: do not resync the table after overruns\n"
"      --active-timeout SECS  interim records for flows older than SECS, with\n"
"                           counters from table dumps every SECS/2 (default 1800,\n"
"                           0 = off)\n"
"      --no-sysctl          leave nf_conntrack_events/acct/timestamp alone\n"
"      --record FILE        also write every raw netlink datagram to FILE\n"
"      --stream PATH        also serve records as JSON lines on a Unix socket\n"
"      --json-events LIST   what the JSON file gets: new,update,destroy\n"
"                           (default destroy: one record per flow)\n"
"      --stream-events LIST the same for --stream (default destroy)\n"
"      --spool-dir DIR      undelivered records survive restarts here\n"
"                           (default " DEFAULT_SPOOL_DIR "; 'none' = no spool)\n"
"      --grace SECS         re-send a refused record within SECS (default 15)\n"
"      --dying-max N        records held in memory per output before the\n"
"                           spool (default 100000)\n"
"      --shutdown-timeout SECS  time to deliver held records at exit (default 5)\n"
"  -h, --help               this text\n"
"  -V, --version            print the version\n"
"\nSignals: TERM/INT stop, HUP reopens output files, USR2 restarts ctd in\n"
"place keeping its ctnetlink socket (no event lost). See ctd(8).\n", DEFAULT_BUDGET);
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

enum {
	OPT_BUDGET = 256, OPT_MAX_FLOWS, OPT_NO_BCERR, OPT_NO_SYSCTL, OPT_RECORD,
	OPT_RCVBUF_MAX, OPT_SLACK, OPT_CHECK, OPT_PENDING, OPT_NO_RESYNC,
	OPT_ACTIVE, OPT_STREAM, OPT_SPOOL_DIR, OPT_GRACE, OPT_DYING_MAX,
	OPT_SHUTDOWN_TIMEOUT, OPT_JSON_EVENTS, OPT_STREAM_EVENTS,
	OPT_REMEMBER_ENDS,
};

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
	{ "rcvbuf-max", required_argument, NULL, OPT_RCVBUF_MAX },
	{ "expiry-slack", required_argument, NULL, OPT_SLACK },
	{ "check-interval", required_argument, NULL, OPT_CHECK },
	{ "pending-interval", required_argument, NULL, OPT_PENDING },
	{ "no-resync", no_argument, NULL, OPT_NO_RESYNC },
	{ "active-timeout", required_argument, NULL, OPT_ACTIVE },
	{ "stream", required_argument, NULL, OPT_STREAM },
	{ "remember-ends", required_argument, NULL, OPT_REMEMBER_ENDS },
	{ "json-events", required_argument, NULL, OPT_JSON_EVENTS },
	{ "stream-events", required_argument, NULL, OPT_STREAM_EVENTS },
	{ "spool-dir", required_argument, NULL, OPT_SPOOL_DIR },
	{ "grace", required_argument, NULL, OPT_GRACE },
	{ "dying-max", required_argument, NULL, OPT_DYING_MAX },
	{ "shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static unsigned parse_secs(const char *opt, unsigned min)
{
	size_t v;

	if (parse_size(optarg, &v) < 0 || v < min || v > 86400)
		bad_arg(opt, optarg, min ? "seconds from 1 to 86400" :
					   "seconds from 0 to 86400");
	return (unsigned)v;
}

static void parse_number_opt(int c, struct options *o)
{
	size_t v;

	if (c == 'b' || c == OPT_RCVBUF_MAX) {
		if (parse_size(optarg, &v) < 0 || v < 1024 || v > (1u << 30))
			bad_arg(c == 'b' ? "--rcvbuf" : "--rcvbuf-max", optarg,
				"a size from 1k to 1G");
		if (c == 'b')
			o->nl.rcvbuf = v;
		else
			o->nl.rcvbuf_max = v;
	} else if (c == OPT_SLACK) {
		o->expiry_slack = parse_secs("--expiry-slack", 0);
	} else if (c == OPT_CHECK) {
		o->check_interval = parse_secs("--check-interval", 1);
	} else if (c == OPT_PENDING) {
		o->pending_interval = parse_secs("--pending-interval", 0);
	} else if (c == OPT_ACTIVE) {
		o->active_timeout = parse_secs("--active-timeout", 0);
	} else if (c == OPT_GRACE) {
		o->grace_ms = parse_secs("--grace", 1) * 1000;
	} else if (c == OPT_SHUTDOWN_TIMEOUT) {
		o->shutdown_timeout = parse_secs("--shutdown-timeout", 0);
	} else if (c == OPT_REMEMBER_ENDS) {
		if (parse_size(optarg, &v) < 0 || v > 10000000)
			bad_arg("--remember-ends", optarg, "a number up to 10000000");
		o->remember_ends = v;
	} else if (c == OPT_DYING_MAX) {
		if (parse_size(optarg, &v) < 0 || v < 1 || v > 10000000)
			bad_arg("--dying-max", optarg, "a number from 1 to 10000000");
		o->dying_max = v;
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

/* "new,update,destroy" -> 1 << CTD_EV_* bits. */
static unsigned parse_events(const char *opt, const char *list)
{
	static const char *const names[CTD_EV__COUNT] = { "new", "update", "destroy" };
	unsigned mask = 0;
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < CTD_EV__COUNT; i++)
			if (strlen(names[i]) == n && strncmp(p, names[i], n) == 0)
				break;
		if (i == CTD_EV__COUNT)
			bad_arg(opt, list, "a comma-separated list of new, update, destroy");
		mask |= 1u << i;
		p += n + (p[n] == ',');
	}
	if (!mask)
		bad_arg(opt, list, "a comma-separated list of new, update, destroy");
	return mask;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	int c;

	*o = (struct options){
		.set_sysctl = true,
		.output = DEFAULT_OUTPUT,
		.expiry_slack = 60,
		.check_interval = 10,
		.pending_interval = 10,
		.resync = true,
		.active_timeout = 1800,
		.spool_dir = DEFAULT_SPOOL_DIR,
		.grace_ms = 15000,
		.dying_max = 100000,
		.remember_ends = 65536,
		.shutdown_timeout = 5,
		.json_events = 1u << CTD_EV_DESTROY,
		.stream_events = 1u << CTD_EV_DESTROY,
		.nl = { .rcvbuf = DEFAULT_RCVBUF, .rcvbuf_max = DEFAULT_RCVBUF_MAX,
			.reliable = true, .budget = DEFAULT_BUDGET, .fd = -1 },
	};
	while ((c = getopt_long(argc, argv, "fvo:b:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->foreground = true; break;
		case 'v': o->verbose = true; break;
		case 'o': o->output = optarg; break;
		case OPT_NO_BCERR: o->nl.reliable = false; break;
		case OPT_NO_SYSCTL: o->set_sysctl = false; break;
		case OPT_NO_RESYNC: o->resync = false; break;
		case OPT_RECORD: o->nl.record_path = optarg; break;
		case OPT_STREAM: o->stream = optarg; break;
		case OPT_JSON_EVENTS:
			o->json_events = parse_events("--json-events", optarg);
			break;
		case OPT_STREAM_EVENTS:
			o->stream_events = parse_events("--stream-events", optarg);
			break;
		case OPT_SPOOL_DIR: o->spool_dir = optarg; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("ctd %s\n", CTD_VERSION); exit(0);
		case 'b': case OPT_BUDGET: case OPT_MAX_FLOWS:
		case OPT_RCVBUF_MAX: case OPT_SLACK: case OPT_CHECK:
		case OPT_PENDING: case OPT_ACTIVE: case OPT_GRACE:
		case OPT_DYING_MAX: case OPT_SHUTDOWN_TIMEOUT:
		case OPT_REMEMBER_ENDS:
			parse_number_opt(c, o);
			break;
		default: usage(stderr); exit(2);
		}
	}
	if (o->nl.rcvbuf_max < o->nl.rcvbuf)
		o->nl.rcvbuf_max = o->nl.rcvbuf;
	if (optind < argc) {
		fprintf(stderr, "ctd: unexpected argument '%s' (see ctd --help)\n",
			argv[optind]);
		exit(2);
	}
}

static void on_record(void *arg, const struct ctd_record *rec)
{
	struct ctd *ctd = arg;

	ctd_deliver_record(ctd->deliver, rec);
}

static void on_event(void *arg, const struct ctd_event *ev,
		     const struct ctd_record *rec, const struct ctd_now *now)
{
	struct ctd *ctd = arg;

	if (ctd->text)
		ctd_out_text_event(ctd->text, ev, rec, now->wall_ns);
}

static void on_flow_event(void *arg, const struct ctd_record *rec,
			  uint8_t *missed)
{
	struct ctd *ctd = arg;

	ctd_deliver_event(ctd->deliver, rec, missed);
}

static void on_message(void *arg, const struct nlmsghdr *nlh,
		       const struct ctd_now *now)
{
	struct ctd *ctd = arg;

	ctd_engine_message(ctd->engine, nlh, now);
}

static void start_dump(struct ctd *ctd, enum ctd_dump_kind kind,
		       const struct ctd_now *now)
{
	bool resync = kind == CTD_DUMP_TABLE && ctd->resync_pending;
	int r = ctd_ctdump_start(ctd->dump, kind);

	if (r == -EBUSY)
		return;
	if (r < 0) {
		log_warn("cannot start a conntrack dump: %s", strerror(-r));
		return;
	}
	if (kind == CTD_DUMP_TABLE) {
		ctd->last_check_us = now->mono_us;
		ctd->resync_pending = false;
		if (resync)
			log_info("resyncing with the kernel table after lost events");
		ctd_engine_dump_begin(ctd->engine, resync);
	}
}

/* Arms the expiry timer at the earliest of the engine's next deadline
 * and, when suspects wait, the next permitted check dump. */
static void schedule(struct ctd *ctd, const struct ctd_now *now)
{
	int64_t next = ctd_engine_next_deadline(ctd->engine);
	int64_t due = ctd->last_check_us +
		      (int64_t)ctd->opts->check_interval * 1000000;

	if (ctd->resync_pending && !ctd_ctdump_running(ctd->dump))
		start_dump(ctd, CTD_DUMP_TABLE, now);
	if (ctd_engine_wants_dump(ctd->engine) &&
	    !ctd_ctdump_running(ctd->dump)) {
		if (now->mono_us >= due)
			start_dump(ctd, CTD_DUMP_TABLE, now);
		else if (due < next)
			next = due;
	}
	ev_timer_stop(ctd->loop, &ctd->expiry);
	ctd->armed_us = next;
	if (next == INT64_MAX)
		return;
	double after = (double)(next - now->mono_us) / 1e6;
	ev_timer_set(&ctd->expiry, after < 0.001 ? 0.001 : after > 3600 ? 3600 : after, 0);
	ev_timer_start(ctd->loop, &ctd->expiry);
}

static void on_expiry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctd *ctd = w->data;
	struct ctd_now now = ctd_now_read();

	(void)loop;
	(void)revents;
	ctd_engine_sweep(ctd->engine, &now, SWEEP_BUDGET);
	schedule(ctd, &now);
}

/* The dying-list gauge and the counter dumps share one callback: either
 * starts its dump when no other is running, else waits for its next tick. */
static void on_dump_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctd *ctd = w->data;
	struct ctd_now now = ctd_now_read();

	(void)loop;
	(void)revents;
	if (!ctd_ctdump_running(ctd->dump))
		start_dump(ctd, w == &ctd->pending ? CTD_DUMP_DYING : CTD_DUMP_TABLE,
			   &now);
}

static void on_dump_entry(void *arg, enum ctd_dump_kind kind,
			  const struct ctd_event *ev, const struct ctd_now *now)
{
	struct ctd *ctd = arg;

	if (kind == CTD_DUMP_TABLE)
		ctd_engine_dump_entry(ctd->engine, ev, now);
	else if (ctd->check_dying)
		ctd_engine_dump_pending(ctd->engine, ev);
}

static void dying_done(struct ctd *ctd, int err, size_t entries)
{
	if (err) {
		log_warn("cannot read the kernel's pending DESTROYs: %s; "
			 "gauge off", strerror(-err));
		ev_timer_stop(ctd->loop, &ctd->pending);
		return;
	}
	ctd->stats.kernel_pending = entries;
	if (entries > ctd->stats.kernel_pending_peak)
		ctd->stats.kernel_pending_peak = entries;
}

/* A flow the dump did not list was destroyed before the dump ended, so
 * its DESTROY, unless lost, is already queued on the event socket: read
 * it first, or "gone" would double it. */
static void judge_dump(struct ctd *ctd, bool ok, const struct ctd_now *now)
{
	ctd_nlsrc_drain(ctd->nlsrc, SHUTDOWN_DRAIN_MAX);
	ctd_engine_dump_end(ctd->engine, ok, now);
}

static void table_done(struct ctd *ctd, int err, size_t entries,
		       const struct ctd_now *now)
{
	if (err)
		log_warn("conntrack table dump failed: %s", strerror(-err));
	else if (ctd->startup_dump)
		log_info("loaded %zu conntracks from the kernel table", entries);
	ctd->startup_dump = false;
	/* Reliable mode: conntracks gone from the table whose DESTROY the
	 * kernel still holds for us are not gone for us. Read that list
	 * before judging, or a slow re-send would turn into a double. */
	if (!err && ctd->opts->nl.reliable &&
	    ctd_ctdump_start(ctd->dump, CTD_DUMP_DYING) == 0) {
		ctd->check_dying = true;
		return;
	}
	judge_dump(ctd, err == 0, now);
}

static void on_dump_done(void *arg, enum ctd_dump_kind kind, int err,
			 size_t entries, const struct ctd_now *now)
{
	struct ctd *ctd = arg;

	if (kind == CTD_DUMP_TABLE) {
		table_done(ctd, err, entries, now);
	} else {
		dying_done(ctd, err, entries);
		/* An inconsistent walk decides nothing; a kernel that cannot
		 * list its dying list (logged once) leaves the table's word. */
		if (ctd->check_dying) {
			ctd->check_dying = false;
			judge_dump(ctd, err != -EINTR, now);
		}
	}
	schedule(ctd, now);
}

/* Evictions mean --max-flows is too small for the traffic: say so once
 * per burst (at most every 10 s), with the count. */
static void log_evictions(struct ctd *ctd)
{
	uint64_t n = ctd->stats.ends[CTD_END_EVICTED];
	struct ctd_now now;

	if (n == ctd->evicted_logged)
		return;
	now = ctd_now_read();
	if (ctd->evicted_logged && now.mono_us - ctd->evicted_log_us < 10000000)
		return;
	log_warn("flow table full (--max-flows %zu): evicted %llu flows",
		 ctd->opts->max_flows ? ctd->opts->max_flows :
		 ctd_kernel_conntrack_max(PROC_NETFILTER),
		 (unsigned long long)(n - ctd->evicted_logged));
	ctd->evicted_logged = n;
	ctd->evicted_log_us = now.mono_us;
}

/* Before the loop blocks: one write per output for the whole batch. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct ctd *ctd = w->data;

	(void)loop;
	(void)revents;
	ctd_deliver_flush(ctd->deliver);
	if (ctd->text)
		ctd_out_text_flush(ctd->text);
	log_evictions(ctd);
	if (ctd->stats.nl_enobufs != ctd->enobufs_seen) {
		ctd->enobufs_seen = ctd->stats.nl_enobufs;
		ctd->resync_pending = ctd->opts->resync;
	}
	/* Events may have queued a flow with a deadline before the armed one
	 * (a class with a shorter timeout). O(classes). */
	if (ctd->resync_pending ||
	    ctd_engine_next_deadline(ctd->engine) < ctd->armed_us) {
		struct ctd_now now = ctd_now_read();

		schedule(ctd, &now);
	}
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct ctd *ctd = w->data;

	(void)revents;
	if (w->signum == SIGUSR2)
		log_info("SIGUSR2: restarting in place, keeping the ctnetlink socket");
	else
		log_info("signal %d: shutting down", w->signum);
	ctd->stop_signal = w->signum;
	ctd_daemon_notify("STOPPING=1", -1);
	ev_break(loop, EVBREAK_ALL);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct ctd *ctd = w->data;

	(void)loop;
	(void)revents;
	log_info("SIGHUP: reopening output files");
	ctd_deliver_reopen(ctd->deliver);
}

static uint32_t random_u32(void *arg)
{
	struct ctd *ctd = arg;
	uint64_t x = ctd->rand_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	ctd->rand_state = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

static int new_deliver(struct ctd *ctd, const struct options *o)
{
	struct ctd_deliver_cfg dc = {
		.grace_ms = o->grace_ms,
		.dying_max = o->dying_max,
		.spool_dir = strcmp(o->spool_dir, "none") ? o->spool_dir : NULL,
		.random = random_u32,
		.random_arg = ctd,
	};
	struct ctd_now now = ctd_now_read();

	ctd->rand_state = (uint64_t)now.wall_ns ^ ((uint64_t)getpid() << 32) ^
			  (uint64_t)now.mono_us;
	if (!ctd->rand_state)
		ctd->rand_state = 1;
	return ctd_deliver_new(ctd->loop, &dc, &ctd->stats, &ctd->deliver);
}

static int open_json(struct ctd *ctd, const char *path)
{
	struct ctd_output *out;
	int r;

	if (strcmp(path, "none") == 0)
		return 0;
	/* Only the default location is ours to create. */
	if (strcmp(path, DEFAULT_OUTPUT) == 0 &&
	    mkdir("/var/log/ctd", 0750) < 0 && errno != EEXIST)
		log_warn("cannot create /var/log/ctd: %s", strerror(errno));
	r = ctd_out_json_new(path, 0, &out);
	if (r < 0) {
		log_err("cannot open output %s: %s", path, strerror(-r));
		return r;
	}
	return ctd_deliver_add(ctd->deliver, out, ctd->opts->json_events);
}

static int open_stream(struct ctd *ctd, const char *path)
{
	struct ctd_output *out;
	int r;

	if (!path)
		return 0;
	r = ctd_out_stream_new(ctd->loop, path, &out);
	if (r < 0) {
		log_err("cannot listen on %s: %s", path, strerror(-r));
		return r;
	}
	return ctd_deliver_add(ctd->deliver, out, ctd->opts->stream_events);
}

static int open_outputs(struct ctd *ctd, const struct options *o)
{
	int r = new_deliver(ctd, o);

	if (r == 0)
		r = open_json(ctd, o->output);
	if (r == 0)
		r = open_stream(ctd, o->stream);
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

/* A socket handed over by the previous ctd (systemd's fd store or our
 * own re-exec) brings the events queued while no ctd was reading. */
static int open_nlsrc(struct ctd *ctd, const struct options *o)
{
	struct ctd_nlsrc_cfg nl = o->nl;
	int r;

	nl.fd = ctd_daemon_listen_fd("ctnetlink");
	if (nl.fd == -EINVAL)
		log_warn("ignoring malformed LISTEN_FDS/LISTEN_PID");
	r = ctd_nlsrc_new(&nl, &ctd->stats, on_message, ctd, &ctd->nlsrc);
	if (r == 0 && nl.fd >= 0)
		log_info("took over the ctnetlink socket from the previous ctd "
			 "(%d bytes of events queued)",
			 ctd_nlsrc_queued(ctd->nlsrc));
	if (r < 0 && nl.fd >= 0)
		close(nl.fd);
	return r;
}

static size_t choose_max_flows(const struct options *o)
{
	size_t kmax;

	if (o->max_flows)
		return o->max_flows;
	kmax = ctd_kernel_conntrack_max(PROC_NETFILTER);
	return kmax ? kmax : 262144;
}

static void engine_cfg(const struct options *o, struct ctd_engine_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_flows = choose_max_flows(o);
	cfg->slack_s = o->expiry_slack;
	cfg->active_timeout_s = o->active_timeout;
	cfg->remember_ends = o->remember_ends;
	cfg->started_ns = ctd_now_read().wall_ns;
	ctd_kernel_timeouts(PROC_NETFILTER, cfg->timeout_s);
}

static int start(struct ctd *ctd, const struct options *o)
{
	struct ctd_engine_sinks sinks = { on_record, on_event, on_flow_event, ctd };
	struct ctd_ctdump_ops dops = { on_dump_entry, on_dump_done, ctd };
	struct ctd_engine_cfg cfg;
	int r;

	r = open_outputs(ctd, o);
	if (r < 0)
		return r;
	r = open_nlsrc(ctd, o);
	if (r < 0) {
		log_err("cannot open the ctnetlink socket: %s%s", strerror(-r),
			r == -EPERM ? " (ctd needs CAP_NET_ADMIN)" : "");
		return r;
	}
	ctd_kernel_prepare(PROC_NETFILTER, o->set_sysctl);
	engine_cfg(o, &cfg);
	cfg.want_events = ctd_deliver_wants_events(ctd->deliver);
	ctd->engine = ctd_engine_new(&cfg, &ctd->stats, &sinks);
	if (!ctd->engine)
		return -ENOMEM;
	r = ctd_ctdump_new(ctd->loop, &ctd->stats, &dops, &ctd->dump);
	if (r < 0)
		log_err("cannot open the ctnetlink dump socket: %s", strerror(-r));
	return r;
}

static void start_timers(struct ctd *ctd)
{
	struct ctd_now now = ctd_now_read();
	double every = ctd->opts->pending_interval;

	ev_init(&ctd->expiry, on_expiry);
	ctd->expiry.data = ctd;
	ev_timer_init(&ctd->pending, on_dump_timer, every, every);
	ctd->pending.data = ctd;
	if (every > 0 && ctd->opts->nl.reliable)
		ev_timer_start(ctd->loop, &ctd->pending);
	/* Half the active timeout, so a flow is reported at most that late. */
	every = ctd->opts->active_timeout / 2.0;
	ev_timer_init(&ctd->counters, on_dump_timer, every, every);
	ctd->counters.data = ctd;
	if (every > 0)
		ev_timer_start(ctd->loop, &ctd->counters);
	/* Flows that began before ctd are accounted from the table. */
	ctd->startup_dump = true;
	start_dump(ctd, CTD_DUMP_TABLE, &now);
	schedule(ctd, &now);
}

static void run(struct ctd *ctd)
{
	ev_prepare_init(&ctd->flush, on_prepare);
	ctd->flush.data = ctd;
	ev_prepare_start(ctd->loop, &ctd->flush);
	ev_signal_init(&ctd->sigint, on_stop_signal, SIGINT);
	ev_signal_init(&ctd->sigterm, on_stop_signal, SIGTERM);
	ev_signal_init(&ctd->sigusr2, on_stop_signal, SIGUSR2);
	ctd->sigint.data = ctd->sigterm.data = ctd->sigusr2.data = ctd;
	ev_signal_start(ctd->loop, &ctd->sigusr2);
	ev_signal_start(ctd->loop, &ctd->sigint);
	ev_signal_start(ctd->loop, &ctd->sigterm);
	ev_signal_init(&ctd->sighup, on_hup, SIGHUP);
	ctd->sighup.data = ctd;
	ev_signal_start(ctd->loop, &ctd->sighup);
	ctd_nlsrc_start(ctd->nlsrc, ctd->loop);
	start_timers(ctd);
	log_info("listening for conntrack events (%s mode, rcvbuf %llu bytes)",
		 ctd->opts->nl.reliable ? "reliable" : "lossy",
		 (unsigned long long)ctd->stats.rcvbuf);
	ctd_daemon_notify("READY=1\nSTATUS=listening for conntrack events", -1);
	ev_run(ctd->loop, 0);
	ctd_nlsrc_stop(ctd->nlsrc, ctd->loop);
	ev_timer_stop(ctd->loop, &ctd->expiry);
	ev_timer_stop(ctd->loop, &ctd->pending);
	ev_timer_stop(ctd->loop, &ctd->counters);
	ev_prepare_stop(ctd->loop, &ctd->flush);
}

static void sum_outputs(const struct ctd_stats *st, uint64_t *ret_delivered,
			uint64_t *ret_failed)
{
	*ret_delivered = *ret_failed = 0;
	for (size_t i = 0; i < CTD_OUT_MAX && st->out_name[i]; i++) {
		*ret_delivered += st->out[i]->delivered;
		*ret_failed += st->out[i]->failed;
	}
}

/* Events already queued on the socket at shutdown still become records,
 * unless ctd re-executes and the new process reads them; what the
 * outputs cannot take in time goes to the spool. */
static void finish(struct ctd *ctd, bool verbose)
{
	const struct ctd_flowtable *ft;
	unsigned n = 0;
	uint64_t delivered, failed;
	size_t spooled;

	if (ctd->stop_signal != SIGUSR2)
		n = ctd_nlsrc_drain(ctd->nlsrc, SHUTDOWN_DRAIN_MAX);
	if (n)
		log_info("handled %u queued messages before exit", n);
	spooled = ctd_deliver_finish(ctd->deliver, ctd->opts->shutdown_timeout);
	if (spooled)
		log_info("%zu undelivered records left for the spool", spooled);
	ft = ctd_engine_flows(ctd->engine);
	ctd->stats.table_bytes = ctd_flowtable_memory(ft);
	if (verbose)
		ctd_stats_print(&ctd->stats, stderr);
	sum_outputs(&ctd->stats, &delivered, &failed);
	log_info("exiting: %llu events, %llu records delivered, %llu lost, "
		 "%llu malformed messages",
		 (unsigned long long)ctd->stats.nl_messages,
		 (unsigned long long)delivered, (unsigned long long)failed,
		 (unsigned long long)ctd->stats.parse_errors);
}

/* The kernel holds undelivered events only for a listener that
 * exists: keep the socket alive across the restart. Returns the fd to
 * pass across exec, or -1. */
static int hand_over(struct ctd *ctd)
{
	int fd = ctd_nlsrc_dup_fd(ctd->nlsrc), r;

	if (fd < 0) {
		log_err("cannot keep the ctnetlink socket: %s", strerror(-fd));
		return -1;
	}
	if (ctd->stop_signal == SIGUSR2)
		return fd;
	/* systemd keeps it when the unit sets FileDescriptorStoreMax. */
	r = ctd_daemon_notify("FDSTORE=1\nFDNAME=ctnetlink", fd);
	if (r == 1)
		log_info("ctnetlink socket handed to the service manager");
	else if (r < 0)
		log_warn("cannot hand the ctnetlink socket to the service "
			 "manager: %s", strerror(-r));
	close(fd);
	return -1;
}

static void teardown(struct ctd *ctd)
{
	ctd_out_text_free(ctd->text);
	ctd_deliver_free(ctd->deliver);
	ctd_ctdump_free(ctd->dump);
	ctd_engine_free(ctd->engine);
	ctd_nlsrc_free(ctd->nlsrc);
	if (ctd->loop)
		ev_loop_destroy(ctd->loop);
}

int main(int argc, char **argv)
{
	struct options opts;
	struct ctd ctd = { 0 };
	int r, keep_fd = -1;

	parse_args(argc, argv, &opts);
	ctd.opts = &opts;
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
		keep_fd = hand_over(&ctd);
	}
	teardown(&ctd);
	if (keep_fd >= 0) {
		r = ctd_daemon_reexec(argv, keep_fd, "ctnetlink");
		log_err("cannot re-execute ctd: %s", strerror(-r));
	}
	return r == 0 ? 0 : 1;
}
