/* main: command line, start-up in dependency order, the event loop and
 * shutdown. Owns the one libev loop and every module instance; signal
 * handling is synchronous through ev_signal, so nothing runs in an async
 * signal context. ctd never forks: run it under systemd, or with -f in a
 * terminal. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <ev.h>

#include "ctd/base/listen.h"
#include "ctd/base/log.h"
#include "ctd/base/membudget.h"
#include "ctd/base/safefile.h"
#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/base/tlsfile.h"
#include "ctd/config/cfgcheck.h"
#include "ctd/config/cli.h"
#include "ctd/config/config.h"
#include "ctd/control/alerts.h"
#include "ctd/control/counters.h"
#include "ctd/control/ctl.h"
#include "ctd/control/report.h"
#include "ctd/control/report_cli.h"
#include "ctd/delivery/deliver.h"
#include "ctd/delivery/leftover.h"
#include "ctd/endpoints.h"
#include "ctd/flows/engine.h"
#include "ctd/flows/filter.h"
#include "ctd/flows/flowtable.h"
#include "ctd/flows/sysctl.h"
#include "ctd/kernel/guard.h"
#include "ctd/kernel/nlsrc.h"
#include "ctd/outputs/out_text.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/out_file.h"
#include "ctd/outputs/outputs.h"
#include "ctd/reload.h"
#include "ctd/route.h"
#include "ctd/service/daemon.h"
#include "ctd/service/notify.h"
#include "ctd/service/prefork.h"
#include "ctd/service/restart.h"
#include "ctd/shards.h"
#include "ctd/sync/netns.h"
#include "ctd/sync/netnstab.h"
#include "ctd/sync/reconcile_ev.h"

#define PROC_NETFILTER "/proc/sys/net/netfilter"
#define SHUTDOWN_DRAIN_MAX 1000000
#define SHUTDOWN_HELD_US 1000000

struct ctd {
	struct ev_loop *loop;
	struct ctd_stats stats;
	struct ctd_engine *engine;
	struct ctd_nlsrc *nlsrc;
	struct ctd_deliver *deliver;
	struct ctd_out_text *text;
	struct ctd_reconcile_ev *reconcile;
	struct ctd_netns_watch *netns;   /* NULL: `netns self` */
	struct ctd_config *cfg;
	const struct ctd_cli *cli;
	struct ctd_ctl *ctl;
	struct ctd_ctl *metrics;
	struct ctd_filter *filter;
	struct ctd_owner owner;    /* `user`: gets ctd's files before the drop */
	int64_t started_us;
	ev_prepare flush;
	ev_signal sigint, sigterm, sighup, sigusr1, sigusr2;
	struct ctd_notify *notify;
	struct ctd_restart *restart;
	int stop_signal;
	struct ctd_alerts *alerts;
	struct ctd_clock clock;    /* zeroed: the system clock */
	struct ctd_route route;    /* the engine's sinks */
	struct ctd_guard *guard;   /* NULL: lossy mode, or it could not start */
	size_t memory_max;         /* memory-max resolved, bytes */
	char memory_why[160];      /* how auto came to it; "" when set */
	ev_child guard_child;
	struct ctd_shardlink *link;  /* a shard's link to its parent, or NULL */
	unsigned shard, shards;      /* this process's part; 1 shard: all */
	int link_fd;                 /* the link's descriptor, or -1 */
	char log_part[16];           /* "shard K: " before each log line */
};

static void on_messages(void *arg, const struct nlmsghdr *const *msgs,
			size_t n, const struct ctd_now *now)
{
	struct ctd *ctd = arg;
	const int32_t *nsids = ctd_nlsrc_batch_nsids(ctd->nlsrc);
	const struct nlmsghdr *kept[CTD_NLSRC_BATCH];
	int32_t kept_nsids[CTD_NLSRC_BATCH];

	if (nsids && ctd->netns) {
		n = ctd_netns_admit(ctd->netns, msgs, nsids, n, kept, kept_nsids);
		ctd_engine_messages_ns(ctd->engine, kept, kept_nsids, n, now);
	} else {
		ctd_engine_messages(ctd->engine, msgs, n, now);
	}
	/* Before the next batch is read: written, or in the log. With
	 * netns too, or a crash could lose a whole wakeup's budget. */
	ctd_deliver_commit(ctd->deliver);
}

