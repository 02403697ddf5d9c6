/* counters: prints the counter struct. The tables below are the one place a
 * counter gets its public names: the ctd -s/JSON key and the Prometheus
 * family with its type and help text. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ctd/base/stats.h"
#include "ctd/control/counters.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/output.h"

/* name: the ctd -s and JSON key. prom: the Prometheus family (after
 * "ctd_"), with its unit and, for counters, "_total" as the exposition
 * guidelines want; label: the sample's label inside the family, for
 * counters that are one quantity split by kind. */
struct counter {
	const char *name;
	size_t off;
	bool gauge;
	const char *prom;
	const char *label;
	const char *help;
};

#define OFF(field) offsetof(struct ctd_stats, field)
#define C(name, prom, help) { #name, OFF(name), false, prom, NULL, help }
#define G(name, prom, help) { #name, OFF(name), true, prom, NULL, help }
#define EV(name, i, label) { name, OFF(events[i]), false, "events_total", \
	"type=\"" label "\"", "Conntrack events parsed, by type." }
#define END(name, i, label) { name, OFF(ends[i]), false, "flow_ends_total", \
	"reason=\"" label "\"", "Final flow records by end reason." }

/* In ctd -s per bucket; in the metrics one histogram (print_latency). */
#define LAT(i, name) { "latency_" name, OFF(latency[i]), false, NULL, NULL, NULL }

