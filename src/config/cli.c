/* cli: argv -> struct ctd_cli, and the configuration it asks for.
 *
 * Every setting's long option is generated from its config key, so the
 * two cannot drift apart; the --no-* switches are the boolean settings
 * spelled the way conntrack users expect. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/config/cli.h"
#include "ctd/config/config.h"

enum {
	OPT_SET = 256, OPT_JSON, OPT_NO_BCERR, OPT_NO_RESYNC, OPT_NO_SYSCTL,
	OPT_UTC,
	OPT_SORT,
};

/* Options that are not settings; every setting is one more, made
 * from its row (options()). */
static const struct option fixed[] = {
	{ "foreground", no_argument, NULL, 'f' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "config", required_argument, NULL, 'c' },
	{ "test", no_argument, NULL, 't' },
	{ "stats", no_argument, NULL, 's' },
	{ "list", no_argument, NULL, 'l' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "utc", no_argument, NULL, OPT_UTC },
	{ "sort", required_argument, NULL, OPT_SORT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "no-broadcast-error", no_argument, NULL, OPT_NO_BCERR },
	{ "no-resync", no_argument, NULL, OPT_NO_RESYNC },
	{ "no-sysctl", no_argument, NULL, OPT_NO_SYSCTL },
};

#define N_FIXED (sizeof(fixed) / sizeof(fixed[0]))
#define N_OPTIONS (N_FIXED + CTD_CONFIG_SETTINGS + 1)

struct options {
	struct option opt[N_OPTIONS];
	size_t n;
};

static void add_setting(void *arg, const struct ctd_setting *s)
{
	struct options *o = arg;

	if (o->n + 1 < N_OPTIONS)
		o->opt[o->n++] = (struct option){ s->key, required_argument,
						  NULL, OPT_SET };
}

/* The fixed options, then --KEY VALUE for every setting. */
static void options(const struct ctd_setting_group *const *groups,
		    struct options *o)
{
	memcpy(o->opt, fixed, sizeof(fixed));
	o->n = N_FIXED;
	ctd_config_keys(groups, add_setting, o);
	o->opt[o->n] = (struct option){ NULL, 0, NULL, 0 };
}

static void usage_head(FILE *f)
{
	fputs(
"Usage: ctd [options]             run (a daemon; -f to watch in a terminal)\n"
"       ctd -t [-c FILE]          check the configuration\n"
"       ctd -s [top|all] | -l [--json] ask the running ctd (counters by\n"
"                                 group and health; top talkers; every\n"
"                                 counter, flat; tracked flows)\n"
"       ctd -l --sort bytes|packets|age  the flows, largest first\n"
"       ctd report top|flows|nat|totals [options]  the flow store, read only\n"
"                                 (ctd report with no subcommand lists them)\n"
"Turns the kernel's connection-tracking events into flow records.\n"
"\n"
"  -c, --config FILE        configuration file (default " CTD_CONFIG_FILE ";\n"
"                           optional unless given)\n"
"  -f, --foreground         print one line per event on stdout (like conntrack -E),\n"
"                           filtered by filter-*; without -o FILE a watcher that\n"
"                           runs beside the service (no file, spool or socket)\n"
"      --utc                with -f, times in UTC (default local time)\n"
"  -v, --verbose            debug logging; print all counters at exit; with -t\n"
"                           print the effective configuration\n"
"\n"
"Every setting of ctd.conf(5) is also an option, e.g.:\n", f);
}