static void on_dump_part(void *arg, enum ctd_dump_kind kind, int32_t nsid,
			 int err, size_t entries)
{
	struct ctd *ctd = arg;

	if (ctd->netns)
		ctd_netns_dump_part(ctd->netns, kind, nsid, err, entries);
}

/* Ready means listening with the table known (reconcile decides when). */
static void on_ready(void *arg)
{
	struct ctd *ctd = arg;

	ctd_notify_ready(ctd->notify);
	ctd_shardlink_ready(ctd->link);
}

/* The one-line summary `systemctl status` shows. */
static void status_line(void *arg, char *buf, size_t cap)
{
	const struct ctd_stats *st = &((struct ctd *)arg)->stats;
	uint64_t delivered = 0, failed = 0;

	for (size_t i = 0; i < CTD_OUT_MAX && st->out_name[i]; i++) {
		delivered += st->out[i]->delivered;
		failed += st->out[i]->failed;
	}
	snprintf(buf, cap, "%s%llu flows tracked, %llu records delivered, "
		 "%llu lost, %llu lost in the kernel while failed open, "
		 "%llu events",
		 st->kernel_failed_open ? "FAILED OPEN (kernel pressure): " : "",
		 (unsigned long long)st->flows_tracked,
		 (unsigned long long)delivered, (unsigned long long)failed,
		 (unsigned long long)st->kernel_lost,
		 (unsigned long long)st->nl_messages);
}

/* ctd's progress to the guard, the governor's state into the counters. */
static void sync_guard(struct ctd *ctd)
{
	struct ctd_stats *st = &ctd->stats;
	struct ctd_guard_view v;

	if (!ctd->guard)
		return;
	ctd_guard_publish(ctd->guard, st->nl_messages,
			  (int64_t)st->kernel_lag_us);
	ctd_guard_view(ctd->guard, &v);
	st->kernel_failed_open = v.st.open;
	st->kernel_open_since_us = v.since_wall_s * 1000000;
	st->kernel_fail_opens = v.st.fail_opens;
	st->kernel_rearms = v.st.rearms;
	st->kernel_lost = v.st.lost;
	st->kernel_released = v.st.released;
	st->kernel_table_count = v.count;
	st->kernel_table_max = v.max;
	st->kernel_table_peak_pct = v.st.peak_pct;
	st->kernel_cause = v.st.cause;
	st->guard_running = v.running;
}

/* Before the loop blocks: one write per output for the whole batch. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct ctd *ctd = w->data;

	(void)loop;
	(void)revents;
	sync_guard(ctd);
	ctd_deliver_commit(ctd->deliver);
	if (ctd->text)
		ctd_out_text_flush(ctd->text);
	ctd_alerts_check(ctd->alerts, &ctd->clock);
	ctd_reconcile_ev_prepare(ctd->reconcile);
}

static void refresh_stats(void *arg);

/* A shard's link to its parent, which keeps a copy of the socket. */
static int open_link(struct ctd *ctd)
{
	int fd;

	ctd->link = ctd_shardlink_new(ctd->loop, ctd->link_fd, &ctd->stats,
				      refresh_stats, ctd);
	if (!ctd->link)
		return -ENOMEM;
	fd = ctd_nlsrc_dup_fd(ctd->nlsrc);
	if (fd >= 0) {
		ctd_shardlink_keep(ctd->link, fd);
		close(fd);
	}
	return 0;
}

/* Before a shard's snapshot goes to the parent. */
static void refresh_stats(void *arg)
{
	struct ctd *ctd = arg;

	sync_guard(ctd);
	ctd->stats.table_bytes =
		ctd_flowtable_memory(ctd_engine_flows(ctd->engine));
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct ctd *ctd = w->data;

	(void)revents;
	if (w->signum == SIGUSR2) {
		log_info("SIGUSR2: restarting in place, keeping the ctnetlink socket");
		/* Held from here to the new image's handlers: a HUP that
		 * logrotate sends meanwhile waits instead of killing ctd. */
		ctd_daemon_hold_signals();
	} else {
		log_info("signal %d: shutting down", w->signum);
	}
	ctd_notify_stopping(ctd->notify, w->signum == SIGUSR2);
	ctd->stop_signal = w->signum;
	ev_break(loop, EVBREAK_ALL);
}