static const struct counter counters[] = {
	EV("events_new", CTD_EV_NEW, "new"),
	EV("events_update", CTD_EV_UPDATE, "update"),
	EV("events_destroy", CTD_EV_DESTROY, "destroy"),
	C(nl_messages, "netlink_messages_total", "Netlink messages received."),
	C(nl_reads, "netlink_reads_total", "Datagrams read from the ctnetlink socket."),
	C(nl_syscalls, "netlink_syscalls_total", "recvmmsg calls on the ctnetlink socket."),
	C(nl_wakeups, "netlink_wakeups_total", "Socket readiness callbacks."),
	C(nl_budget_hits, "netlink_budget_hits_total", "Wakeups that stopped at the message budget."),
	C(nl_enobufs, "netlink_enobufs_total", "Receive buffer overruns reported (lossy mode)."),
	C(nl_drops, "netlink_drops_total", "Events the ctnetlink socket dropped."),
	C(nl_grows, "netlink_rcvbuf_grows_total", "Receive buffer doublings."),
	C(nl_truncated, "netlink_truncated_total", "Datagrams larger than a receive slot."),
	C(nl_errors, "netlink_errors_total", "Other receive errors."),
	C(parse_errors, "parse_errors_total", "Malformed conntrack messages."),
	C(parse_ignored, "parse_ignored_total", "Netlink messages that are not conntrack events."),
	C(flows_created, "flows_created_total", "Flows added to the table."),
	C(flows_unseen_destroy, "flows_unseen_destroy_total", "DESTROY events for a flow never seen."),
	C(flows_table_full, "flows_table_full_total", "Flows not tracked: table at max-flows, nothing to evict."),
	C(flows_nomem, "flows_nomem_total", "Flows not tracked: out of memory."),
	C(records, "records_total", "Completed-flow records produced."),
	C(records_filtered, "records_filtered_total", "Records the filter settings left out."),
	END("ends_destroy", CTD_END_DESTROY, "destroy"),
	END("ends_expired", CTD_END_EXPIRED, "expired"),
	END("ends_evicted", CTD_END_EVICTED, "evicted"),
	END("ends_lost", CTD_END_LOST, "lost"),
	END("ends_netns_gone", CTD_END_NETNS_GONE, "netns_gone"),
	{ "interim_records", OFF(ends[CTD_END_ACTIVE]), false, "interim_records_total",
	  NULL, "Interim records of long flows." },
	C(resyncs, "resyncs_total", "Table dumps to resync after lost events."),
	C(expiry_suspects, "expiry_suspects_total", "Flows silent past their kernel timeout."),
	C(expiry_alive, "expiry_alive_total", "Silent flows a dump showed alive."),
	C(dumps, "dumps_total", "Conntrack table dumps begun."),
	C(dump_failures, "dump_failures_total", "Conntrack table dumps that failed."),
	C(dump_entries, "dump_entries_total", "Conntracks listed by dumps."),
	C(dump_new_flows, "dump_new_flows_total", "Flows first learnt from a dump."),
	C(dump_stale, "dump_stale_total", "Dump entries for flows already ended."),
	C(destroy_duplicates, "destroy_duplicates_total", "Repeated DESTROY events dropped."),
	C(tombstone_failures, "tombstone_failures_total", "Flow ends not remembered: the table was full."),
	C(possible_duplicates, "possible_duplicates_total", "DESTROYs of flows whose end may have been recorded and forgotten (records say dup_check none)."),
	C(events_after_evict, "events_after_evict_total", "Events for flows evicted alive: not tracked again until their DESTROY."),
	C(text_dropped, "text_dropped_total", "Foreground event lines skipped: terminal stuck."),
	G(rcvbuf, "netlink_rcvbuf_bytes", "Netlink receive buffer as the kernel reports it."),
	G(flows_tracked, "flows_tracked", "Flows in the table."),
	G(flows_suspect, "flows_suspect", "Flows waiting for a dump to confirm their end."),
	G(kernel_pending, "kernel_pending_destroys", "DESTROY events the kernel holds for ctd."),
	G(kernel_pending_peak, "kernel_pending_destroys_peak", "Most DESTROY events the kernel held for ctd."),
	G(kernel_failed_open, "kernel_failed_open", "1 while ctd has failed open: the kernel does not hold DESTROY events for it."),
	G(kernel_open_since_us, "kernel_mode_since_seconds", "Unix time the reliable/failed-open mode last changed; 0 never."),
	C(kernel_fail_opens, "kernel_fail_opens_total", "Times ctd failed open to spare the conntrack table."),
	C(kernel_rearms, "kernel_rearms_total", "Times reliable mode came back by itself."),
	C(kernel_lost, "kernel_lost_total", "Events the kernel dropped for ctd while failed open: flow records lost."),
	G(kernel_released, "kernel_released_conntracks", "Conntracks the kernel freed when ctd last failed open."),
	G(kernel_table_count, "kernel_table_conntracks", "nf_conntrack_count of ctd's namespace."),
	G(kernel_table_max, "kernel_table_max_conntracks", "nf_conntrack_max."),
	G(kernel_table_peak_pct, "kernel_table_peak_percent", "Fullest the conntrack table was seen, percent."),
	G(kernel_lag_us, "kernel_lag_seconds", "Age of the newest DESTROY event ctd read, by the kernel's stamp."),
	G(kernel_cause, "kernel_pressure_cause", "Why the table is past the high mark: 0 it is not, 1 ctd too slow, 2 ctd stalled, 3 not ctd."),
	G(kernel_held_est, "kernel_held_conntracks", "nf_conntrack_count minus the conntracks the last table dump listed: about what the kernel holds on its dying list."),
	C(dying_walks_skipped, "dying_walks_skipped_total", "Table checks left undecided: too many held to walk the dying list."),
	G(guard_running, "guard_running", "1 while the kernel-pressure guard process lives."),
	G(table_bytes, "table_bytes", "Flow table memory."),
	G(memory_held_bytes, "memory_held_bytes", "Memory the outputs' held records take (dying lists, taken rings), against memory-max."),
	G(memory_max_bytes, "memory_max_bytes", "memory-max: the bound on memory_held_bytes, shared by all outputs."),
	G(ends_remembered, "ends_remembered", "Ended flows kept to drop repeated DESTROYs."),
	C(ctl_requests, "ctl_requests_total", "Control-socket requests answered."),
	C(ctl_refused, "ctl_refused_total", "Control-socket peers and requests refused."),
	C(ctl_timeouts, "ctl_timeouts_total", "Control and metrics clients dropped: no whole request, or an answer not read, within 5 s."),
	C(ctl_evicted, "ctl_evicted_total", "Silent control and metrics clients dropped to make room."),
	C(metrics_requests, "metrics_requests_total", "Prometheus scrapes answered."),
	C(reloads, "reloads_total", "SIGHUPs whose configuration and certificates were applied."),
	C(reload_failures, "reload_failures_total", "SIGHUPs refused: a configuration, certificate or key that did not load (logged); what ran stays in force."),
	C(notify_dropped, "notify_dropped_total", "Messages to the service manager dropped: it did not take them at once."),
	G(spool_degraded, "spool_degraded", "1 when the spool directory could not be locked at start: running without a spool."),
	G(unclean_restarts, "unclean_restarts", "1 when the previous ctd with this spool directory died without stopping."),
	G(netns_watched, "netns_watched", "Network namespaces watched besides ctd's own."),
	C(netns_added, "netns_added_total", "Network namespaces taken under watch."),
	C(netns_gone, "netns_gone_total", "Watched network namespaces that disappeared."),
	C(netns_flushed, "netns_flushed_total", "... whose table ctd flushed before letting go."),
	C(netns_errors, "netns_errors_total", "Network namespaces ctd could not enter or set up."),
	C(netns_dump_counters, "netns_dump_counters_total", "netns_gone records with the last dump's counters."),
	C(netns_foreign, "netns_foreign_total", "Events from namespaces not watched (dropped)."),
	C(netns_early_flows, "netns_early_flows_total", "Flows alive in a namespace when ctd set it up (learned by a table dump)."),
	G(shards, "shards", "Shard processes running (shards > 1; 0 for a single process)."),
	C(shard_restarts, "shard_restarts_total", "Shard processes started again after they died."),
	LAT(0, "le_1ms"), LAT(1, "le_2ms"), LAT(2, "le_5ms"), LAT(3, "le_10ms"),
	LAT(4, "le_20ms"), LAT(5, "le_50ms"), LAT(6, "le_100ms"),
	LAT(7, "le_200ms"), LAT(8, "le_500ms"), LAT(9, "le_1s"),
	LAT(10, "gt_1s"),
};