static void usage_tail(FILE *f)
{
	fputs(
"  -b, --rcvbuf SIZE        netlink receive buffer (default 8M; k/M/G suffixes)\n"
"      --rcvbuf-max SIZE    grow the buffer on overruns up to SIZE (default 64M)\n"
"      --budget N           netlink messages handled per loop wakeup (default 4096)\n"
"      --max-flows N        flows tracked at most (default net.netfilter.nf_conntrack_max);\n"
"                           past it the flow closest to expiry is evicted\n"
"                           (its record has end_reason evicted)\n"
"      --remember-ends N    ended flows remembered to drop DESTROYs the kernel\n"
"                           sends again (default auto: nf_conntrack_max)\n"
"      --shards N|auto      processes reading the events, each its part\n"
"                           (default 1; auto: one per online CPU)\n"
"      --expiry-slack SECS  added to the kernel's timeouts before a silent flow\n"
"                           is checked against the kernel (default 60)\n"
"      --check-interval SECS  at most one such check dump per SECS (default 10)\n"
"      --pending-interval SECS  count the kernel's undelivered DESTROYs by\n"
"                           walking its dying list (a costly walk; default 0 = off)\n"
"      --kernel-pressure fail-open|hold  when the conntrack table fills while\n"
"                           ctd is behind: stop holding DESTROYs, counting what\n"
"                           is lost (default fail-open), or hold them at the\n"
"                           firewall's risk\n"
"      --kernel-pressure-high PCT  table fill that fails open (default 85)\n"
"      --kernel-pressure-low PCT   reliable again under this fill (default 70)\n"
"      --no-broadcast-error lossy mode: do not ask the kernel to keep undelivered events\n"
"      --no-resync          lossy mode: do not resync the table after overruns\n"
"      --active-timeout SECS  interim records for flows older than SECS, with\n"
"                           counters from table dumps every SECS/2 (default 1800,\n"
"                           0 = off)\n"
"      --no-sysctl          leave nf_conntrack_events/acct/timestamp alone\n"
"      --netns all|NAME,... also watch these network namespaces (/run/netns;\n"
"                           default self: only ctd's own)\n"
"      --record FILE        also write every raw netlink datagram to FILE\n", f);
}

static void usage_end(FILE *f)
{
	fputs(
"      --spool-dir DIR      undelivered records survive restarts here\n"
"                           (default /var/lib/ctd; 'none' = no spool)\n"
"      --grace SECS         re-send a refused record within SECS (default 15)\n"
"      --dying-max N        records held in memory per output before the\n"
"                           spool (default 100000)\n"
"      --memory-max SIZE    memory all outputs' held records may take together\n"
"                           before the spool (default auto: a quarter of the\n"
"                           memory cgroup's limit, 4M to 256M; 256M without one)\n"
"      --shutdown-timeout SECS  time to deliver held records at exit (default 5)\n"
"      --control PATH       control socket for ctd -s/-l (default /run/ctd/ctd.sock;\n"
"                           'none' = off)\n"
"      --control-group GROUP  members of GROUP may use it too (default none:\n"
"                           root only)\n"
"      --metrics ADDR:PORT  Prometheus /metrics on a loopback address, e.g.\n"
"                           127.0.0.1:9477 (default none)\n"
"      --metrics-tls-cert FILE, --metrics-tls-key FILE, --metrics-client-ca FILE\n"
"                           HTTPS with client certificates: then --metrics may\n"
"                           be any address, for a remote Prometheus\n"
"      --user NAME          after opening everything, run as NAME with only\n"
"                           CAP_NET_ADMIN (when started as root; default none)\n"
"      --filter-proto LIST  record only these protocols (tcp,udp,47; default any)\n"
"      --filter-src LIST    only flows from these prefixes (10.0.0.0/8,2001:db8::/32)\n"
"      --filter-dst LIST    only flows to these prefixes\n"
"      --ignore-src LIST    no flows from these prefixes\n"
"      --ignore-dst LIST    no flows to these prefixes\n"
"      --filter-tcp-state LIST  TCP flows only in these states (ESTABLISHED,...)\n"
"      --filter-zone LIST   only these conntrack zones\n"
"      --filter-mark M[/MASK]  only flows whose mark & MASK == M\n"
"      --filter-netns LIST  only flows of these network namespaces (names;\n"
"                           self: ctd's own; nsid:N: one without a name)\n"
"      --ignore-netns LIST  no flows of these network namespaces\n"
"  -h, --help               this text\n"
"  -V, --version            print the version\n"
"\nSignals: TERM/INT stop, HUP reloads the configuration and reopens output\n"
"files, USR1 only reopens them (logrotate), USR2 restarts ctd in place\n"
"keeping its ctnetlink socket (no event lost). See ctd(8) and ctd.conf(5).\n", f);
}