static struct ctd_reload_target reload_target(struct ctd *ctd)
{
	return (struct ctd_reload_target){ ctd->cfg, &ctd->filter,
					   ctd->deliver, ctd->nlsrc,
					   ctd->text != NULL };
}

static void reload_problem(void *arg, const char *line)
{
	(void)arg;
	log_err("reload: %s", line);
}

static struct ctd_endpoints endpoints(struct ctd *ctd);

/* SIGHUP: re-read the configuration; a bad one changes nothing. The
 * record file may move; every output reopens its files. */
static int reload(struct ctd *ctd)
{
	struct ctd_reload_target target;
	struct ctd_endpoints e;
	struct ctd_config next;
	char err[CTD_CONFIG_ERR_MAX] = "";
	int link_fd, r;

	if ((r = ctd_cli_config(ctd->cli, &next, err, sizeof(err))) < 0 ||
	    (r = ctd_shards_child(&next, &link_fd)) < 0) {
		log_err("reload: %s; keeping the running configuration", err);
		return r;
	}
	/* ctd -t's checks (a missing directory, an unknown user, a
	 * certificate that does not load, a key that is not its): a file
	 * that passes them is not applied half. */
	if (ctd_cfgcheck(&next, reload_problem, NULL)) {
		log_err("reload: keeping the running configuration");
		return -EINVAL;
	}
	target = reload_target(ctd);
	r = ctd_reload_apply(&target, &next);
	if (r < 0)
		return r;
	e = endpoints(ctd);
	return ctd_endpoints_reload_tls(&e, ctd->metrics);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct ctd *ctd = w->data;

	(void)loop;
	(void)revents;
	if (reload(ctd) < 0)
		ctd->stats.reload_failures++;
	else
		ctd->stats.reloads++;
}

static void on_usr1(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct ctd *ctd = w->data;

	(void)loop;
	(void)revents;
	log_info("SIGUSR1: reopening output files");
	ctd_deliver_reopen(ctd->deliver);
}

static bool on_ctl(void *arg, const char *request, FILE *out, size_t *cursor)
{
	struct ctd *ctd = arg;
	struct ctd_now now = ctd_clock_read(&ctd->clock);
	struct ctd_report_src src = {
		.stats = &ctd->stats,
		.flows = ctd_engine_flows(ctd->engine),
		.cfg = ctd->cfg,
		.proc_sys = "/proc/sys",
		.proc_netlink = "/proc/net/netlink",
		.nl_portid = ctd_nlsrc_portid(ctd->nlsrc),
		.now_ns = now.wall_ns,
		.uptime_s = (uint64_t)(now.mono_us - ctd->started_us) / 1000000,
		.reliable = ctd->cfg->broadcast_error,
		/* A live dump reads ctd's own namespace only. */
		.live = !ctd->netns,
		.netns = ctd->netns ? ctd_netns_table(ctd->netns) : NULL,
	};

	ctd->stats.table_bytes = ctd_flowtable_memory(src.flows);
	return ctd_report_answer(&src, request, out, cursor);
}

static struct ctd_endpoints endpoints(struct ctd *ctd)
{
	return (struct ctd_endpoints){ ctd->loop, ctd->cfg, &ctd->owner,
				       on_ctl, ctd, &ctd->stats };
}

/* memory-max in bytes, auto resolved from the cgroup ctd runs in; said
 * once ctd listens (a start refused before says only why). */
static size_t memory_max(struct ctd *ctd, const struct ctd_config *o)
{
	ctd->memory_max = ctd_membudget_resolve(o->memory_max, "/",
						ctd->memory_why,
						sizeof(ctd->memory_why));
	/* The shards share the box's budget. */
	ctd->memory_max /= ctd->shards;
	return ctd->memory_max;
}

static int new_deliver(struct ctd *ctd, const struct ctd_config *o)
{
	struct ctd_deliver_cfg dc = {
		.grace_ms = o->grace * 1000,
		.retry_max = o->dying_max,
		.memory_max = memory_max(ctd, o),
		.spool_dir = *o->spool_dir && ctd_restart_spool_ok(ctd->restart) ?
			     o->spool_dir : NULL,
		.owner = &ctd->owner,
		.clock = ctd->clock,
	};

	return ctd_deliver_new(ctd->loop, &dc, &ctd->stats, &ctd->deliver);
}