#define OOFF(field) offsetof(struct ctd_out_stats, field)
#define O(name, prom, help) { #name, OOFF(name), false, prom, NULL, help }
#define OG(name, prom, help) { #name, OOFF(name), true, prom, NULL, help }

static const struct counter out_counters[] = {
	O(records, "records_total", "Flow records for the output: made this run plus those held at start; = delivered + failed + held."),
	O(carried, "carried_total", "Flow records found held at start (spool, write-ahead log)."),
	OG(held, "held", "Flow records held: taken and not final, on the dying list, or in the spool."),
	O(delivered, "delivered_total", "Flow records final: written, sent or acknowledged."),
	O(deferred, "deferred_total", "Records refused at first and held back."),
	O(retried, "retried_total", "Held records delivered on a re-send."),
	O(spooled, "spooled_total", "Records written to the spool."),
	O(spooled_bytes, "spooled_bytes_total", "Rendered bytes written to the spool."),
	O(replayed, "replayed_total", "Spooled records delivered."),
	O(failed, "failed_total", "Flow records given up: the sum of the failed_* counters."),
	OG(dying, "dying", "Records waiting for a re-send."),
	OG(dying_peak, "dying_peak", "Most records waiting for a re-send."),
	OG(spool_size, "spool_bytes", "Spool file size."),
	O(failed_render, "failed_render_total", "Records the output can never take."),
	O(failed_spool, "failed_spool_total", "Held records neither memory nor the spool could keep."),
	O(spilled_memory, "spilled_memory_total", "Records memory-max kept out of memory: spooled, or lost without a spool."),
	OG(memory_bytes, "memory_bytes", "The output's share of memory_held_bytes."),
	O(failed_shutdown, "failed_shutdown_total", "Records held at exit that no file could keep."),
	O(failed_output, "failed_output_total", "Records the output took and then gave up."),
	OG(wal_bytes, "wal_bytes", "Write-ahead log size."),
	O(wal_errors, "wal_errors_total", "Write-ahead log writes that failed."),
	O(spool_skipped, "spool_skipped_total", "Damaged spool entries skipped."),
	O(write_errors, "write_errors_total", "Failed writes."),
	O(bytes, "written_bytes_total", "Bytes written."),
	O(events, "events_total", "NEW/UPDATE event records taken."),
	O(events_missed, "events_missed_total", "Event records refused, left pending on the flow."),
	O(events_merged, "events_merged_total", "Pending events carried by a later record."),
	O(skipped, "skipped_total", "Records this output does not render."),
	O(acked, "acked_total", "Records the far end acknowledged: a collector's TCP, brokers (UDP: sent)."),
	OG(unacked, "unacked", "Records written or produced, not acknowledged yet."),
	O(resent, "resent_total", "Records sent again: after a reconnect or a failed delivery report."),
	O(reconnects, "reconnects_total", "Connections to a collector or server lost."),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t value_at(const void *base, size_t off)
{
	return *(const uint64_t *)(const void *)((const char *)base + off);
}

/* Output o's own counter number i; false past its last. */
static bool own_at(const struct ctd_stats *st, size_t o, size_t i,
		   const struct ctd_counter_def **ret_def, uint64_t *ret_v)
{
	const struct ctd_counter_defs *defs = st->out_defs[o];

	if (!defs || !st->out_own[o] || i >= defs->n)
		return false;
	*ret_def = &defs->rows[i];
	*ret_v = value_at(st->out_own[o], defs->rows[i].off);
	return true;
}

static void print_flat(FILE *f, const char *output, const char *name,
		       uint64_t v)
{
	fprintf(f, "out_%s_%-*s %llu\n", output, (int)(17 - strlen(output)),
		name, (unsigned long long)v);
}

static void print_outputs(const struct ctd_stats *st, FILE *f)
{
	const struct ctd_counter_def *def;
	uint64_t v;

	for (size_t o = 0; o < CTD_OUT_MAX && st->out_name[o]; o++) {
		for (size_t i = 0; i < N(out_counters); i++)
			print_flat(f, st->out_name[o], out_counters[i].name,
				   value_at(st->out[o], out_counters[i].off));
		for (size_t i = 0; own_at(st, o, i, &def, &v); i++)
			print_flat(f, st->out_name[o], def->name, v);
	}
}

void ctd_counters_print(const struct ctd_stats *st, FILE *f)
{
	size_t i;

	for (i = 0; i < N(counters); i++)
		fprintf(f, "%-22s %llu\n", counters[i].name,
			(unsigned long long)value_at(st, counters[i].off));
	print_outputs(st, f);
}

/* ctd -s groups the counters for a person. A group starts at its first
 * counter in the table above, so a counter added inside a group joins it. */
static const struct {
	const char *first;
	const char *title;
} groups[] = {
	{ "events_new", "kernel events" },
	{ "flows_created", "flows" },
	{ "records", "records" },
	{ "resyncs", "table checks" },
	{ "text_dropped", "ctd -f lines" },
	{ "rcvbuf", "socket and table" },
	{ "kernel_pending", "kernel pressure" },
	{ "table_bytes", "memory" },
	{ "ctl_requests", "control" },
	{ "spool_degraded", "service" },
	{ "netns_watched", "netns" },
	{ "shards", "shards" },
	{ "latency_le_1ms", "DESTROY latency (kernel stamp to read)" },
};

/* Delivery counters only some kinds of output can move. */
static const struct {
	const char *counter;
	unsigned shows;
} only_for[] = {
	{ "events", CTD_SHOWS_EVENTS }, { "events_missed", CTD_SHOWS_EVENTS },
	{ "events_merged", CTD_SHOWS_EVENTS },
	{ "acked", CTD_SHOWS_ACKS }, { "unacked", CTD_SHOWS_ACKS },
	{ "resent", CTD_SHOWS_ACKS },
	{ "failed_output", CTD_SHOWS_GIVE_UP },
	{ "reconnects", CTD_SHOWS_LINK },
};

/* Whether output o can move counter: a nonzero one is always shown. */
static bool moves_for(const char *counter, const struct ctd_stats *st,
		      size_t o)
{
	unsigned shows = st->out_defs[o] ? st->out_defs[o]->shows : 0;

	for (size_t i = 0; i < N(only_for); i++)
		if (strcmp(only_for[i].counter, counter) == 0)
			return shows & only_for[i].shows;
	return true;
}

static void print_one_output(const struct ctd_stats *st, size_t o, FILE *f)
{
	const struct ctd_counter_def *def;
	char name[64];
	uint64_t v;

	fprintf(f, "output %s:\n", st->out_name[o]);
	for (size_t i = 0; i < N(out_counters); i++) {
		v = value_at(st->out[o], out_counters[i].off);
		if (!v && !moves_for(out_counters[i].name, st, o))
			continue;
		snprintf(name, sizeof(name), "out_%s_%s", st->out_name[o],
			 out_counters[i].name);
		fprintf(f, "  %-28s %llu\n", name, (unsigned long long)v);
	}
	for (size_t i = 0; own_at(st, o, i, &def, &v); i++) {
		snprintf(name, sizeof(name), "out_%s_%s", st->out_name[o],
			 def->name);
		fprintf(f, "  %-28s %llu\n", name, (unsigned long long)v);
	}
}

static const char *group_at(size_t i)
{
	for (size_t g = 0; g < N(groups); g++)
		if (strcmp(groups[g].first, counters[i].name) == 0)
			return groups[g].title;
	return NULL;
}

/* Counters from i to the next group's first, or the table's end. */
static size_t group_end(size_t i)
{
	while (++i < N(counters) && !group_at(i))
		;
	return i;
}

static bool all_zero(const struct ctd_stats *st, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (value_at(st, counters[i].off))
			return false;
	return true;
}

void ctd_counters_print_grouped(const struct ctd_stats *st, FILE *f)
{
	for (size_t i = 0, end; i < N(counters); i = end) {
		const char *title = group_at(i);

		end = group_end(i);
		/* Namespaces other than ctd's own and shards are options
		 * most never set. */
		if (title && (strcmp(title, "netns") == 0 ||
			      strcmp(title, "shards") == 0) && all_zero(st, i, end))
			continue;
		fprintf(f, "%s:\n", title ? title : "other");
		for (size_t j = i; j < end; j++)
			fprintf(f, "  %-28s %llu\n", counters[j].name,
				(unsigned long long)value_at(st, counters[j].off));
	}
	for (size_t o = 0; o < CTD_OUT_MAX && st->out_name[o]; o++)
		print_one_output(st, o, f);
}

void ctd_counters_prometheus_family(FILE *f, const char *name, bool gauge,
				 const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		gauge ? "gauge" : "counter");
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t len = strlen(s), n = strlen(suffix);

	return len > n && strcmp(s + len - n, suffix) == 0;
}