/* ctd's own options around each output's lines, from its group. */
static void usage(FILE *f, const struct ctd_setting_group *const *groups)
{
	usage_head(f);
	usage_tail(f);
	fputs("Outputs (each also in ctd.conf(5)):\n", f);
	for (size_t i = 0; groups && groups[i]; i++)
		fputs(groups[i]->help, f);
	usage_end(f);
}

/* For the bash completion, which asks the binary so that it knows
 * every output's settings: `ctd --complete` lists the options, one a
 * line; `ctd --complete KEY` what KEY takes: its words, "yes no", the
 * event lists, or "@file" for a path (the script completes files). */
static void complete_values(const struct ctd_setting *s)
{
	switch (s->type) {
	case CTD_SET_CHOICE:
		for (size_t i = 0; s->words[i]; i++)
			printf("%s\n", s->words[i]);
		break;
	case CTD_SET_BOOL:
		printf("yes\nno\n");
		break;
	case CTD_SET_EVENTS:
		printf("destroy\nnew,destroy\nnew,update,destroy\n");
		break;
	case CTD_SET_PATH:
	case CTD_SET_CONNINFO:
		printf("@file\n");
		break;
	default:
		break;
	}
}

struct completion {
	const char *key;     /* NULL: list the options */
};

static void complete_one(void *arg, const struct ctd_setting *s)
{
	const struct completion *c = arg;

	if (!c->key)
		printf("--%s\n", s->key);
	else if (strcmp(c->key, s->key) == 0)
		complete_values(s);
}

static void complete(const struct ctd_setting_group *const *groups,
		     const char *key)
{
	struct completion c = { key };

	for (size_t i = 0; !key && i < N_FIXED; i++)
		printf("--%s\n", fixed[i].name);
	if (!key)
		printf("-f\n-v\n-c\n-t\n-s\n-l\n-o\n-b\n-h\n-V\n");
	ctd_config_keys(groups, complete_one, &c);
	exit(0);
}

static void add(struct ctd_cli *cli, const char *key, const char *value)
{
	if (cli->n == CTD_CLI_MAX_SETTINGS) {
		fprintf(stderr, "ctd: too many options\n");
		exit(2);
	}
	cli->keys[cli->n] = key;
	cli->values[cli->n++] = value;
}

static void query(struct ctd_cli *cli, const char *what)
{
	cli->mode = CTD_CLI_QUERY;
	cli->query = what;
}

/* The one positional argument: `ctd -s top`, `ctd -s all`. */
static void positional(struct ctd_cli *cli, int argc, char **argv)
{
	if (optind < argc && cli->mode == CTD_CLI_QUERY &&
	    strcmp(cli->query, "stats") == 0 && (strcmp(argv[optind], "top") == 0 ||
						 strcmp(argv[optind], "all") == 0)) {
		cli->query = argv[optind][0] == 't' ? "top" : "all";
		optind++;
	}
	if (optind < argc) {
		fprintf(stderr, "ctd: unexpected argument '%s' (see ctd --help)\n",
			argv[optind]);
		exit(2);
	}
}

/* The running ctd answers from the kernel's whole table and its own
 * counters; its filters chose the records, not these answers. A filter
 * option on a query would be silently ignored, so it is refused. */
static void refuse_query_filters(const struct ctd_cli *cli)
{
	for (size_t i = 0; cli->mode == CTD_CLI_QUERY && i < cli->n; i++) {
		if (strncmp(cli->keys[i], "filter-", 7) != 0 &&
		    strncmp(cli->keys[i], "ignore-", 7) != 0)
			continue;
		fprintf(stderr, "ctd: --%s does not apply to -s or -l (they "
			"answer for the whole table; filter the lines with grep, "
			"or --json with jq)\n", cli->keys[i]);
		exit(2);
	}
}

/* --sort orders -l's text lines in the client; nothing else has them. */
static void refuse_misplaced_sort(const struct ctd_cli *cli)
{
	if (!cli->sort || (cli->mode == CTD_CLI_QUERY &&
			   strcmp(cli->query, "flows") == 0 && !cli->json))
		return;
	fprintf(stderr, "ctd: --sort sorts the lines of -l (with --json, sort "
		"with jq)\n");
	exit(2);
}

