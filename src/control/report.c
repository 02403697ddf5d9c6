/* report: the control socket's answers.
 *
 * The health check looks where a firewall admin would have to look by
 * hand: the conntrack sysctls that make records complete, whether the
 * receive buffer is what ctd asked for, how full the kernel's table is
 * (in reliable mode a stalled listener makes the kernel hold entries,
 * so a table that fills up is the first sign), and how many DESTROYs
 * the kernel holds for ctd. Each problem is one sentence with its fix.
 * Listings walk the flow table a slice of buckets per call, so a big
 * table is sent while the loop keeps running; with `live` they read a
 * fresh kernel dump instead, a few datagrams per call, which lists every
 * conntrack with its counters as they are now (ctd's own table knows
 * only what its subscription and its dumps told it). A live listing's
 * state is held through the cursor until its last slice, or until the
 * control socket says the client left. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctd/base/stats.h"
#include "ctd/config/config.h"
#include "ctd/control/counters.h"
#include "ctd/control/report.h"
#include "ctd/flows/flowtable.h"
#include "ctd/flows/record.h"
#include "ctd/format/jsonfmt.h"
#include "ctd/format/textfmt.h"
#include "ctd/kernel/livedump.h"
#include "ctd/kernel/nlpeers.h"
#include "ctd/kernel/pressure.h"
#include "ctd/sync/netnstab.h"

#define BUCKETS_PER_CHUNK 4096
#define DATAGRAMS_PER_CHUNK 4
#define TOP_N 10
#define PENDING_WARN 10000

static long read_long(const struct ctd_report_src *src, const char *name)
{
	char path[512];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", src->proc_sys, name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Where the health check's findings go: text lines, JSON strings, or
 * one ctd_health_problem sample per check, 0 or 1, so an alert rule can
 * tell a check that passes from one that was never made. */
enum fmt { FMT_TEXT, FMT_JSON, FMT_PROM };

struct findings {
	FILE *out;
	enum fmt fmt;
	unsigned n;   /* problems found */
};

