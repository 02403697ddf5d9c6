/* report_cli: the `ctd report` command line.
 *
 * Every subcommand takes a window (--since, or --from and --to) and an
 * output format; the rest belong to one or two subcommands and are
 * refused elsewhere, so a mistyped question never silently answers a
 * different one. Times count from a now given by the caller. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ctd/base/timeparse.h"
#include "ctd/config/config.h"
#include "ctd/control/report_cli.h"
#include "ctd/control/report_pg.h"
#include "ctd/control/report_sqlite.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/out_store.h"
#include "ctd/outputs/outputs.h"

#define T (1u << CTD_RQ_TOP)
#define F (1u << CTD_RQ_FLOWS)
#define NAT (1u << CTD_RQ_NAT)
#define TOT (1u << CTD_RQ_TOTALS)
#define ALL (T | F | NAT | TOT)
#define NAT_AROUND_MS 60000

static const struct option opts[] = {
	{ "by", required_argument, NULL, 'b' },
	{ "order", required_argument, NULL, 'o' },
	{ "limit", required_argument, NULL, 'n' },
	{ "since", required_argument, NULL, 's' },
	{ "from", required_argument, NULL, 'f' },
	{ "to", required_argument, NULL, 't' },
	{ "at", required_argument, NULL, 'a' },
	{ "every", required_argument, NULL, 'e' },
	{ "src", required_argument, NULL, 'S' },
	{ "dst", required_argument, NULL, 'D' },
	{ "port", required_argument, NULL, 'P' },
	{ "proto", required_argument, NULL, 'p' },
	{ "netns", required_argument, NULL, 'N' },
	{ "json", no_argument, NULL, 'j' },
	{ "csv", no_argument, NULL, 'c' },
	{ "store", required_argument, NULL, 'd' },
	{ "db", required_argument, NULL, 'd' },
	{ NULL, 0, NULL, 0 },
};

/* Which subcommands take each option, by its letter. */
static unsigned takes(int c)
{
	switch (c) {
	case 'b': case 'o': return T;
	case 'n': return T | F | NAT;
	case 'a': return NAT;
	case 'e': return TOT;
	case 'S': case 'D': case 'P': case 'p': case 'N': return F;
	default: return ALL;
	}
}

/* Parsing state beside the query: what the window was given as. */
struct parse {
	struct ctd_report_args *a;
	uint64_t now_ms, since_ms, at_ms;
	bool since, from, to;
	char *err;
	size_t errlen;
};

static int fail(struct parse *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int pick(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* "10.0.0.0/8", "2001:db8::/32", or an address alone. */
static int parse_prefix(const char *s, struct ctd_rq_prefix *ret)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	char *end;
	unsigned long bits;

	if (len >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, len);
	addr[len] = '\0';
	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET, addr, ret->lo) == 1)
		ret->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, ret->lo) == 1)
		ret->family = AF_INET6;
	else
		return -EINVAL;
	bits = ret->family == AF_INET ? 32 : 128;
	if (slash && ((bits = strtoul(slash + 1, &end, 10), *end) || !slash[1] ||
		      bits > (ret->family == AF_INET ? 32u : 128u)))
		return -EINVAL;
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = bits > i * 8 ? (bits - i * 8 >= 8 ? 8 : bits - i * 8) : 0;
		uint8_t mask = (uint8_t)(0xffu >> keep);   /* host bits */

		ret->lo[i] &= (uint8_t)~mask;
		ret->hi[i] = ret->lo[i] | mask;
	}
	return 0;
}

/* "1.2.3.4", "1.2.3.4:80", "2001:db8::1", "[2001:db8::1]:80". */
static int parse_nat(struct parse *p, const char *s)
{
	char addr[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':'), *close = strchr(s, ']');
	struct ctd_report_query *q = &p->a->q;
	char *end;

	q->nat_port = -1;
	snprintf(addr, sizeof(addr), "%s", s + (*s == '['));
	if (*s == '[' && close) {
		addr[close - s - 1] = '\0';
		colon = close[1] == ':' ? close + 1 : NULL;
	} else if (colon && strchr(s, ':') == colon) {
		addr[colon - s] = '\0';
	} else {
		colon = NULL;
	}
	if (colon) {
		unsigned long port = strtoul(colon + 1, &end, 10);

		if (!colon[1] || *end || port > 65535)
			return fail(p, "bad port in %s", s);
		q->nat_port = (int)port;
	}
	if (parse_prefix(addr, &q->nat) < 0 || strchr(addr, '/'))
		return fail(p, "nat: %s is not an address[:port]", s);
	return 0;
}