/* Opens d when o turns it on and hands it to delivery. */
static int open_output(struct ctd *ctd, const struct ctd_output_desc *d,
		       const struct ctd_config *o)
{
	struct ctd_output *out;
	int r;

	if (!d->enabled(o))
		return 0;
	r = d->create(ctd->loop, o, &ctd->owner, &out);
	if (r < 0)
		return r;
	return ctd_deliver_add(ctd->deliver, out, ctd_output_events(d, o));
}

static int open_outputs(struct ctd *ctd, const struct ctd_config *o)
{
	int r = new_deliver(ctd, o);

	for (size_t i = 0; r == 0 && ctd_outputs[i]; i++)
		r = open_output(ctd, ctd_outputs[i], o);
	if (r < 0)
		return r;
	/* JSON on stdout and the event lines would interleave: JSON wins. */
	if (ctd->cli->foreground && !ctd_out_json_stdout(o)) {
		ctd->text = ctd_out_text_new(STDOUT_FILENO, &ctd->stats,
					     ctd->cli->utc);
		if (!ctd->text)
			return -ENOMEM;
	}
	return 0;
}

/* A socket handed over by the previous ctd (systemd's fd store or our
 * own re-exec) brings the events queued while no ctd was reading. */
static int open_nlsrc(struct ctd *ctd, const struct ctd_config *o)
{
	struct ctd_reload_target target = reload_target(ctd);
	struct ctd_nlsrc_cfg nl = {
		.rcvbuf = o->rcvbuf,
		.rcvbuf_max = o->rcvbuf_max,
		.reliable = o->broadcast_error,
		.budget = o->budget,
		.record_path = *o->record ? o->record : NULL,
		.groups = ctd_reload_groups(&target, o),
		.all_netns = ctd_netnstab_enabled(o->netns),
		.shard = ctd->shard,
		.shards = ctd->shards,
	};
	int r;

	nl.fd = ctd_restart_socket(ctd->restart);
	r = ctd_nlsrc_new(&nl, &ctd->stats, on_messages, ctd, &ctd->nlsrc);
	if (r == 0 && nl.fd >= 0)
		log_info("took over the ctnetlink socket from the previous ctd "
			 "(%d bytes of events queued)",
			 ctd_nlsrc_queued(ctd->nlsrc));
	if (r < 0 && nl.fd >= 0)
		close(nl.fd);
	if (r == 0)
		ctd_restart_opened(ctd->restart, ctd->nlsrc, ctd->notify);
	return r;
}

static size_t choose_max_flows(const struct ctd_config *o)
{
	size_t kmax;

	if (o->max_flows)
		return o->max_flows;
	kmax = ctd_sysctl_conntrack_max(PROC_NETFILTER);
	return kmax ? kmax : 262144;
}

static void engine_cfg(const struct ctd *ctd, const struct ctd_config *o,
		       struct ctd_engine_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_flows = choose_max_flows(o);
	cfg->slack_s = o->expiry_slack;
	cfg->active_timeout_s = o->active_timeout;
	/* Auto: as many ends as the kernel may hold DESTROYs for (every
	 * conntrack on its dying list counts in nf_conntrack_count), so one
	 * stuck reliable listener cannot outrun ctd's memory of ends. */
	cfg->remember_ends = o->remember_ends == CTD_CONFIG_AUTO ?
			     cfg->max_flows : o->remember_ends;
	cfg->started_ns = ctd_clock_read(&ctd->clock).wall_ns;
	cfg->shard = ctd->shard;
	cfg->shards = ctd->shards;
	ctd_sysctl_timeouts(PROC_NETFILTER, cfg->timeout_s);
}