/* A Prometheus label value: backslash, quote and newline escaped. */
static void put_label(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', out);
		if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

/* What records call the namespace (so filter-netns takes the same). */
static const char *netns_label(const struct ctd_report_src *src,
			       const struct ctd_netns *e, char *buf)
{
	ctd_netnstab_label(src->netns, e->nsid, buf, CTD_NETNS_NAME_MAX);
	return buf;
}

static void prom_sample(FILE *out, const char *family, const char *check,
			const char *netns, unsigned long long v)
{
	fprintf(out, "%s{", family);
	if (check)
		fprintf(out, "check=\"%s\",", check);
	fputs("netns=\"", out);
	put_label(out, netns);
	fprintf(out, "\"} %llu\n", v);
}

static void finding(struct findings *fd, const char *check, bool bad,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void finding(struct findings *fd, const char *check, bool bad,
		    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (fd->fmt == FMT_PROM)
		fprintf(fd->out, "ctd_health_problem{check=\"%s\"} %d\n", check, bad);
	if (!bad || fd->fmt == FMT_PROM) {
		fd->n += bad;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fd->fmt == FMT_JSON) {
		char esc[1100];

		/* ctd_jsonfmt_string does not terminate the string. */
		size_t n = ctd_jsonfmt_string(msg, esc, sizeof(esc) - 1);

		if (!n)
			n = strlen(strcpy(esc, "\"(too long)\""));
		esc[n] = '\0';
		fprintf(fd->out, "%s%s", fd->n ? "," : "", esc);
	} else {
		fprintf(fd->out, "  - %s\n", msg);
	}
	fd->n++;
}

static void check_sysctls(const struct ctd_report_src *src, struct findings *fd)
{
	static const struct {
		const char *name, *without;
	} want[] = {
		{ "nf_conntrack_events", "conntracks created while nobody listened send no events at all" },
		{ "nf_conntrack_acct", "records have no packet and byte counters" },
		{ "nf_conntrack_timestamp", "records have no kernel start and end times" },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char key[80];
		long v;

		snprintf(key, sizeof(key), "net/netfilter/%s", want[i].name);
		v = read_long(src, key);
		finding(fd, want[i].name, v != 1, "net.netfilter.%s is %ld: %s; "
			"run `sysctl -w net.netfilter.%s=1`", want[i].name,
			v, want[i].without, want[i].name);
	}
}

/* What to do about a table ctd is holding up, by cause. */
static const char *pressure_advice(uint64_t cause)
{
	if (cause == CTD_PRESSURE_STALLED)
		return "ctd read nothing (stopped, hung or frozen)";
	return "ctd reads slower than flows end: give it more CPU (its "
	       "cgroup's cpu.max, CPUQuota=) or less to do (subscribe auto, "
	       "fewer outputs)";
}

/* Firewall first: say who fills the table and what ctd did about it. */
static void check_pressure(const struct ctd_report_src *src, struct findings *fd)
{
	const struct ctd_stats *st = src->stats;
	bool hold = src->cfg->kernel_pressure == 1;

	finding(fd, "kernel_pressure", st->kernel_failed_open,
		"failed open since %llu (unix time): the conntrack table reached "
		"%llu%% full because %s; the kernel stops holding DESTROY events "
		"for ctd and %llu were lost so far (kernel_lost); reliable mode "
		"returns by itself under %u%% with ctd caught up",
		(unsigned long long)(st->kernel_open_since_us / 1000000),
		(unsigned long long)st->kernel_table_peak_pct,
		pressure_advice(st->kernel_cause),
		(unsigned long long)st->kernel_lost,
		src->cfg->kernel_pressure_low);
	finding(fd, "kernel_pressure_hold", hold && src->reliable &&
		(st->kernel_cause == CTD_PRESSURE_SLOW ||
		 st->kernel_cause == CTD_PRESSURE_STALLED),
		"kernel-pressure hold: the conntrack table is past %u%% full and "
		"%s; when it fills the firewall drops new connections",
		src->cfg->kernel_pressure_high, pressure_advice(st->kernel_cause));
}

static int find_suspect(const struct ctd_report_src *src, struct ctd_nlpeer *ret)
{
	FILE *f = src->proc_netlink ? fopen(src->proc_netlink, "re") : NULL;
	int r = f ? ctd_nlpeers_stuck(f, src->nl_portid, ret) : 0;

	if (f)
		fclose(f);
	return r;
}

/* One way to name a listener, for both findings that point at one. */
static void describe_peer(const struct ctd_nlpeer *p, char *buf, size_t cap)
{
	snprintf(buf, cap, "netlink port %u (socket inode %lu; the port is its "
		 "process's pid for its first socket) has %u bytes unread and "
		 "%u drops", p->portid, p->inode, p->rmem, p->drops);
}

/* The listener that is not ctd and holds DESTROYs, in a few words. */
static void name_suspect(const struct ctd_report_src *src, char *buf, size_t cap)
{
	struct ctd_nlpeer p;
	char peer[200];

	if (find_suspect(src, &p) == 1) {
		describe_peer(&p, peer, sizeof(peer));
		snprintf(buf, cap, "the ctnetlink listener on %s", peer);
	} else
		snprintf(buf, cap, "live flows or another reliable listener "
			 "that does not read (see /proc/net/netlink, Drops)");
}

/* DESTROYs sent again and a DESTROY listener with drops and a queue:
 * it holds conntracks in the table (and sends ctd repeats) while full. */
static void check_other_listener(const struct ctd_report_src *src,
				 struct findings *fd)
{
	struct ctd_nlpeer p;
	char peer[200] = "";
	bool bad = src->stats->destroy_duplicates > 0 && fd->fmt != FMT_PROM &&
		   find_suspect(src, &p) == 1;

	if (bad)
		describe_peer(&p, peer, sizeof(peer));
	finding(fd, "other_listener", bad, "another ctnetlink DESTROY "
		"listener does not read: %s; if it asked for reliable delivery "
		"the kernel keeps every conntrack it could not tell it in the "
		"table and sends ctd the DESTROYs again (destroy_duplicates %llu)",
		peer, (unsigned long long)src->stats->destroy_duplicates);
}

static void check_table(const struct ctd_report_src *src, struct findings *fd)
{
	char who[256] = "";
	long count = read_long(src, "net/netfilter/nf_conntrack_count");
	long max = read_long(src, "net/netfilter/nf_conntrack_max");
	bool ours = src->stats->kernel_failed_open ||
		    src->stats->kernel_cause == CTD_PRESSURE_SLOW ||
		    src->stats->kernel_cause == CTD_PRESSURE_STALLED;

	/* When ctd holds it up, check_pressure says so: a bigger table
	 * would only fill later. */
	bool full = !ours && count >= 0 && max > 0 && count * 10 >= max * 8;

	if (full && fd->fmt != FMT_PROM)
		name_suspect(src, who, sizeof(who));
	finding(fd, "table_full", full,
		"the conntrack table is %ld%% full (%ld of %ld) while ctd keeps "
		"up: %s; new connections will be dropped when it fills; raise "
		"net.netfilter.nf_conntrack_max, or make that listener read",
		max > 0 ? count * 100 / max : 0, count, max, who);
}

static void check_buffer(const struct ctd_report_src *src, struct findings *fd)
{
	long rmem_max = read_long(src, "net/core/rmem_max");
	const struct ctd_stats *st = src->stats;

	/* The kernel reports twice what it granted (its bookkeeping). */
	finding(fd, "rcvbuf", st->rcvbuf && st->rcvbuf / 2 < src->cfg->rcvbuf,
		"the netlink receive buffer is %llu bytes, less than the %zu "
		"asked for: give ctd CAP_NET_ADMIN or raise net.core.rmem_max "
		"(now %ld)", (unsigned long long)st->rcvbuf / 2,
		src->cfg->rcvbuf, rmem_max);
	finding(fd, "kernel_pending", st->kernel_pending >= PENDING_WARN,
		"the kernel holds %llu DESTROY events for its listeners (its "
		"dying list): if ctd is behind (its newest DESTROY was %.1f s "
		"old), give it CPU; rcvbuf-max (now %zu) only delays it",
		(unsigned long long)st->kernel_pending,
		(double)st->kernel_lag_us / 1e6, src->cfg->rcvbuf_max);
	finding(fd, "spool_degraded", st->spool_degraded, "no spool: the spool "
		"directory %s could not be locked at start (see the log); "
		"records an output cannot take in time are lost, counted in "
		"failed; make it writable by ctd and restart",
		src->cfg->spool_dir);
	finding(fd, "lossy_mode", !src->reliable, "lossy mode (broadcast-error "
		"no): events lost in overruns are gone; set broadcast-error yes");
}

/* A namespace's findings: its last dump and its dying list. Its
 * sysctls are set (or warned about) when ctd takes it under watch. */
static void check_netns(const struct ctd_report_src *src,
			const struct ctd_netns *e, struct findings *fd)
{
	char name[CTD_NETNS_NAME_MAX];
	bool dump = e->dump_err != 0;
	bool pending = e->state == CTD_NETNS_WATCHED &&
		       e->pending >= PENDING_WARN;

	netns_label(src, e, name);
	if (fd->fmt == FMT_PROM) {
		prom_sample(fd->out, "ctd_health_problem", "netns_dump", name, dump);
		prom_sample(fd->out, "ctd_health_problem", "netns_pending", name,
			    pending);
		fd->n += dump + pending;
		return;
	}
	finding(fd, "netns_dump", dump, "network namespace %s (nsid %d): its "
		"last table dump failed (%s): its flows go unchecked; see the "
		"log", name, (int)e->nsid, strerror(-e->dump_err));
	finding(fd, "netns_pending", pending, "network namespace %s (nsid %d): "
		"the kernel holds %llu DESTROY events for ctd there: raise "
		"rcvbuf-max or budget", name, (int)e->nsid,
		(unsigned long long)e->pending);
}

static unsigned health(const struct ctd_report_src *src, FILE *out, enum fmt fmt)
{
	struct findings fd = { out, fmt, 0 };
	const struct ctd_netns *e;
	size_t pos = 0;

	check_sysctls(src, &fd);
	check_table(src, &fd);
	check_pressure(src, &fd);
	check_other_listener(src, &fd);
	check_buffer(src, &fd);
	while (src->netns && (e = ctd_netnstab_next(src->netns, &pos)))
		check_netns(src, e, &fd);
	return fd.n;
}

unsigned ctd_report_health(const struct ctd_report_src *src, FILE *out,
			   bool json)
{
	return health(src, out, json ? FMT_JSON : FMT_TEXT);
}

static const char *state_name(const struct ctd_netns *e)
{
	return e->state == CTD_NETNS_GOING ? "going" : "watched";
}

/* A family per per-namespace figure, a sample per namespace. */
static void netns_metrics(const struct ctd_report_src *src, FILE *out)
{
	static const struct {
		const char *family, *help;
		bool gauge;
	} fam[] = {
		{ "ctd_netns_records_total", "Records made from the network namespace's flows (the filtered ones too).", false },
		{ "ctd_netns_pending_destroys", "DESTROY events the kernel holds for ctd in the namespace (its dying list at the last poll).", true },
		{ "ctd_netns_going", "1 while ctd sees a deleted namespace out (flushed, its DESTROYs awaited).", true },
	};
	const struct ctd_netns *e;
	char name[CTD_NETNS_NAME_MAX];

	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
		size_t pos = 0;

		ctd_counters_prometheus_family(out, fam[i].family, fam[i].gauge,
					    fam[i].help);
		while ((e = ctd_netnstab_next(src->netns, &pos)))
			prom_sample(out, fam[i].family, NULL, netns_label(src, e, name),
				    i == 0 ? e->records : i == 1 ?
				    (e->pending == SIZE_MAX ? 0 : e->pending) :
				    e->state == CTD_NETNS_GOING);
	}
}

/* ctd -s: a line per namespace (text) or an array (JSON). */
static void print_netns(const struct ctd_report_src *src, FILE *out, bool json)
{
	const struct ctd_netns *e;
	char name[CTD_NETNS_NAME_MAX], esc[6 * CTD_NETNS_NAME_MAX + 8];
	size_t pos = 0, n;
	bool first = true;

	fputs(json ? ",\"namespaces\":[" : "namespaces:\n", out);
	while ((e = ctd_netnstab_next(src->netns, &pos))) {
		unsigned long long pending = e->pending == SIZE_MAX ? 0 : e->pending;

		netns_label(src, e, name);
		if (!json) {
			fprintf(out, "  %-24s nsid %-5d %-7s records %llu pending %llu%s%s\n",
				name, (int)e->nsid, state_name(e),
				(unsigned long long)e->records, pending,
				e->dump_err ? " dump_error " : "",
				e->dump_err ? strerror(-e->dump_err) : "");
			continue;
		}
		n = ctd_jsonfmt_string(name, esc, sizeof(esc));
		fprintf(out, "%s{\"name\":%.*s,\"nsid\":%d,\"state\":\"%s\","
			"\"records\":%llu,\"pending\":%llu,\"dump_error\":",
			first ? "" : ",", (int)n, esc, (int)e->nsid, state_name(e),
			(unsigned long long)e->records, pending);
		fprintf(out, e->dump_err ? "\"%s\"}" : "null}",
			strerror(-e->dump_err));
		first = false;
	}
	if (json)
		fputc(']', out);
}

/* The counters, then what a Prometheus setup expects of any exporter:
 * build info, the process's start time, and the health findings. */
static void answer_metrics(const struct ctd_report_src *src, FILE *out)
{
	ctd_counters_print_prometheus(src->stats, out);
	ctd_counters_prometheus_family(out, "ctd_build_info", true,
				    "The running ctd's version; always 1.");
	fprintf(out, "ctd_build_info{version=\"%s\"} 1\n", CTD_VERSION);
	ctd_counters_prometheus_family(out, "process_start_time_seconds", true,
				    "Start time of the process since the Unix epoch.");
	fprintf(out, "process_start_time_seconds %llu\n",
		(unsigned long long)(src->now_ns / 1000000000u - src->uptime_s));
	ctd_counters_prometheus_family(out, "ctd_health_problem", true,
				    "1 when the health check (ctd -s) finds "
				    "this problem, with its fix.");
	health(src, out, FMT_PROM);
	if (src->netns)
		netns_metrics(src, out);
}

/* all: every counter flat under "counters:" (ctd -s all, for scripts
 * that read "name value" lines); else grouped for a person. */
static void answer_stats(const struct ctd_report_src *src, FILE *out, bool json,
			 bool all)
{
	unsigned n;

	if (json) {
		fprintf(out, "{\"version\":\"%s\",\"uptime_s\":%llu,\"mode\":\"%s\","
			"\"health\":[", CTD_VERSION,
			(unsigned long long)src->uptime_s,
			src->reliable ? "reliable" : "lossy");
		ctd_report_health(src, out, true);
		fputs("],\"counters\":", out);
		ctd_counters_print_json(src->stats, out);
		if (src->netns)
			print_netns(src, out, true);
		fputs("}\n", out);
		return;
	}
	fprintf(out, "ctd %s, up %llu s, %s mode\n", CTD_VERSION,
		(unsigned long long)src->uptime_s,
		src->reliable ? "reliable" : "lossy");
	fputs("health:\n", out);
	n = ctd_report_health(src, out, false);
	if (!n)
		fputs("  ok\n", out);
	if (all) {
		fputs("counters:\n", out);
		ctd_counters_print(src->stats, out);
	} else {
		fputs("counters by group (ctd -s all: every one, flat):\n", out);
		ctd_counters_print_grouped(src->stats, out);
	}
	if (src->netns)
		print_netns(src, out, false);
	fputs("# end\n", out);
}

/* One slice of the table; true while buckets remain. The cursor is a
 * bucket index, so it stays valid while the table changes between
 * slices. */
static bool answer_flows(const struct ctd_report_src *src, FILE *out,
			 bool json, size_t *cursor)
{
	struct ctd_flowtable_iter it = { .bucket = *cursor,
					 .end = *cursor + BUCKETS_PER_CHUNK };
	const struct ctd_flow *f;
	char line[CTD_JSON_MAX];

	while ((f = ctd_flowtable_next(src->flows, &it))) {
		struct ctd_record rec;
		size_t len;

		if (f->flags & CTD_FLOW_TOMBSTONE)
			continue;
		ctd_record_from_flow(f, CTD_END_ACTIVE, src->now_ns, &rec);
		if (src->netns && rec.nsid != CTD_NSID_SELF)
			ctd_netnstab_label(src->netns, rec.nsid, rec.netns,
					   sizeof(rec.netns));
		len = json ? ctd_jsonfmt_record(&rec, line, sizeof(line)) :
			     ctd_textfmt_flow(&rec, line, sizeof(line));
		fwrite(line, 1, len, out);
	}
	*cursor = it.bucket;
	if (*cursor < ctd_flowtable_buckets(src->flows))
		return true;
	if (!json)
		fputs("# end\n", out);
	return false;
}

struct talker {
	uint8_t addr[16];
	uint8_t family;
	bool used;
	uint64_t bytes;
	uint64_t flows;
};

struct talkers {
	struct talker *slot;
	size_t mask;
	size_t used;
};

static uint64_t addr_hash(const uint8_t *addr)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 1099511628211ULL;
	return h;
}