void ctd_cli_parse(int argc, char **argv, struct ctd_cli *cli,
		   const struct ctd_setting_group *const *groups)
{
	struct options o;
	int c, idx;

	if (argc >= 2 && strcmp(argv[1], "--complete") == 0)
		complete(groups, argc >= 3 ? argv[2] : NULL);
	memset(cli, 0, sizeof(*cli));
	cli->config = CTD_CONFIG_FILE;
	cli->groups = groups;
	options(groups, &o);
	while ((c = getopt_long(argc, argv, "fvc:tslo:b:hV", o.opt, &idx)) != -1) {
		switch (c) {
		case 'f': cli->foreground = true; break;
		case 'v': cli->verbose = true; break;
		case 'c': cli->config = optarg; cli->config_given = true; break;
		case 't': cli->mode = CTD_CLI_CHECK; break;
		case 's': query(cli, "stats"); break;
		case 'l': query(cli, "flows"); break;
		case OPT_JSON: cli->json = true; break;
		case OPT_UTC: cli->utc = true; break;
		case OPT_SORT: cli->sort = optarg; break;
		case 'o': add(cli, "output", optarg); break;
		case 'b': add(cli, "rcvbuf", optarg); break;
		case OPT_NO_BCERR: add(cli, "broadcast-error", "no"); break;
		case OPT_NO_RESYNC: add(cli, "resync", "no"); break;
		case OPT_NO_SYSCTL: add(cli, "sysctl", "no"); break;
		case OPT_SET: add(cli, o.opt[idx].name, optarg); break;
		case 'h': usage(stdout, groups); exit(0);
		case 'V': printf("ctd %s\n", CTD_VERSION); exit(0);
		default:
			fprintf(stderr, "Try 'ctd --help'.\n");
			exit(2);
		}
	}
	positional(cli, argc, argv);
	refuse_query_filters(cli);
	refuse_misplaced_sort(cli);
}

bool ctd_cli_watcher(const struct ctd_cli *cli)
{
	if (!cli->foreground)
		return false;
	for (size_t i = 0; i < cli->n; i++)
		if (strcmp(cli->keys[i], "output") == 0 &&
		    strcmp(cli->values[i], "-") != 0)
			return false;
	return true;
}

/* A watcher shares the machine with the service: what it would write,
 * bind or lock is the service's (its record file, other outputs, spool,
 * sockets), so it takes none of them from the file or the defaults.
 * And it listens in lossy mode: a reliable listener that stalls (a
 * paused terminal, a pager) makes the kernel hold every conntrack's end
 * for all listeners, and send the service its DESTROYs again. */
static void watch_only(struct ctd_config *cfg)
{
	static const char *const off[][2] = {
		{ "spool-dir", "none" }, { "control", "none" },
		{ "metrics", "none" }, { "record", "none" },
		{ "broadcast-error", "no" },
	};
	char msg[CTD_CONFIG_ERR_MAX];

	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
		ctd_config_set(cfg, off[i][0], off[i][1], msg, sizeof(msg));
	for (size_t i = 0; cfg->groups && cfg->groups[i]; i++)
		ctd_config_set(cfg, cfg->groups[i]->off_key,
			       cfg->groups[i]->off_value, msg, sizeof(msg));
}

int ctd_cli_config(const struct ctd_cli *cli, struct ctd_config *cfg,
		   char *err, size_t errlen)
{
	char msg[CTD_CONFIG_ERR_MAX];
	int r;

	ctd_config_init(cfg, cli->groups);
	r = ctd_config_load(cfg, cli->config, cli->config_given, err, errlen);
	if (r < 0)
		return r;
	if (ctd_cli_watcher(cli))
		watch_only(cfg);
	for (size_t i = 0; i < cli->n; i++) {
		r = ctd_config_set(cfg, cli->keys[i], cli->values[i], msg, sizeof(msg));
		if (r < 0) {
			snprintf(err, errlen, "command line: --%s", msg);
			return r;
		}
	}
	ctd_config_finish(cfg);
	return 0;
}
