/* stats: prints the counter struct. The table below is the one place a
 * counter gets its public name. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "ctd/output.h"
#include "ctd/stats.h"

#define C(name) { #name, offsetof(struct ctd_stats, name) }

static const struct {
	const char *name;
	size_t off;
} counters[] = {
	{ "events_new", offsetof(struct ctd_stats, events[CTD_EV_NEW]) },
	{ "events_update", offsetof(struct ctd_stats, events[CTD_EV_UPDATE]) },
	{ "events_destroy", offsetof(struct ctd_stats, events[CTD_EV_DESTROY]) },
	C(nl_messages), C(nl_reads), C(nl_wakeups), C(nl_budget_hits),
	C(nl_enobufs), C(nl_drops), C(nl_grows), C(nl_truncated), C(nl_errors), C(parse_errors),
	C(parse_ignored), C(flows_created), C(flows_unseen_destroy),
	C(flows_table_full), C(flows_nomem), C(records), C(records_filtered),
	{ "ends_destroy", offsetof(struct ctd_stats, ends[CTD_END_DESTROY]) },
	{ "ends_expired", offsetof(struct ctd_stats, ends[CTD_END_EXPIRED]) },
	{ "ends_evicted", offsetof(struct ctd_stats, ends[CTD_END_EVICTED]) },
	{ "ends_lost", offsetof(struct ctd_stats, ends[CTD_END_LOST]) },
	{ "interim_records", offsetof(struct ctd_stats, ends[CTD_END_ACTIVE]) },
	{ "ends_netns_gone", offsetof(struct ctd_stats, ends[CTD_END_NETNS_GONE]) },
	C(resyncs),
	C(expiry_suspects), C(expiry_alive), C(dumps), C(dump_failures),
	C(dump_entries), C(dump_new_flows), C(dump_stale),
	C(destroy_duplicates), C(tombstone_failures), C(text_dropped), C(rcvbuf),
	C(flows_tracked), C(flows_suspect), C(kernel_pending),
	C(kernel_pending_peak), C(table_bytes), C(ends_remembered), C(ctl_requests), C(ctl_refused),
	C(ctl_timeouts), C(ctl_evicted), C(metrics_requests),
	C(netns_watched), C(netns_added), C(netns_gone), C(netns_flushed),
	C(netns_errors), C(netns_dump_counters), C(netns_foreign),
};

#define O(name) { #name, offsetof(struct ctd_out_stats, name) }

static const struct {
	const char *name;
	size_t off;
} out_counters[] = {
	O(delivered), O(deferred), O(retried), O(spooled), O(spooled_bytes),
	O(replayed), O(failed), O(dying), O(dying_peak), O(spool_size),
	O(spool_skipped), O(write_errors), O(bytes), O(consumers), O(refused),
	O(lost_bytes), O(events), O(events_missed), O(events_merged),
	O(skipped), O(acked), O(unacked), O(resent), O(reconnects),
	O(templates),
};

static void print_outputs(const struct ctd_stats *st, FILE *f)
{
	for (size_t o = 0; o < CTD_OUT_MAX && st->out_name[o]; o++) {
		for (size_t i = 0; i < sizeof(out_counters) / sizeof(out_counters[0]); i++) {
			const uint64_t *v = (const uint64_t *)(const void *)
				((const char *)st->out[o] + out_counters[i].off);

			fprintf(f, "out_%s_%-*s %llu\n", st->out_name[o],
				(int)(17 - strlen(st->out_name[o])),
				out_counters[i].name, (unsigned long long)*v);
		}
	}
}

void ctd_stats_print(const struct ctd_stats *st, FILE *f)
{
	size_t i;

	for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		const uint64_t *v = (const uint64_t *)(const void *)
				    ((const char *)st + counters[i].off);

		fprintf(f, "%-22s %llu\n", counters[i].name,
			(unsigned long long)*v);
	}
	print_outputs(st, f);
}

/* Counters that can go down: Prometheus calls them gauges. */
static bool is_gauge(const char *name)
{
	static const char *const gauges[] = {
		"rcvbuf", "flows_tracked", "flows_suspect", "kernel_pending",
		"kernel_pending_peak", "table_bytes", "ends_remembered", "dying",
		"dying_peak", "spool_size", "consumers", "unacked",
	};

	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
		if (strcmp(name, gauges[i]) == 0)
			return true;
	return false;
}

static uint64_t value_at(const void *base, size_t off);

void ctd_stats_print_prometheus(const struct ctd_stats *st, FILE *f)
{
	size_t i, o;

	for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		const char *n = counters[i].name;

		fprintf(f, "# TYPE ctd_%s %s\nctd_%s %llu\n", n,
			is_gauge(n) ? "gauge" : "counter", n,
			(unsigned long long)value_at(st, counters[i].off));
	}
	for (i = 0; i < sizeof(out_counters) / sizeof(out_counters[0]); i++) {
		const char *n = out_counters[i].name;

		fprintf(f, "# TYPE ctd_output_%s %s\n", n,
			is_gauge(n) ? "gauge" : "counter");
		for (o = 0; o < CTD_OUT_MAX && st->out_name[o]; o++)
			fprintf(f, "ctd_output_%s{output=\"%s\"} %llu\n", n,
				st->out_name[o],
				(unsigned long long)value_at(st->out[o],
							     out_counters[i].off));
	}
}

static uint64_t value_at(const void *base, size_t off)
{
	return *(const uint64_t *)(const void *)((const char *)base + off);
}

void ctd_stats_print_json(const struct ctd_stats *st, FILE *f)
{
	size_t i, o;

	fputc('{', f);
	for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", counters[i].name,
			(unsigned long long)value_at(st, counters[i].off));
	fputs(",\"outputs\":{", f);
	for (o = 0; o < CTD_OUT_MAX && st->out_name[o]; o++) {
		fprintf(f, "%s\"%s\":{", o ? "," : "", st->out_name[o]);
		for (i = 0; i < sizeof(out_counters) / sizeof(out_counters[0]); i++)
			fprintf(f, "%s\"%s\":%llu", i ? "," : "",
				out_counters[i].name,
				(unsigned long long)value_at(st->out[o],
							     out_counters[i].off));
		fputc('}', f);
	}
	fputs("}}", f);
}
