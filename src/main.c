/* main: command line, start-up in dependency order, the event loop and
 * shutdown. Owns the one libev loop and every module instance; signal
 * handling is synchronous through ev_signal, so nothing runs in an async
 * signal context. ctd never forks: run it under systemd, or with -f in a
 * terminal. */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ev.h>

#include "ctd/cli.h"
#include "ctd/config.h"
#include "ctd/ctdump.h"
#include "ctd/ctl.h"
#include "ctd/ctevent.h"
#include "ctd/daemon.h"
#include "ctd/deliver.h"
#include "ctd/engine.h"
#include "ctd/filter.h"
#include "ctd/flowtable.h"
#include "ctd/kernel.h"
#include "ctd/log.h"
#include "ctd/nlsrc.h"
#include "ctd/ctlogfmt.h"
#include "ctd/out_file.h"
#include "ctd/out_syslog.h"
#include "ctd/out_stream.h"
#include "ctd/out_ipfix.h"
#include "ctd/out_text.h"
#include "ctd/output.h"
#include "ctd/record.h"
#include "ctd/report.h"
#include "ctd/stats.h"
#include "ctd/timeutil.h"

#define DEFAULT_OUTPUT "/var/log/ctd/flows.json"
#define SWEEP_BUDGET 10000
#define PROC_NETFILTER "/proc/sys/net/netfilter"
#define SHUTDOWN_DRAIN_MAX 1000000

/* A counter whose growth is logged at most every 10 s (see growth_due). */
struct growth_log {
	uint64_t logged;           /* the counter when last logged */
	int64_t at_us;             /* and when (monotonic), 0 never */
};

struct ctd {
	struct ev_loop *loop;
	struct ctd_stats stats;
	struct ctd_engine *engine;
	struct ctd_nlsrc *nlsrc;
	struct ctd_deliver *deliver;
	struct ctd_out_text *text;
	struct ctd_ctdump *dump;
	struct ctd_config *cfg;
	const struct ctd_cli *cli;
	struct ctd_output *json;   /* owned by deliver; for reloads */
	struct ctd_ctl *ctl;
	struct ctd_ctl *metrics;
	struct ctd_filter *filter;
	int64_t started_us;
	ev_prepare flush;
	ev_signal sigint, sigterm, sighup, sigusr1, sigusr2;
	ev_timer status;           /* sd_notify STATUS and WATCHDOG */
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
	struct growth_log evictions;
	/* Malformed or refused input, per source (see log_bad_inputs). */
	struct growth_log bad_netlink, bad_ctl, bad_spool[CTD_OUT_MAX];
};

static void on_record(void *arg, const struct ctd_record *rec)
{
	struct ctd *ctd = arg;

	if (!ctd_filter_match(ctd->filter, rec)) {
		ctd->stats.records_filtered++;
		return;
	}
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

	if (!ctd_filter_match(ctd->filter, rec)) {
		ctd->stats.records_filtered++;
		return;
	}
	ctd_deliver_event(ctd->deliver, rec, missed);
}