/* Doubles the table (a live dump does not say its size up front). */
static int grow(struct talkers *t)
{
	struct talkers n = { calloc(2 * (t->mask + 1), sizeof(*n.slot)),
			     2 * t->mask + 1, t->used };

	if (!n.slot)
		return -1;
	for (size_t i = 0; i <= t->mask; i++) {
		size_t j;

		if (!t->slot[i].used)
			continue;
		for (j = addr_hash(t->slot[i].addr) & n.mask; n.slot[j].used;
		     j = (j + 1) & n.mask)
			;
		n.slot[j] = t->slot[i];
	}
	free(t->slot);
	*t = n;
	return 0;
}

static void tally(struct talkers *t, const uint8_t *addr, uint8_t family,
		  uint64_t bytes)
{
	size_t i;

	if (t->used * 2 > t->mask && grow(t) < 0)
		return;
	i = addr_hash(addr) & t->mask;

	while (t->slot[i].used && (t->slot[i].family != family ||
				   memcmp(t->slot[i].addr, addr, 16)))
		i = (i + 1) & t->mask;
	if (!t->slot[i].used) {
		t->used++;
		t->slot[i].used = true;
		t->slot[i].family = family;
		memcpy(t->slot[i].addr, addr, 16);
	}
	t->slot[i].bytes += bytes;
	t->slot[i].flows++;
}