static int new_reconcile(struct ctd *ctd, const struct ctd_config *o)
{
	struct ctd_reconcile_ev_cfg rc = {
		.rc = {
			.check_interval_us = (int64_t)o->check_interval * 1000000,
			.pending_interval_us = (int64_t)o->pending_interval * 1000000,
			.active_timeout_us = (int64_t)o->active_timeout * 1000000,
			.reliable = o->broadcast_error,
			.resync = o->resync,
			.dying_walk_max = 5000,
		},
		.engine = ctd->engine,
		.nlsrc = ctd->nlsrc,
		.stats = &ctd->stats,
		.ready = on_ready,
		.arg = ctd,
		.part = on_dump_part,
		.part_arg = ctd,
	};

	return ctd_reconcile_ev_new(ctd->loop, &rc, &ctd->reconcile);
}

static int open_netns(struct ctd *ctd, const struct ctd_config *o)
{
	struct ctd_netns_cfg nc = {
		.spec = o->netns,
		.run_dir = "/run/netns",
		.sysctl = o->sysctl,
		.engine = ctd->engine,
		.nlsrc = ctd->nlsrc,
		.dump = ctd_reconcile_ev_dump(ctd->reconcile),
		.stats = &ctd->stats,
		.clock = ctd->clock,
	};
	int r = ctd_netns_new(ctd->loop, &nc, &ctd->netns);

	if (r < 0)
		log_err("netns %s: %s", o->netns, r == -EINVAL ?
			"not 'self', 'all' nor a list of names" : strerror(-r));
	return r;
}

/* Records of an output turned off wait in its spool: never deleted (they
 * were not delivered), said once at start so they are not forgotten. */
static void report_leftovers(const char *dir, const struct ctd_stats *st)
{
	struct ctd_leftover l[CTD_OUT_MAX];
	size_t n = 0;
	int found;

	while (n < CTD_OUT_MAX && st->out_name[n])
		n++;
	found = ctd_leftover_scan(dir, st->out_name, n, l, CTD_OUT_MAX);
	for (int i = 0; i < found && i < CTD_OUT_MAX; i++)
		log_warn("%s/%s (%llu bytes) holds undelivered records of an "
			 "output that is not configured: turn it on again to "
			 "deliver them, or delete the file if they are not "
			 "wanted", dir, l[i].file, (unsigned long long)l[i].bytes);
	if (found > CTD_OUT_MAX)
		log_warn("%s: %d such files in all", dir, found);
}

static int start(struct ctd *ctd, const struct ctd_config *o)
{
	struct ctd_engine_sinks sinks = { ctd_route_record, ctd_route_event,
					  ctd_route_flow_event, &ctd->route };
	struct ctd_engine_cfg cfg;
	struct ctd_endpoints e;
	int r;

	ctd->filter = ctd_config_filter(o);
	ctd->notify = ctd_notify_new(ctd->loop, &ctd->stats, status_line, ctd);
	if (!ctd->filter || !ctd->notify)
		return -ENOMEM;
	r = ctd_restart_begin(o->spool_dir, &ctd->owner, &ctd->stats,
			      &ctd->restart);
	if (r == 0)
		r = open_outputs(ctd, o);
	if (r < 0)
		return r;
	if (*o->spool_dir && ctd_restart_spool_ok(ctd->restart))
		report_leftovers(o->spool_dir, &ctd->stats);
	ctd->route = (struct ctd_route){ &ctd->filter, ctd->deliver, ctd->text,
					 NULL, &ctd->stats };
	r = open_nlsrc(ctd, o);
	if (r < 0) {
		log_err("cannot open the ctnetlink socket: %s%s", strerror(-r),
			r == -EPERM ? " (ctd needs CAP_NET_ADMIN)" : "");
		return r;
	}
	ctd_sysctl_prepare(PROC_NETFILTER, o->sysctl);
	engine_cfg(ctd, o, &cfg);
	cfg.want_events = ctd_deliver_wants_events(ctd->deliver);
	ctd->engine = ctd_engine_new(&cfg, &ctd->stats, &sinks);
	ctd->alerts = ctd_alerts_new(&ctd->stats, cfg.max_flows);
	if (!ctd->engine || !ctd->alerts)
		return -ENOMEM;
	r = new_reconcile(ctd, o);
	if (r < 0)
		log_err("cannot open the ctnetlink dump socket: %s", strerror(-r));
	if (r == 0 && ctd_netnstab_enabled(o->netns))
		r = open_netns(ctd, o);
	ctd->route.netns = ctd->netns;
	if (r == 0 && ctd->link_fd >= 0)
		r = open_link(ctd);
	if (r < 0)
		return r;
	e = endpoints(ctd);
	return ctd_endpoints_control(&e, &ctd->ctl);
}