static void on_messages(void *arg, const struct nlmsghdr *const *msgs,
			size_t n, const struct ctd_now *now)
{
	struct ctd *ctd = arg;

	ctd_engine_messages(ctd->engine, msgs, n, now);
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
		      (int64_t)ctd->cfg->check_interval * 1000000;

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
	/* Ready means listening with the table known, even if it could
	 * not be read: events still flow. */
	if (ctd->startup_dump)
		ctd_daemon_notify("READY=1", -1);
	ctd->startup_dump = false;
	/* Reliable mode: conntracks gone from the table whose DESTROY the
	 * kernel still holds for us are not gone for us. Read that list
	 * before judging, or a slow re-send would turn into a double. */
	if (!err && ctd->cfg->broadcast_error &&
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

/* How much counter n grew since it was last logged, when a line is due
 * now (at most one per 10 s, so a burst or a hostile peer cannot flood
 * the log; the counter itself always has the whole count); else 0. The
 * clock is read only when the counter moved. */
static uint64_t growth_due(struct growth_log *g, uint64_t n)
{
	uint64_t grew;
	int64_t now_us;

	if (n <= g->logged) {
		g->logged = n;      /* an output reopened: its counter restarts */
		return 0;
	}
	now_us = ctd_now_read().mono_us;
	if (g->at_us && now_us - g->at_us < 10000000)
		return 0;
	grew = n - g->logged;
	g->logged = n;
	g->at_us = now_us;
	return grew;
}

/* Evictions mean --max-flows is too small for the traffic: say so once
 * per burst, with the count. */
static void log_evictions(struct ctd *ctd)
{
	uint64_t n = growth_due(&ctd->evictions,
				ctd->stats.ends[CTD_END_EVICTED]);

	if (n)
		log_warn("flow table full (--max-flows %zu): evicted %llu flows",
			 ctd->cfg->max_flows ? ctd->cfg->max_flows :
			 ctd_kernel_conntrack_max(PROC_NETFILTER),
			 (unsigned long long)n);
}

static void log_bad_input(struct growth_log *g, uint64_t n,
			  const char *source, const char *what)
{
	n = growth_due(g, n);
	if (n)
		log_warn("%s: %llu %s", source, (unsigned long long)n, what);
}

static void log_bad_inputs(struct ctd *ctd)
{
	const struct ctd_stats *st = &ctd->stats;

	log_bad_input(&ctd->bad_netlink, st->parse_errors, "ctnetlink",
		      "malformed messages ignored (parse_errors)");
	log_bad_input(&ctd->bad_ctl, st->ctl_refused, "control socket",
		      "connections or requests refused: not allowed, too "
		      "long or not text (ctl_refused)");
	for (size_t i = 0; i < CTD_OUT_MAX; i++) {
		char source[64];

		if (!st->out[i] || st->out[i]->spool_skipped ==
				   ctd->bad_spool[i].logged)
			continue;
		snprintf(source, sizeof(source), "output %s", st->out_name[i]);
		log_bad_input(&ctd->bad_spool[i], st->out[i]->spool_skipped,
			      source, "damaged spool entries skipped "
			      "(spool_skipped)");
	}
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
	log_bad_inputs(ctd);
	if (ctd->stats.nl_enobufs != ctd->enobufs_seen) {
		ctd->enobufs_seen = ctd->stats.nl_enobufs;
		ctd->resync_pending = ctd->cfg->resync;
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

/* Settings a reload cannot change in a running ctd, named in the log. */
static void report_restart_needed(const struct ctd_config *old,
				  const struct ctd_config *new)
{
	char *a = NULL, *b = NULL, *la, *lb, *sa, *sb;
	size_t alen, blen;
	FILE *fa = open_memstream(&a, &alen), *fb = open_memstream(&b, &blen);

	if (fa && fb) {
		ctd_config_write(old, fa);
		ctd_config_write(new, fb);
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	for (la = a ? strtok_r(a, "\n", &sa) : NULL,
	     lb = b ? strtok_r(b, "\n", &sb) : NULL; la && lb;
	     la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb))
		if (strcmp(la, lb) != 0 && strncmp(la, "output ", 7) != 0 &&
		    strncmp(la, "filter-", 7) != 0 && strncmp(la, "ignore-", 7) != 0)
			log_warn("reload: '%s' needs a restart to take effect", lb);
	free(a);
	free(b);
}

/* Filters change at once on reload. */
static void apply_filter(struct ctd *ctd, const struct ctd_config *next)
{
	struct ctd_filter *f;

	if (memcmp(next->filter, ctd->cfg->filter, sizeof(next->filter)) == 0)
		return;
	f = ctd_config_filter(next);
	if (!f) {
		log_err("reload: out of memory for the new filter; keeping the old");
		return;
	}
	ctd_filter_free(ctd->filter);
	ctd->filter = f;
	memcpy(ctd->cfg->filter, next->filter, sizeof(next->filter));
	log_info("reload: new filter in effect");
}

/* SIGHUP: re-read the configuration; a bad one changes nothing. The
 * record file may move; every output reopens its files. */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct ctd *ctd = w->data;
	struct ctd_config next;
	char err[CTD_CONFIG_ERR_MAX];
	int r;

	(void)loop;
	(void)revents;
	if (ctd_cli_config(ctd->cli, &next, err, sizeof(err)) < 0) {
		log_err("reload: %s; keeping the running configuration", err);
		return;
	}
	report_restart_needed(ctd->cfg, &next);
	apply_filter(ctd, &next);
	if (strcmp(next.output, ctd->cfg->output) != 0) {
		if (!ctd->json || !*next.output || strcmp(next.output, "-") == 0 ||
		    strcmp(ctd->cfg->output, "-") == 0) {
			log_warn("reload: output %s needs a restart", *next.output ?
				 next.output : "none");
		} else if ((r = ctd_out_file_set_path(ctd->json, next.output)) < 0) {
			log_err("reload: cannot open %s: %s; still writing to %s",
				next.output, ctd_log_errstr(-r), ctd->cfg->output);
		} else {
			strcpy(ctd->cfg->output, next.output);
		}
	}
	log_info("SIGHUP: configuration reloaded, reopening output files");
	ctd_deliver_reopen(ctd->deliver);
}

static void on_usr1(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct ctd *ctd = w->data;

	(void)loop;
	(void)revents;
	log_info("SIGUSR1: reopening output files");
	ctd_deliver_reopen(ctd->deliver);
}

static void sum_outputs(const struct ctd_stats *st, uint64_t *ret_delivered,
			uint64_t *ret_failed);

/* A one-line summary for `systemctl status`, and the watchdog's ping:
 * the loop runs, or systemd restarts ctd (and the socket survives). */
static void on_status(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctd *ctd = w->data;
	uint64_t delivered, failed;
	char msg[256];

	(void)loop;
	(void)revents;
	sum_outputs(&ctd->stats, &delivered, &failed);
	snprintf(msg, sizeof(msg), "WATCHDOG=1\nSTATUS=%llu flows tracked, "
		 "%llu records delivered, %llu lost, %llu events",
		 (unsigned long long)ctd->stats.flows_tracked,
		 (unsigned long long)delivered, (unsigned long long)failed,
		 (unsigned long long)ctd->stats.nl_messages);
	ctd_daemon_notify(msg, -1);
}

static void start_status(struct ctd *ctd)
{
	unsigned long long wd = ctd_daemon_watchdog_usec();
	double every = wd ? (double)wd / 2e6 : 10;

	if (!getenv("NOTIFY_SOCKET"))
		return;
	if (every > 10)
		every = 10;
	ev_timer_init(&ctd->status, on_status, every, every);
	ctd->status.data = ctd;
	ev_timer_start(ctd->loop, &ctd->status);
}

static bool on_ctl(void *arg, const char *request, FILE *out, size_t *cursor)
{
	struct ctd *ctd = arg;
	struct ctd_now now = ctd_now_read();
	struct ctd_report_src src = {
		.stats = &ctd->stats,
		.flows = ctd_engine_flows(ctd->engine),
		.cfg = ctd->cfg,
		.proc_sys = "/proc/sys",
		.now_ns = now.wall_ns,
		.uptime_s = (uint64_t)(now.mono_us - ctd->started_us) / 1000000,
		.reliable = ctd->cfg->broadcast_error,
	};

	ctd->stats.table_bytes = ctd_flowtable_memory(src.flows);
	return ctd_report_answer(&src, request, out, cursor);
}

/* A group by name or number; false (logged) when there is none. */
static bool control_group(const char *name, gid_t *ret)
{
	struct group *gr;
	char *end;
	unsigned long n;

	*ret = (gid_t)-1;
	if (!*name)
		return true;
	gr = getgrnam(name);
	if (gr) {
		*ret = gr->gr_gid;
		return true;
	}
	n = strtoul(name, &end, 10);
	if (*end || end == name || n >= (gid_t)-1) {
		log_err("control-group: no group '%s'; no control socket",
			name);
		return false;
	}
	*ret = (gid_t)n;
	return true;
}

/* The control socket is a convenience: ctd runs without it. */
static void open_ctl(struct ctd *ctd)
{
	const char *path = ctd->cfg->control;
	gid_t group;
	int r;

	if (!*path)
		return;
	if (strcmp(path, "/run/ctd/ctd.sock") == 0 &&
	    mkdir("/run/ctd", 0755) < 0 && errno != EEXIST)
		log_warn("cannot create /run/ctd: %s", strerror(errno));
	if (!control_group(ctd->cfg->control_group, &group))
		return;
	r = ctd_ctl_new(ctd->loop, path, group, on_ctl, ctd, &ctd->stats,
			&ctd->ctl);
	if (r < 0)
		log_warn("no control socket at %s: %s; ctd -s will not work",
			 path, strerror(-r));
}

/* Off by default; loopback only (config.c refuses anything else). */
static void open_metrics(struct ctd *ctd)
{
	int r;

	if (!*ctd->cfg->metrics)
		return;
	r = ctd_ctl_new_http(ctd->loop, ctd->cfg->metrics, on_ctl, ctd,
			     &ctd->stats, &ctd->metrics);
	if (r < 0)
		log_warn("no metrics endpoint on %s: %s", ctd->cfg->metrics,
			 strerror(-r));
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

static int new_deliver(struct ctd *ctd, const struct ctd_config *o)
{
	struct ctd_deliver_cfg dc = {
		.grace_ms = o->grace * 1000,
		.dying_max = o->dying_max,
		.spool_dir = *o->spool_dir ? o->spool_dir : NULL,
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

	if (!*path)
		return 0;
	/* Only the default location is ours to create. */
	if (strcmp(path, DEFAULT_OUTPUT) == 0 &&
	    mkdir("/var/log/ctd", 0750) < 0 && errno != EEXIST)
		log_warn("cannot create /var/log/ctd: %s", ctd_log_errstr(errno));
	r = ctd_out_json_new(path, 0, &out);
	if (r < 0) {
		log_err("cannot open output %s: %s", path, ctd_log_errstr(-r));
		return r;
	}
	ctd->json = out;
	return ctd_deliver_add(ctd->deliver, out, ctd->cfg->json_events);
}

static int open_stream(struct ctd *ctd, const char *path)
{
	struct ctd_output *out;
	int r;

	if (!*path)
		return 0;
	r = ctd_out_stream_new(ctd->loop, path, &out);
	if (r < 0) {
		log_err("cannot listen on %s: %s", path, ctd_log_errstr(-r));
		return r;
	}
	return ctd_deliver_add(ctd->deliver, out, ctd->cfg->stream_events);
}

static int open_ipfix(struct ctd *ctd, const struct ctd_config *o)
{
	struct ctd_out_ipfix_cfg ic = {
		.target = o->ipfix,
		.enc = {
			.domain = o->ipfix_domain,
			.pen = o->ipfix_pen,
			.shape = (uint8_t)o->ipfix_shape,
			.nat_event = (uint8_t)o->ipfix_nat_event,
		},
		.mtu = o->ipfix_mtu,
		.template_interval = o->ipfix_template_refresh,
		.template_messages = o->ipfix_template_messages,
	};
	struct ctd_output *out;
	int r;

	if (!*o->ipfix)
		return 0;
	r = ctd_out_ipfix_new(ctd->loop, &ic, &out);
	if (r < 0) {
		log_err("cannot export IPFIX to %s: %s", o->ipfix, strerror(-r));
		return r;
	}
	log_info("exporting IPFIX (%s records) to %s",
		 ctd_ipfix_shape_name(ic.enc.shape), o->ipfix);
	return ctd_deliver_add(ctd->deliver, out, 1u << CTD_EV_DESTROY);
}

static int open_ctlog(struct ctd *ctd, const char *path)
{
	struct ctd_out_file_fmt fmt = {
		"ctlog", ctd_ctlog_line, NULL, ctd_ctlog_free, CTD_CTLOG_MAX
	};
	struct ctd_output *out;
	int r;

	if (!*path)
		return 0;
	fmt.arg = ctd_ctlog_new();
	if (!fmt.arg)
		return -ENOMEM;
	r = ctd_out_file_new(path, &fmt, 0, &out);
	if (r < 0) {
		log_err("cannot open conntrackd log %s: %s", path, ctd_log_errstr(-r));
		return r;
	}
	return ctd_deliver_add(ctd->deliver, out, 1u << CTD_EV_DESTROY);
}

static int open_syslog(struct ctd *ctd, const struct ctd_config *o)
{
	struct ctd_out_syslog_cfg sc = {
		o->syslog_socket, o->syslog_facility, o->syslog_level,
		o->syslog_format == 1,
	};
	struct ctd_output *out;
	int r;

	if (!o->syslog)
		return 0;
	r = ctd_out_syslog_new(ctd->loop, &sc, &out);
	if (r < 0) {
		log_err("cannot send records to syslog at %s: %s", sc.socket,
			strerror(-r));
		return r;
	}
	return ctd_deliver_add(ctd->deliver, out, 1u << CTD_EV_DESTROY);
}

static int open_outputs(struct ctd *ctd, const struct ctd_config *o)
{
	int r = new_deliver(ctd, o);

	if (r == 0)
		r = open_json(ctd, o->output);
	if (r == 0)
		r = open_stream(ctd, o->stream);
	if (r == 0)
		r = open_ipfix(ctd, o);
	if (r == 0)
		r = open_ctlog(ctd, o->conntrackd_log);
	if (r == 0)
		r = open_syslog(ctd, o);
	if (r < 0)
		return r;
	/* JSON on stdout and the event lines would interleave: JSON wins. */
	if (ctd->cli->foreground && strcmp(o->output, "-") != 0) {
		ctd->text = ctd_out_text_new(STDOUT_FILENO, &ctd->stats);
		if (!ctd->text)
			return -ENOMEM;
	}
	return 0;
}

/* A socket handed over by the previous ctd (systemd's fd store or our
 * own re-exec) brings the events queued while no ctd was reading. */
static int open_nlsrc(struct ctd *ctd, const struct ctd_config *o)
{
	struct ctd_nlsrc_cfg nl = {
		.rcvbuf = o->rcvbuf,
		.rcvbuf_max = o->rcvbuf_max,
		.reliable = o->broadcast_error,
		.budget = o->budget,
		.record_path = *o->record ? o->record : NULL,
	};
	int r;

	nl.fd = ctd_daemon_listen_fd("ctnetlink");
	if (nl.fd == -EINVAL)
		log_warn("ignoring malformed LISTEN_FDS/LISTEN_PID");
	r = ctd_nlsrc_new(&nl, &ctd->stats, on_messages, ctd, &ctd->nlsrc);
	if (r == 0 && nl.fd >= 0)
		log_info("took over the ctnetlink socket from the previous ctd "
			 "(%d bytes of events queued)",
			 ctd_nlsrc_queued(ctd->nlsrc));
	if (r < 0 && nl.fd >= 0)
		close(nl.fd);
	return r;
}

static size_t choose_max_flows(const struct ctd_config *o)
{
	size_t kmax;

	if (o->max_flows)
		return o->max_flows;
	kmax = ctd_kernel_conntrack_max(PROC_NETFILTER);
	return kmax ? kmax : 262144;
}

static void engine_cfg(const struct ctd_config *o, struct ctd_engine_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_flows = choose_max_flows(o);
	cfg->slack_s = o->expiry_slack;
	cfg->active_timeout_s = o->active_timeout;
	cfg->remember_ends = o->remember_ends;
	cfg->started_ns = ctd_now_read().wall_ns;
	ctd_kernel_timeouts(PROC_NETFILTER, cfg->timeout_s);
}

static int start(struct ctd *ctd, const struct ctd_config *o)
{
	struct ctd_engine_sinks sinks = { on_record, on_event, on_flow_event, ctd };
	struct ctd_ctdump_ops dops = { on_dump_entry, on_dump_done, ctd };
	struct ctd_engine_cfg cfg;
	int r;

	ctd->filter = ctd_config_filter(o);
	if (!ctd->filter)
		return -ENOMEM;
	r = open_outputs(ctd, o);
	if (r < 0)
		return r;
	r = open_nlsrc(ctd, o);
	if (r < 0) {
		log_err("cannot open the ctnetlink socket: %s%s", strerror(-r),
			r == -EPERM ? " (ctd needs CAP_NET_ADMIN)" : "");
		return r;
	}
	ctd_kernel_prepare(PROC_NETFILTER, o->sysctl);
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
	double every = ctd->cfg->pending_interval;

	ev_init(&ctd->expiry, on_expiry);
	ctd->expiry.data = ctd;
	ev_timer_init(&ctd->pending, on_dump_timer, every, every);
	ctd->pending.data = ctd;
	if (every > 0 && ctd->cfg->broadcast_error)
		ev_timer_start(ctd->loop, &ctd->pending);
	/* Half the active timeout, so a flow is reported at most that late. */
	every = ctd->cfg->active_timeout / 2.0;
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
	ev_signal_init(&ctd->sigusr1, on_usr1, SIGUSR1);
	ctd->sigusr1.data = ctd;
	ev_signal_start(ctd->loop, &ctd->sigusr1);
	ev_signal_start(ctd->loop, &ctd->sigint);
	ev_signal_start(ctd->loop, &ctd->sigterm);
	ev_signal_init(&ctd->sighup, on_hup, SIGHUP);
	ctd->sighup.data = ctd;
	ev_signal_start(ctd->loop, &ctd->sighup);
	ctd_nlsrc_start(ctd->nlsrc, ctd->loop);
	start_timers(ctd);
	ctd->started_us = ctd_now_read().mono_us;
	open_ctl(ctd);
	open_metrics(ctd);
	log_info("listening for conntrack events (%s mode, rcvbuf %llu bytes)",
		 ctd->cfg->broadcast_error ? "reliable" : "lossy",
		 (unsigned long long)ctd->stats.rcvbuf);
	start_status(ctd);
	ev_run(ctd->loop, 0);
	ctd_nlsrc_stop(ctd->nlsrc, ctd->loop);
	ev_timer_stop(ctd->loop, &ctd->expiry);
	ev_timer_stop(ctd->loop, &ctd->pending);
	ev_timer_stop(ctd->loop, &ctd->counters);
	ev_timer_stop(ctd->loop, &ctd->status);
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
	spooled = ctd_deliver_finish(ctd->deliver, ctd->cfg->shutdown_timeout);
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
	ctd_ctl_free(ctd->ctl);
	ctd_filter_free(ctd->filter);
	ctd_ctl_free(ctd->metrics);
	ctd_out_text_free(ctd->text);
	ctd_deliver_free(ctd->deliver);
	ctd_ctdump_free(ctd->dump);
	ctd_engine_free(ctd->engine);
	ctd_nlsrc_free(ctd->nlsrc);
	if (ctd->loop)
		ev_loop_destroy(ctd->loop);
}

/* Everything that needs root is open by now: sockets, files, sysctls. */
static int drop_privileges(const struct ctd_config *cfg)
{
	static const char *const outs[] = { "json", "stream", "ipfix", "ctlog",
					    "syslog" };
	char spools[5][CTD_CONFIG_PATH_MAX + 16];
	const char *paths[9];
	size_t n = 0;
	int r;

	if (!*cfg->user)
		return 0;
	/* What ctd reopens or rewrites later: the record files, the spool
	 * directory and its files. */
	if (*cfg->output && strcmp(cfg->output, "-") != 0)
		paths[n++] = cfg->output;
	if (*cfg->conntrackd_log)
		paths[n++] = cfg->conntrackd_log;
	if (*cfg->spool_dir) {
		paths[n++] = cfg->spool_dir;
		for (size_t i = 0; i < 5; i++) {
			snprintf(spools[i], sizeof(spools[i]), "%s/%s.spool",
				 cfg->spool_dir, outs[i]);
			paths[n++] = spools[i];
		}
	}
	paths[n] = NULL;
	r = ctd_daemon_drop_to(cfg->user, paths);
	if (r == -ESRCH)
		log_err("user %s: no such user", cfg->user);
	else if (r == -EPERM && geteuid() != 0)
		log_err("user %s: ctd must start as root to change user", cfg->user);
	else if (r < 0)
		log_err("cannot become user %s: %s", cfg->user, strerror(-r));
	else
		log_info("running as %s with CAP_NET_ADMIN only", cfg->user);
	return r;
}

static int check_config(const struct ctd_cli *cli, const struct ctd_config *cfg)
{
	printf("ctd: configuration %s is OK%s\n", cli->config,
	       cli->config_given || access(cli->config, F_OK) == 0 ? "" :
	       " (no file: defaults)");
	if (cli->verbose)
		ctd_config_write(cfg, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static struct ctd_config cfg;
	struct ctd_cli cli;
	struct ctd ctd = { 0 };
	char err[CTD_CONFIG_ERR_MAX];
	int r, keep_fd = -1;

	ctd_cli_parse(argc, argv, &cli);
	if (ctd_cli_config(&cli, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "ctd: %s\n", err);
		return 1;
	}
	if (cli.mode == CTD_CLI_CHECK)
		return check_config(&cli, &cfg);
	if (cli.mode == CTD_CLI_QUERY)
		return ctd_ctl_query(cfg.control, cli.query, cli.json) < 0 ? 1 : 0;
	ctd.cfg = &cfg;
	ctd.cli = &cli;
	ctd_log_init("ctd", cli.verbose ? CTD_LOG_DEBUG : CTD_LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	ctd.loop = ev_default_loop(EVFLAG_AUTO);
	if (!ctd.loop) {
		log_err("cannot create the event loop");
		return 1;
	}
	r = start(&ctd, &cfg);
	if (r == 0)
		r = drop_privileges(&cfg);
	if (r == 0) {
		run(&ctd);
		finish(&ctd, cli.verbose);
		keep_fd = hand_over(&ctd);
	}
	teardown(&ctd);
	if (keep_fd >= 0) {
		r = ctd_daemon_reexec(argv, keep_fd, "ctnetlink");
		log_err("cannot re-execute ctd: %s", strerror(-r));
	}
	return r == 0 ? 0 : 1;
}