/* The n largest by bytes (by_flows false) or by flow count, in order. */
static size_t pick_top(const struct talkers *t, bool by_flows,
		       const struct talker **ret, size_t n)
{
	size_t got = 0;

	for (size_t i = 0; i <= t->mask; i++) {
		const struct talker *c = &t->slot[i];
		uint64_t v = by_flows ? c->flows : c->bytes;
		size_t j;

		if (!c->used)
			continue;
		for (j = got; j > 0 && v > (by_flows ? ret[j - 1]->flows :
						       ret[j - 1]->bytes); j--)
			if (j < n)
				ret[j] = ret[j - 1];
		if (j < n) {
			ret[j] = c;
			if (got < n)
				got++;
		}
	}
	return got;
}

static void print_top(const struct talkers *t, const char *what, bool by_flows,
		      FILE *out, bool json, bool first)
{
	const struct talker *top[TOP_N];
	size_t n = pick_top(t, by_flows, top, TOP_N);
	char text[INET6_ADDRSTRLEN];

	if (json)
		fprintf(out, "%s\"%s_by_%s\":[", first ? "" : ",", what,
			by_flows ? "flows" : "bytes");
	else
		fprintf(out, "top %s by %s:\n", what, by_flows ? "flows" : "bytes");
	for (size_t i = 0; i < n; i++) {
		inet_ntop(top[i]->family, top[i]->addr, text, sizeof(text));
		if (json)
			fprintf(out, "%s{\"addr\":\"%s\",\"bytes\":%llu,\"flows\":%llu}",
				i ? "," : "", text,
				(unsigned long long)top[i]->bytes,
				(unsigned long long)top[i]->flows);
		else
			fprintf(out, "  %-39s %14llu bytes %9llu flows\n", text,
				(unsigned long long)top[i]->bytes,
				(unsigned long long)top[i]->flows);
	}
	if (json)
		fputc(']', out);
}