/* ctd keeps times in microseconds; Prometheus wants seconds (a gauge
 * or a counter of them). */
static bool in_seconds(const char *family)
{
	return has_suffix(family, "_seconds") ||
	       has_suffix(family, "_seconds_total");
}

static void put_sample(FILE *f, const char *family, const char *output,
		       uint64_t v)
{
	if (in_seconds(family))
		fprintf(f, "%s{output=\"%s\"} %.6f\n", family, output,
			(double)v / 1e6);
	else
		fprintf(f, "%s{output=\"%s\"} %llu\n", family, output,
			(unsigned long long)v);
}

/* DESTROY latency as a Prometheus histogram: cumulative buckets in
 * seconds, +Inf, sum and count, so histogram_quantile works. */
static void print_latency(const struct ctd_stats *st, FILE *f)
{
	static const uint32_t bound_ms[] = CTD_LAT_BOUNDS_MS;
	uint64_t sum = 0;

	fputs("# HELP ctd_destroy_latency_seconds Time from the kernel's stamp "
	      "on a DESTROY event to ctd's read.\n"
	      "# TYPE ctd_destroy_latency_seconds histogram\n", f);
	for (size_t i = 0; i < CTD_LAT__COUNT; i++) {
		sum += st->latency[i];
		if (i < CTD_LAT__COUNT - 1)
			fprintf(f, "ctd_destroy_latency_seconds_bucket{le=\"%g\"} "
				"%llu\n", bound_ms[i] / 1000.0,
				(unsigned long long)sum);
	}
	fprintf(f, "ctd_destroy_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
		"ctd_destroy_latency_seconds_sum %.6f\n"
		"ctd_destroy_latency_seconds_count %llu\n",
		(unsigned long long)sum, (double)st->latency_sum_us / 1e6,
		(unsigned long long)sum);
}