static int parse_proto(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s && !*end)
		return v < 256 ? (int)v : -1;
	for (int i = 0; i < 256; i++) {
		const char *name = ctd_proto_name((uint8_t)i);

		if (name && strcmp(name, s) == 0)
			return i;
	}
	return -1;
}

static int parse_count(struct parse *p, const char *s, unsigned long max,
		       const char *what, uint64_t *ret)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (!*s || *end || v > max)
		return fail(p, "%s: %s is not a number up to %lu", what, s, max);
	*ret = v;
	return 0;
}

static int filter_option(struct parse *p, int c, const char *v)
{
	struct ctd_report_query *q = &p->a->q;
	uint64_t n = 0;

	switch (c) {
	case 'S':
	case 'D':
		if (parse_prefix(v, c == 'S' ? &q->src : &q->dst) < 0)
			return fail(p, "%s is not an address or prefix", v);
		return 0;
	case 'P':
		if (parse_count(p, v, 65535, "--port", &n) < 0)
			return -EINVAL;
		q->port = (int)n;
		return 0;
	case 'p':
		q->proto = parse_proto(v);
		return q->proto < 0 ? fail(p, "unknown protocol %s", v) : 0;
	default:
		q->netns = strcmp(v, "self") == 0 ? "" : v;
		return 0;
	}
}

static int time_option(struct parse *p, int c, const char *v)
{
	struct ctd_report_query *q = &p->a->q;
	int r;

	switch (c) {
	case 's':
		p->since = true;
		r = ctd_timeparse_duration(v, &p->since_ms);
		break;
	case 'f':
		p->from = true;
		r = ctd_timeparse_when(v, p->now_ms, &q->from_ms);
		break;
	case 't':
		p->to = true;
		r = ctd_timeparse_when(v, p->now_ms, &q->to_ms);
		break;
	case 'a':
		r = ctd_timeparse_when(v, p->now_ms, &p->at_ms);
		break;
	default:
		r = ctd_timeparse_duration(v, &q->every_ms);
		if (r == 0 && (q->every_ms < 60000 || q->every_ms % 60000))
			r = -EINVAL;
	}
	return r < 0 ? fail(p, "bad time %s (1h, 2026-12-05T08:00Z, "
			    "\"2026-12-05 09:00\", -2h; --every: whole minutes)",
			    v) : 0;
}

static int option(struct parse *p, int c, const char *v)
{
	struct ctd_report_args *a = p->a;
	int i;

	switch (c) {
	case 'b':
	case 'o':
		i = c == 'b' ? pick(ctd_rq_by_name, CTD_BY__COUNT, v) :
			       pick(ctd_rq_order_name, CTD_ORDER__COUNT, v);
		if (i < 0)
			return fail(p, "bad --%s %s", c == 'b' ? "by" : "order", v);
		if (c == 'b')
			a->q.by = (enum ctd_rq_by)i;
		else
			a->q.order = (enum ctd_rq_order)i;
		return 0;
	case 'n':
		return parse_count(p, v, 100000000, "--limit", &a->q.limit);
	case 'j':
	case 'c':
		a->fmt = c == 'j' ? CTD_RFMT_JSON : CTD_RFMT_CSV;
		return 0;
	case 'd':
		a->store = v;
		return 0;
	case 's': case 'f': case 't': case 'a': case 'e':
		return time_option(p, c, v);
	default:
		return filter_option(p, c, v);
	}
}

static void defaults(struct ctd_report_args *a, enum ctd_rq_cmd cmd,
		     struct parse *p)
{
	memset(a, 0, sizeof(*a));
	a->q.cmd = cmd;
	a->q.port = a->q.proto = a->q.nat_port = -1;
	a->q.limit = cmd == CTD_RQ_TOP ? 10 : 1000;
	a->q.every_ms = 3600000;
	p->since_ms = cmd == CTD_RQ_TOTALS ? 86400000 : 3600000;
	p->at_ms = p->now_ms;
}

/* The window: --since, or --from/--to (to defaults to now); nat without
 * either looks NAT_AROUND_MS each side of --at. */
static int window(struct parse *p)
{
	struct ctd_report_query *q = &p->a->q;

	if (p->since && (p->from || p->to))
		return fail(p, "--since or --from/--to, not both");
	if (q->cmd == CTD_RQ_NAT && !p->since && !p->from && !p->to) {
		q->from_ms = p->at_ms - NAT_AROUND_MS;
		q->to_ms = p->at_ms + NAT_AROUND_MS;
		return 0;
	}
	if (!p->to)
		q->to_ms = p->now_ms;
	if (!p->from)
		q->from_ms = q->to_ms > p->since_ms ? q->to_ms - p->since_ms : 0;
	return q->from_ms < q->to_ms ? 0 : fail(p, "the window ends before "
						 "it starts");
}