static int gather(const struct ctd_flowtable *ft, struct talkers *src,
		  struct talkers *dst)
{
	struct ctd_flowtable_iter it = { 0 };
	const struct ctd_flow *f;
	size_t cap = 16;

	while (cap < 2 * ctd_flowtable_count(ft))
		cap *= 2;
	src->slot = calloc(cap, sizeof(*src->slot));
	dst->slot = calloc(cap, sizeof(*dst->slot));
	src->mask = dst->mask = cap - 1;
	if (!src->slot || !dst->slot)
		return -1;
	while ((f = ctd_flowtable_next(ft, &it))) {
		uint64_t bytes = f->cold ? f->cold->cnt[0].bytes +
					   f->cold->cnt[1].bytes : 0;

		if (f->flags & CTD_FLOW_TOMBSTONE)
			continue;
		tally(src, f->key.orig.src, f->key.family, bytes);
		tally(dst, f->key.orig.dst, f->key.family, bytes);
	}
	return 0;
}

static void print_tops(const struct talkers *s, const struct talkers *d,
		       FILE *out, bool json)
{
	if (json)
		fputc('{', out);
	print_top(s, "sources", false, out, json, true);
	print_top(s, "sources", true, out, json, false);
	print_top(d, "destinations", false, out, json, false);
	print_top(d, "destinations", true, out, json, false);
	fputs(json ? "}\n" : "# end\n", out);
}