/* Whether an output before o has a counter of family prom already:
 * two kinds of output may share a family (rows stored), which is
 * then written once, with a sample from each. */
static bool family_seen(const struct ctd_stats *st, size_t o, const char *prom)
{
	const struct ctd_counter_def *def;
	uint64_t v;

	for (size_t p = 0; p < o; p++)
		for (size_t i = 0; own_at(st, p, i, &def, &v); i++)
			if (strcmp(def->prom, prom) == 0)
				return true;
	return false;
}

/* Family prom's samples, from output o on. */
static void own_samples(const struct ctd_stats *st, size_t o,
			const char *family, const char *prom, FILE *f)
{
	const struct ctd_counter_def *def;
	uint64_t v;

	for (; o < CTD_OUT_MAX && st->out_name[o]; o++)
		for (size_t i = 0; own_at(st, o, i, &def, &v); i++)
			if (strcmp(def->prom, prom) == 0)
				put_sample(f, family, st->out_name[o], v);
}

/* The outputs' own counters, each family once. */
static void print_own_families(const struct ctd_stats *st, FILE *f)
{
	const struct ctd_counter_def *def;
	char family[80];
	uint64_t v;

	for (size_t o = 0; o < CTD_OUT_MAX && st->out_name[o]; o++)
		for (size_t i = 0; own_at(st, o, i, &def, &v); i++) {
			if (family_seen(st, o, def->prom))
				continue;
			snprintf(family, sizeof(family), "ctd_output_%s",
				 def->prom);
			ctd_counters_prometheus_family(f, family, def->gauge,
						       def->help);
			own_samples(st, o, family, def->prom, f);
		}
}