static void on_guard_exit(struct ev_loop *loop, ev_child *w, int revents)
{
	struct ctd *ctd = w->data;

	(void)revents;
	ev_child_stop(loop, w);
	ctd_guard_exited(ctd->guard);
	log_err("the kernel-pressure guard (pid %d) exited (status %d): a "
		"stopped ctd can now fill the conntrack table", w->rpid,
		w->rstatus);
}

/* After the privilege drop: the guard never runs as root. */
static void start_guard(struct ctd *ctd)
{
	const struct ctd_config *o = ctd->cfg;
	struct ctd_guard_cfg gc = {
		.pressure = {
			.hold = o->kernel_pressure == 1,
			.high_pct = o->kernel_pressure_high,
			.low_pct = o->kernel_pressure_low,
			.lag_us = 1000000,
			.min_open_us = 2000000,
		},
		.sock_fd = ctd_nlsrc_dup_fd(ctd->nlsrc),
		.procdir = PROC_NETFILTER,
		.tick_us = 100000,
	};
	int r;

	if (!o->broadcast_error || gc.sock_fd < 0)
		return;
	r = ctd_guard_start(&gc, &ctd->guard);
	close(gc.sock_fd);
	if (r < 0) {
		log_err("cannot start the kernel-pressure guard: %s; a stopped "
			"ctd can fill the conntrack table", strerror(-r));
		return;
	}
	ev_child_init(&ctd->guard_child, on_guard_exit, ctd_guard_pid(ctd->guard), 0);
	ctd->guard_child.data = ctd;
	ev_child_start(ctd->loop, &ctd->guard_child);
}

static void stop_guard(struct ctd *ctd)
{
	ev_child_stop(ctd->loop, &ctd->guard_child);
	sync_guard(ctd);
	ctd_guard_stop(ctd->guard);
	ctd->guard = NULL;
}

static void run(struct ctd *ctd)
{
	struct ctd_endpoints e;

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
	/* A watcher in a terminal: SIGHUP is the terminal going away (a
	 * dropped SSH session), not a reload; staying would leave an orphan
	 * subscribed for good. */
	ev_signal_init(&ctd->sighup, ctd->cli->foreground &&
		       (isatty(STDIN_FILENO) || isatty(STDOUT_FILENO)) ?
		       on_stop_signal : on_hup, SIGHUP);
	ctd->sighup.data = ctd;
	ev_signal_start(ctd->loop, &ctd->sighup);
	ctd_daemon_release_signals();
	ctd_nlsrc_start(ctd->nlsrc, ctd->loop);
	if (ctd->netns)
		ctd_netns_start(ctd->netns);
	ctd_reconcile_ev_start(ctd->reconcile);
	ctd->started_us = ctd_clock_read(&ctd->clock).mono_us;
	e = endpoints(ctd);
	ctd_endpoints_metrics(&e, &ctd->metrics);
	log_info("listening for conntrack events (%s mode, %s, rcvbuf %llu bytes)",
		 ctd->cfg->broadcast_error ? "reliable" : "lossy",
		 ctd_nlsrc_subscribed(ctd->nlsrc) == CTD_NLSRC_DESTROY ?
		 "DESTROY only" : "NEW, UPDATE and DESTROY",
		 (unsigned long long)ctd->stats.rcvbuf);
	log_info("memory-max %zu MiB%s%s%s", ctd->memory_max >> 20,
		 *ctd->memory_why ? " (" : "", ctd->memory_why,
		 *ctd->memory_why ? ")" : "");
	ctd_reload_log_labels(ctd->cfg);
	start_guard(ctd);
	ev_run(ctd->loop, 0);
	stop_guard(ctd);
	ctd_nlsrc_stop(ctd->nlsrc, ctd->loop);
	ctd_reconcile_ev_stop(ctd->reconcile);
	if (ctd->netns)
		ctd_netns_stop(ctd->netns);
	ev_prepare_stop(ctd->loop, &ctd->flush);
}