static void answer_top(const struct ctd_report_src *src, FILE *out, bool json)
{
	struct talkers s = { 0 }, d = { 0 };

	if (gather(src->flows, &s, &d) < 0)
		fputs(json ? "{\"error\":\"out of memory\"}\n" :
			     "error: out of memory\n", out);
	else
		print_tops(&s, &d, out, json);
	free(s.slot);
	free(d.slot);
}

/* A live listing between slices: its dump and, for top, the tallies. */
struct live {
	struct ctd_livedump *dump;
	struct talkers src, dst;
	FILE *out;                  /* this slice's */
	bool json, top;
	uint64_t now_ns;
};

static void live_free(struct live *l)
{
	if (!l)
		return;
	ctd_livedump_free(l->dump);
	free(l->src.slot);
	free(l->dst.slot);
	free(l);
}

static void live_entry(void *arg, const struct ctd_event *ev)
{
	struct live *l = arg;
	struct ctd_record rec;
	char line[CTD_JSON_MAX];
	size_t len;

	ctd_record_from_destroy(NULL, ev, l->now_ns, &rec);
	rec.end_reason = CTD_END_ACTIVE;
	if (l->top) {
		uint64_t bytes = rec.cnt[0].bytes + rec.cnt[1].bytes;

		tally(&l->src, rec.tuple[CTD_DIR_ORIG].src, rec.family, bytes);
		tally(&l->dst, rec.tuple[CTD_DIR_ORIG].dst, rec.family, bytes);
		return;
	}
	len = l->json ? ctd_jsonfmt_record(&rec, line, sizeof(line)) :
			ctd_textfmt_flow(&rec, line, sizeof(line));
	fwrite(line, 1, len, l->out);
}