static int options(struct parse *p, int argc, char **argv)
{
	int c, at = 0;

	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, &at)) != -1) {
		if (c == '?')
			return fail(p, "unknown option or missing value: %s",
				    argv[optind - 1]);
		if (!(takes(c) & 1u << p->a->q.cmd))
			return fail(p, "--%s is not an option of %s", opts[at].name,
				    ctd_rq_cmd_name[p->a->q.cmd]);
		if (option(p, c, optarg) < 0)
			return -EINVAL;
	}
	return 0;
}

int ctd_report_parse(int argc, char **argv, uint64_t now_ms,
		     struct ctd_report_args *ret, char *err, size_t errlen)
{
	struct parse p = { .a = ret, .now_ms = now_ms, .err = err,
			   .errlen = errlen };
	int cmd = argc > 1 ? pick(ctd_rq_cmd_name, CTD_RQ__COUNT, argv[1]) : -1;

	if (cmd < 0)
		return fail(&p, "what to report: top, flows, nat or totals");
	defaults(ret, (enum ctd_rq_cmd)cmd, &p);
	if (options(&p, argc, argv) < 0)
		return -EINVAL;
	if (cmd == CTD_RQ_NAT && optind + 1 == argc)
		return parse_nat(&p, argv[optind]) < 0 ? -EINVAL : window(&p);
	if (cmd == CTD_RQ_NAT)
		return fail(&p, "nat needs one ADDR[:PORT]");
	if (optind < argc)
		return fail(&p, "unexpected argument %s", argv[optind]);
	return window(&p);
}

int ctd_report_run(const struct ctd_report_backend *b, const char *target,
		   const struct ctd_report_args *a, FILE *out, char *err,
		   size_t errlen)
{
	struct ctd_report_printer pr;
	struct ctd_report_sink sink = { ctd_report_print_row, &pr };
	void *h;
	int r = b->open(target, &h, err, errlen);

	if (r < 0)
		return r;
	ctd_report_print_begin(&pr, out, a->fmt, &a->q);
	r = b->run(h, &a->q, &sink, err, errlen);
	if (r == 0)
		ctd_report_print_end(&pr);
	b->close(h);
	return r;
}

/* Without --store: the store the installed configuration names, so a
 * moved store needs no option. */
static int default_store(const char **ret_path)
{
	static struct ctd_config cfg;
	char err[CTD_CONFIG_ERR_MAX];

	ctd_config_init(&cfg, ctd_output_settings);
	if (ctd_config_load(&cfg, CTD_CONFIG_FILE, false, err, sizeof(err)) < 0) {
		fprintf(stderr, "ctd report: %s\n", err);
		return -EINVAL;
	}
	if (!*ctd_out_store_path(&cfg)) {
		fprintf(stderr, "ctd report: %s says store none; name one with "
			"--store PATH\n", CTD_CONFIG_FILE);
		return -ENOENT;
	}
	*ret_path = ctd_out_store_path(&cfg);
	return 0;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char usage[] =
	"Usage: ctd report top [--by src|dst|port|pair|netns] "
	"[--order bytes|packets|flows] [--limit N]\n"
	"       ctd report flows [--src P] [--dst P] [--port N] [--proto P] "
	"[--netns NAME] [--limit N]\n"
	"       ctd report nat ADDR[:PORT] [--at TIME]\n"
	"       ctd report totals [--every 5m|1h|1d]\n"
	"  each: [--since 1h | --from TIME [--to TIME]] [--json | --csv] "
	"[--store|--db PATH]\n";

int ctd_store_report_main(int argc, char **argv)
{
	struct ctd_report_args a;
	char err[CTD_CONFIG_ERR_MAX];

	if (ctd_report_parse(argc, argv, wall_ms(), &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "ctd report: %s\n%s", err, usage);
		return 2;
	}
	if (!a.store && default_store(&a.store) < 0)
		return 1;
	if (ctd_report_run(ctd_report_pg_is_uri(a.store) ? &ctd_report_pg :
			   &ctd_report_sqlite, a.store, &a, stdout, err,
			   sizeof(err)) < 0) {
		fprintf(stderr, "ctd report: %s\n", err);
		return 1;
	}
	return 0;
}