/* What the kernel still holds for ctd (its DESTROYs that did not fit)
 * comes again within 10 ms of room in the socket, for as long as any is
 * held: read until three such periods bring nothing, at most a second.
 * Closing the socket earlier would make the kernel free them unread. */
static unsigned drain_held(struct ctd *ctd)
{
	const struct timespec retry = { 0, 12 * 1000 * 1000 };
	int64_t end = ctd_clock_read(&ctd->clock).mono_us + SHUTDOWN_HELD_US;
	unsigned n = 0, got, quiet = 0;

	while (quiet < 3 && ctd_clock_read(&ctd->clock).mono_us < end) {
		got = ctd_nlsrc_drain(ctd->nlsrc, SHUTDOWN_DRAIN_MAX);
		n += got;
		quiet = got ? 0 : quiet + 1;
		if (!got)
			nanosleep(&retry, NULL);
	}
	return n;
}

/* Events already queued on the socket at shutdown still become records,
 * unless ctd re-executes and the new process reads them; what the
 * outputs cannot take in time goes to the spool. */
static void finish(struct ctd *ctd, bool verbose)
{
	const struct ctd_flowtable *ft;
	unsigned n = 0;
	size_t spooled;
	char line[256];

	if (ctd->stop_signal != SIGUSR2)
		n = drain_held(ctd);
	if (n)
		log_info("handled %u queued messages before exit", n);
	spooled = ctd_deliver_finish(ctd->deliver, ctd->cfg->shutdown_timeout);
	if (spooled)
		log_info("%zu undelivered records left for the spool", spooled);
	ft = ctd_engine_flows(ctd->engine);
	ctd->stats.table_bytes = ctd_flowtable_memory(ft);
	if (verbose)
		ctd_counters_print(&ctd->stats, stderr);
	/* A watcher delivers nothing: "0 records delivered" read as a loss. */
	if (!ctd->stats.out_name[0] && ctd->text) {
		const uint64_t *ev = ctd->stats.events;

		log_info("exiting: watched %llu events%s", (unsigned long long)
			 (ev[CTD_EV_NEW] + ev[CTD_EV_UPDATE] + ev[CTD_EV_DESTROY]),
			 ctd->stats.text_dropped ? "; lines were skipped while "
			 "the terminal was stuck (text_dropped)" : "");
		return;
	}
	status_line(ctd, line, sizeof(line));
	log_info("exiting: %s, %llu malformed messages", line,
		 (unsigned long long)ctd->stats.parse_errors);
}

static void teardown(struct ctd *ctd, bool keep_link)
{
	ctd_ctl_free(ctd->ctl);
	ctd_shardlink_free(ctd->link, keep_link);
	ctd_filter_free(ctd->filter);
	ctd_ctl_free(ctd->metrics);
	ctd_out_text_free(ctd->text);
	ctd_deliver_free(ctd->deliver);
	ctd_netns_free(ctd->netns);
	ctd_reconcile_ev_free(ctd->reconcile);
	ctd_engine_free(ctd->engine);
	ctd_alerts_free(ctd->alerts);
	ctd_nlsrc_free(ctd->nlsrc);
	ctd_notify_free(ctd->notify);
	ctd_restart_free(ctd->restart);
	if (ctd->loop)
		ev_loop_destroy(ctd->loop);
}

/* `user`: who gets ctd's files as they are opened (safefile.c), before
 * ctd becomes that user. */
static int find_owner(const struct ctd_config *cfg, struct ctd_owner *ret)
{
	int r = ctd_daemon_find_user(cfg->user, ret);

	if (r < 0)
		log_err("user %s: %s", cfg->user, r == -ESRCH ? "no such user" :
			strerror(-r));
	return r;
}

/* Everything that needs root is open by now, and every file ctd writes
 * later was handed to the user as it was opened. */
static int drop_privileges(const struct ctd_config *cfg,
			   const struct ctd_owner *owner)
{
	int r;

	if (owner->uid == (uid_t)-1)
		return 0;
	r = ctd_daemon_drop_to(owner->uid, owner->gid);
	if (r == -EPERM && geteuid() != 0)
		log_err("user %s: ctd must start as root to change user", cfg->user);
	else if (r < 0)
		log_err("cannot become user %s: %s", cfg->user, strerror(-r));
	else
		log_info("running as %s with CAP_NET_ADMIN only", cfg->user);
	return r;
}