static struct live *live_new(bool json, bool top)
{
	struct live *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->json = json;
	l->top = top;
	l->src.mask = l->dst.mask = 255;
	l->src.slot = calloc(256, sizeof(*l->src.slot));
	l->dst.slot = calloc(256, sizeof(*l->dst.slot));
	if (!l->src.slot || !l->dst.slot || ctd_livedump_open(&l->dump) < 0) {
		live_free(l);
		return NULL;
	}
	return l;
}

/* One slice of a live listing (flows or top); true while more is to
 * come. Top writes nothing until the dump ended. */
static bool answer_live(const struct ctd_report_src *src, FILE *out, bool json,
			bool top, size_t *cursor)
{
	struct live *l = (struct live *)*cursor;
	int r;

	if (!l && !(l = live_new(json, top))) {
		fputs(json ? "{\"error\":\"cannot read the kernel's table\"}\n" :
			     "error: cannot read the kernel's table\n", out);
		return false;
	}
	l->out = out;
	l->now_ns = src->now_ns;
	r = ctd_livedump_read(l->dump, DATAGRAMS_PER_CHUNK, live_entry, l);
	if (r > 0) {
		*cursor = (size_t)l;
		return true;
	}
	if (r < 0)
		fprintf(out, json ? "{\"error\":\"kernel dump: %s\"}\n" :
			"error: kernel dump: %s\n", strerror(-r));
	else if (top)
		print_tops(&l->src, &l->dst, out, json);
	else if (!json)
		fputs("# end\n", out);
	live_free(l);
	*cursor = 0;
	return false;
}

static bool is_live(const struct ctd_report_src *src, const char *request)
{
	return src->live && (strncmp(request, "flows", 5) == 0 ||
			     strncmp(request, "top", 3) == 0);
}

bool ctd_report_answer(const struct ctd_report_src *src, const char *request,
		       FILE *out, size_t *cursor)
{
	char what[16];
	const char *sp = strchr(request, ' ');
	size_t len = sp ? (size_t)(sp - request) : strlen(request);
	bool json = sp && strcmp(sp + 1, "json") == 0;

	if (!out) {                /* the client left mid-answer */
		if (is_live(src, request))
			live_free((struct live *)*cursor);
		*cursor = 0;
		return false;
	}
	if (len >= sizeof(what) || (sp && !json)) {
		fputs("error: bad request\n", out);
		return false;
	}
	memcpy(what, request, len);
	what[len] = '\0';
	if (src->live && (!strcmp(what, "flows") || !strcmp(what, "top")))
		return answer_live(src, out, json, what[0] == 't', cursor);
	if (strcmp(what, "flows") == 0)
		return answer_flows(src, out, json, cursor);
	if (strcmp(what, "metrics") == 0)
		answer_metrics(src, out);
	else if (strcmp(what, "stats") == 0 || strcmp(what, "all") == 0)
		answer_stats(src, out, json, what[0] == 'a');
	else if (strcmp(what, "top") == 0)
		answer_top(src, out, json);
	else
		fprintf(out, "error: unknown request '%s' (stats, all, flows, top)\n", what);
	return false;
}