/* Counters that share a family (events by type) are adjacent. */
void ctd_counters_print_prometheus(const struct ctd_stats *st, FILE *f)
{
	char family[80];

	for (size_t i = 0; i < N(counters); i++) {
		const struct counter *c = &counters[i];

		if (!c->prom)
			continue;
		snprintf(family, sizeof(family), "ctd_%s", c->prom);
		if (!i || !counters[i - 1].prom ||
		    strcmp(c->prom, counters[i - 1].prom) != 0)
			ctd_counters_prometheus_family(f, family, c->gauge, c->help);
		if (in_seconds(family))
			fprintf(f, "%s %.6f\n", family,
				(double)value_at(st, c->off) / 1e6);
		else
			fprintf(f, "%s%s%s%s %llu\n", family, c->label ? "{" : "",
				c->label ? c->label : "", c->label ? "}" : "",
				(unsigned long long)value_at(st, c->off));
	}
	print_latency(st, f);
	for (size_t i = 0; i < N(out_counters); i++) {
		const struct counter *c = &out_counters[i];

		snprintf(family, sizeof(family), "ctd_output_%s", c->prom);
		ctd_counters_prometheus_family(f, family, c->gauge, c->help);
		for (size_t o = 0; o < CTD_OUT_MAX && st->out_name[o]; o++)
			put_sample(f, family, st->out_name[o],
				   value_at(st->out[o], c->off));
	}
	print_own_families(st, f);
}

void ctd_counters_print_json(const struct ctd_stats *st, FILE *f)
{
	const struct ctd_counter_def *def;
	size_t i, o;
	uint64_t v;

	fputc('{', f);
	for (i = 0; i < N(counters); i++)
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", counters[i].name,
			(unsigned long long)value_at(st, counters[i].off));
	fputs(",\"outputs\":{", f);
	for (o = 0; o < CTD_OUT_MAX && st->out_name[o]; o++) {
		fprintf(f, "%s\"%s\":{", o ? "," : "", st->out_name[o]);
		for (i = 0; i < N(out_counters); i++)
			fprintf(f, "%s\"%s\":%llu", i ? "," : "",
				out_counters[i].name,
				(unsigned long long)value_at(st->out[o],
							     out_counters[i].off));
		for (i = 0; own_at(st, o, i, &def, &v); i++)
			fprintf(f, ",\"%s\":%llu", def->name,
				(unsigned long long)v);
		fputc('}', f);
	}
	fputs("}}", f);
}