/* `shards`: 0 for a single ctd or a shard (its part in ctd and cfg),
 * 1 for the parent of shards, -1 when CTD_SHARD is malformed. */
static int shard_or_parent(struct ctd *ctd, struct ctd_config *cfg)
{
	int r = ctd_shards_child(cfg, &ctd->link_fd);

	ctd->shards = 1;
	if (r < 0) {
		log_err("%s: %s", CTD_PREFORK_ENV, strerror(-r));
		return -1;
	}
	if (r == 0) {
		ctd->link_fd = -1;
		if (ctd_shards_count(cfg) > 1)
			return 1;
		cfg->shards = 1;     /* auto on one CPU */
		return 0;
	}
	ctd->shard = cfg->shard;
	ctd->shards = (unsigned)cfg->shards;
	snprintf(ctd->log_part, sizeof(ctd->log_part), "shard %u: ", ctd->shard);
	ctd_log_part(ctd->log_part);
	log_info("shard %u of %u (pid %d)", ctd->shard, ctd->shards,
		 (int)getpid());
	return 0;
}

/* ctd -l --sort KEY: the exit status of a query. */
static int query_sorted(const struct ctd_cli *cli, const struct ctd_config *cfg)
{
	enum ctd_listsort_key key;

	if (ctd_listsort_parse(cli->sort, &key) < 0) {
		fprintf(stderr, "ctd: --sort %s: expected bytes, packets or age\n",
			cli->sort);
		return 2;
	}
	return ctd_ctl_query_sorted(cfg->control, cli->query, key) < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct ctd_config cfg;
	struct ctd_cli cli;
	struct ctd ctd = { 0 };
	char err[CTD_CONFIG_ERR_MAX];
	int r, keep_fd = -1;

	/* A subcommand that reads the flow store: no config, no daemon. */
	if (argc > 1 && strcmp(argv[1], "report") == 0)
		return ctd_store_report_main(argc - 1, argv + 1);
	/* Before the config: the unit's reload check (ctd -t) must say why
	 * it refused at priority err in the journal. */
	ctd_log_init("ctd", CTD_LOG_INFO);
	ctd_cli_parse(argc, argv, &cli, ctd_output_settings);
	if (ctd_cli_config(&cli, &cfg, err, sizeof(err)) < 0) {
		ctd_log_tool(CTD_LOG_ERR, "%s", err);
		return 1;
	}
	if (cli.mode == CTD_CLI_CHECK)
		return ctd_cfgcheck_main(&cli, &cfg);
	if (cli.mode == CTD_CLI_QUERY && cli.sort)
		return query_sorted(&cli, &cfg);
	if (cli.mode == CTD_CLI_QUERY)
		return ctd_ctl_query(cfg.control, cli.query, cli.json) < 0 ? 1 : 0;
	ctd.cfg = &cfg;
	ctd.cli = &cli;
	ctd_log_init("ctd", cli.verbose ? CTD_LOG_DEBUG : CTD_LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	r = shard_or_parent(&ctd, &cfg);
	if (r != 0)
		return r < 0 || ctd_cfgcheck_log(&cfg) ? 1 :
		       ctd_shards_run(argv, &cfg, &cli);
	ctd.loop = ev_default_loop(EVFLAG_AUTO);
	if (!ctd.loop) {
		log_err("cannot create the event loop");
		return 1;
	}
	r = ctd_cfgcheck_log(&cfg) ? -EINVAL : find_owner(&cfg, &ctd.owner);
	if (r == 0)
		r = start(&ctd, &cfg);
	if (r == 0)
		r = drop_privileges(&cfg, &ctd.owner);
	if (r == 0) {
		run(&ctd);
		finish(&ctd, cli.verbose);
		keep_fd = ctd_restart_end(ctd.restart, ctd.nlsrc,
					  ctd.stop_signal == SIGUSR2);
	}
	teardown(&ctd, keep_fd >= 0);
	if (keep_fd >= 0) {
		r = ctd_daemon_reexec(argv, keep_fd, "ctnetlink");
		log_err("cannot re-execute ctd: %s", strerror(-r));
	}
	return r == 0 ? 0 : 1;
}
