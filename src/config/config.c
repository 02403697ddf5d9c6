/* config: the settings table, the value parsers and the file reader.
 *
 * One table names every setting, its type, bounds, place in struct
 * ctd_config and whether a reload can apply it to a running ctd: the file
 * reader, the command line (main.c passes each long option through
 * ctd_config_set), `ctd -t` and a reload's diff all go through it, so a
 * setting cannot be accepted in one place and rejected in another. The
 * file format is chrony's: one `key value` per line, # starts a comment,
 * unknown keys are errors; a value may be quoted. Each setting remembers
 * where it was set (a line of the file or the command line), so a key
 * set twice in the file and a check that fails later both name the line. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "ctd/base/listen.h"
#include "ctd/config/config.h"
#include "ctd/config/conninfo.h"
#include "ctd/format/ipfix.h"
#include "ctd/kernel/ctevent.h"

enum type {
	T_SIZE,      /* size_t, k/M/G suffixes */
	T_COUNT,     /* size_t, plain number */
	T_UINT,      /* unsigned, plain number */
	T_SECS,      /* unsigned seconds */
	T_DURATION,  /* unsigned seconds, written with an s/m/h/d suffix */
	T_BOOL,
	T_PATH,      /* string; "none" clears it when none_ok */
	T_EVENTS,    /* new,update,destroy */
	T_LOOPBACK,  /* 127.0.0.1:port or [::1]:port, or none */
	T_FILTER,    /* a filter criterion; min is its enum ctd_filter_key */
	T_CHOICE,    /* one word of choices[min], stored as its index */
	T_TARGET,    /* an IPFIX collector: udp:HOST:PORT or tcp:HOST:PORT */
	T_OPTIONS,   /* NAME=VALUE, each line adds one; none clears them */
	T_CONNINFO,  /* a T_PATH shown with its passwords hidden */
};

enum { C_SHAPE, C_NAT_EVENT, C_FACILITY, C_LEVEL, C_SYSLOG_FORMAT, C_KAFKA_KEY,
       C_SUBSCRIBE, C_PRESSURE };

/* NULL-terminated word lists; a word's index is its stored value. */
static const char *const choices[][25] = {
	[C_SHAPE] = { "biflow", "uniflow", "initiator", NULL },
	[C_NAT_EVENT] = { "rfc8158", "legacy", "none", NULL },
	/* syslog(3)'s facility numbers: kern is 0, local7 is 23. */
	[C_FACILITY] = { "kern", "user", "mail", "daemon", "auth", "syslog",
			 "lpr", "news", "uucp", "cron", "authpriv", "ftp",
			 "ntp", "security", "console", "solaris-cron",
			 "local0", "local1", "local2", "local3", "local4",
			 "local5", "local6", "local7", NULL },
	[C_LEVEL] = { "emerg", "alert", "crit", "err", "warning", "notice",
		      "info", "debug", NULL },
	[C_SYSLOG_FORMAT] = { "rfc3164", "rfc5424", NULL },
	[C_KAFKA_KEY] = { "tuple", "none", NULL },
	[C_SUBSCRIBE] = { "auto", "all", NULL },
	[C_PRESSURE] = { "fail-open", "hold", NULL },
};

/* What a reload does with a changed setting: applies it to the running
 * ctd, or logs that it needs a restart. */
enum reload { RESTART, LIVE };

struct setting {
	const char *key;
	enum type type;
	size_t off;
	unsigned long long min, max;
	bool none_ok;
	enum reload reload;
};

#define F(field) offsetof(struct ctd_config, field)
/* max of a T_COUNT or T_SIZE that also takes "auto" (the bound is then
 * 10^8, or 1T for a size). */
#define AUTO_OK UINT64_MAX
#define AUTO_COUNT_MAX 100000000ULL
#define AUTO_SIZE_MAX (1ULL << 40)

static const struct setting settings[] = {
	{ "output", T_PATH, F(output), 0, 0, true, LIVE },
	{ "json-events", T_EVENTS, F(json_events), 0, 0, false, RESTART },
	{ "stream", T_PATH, F(stream), 0, 0, true, RESTART },
	{ "stream-events", T_EVENTS, F(stream_events), 0, 0, false, RESTART },
	{ "conntrackd-log", T_PATH, F(conntrackd_log), 0, 0, true, LIVE },
	{ "ipfix", T_TARGET, F(ipfix), 0, 0, true, RESTART },
	{ "ipfix-shape", T_CHOICE, F(ipfix_shape), C_SHAPE, 0, false, RESTART },
	{ "ipfix-domain", T_UINT, F(ipfix_domain), 0, 4294967295u, false, RESTART },
	{ "ipfix-mtu", T_UINT, F(ipfix_mtu), 576, 65535, false, RESTART },
	{ "ipfix-template-refresh", T_SECS, F(ipfix_template_refresh), 1, 86400, false, RESTART },
	{ "ipfix-template-messages", T_UINT, F(ipfix_template_messages), 1, 1000000, false, RESTART },
	{ "ipfix-nat-event", T_CHOICE, F(ipfix_nat_event), C_NAT_EVENT, 0, false, RESTART },
	{ "ipfix-pen", T_UINT, F(ipfix_pen), 0, 4294967295u, false, RESTART },
	{ "ipfix-tls-ca", T_PATH, F(ipfix_tls_ca), 0, 0, true, LIVE },
	{ "ipfix-tls-name", T_PATH, F(ipfix_tls_name), 0, 0, true, RESTART },
	{ "ipfix-tls-cert", T_PATH, F(ipfix_tls_cert), 0, 0, true, LIVE },
	{ "ipfix-tls-key", T_PATH, F(ipfix_tls_key), 0, 0, true, LIVE },
	{ "syslog", T_BOOL, F(syslog), 0, 0, false, RESTART },
	{ "syslog-facility", T_CHOICE, F(syslog_facility), C_FACILITY, 0, false, RESTART },
	{ "syslog-level", T_CHOICE, F(syslog_level), C_LEVEL, 0, false, RESTART },
	{ "syslog-format", T_CHOICE, F(syslog_format), C_SYSLOG_FORMAT, 0, false, RESTART },
	{ "syslog-socket", T_PATH, F(syslog_socket), 0, 0, false, RESTART },
	{ "kafka", T_PATH, F(kafka), 0, 0, true, RESTART },
	{ "kafka-topic", T_PATH, F(kafka_topic), 0, 0, false, RESTART },
	{ "kafka-key", T_CHOICE, F(kafka_key), C_KAFKA_KEY, 0, false, RESTART },
	{ "kafka-option", T_OPTIONS, F(kafka_options), 0, 0, true, RESTART },
	{ "kafka-events", T_EVENTS, F(kafka_events), 0, 0, false, RESTART },
	{ "store", T_PATH, F(store), 0, 0, true, RESTART },
	{ "store-retention", T_DURATION, F(store_retention), 60, 3650u * 86400, false, RESTART },
	{ "postgresql", T_CONNINFO, F(postgresql), 0, 0, true, RESTART },
	{ "store-rollup-retention", T_DURATION, F(store_rollup_retention), 3600, 3650u * 86400, false, RESTART },
	{ "store-max-size", T_SIZE, F(store_max_size), 1u << 20, AUTO_OK, false, RESTART },
	{ "spool-dir", T_PATH, F(spool_dir), 0, 0, true, RESTART },
	{ "grace", T_SECS, F(grace), 1, 86400, false, RESTART },
	{ "dying-max", T_COUNT, F(dying_max), 1, 10000000, false, RESTART },
	{ "memory-max", T_SIZE, F(memory_max), 64u << 10, AUTO_OK, false, RESTART },
	{ "shutdown-timeout", T_SECS, F(shutdown_timeout), 0, 86400, false, RESTART },
	{ "control", T_PATH, F(control), 0, 0, true, RESTART },
	{ "control-group", T_PATH, F(control_group), 0, 0, true, RESTART },
	{ "stream-group", T_PATH, F(stream_group), 0, 0, true, RESTART },
	{ "metrics", T_LOOPBACK, F(metrics), 0, 0, true, RESTART },
	{ "metrics-tls-cert", T_PATH, F(metrics_tls_cert), 0, 0, true, RESTART },
	{ "metrics-tls-key", T_PATH, F(metrics_tls_key), 0, 0, true, RESTART },
	{ "metrics-client-ca", T_PATH, F(metrics_client_ca), 0, 0, true, RESTART },
	{ "user", T_PATH, F(user), 0, 0, true, RESTART },
	{ "rcvbuf", T_SIZE, F(rcvbuf), 1024, 1ULL << 30, false, RESTART },
	{ "rcvbuf-max", T_SIZE, F(rcvbuf_max), 1024, 1ULL << 30, false, RESTART },
	{ "budget", T_UINT, F(budget), 1, 1000000, false, RESTART },
	{ "broadcast-error", T_BOOL, F(broadcast_error), 0, 0, false, RESTART },
	{ "resync", T_BOOL, F(resync), 0, 0, false, RESTART },
	{ "kernel-pressure", T_CHOICE, F(kernel_pressure), C_PRESSURE, 0, false, RESTART },
	{ "kernel-pressure-high", T_UINT, F(kernel_pressure_high), 2, 100, false, RESTART },
	{ "kernel-pressure-low", T_UINT, F(kernel_pressure_low), 1, 99, false, RESTART },
	{ "subscribe", T_CHOICE, F(subscribe), C_SUBSCRIBE, 0, false, LIVE },
	{ "record-labels", T_BOOL, F(record_labels), 0, 0, false, LIVE },
	{ "sysctl", T_BOOL, F(sysctl), 0, 0, false, RESTART },
	{ "netns", T_PATH, F(netns), 0, 0, false, RESTART },
	{ "max-flows", T_COUNT, F(max_flows), 0, 1ULL << 30, false, RESTART },
	{ "remember-ends", T_COUNT, F(remember_ends), 0, AUTO_OK, false, RESTART },
	{ "expiry-slack", T_SECS, F(expiry_slack), 0, 86400, false, RESTART },
	{ "check-interval", T_SECS, F(check_interval), 1, 86400, false, RESTART },
	{ "pending-interval", T_SECS, F(pending_interval), 0, 86400, false, RESTART },
	{ "active-timeout", T_SECS, F(active_timeout), 0, 86400, false, RESTART },
	{ "record", T_PATH, F(record), 0, 0, true, RESTART },
	{ "filter-proto", T_FILTER, F(filter[0]), CTD_FILTER_PROTO, 0, false, LIVE },
	{ "filter-src", T_FILTER, F(filter[1]), CTD_FILTER_SRC, 0, false, LIVE },
	{ "filter-dst", T_FILTER, F(filter[2]), CTD_FILTER_DST, 0, false, LIVE },
	{ "ignore-src", T_FILTER, F(filter[3]), CTD_FILTER_IGNORE_SRC, 0, false, LIVE },
	{ "ignore-dst", T_FILTER, F(filter[4]), CTD_FILTER_IGNORE_DST, 0, false, LIVE },
	{ "filter-tcp-state", T_FILTER, F(filter[5]), CTD_FILTER_TCP_STATE, 0, false, LIVE },
	{ "filter-zone", T_FILTER, F(filter[6]), CTD_FILTER_ZONE, 0, false, LIVE },
	{ "filter-mark", T_FILTER, F(filter[7]), CTD_FILTER_MARK, 0, false, LIVE },
	{ "filter-netns", T_FILTER, F(filter[8]), CTD_FILTER_NETNS, 0, false, LIVE },
	{ "ignore-netns", T_FILTER, F(filter[9]), CTD_FILTER_IGNORE_NETNS, 0, false, LIVE },
};

_Static_assert(CTD_FILTER_PROTO == 0 && CTD_FILTER_MARK == 7 &&
	       CTD_FILTER_IGNORE_NETNS == 9 && CTD_FILTER__COUNT == 10, "filter settings follow the enum");

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

_Static_assert(N_SETTINGS <= CTD_CONFIG_SETTINGS,
	       "struct ctd_config has an origin for every setting");

void ctd_config_defaults(struct ctd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->output, CTD_CONFIG_DEFAULT_OUTPUT);
	strcpy(cfg->spool_dir, "/var/lib/ctd");
	strcpy(cfg->store, CTD_CONFIG_DEFAULT_STORE);
	cfg->store_retention = 30 * 86400;
	cfg->store_rollup_retention = 400 * 86400;
	cfg->store_max_size = CTD_CONFIG_AUTO;
	strcpy(cfg->control, CTD_CONFIG_DEFAULT_CONTROL);
	cfg->rcvbuf = 8u << 20;
	cfg->rcvbuf_max = 64u << 20;
	cfg->max_flows = 0;
	cfg->remember_ends = CTD_CONFIG_AUTO;
	cfg->dying_max = 100000;
	cfg->memory_max = CTD_CONFIG_AUTO;
	cfg->budget = 4096;
	cfg->expiry_slack = 60;
	cfg->check_interval = 10;
	cfg->pending_interval = 0;
	cfg->kernel_pressure_high = 85;
	cfg->kernel_pressure_low = 70;
	cfg->active_timeout = 1800;
	cfg->grace = 15;
	cfg->shutdown_timeout = 5;
	cfg->json_events = 1u << CTD_EV_DESTROY;
	cfg->stream_events = 1u << CTD_EV_DESTROY;
	cfg->broadcast_error = true;
	cfg->resync = true;
	cfg->sysctl = true;
	for (size_t i = 0; i < CTD_FILTER__COUNT; i++)
		strcpy(cfg->filter[i], "any");
	cfg->ipfix_domain = 1;
	cfg->ipfix_mtu = 1280;
	cfg->ipfix_template_refresh = 60;
	cfg->ipfix_template_messages = 1000;
	cfg->syslog_facility = 16;    /* local0 */
	cfg->syslog_level = 6;        /* info */
	strcpy(cfg->syslog_socket, "/dev/log");
	strcpy(cfg->kafka_topic, "ctd-flows");
	cfg->kafka_events = 1u << CTD_EV_DESTROY;
	strcpy(cfg->netns, "self");
}

static const struct setting *find(const char *key)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

bool ctd_config_has(const char *key)
{
	return find(key) != NULL;
}

static int parse_number(const char *s, bool suffixes, unsigned long long *ret)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (suffixes && *end && !end[1]) {
		unsigned shift = strchr("kK", *end) ? 10 : strchr("mM", *end) ? 20 :
				 strchr("gG", *end) ? 30 : 0;

		if (!shift || v > (1ULL << 40))
			return -EINVAL;
		v <<= shift;
		end++;
	}
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* "30d", "12h", "90m", "3600s" or plain seconds: retention periods
 * read best in days, and are written back in the largest whole unit. */
static const struct { char suffix; unsigned secs; } units[] = {
	{ 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 },
};

static int parse_duration(const char *value, const struct setting *s,
			  void *field)
{
	unsigned long long v, mult = 1;
	char num[32];
	size_t n = strlen(value);

	if (!n || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, value, n + 1);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (num[n - 1] == units[i].suffix) {
			mult = units[i].secs;
			num[n - 1] = '\0';
		}
	if (parse_number(num, false, &v) < 0 || v > s->max / mult ||
	    v * mult < s->min)
		return -EINVAL;
	*(unsigned *)field = (unsigned)(v * mult);
	return 0;
}

static void format_duration(unsigned secs, char *buf, size_t len)
{
	size_t i = 0;

	while (units[i].secs > 1 && secs % units[i].secs)
		i++;
	snprintf(buf, len, "%u%c", secs / units[i].secs, units[i].suffix);
}

static int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "yes", "on", "true", "1" };
	static const char *const no[] = { "no", "off", "false", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
			*ret = strcmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_events(const char *s, unsigned *ret)
{
	static const char *const names[CTD_EV__COUNT] = { "new", "update", "destroy" };
	unsigned mask = 0;

	while (*s) {
		size_t n = strcspn(s, ","), i;

		for (i = 0; i < CTD_EV__COUNT; i++)
			if (strlen(names[i]) == n && strncmp(s, names[i], n) == 0)
				break;
		if (i == CTD_EV__COUNT)
			return -EINVAL;
		mask |= 1u << i;
		s += n + (s[n] == ',');
	}
	if (!mask)
		return -EINVAL;
	*ret = mask;
	return 0;
}

static void human(unsigned long long v, char *buf, size_t len)
{
	if (v >= (1ULL << 30) && !(v % (1ULL << 30)))
		snprintf(buf, len, "%lluG", v >> 30);
	else if (v >= (1ULL << 20) && !(v % (1ULL << 20)))
		snprintf(buf, len, "%lluM", v >> 20);
	else if (v >= 1024 && !(v % 1024))
		snprintf(buf, len, "%lluk", v >> 10);
	else
		snprintf(buf, len, "%llu", v);
}

/* The largest value a setting takes. */
static unsigned long long upper(const struct setting *s)
{
	if (s->max != AUTO_OK)
		return s->max;
	return s->type == T_SIZE ? AUTO_SIZE_MAX : AUTO_COUNT_MAX;
}

static void expected(const struct setting *s, char *buf, size_t len)
{
	char lo[32], hi[32];

	switch (s->type) {
	case T_SIZE:
		human(s->min, lo, sizeof(lo));
		human(upper(s), hi, sizeof(hi));
		snprintf(buf, len, "%sa size from %s to %s (k, M, G suffixes)",
			 s->max == AUTO_OK ? "auto or " : "", lo, hi);
		break;
	case T_COUNT:
	case T_UINT:
		if (s->max == AUTO_OK)
			snprintf(buf, len, "auto or a number from %llu to "
				 "100000000", s->min);
		else
			snprintf(buf, len, "a number from %llu to %llu", s->min,
				 s->max);
		break;
	case T_SECS:
		snprintf(buf, len, "seconds from %llu to %llu", s->min, s->max);
		break;
	case T_DURATION:
		snprintf(buf, len, "a time from 1m to 3650d (a number with "
			 "s, m, h or d)");
		break;
	case T_BOOL:
		snprintf(buf, len, "yes or no");
		break;
	case T_EVENTS:
		snprintf(buf, len, "a comma-separated list of new, update, destroy");
		break;
	case T_PATH:
		snprintf(buf, len, "a path%s", s->none_ok ? " or none" : "");
		break;
	case T_LOOPBACK:
		snprintf(buf, len, "a loopback address and port "
			 "(127.0.0.1:9477, [::1]:9477) or none");
		break;
	case T_FILTER:
		break;
	case T_CHOICE:
		snprintf(buf, len, "one of:");
		for (size_t i = 0; choices[s->min][i]; i++)
			snprintf(buf + strlen(buf), len - strlen(buf), " %s",
				 choices[s->min][i]);
		break;
	case T_TARGET:
		snprintf(buf, len, "udp:HOST:PORT, tcp:HOST:PORT or none");
		break;
	case T_OPTIONS:
		snprintf(buf, len, "NAME=VALUE (at most %d, each under %d bytes) "
			 "or none", CTD_CONFIG_KAFKA_OPTIONS, CTD_CONFIG_PATH_MAX);
		break;
	case T_CONNINFO:
		snprintf(buf, len, "a libpq connection string or none");
		break;
	}
}

static int parse_choice(const struct setting *s, const char *value,
			unsigned *ret)
{
	for (unsigned i = 0; choices[s->min][i]; i++) {
		if (strcmp(value, choices[s->min][i]) == 0) {
			*ret = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Stores the text only if it compiles; why says what was wanted. */
static int check_filter(const struct setting *s, const char *value,
			char *field, char *why, size_t whylen)
{
	struct ctd_filter *f = ctd_filter_new();
	int r;

	if (!f)
		return -ENOMEM;
	r = ctd_filter_set(f, (enum ctd_filter_key)s->min, value, why, whylen);
	ctd_filter_free(f);
	if (r < 0 || strlen(value) >= CTD_CONFIG_PATH_MAX)
		return -EINVAL;
	strcpy(field, value);
	return 0;
}

static int store_text(const struct setting *s, const char *value, char *field)
{
	if (!*value || strlen(value) >= CTD_CONFIG_PATH_MAX)
		return -EINVAL;
	strcpy(field, s->none_ok && strcmp(value, "none") == 0 ? "" : value);
	return 0;
}

static int check_target(const struct setting *s, const char *value,
			char *field, char *why, size_t whylen)
{
	const char *bad = strcmp(value, "none") == 0 ? NULL :
			  ctd_ipfix_check_target(value);

	if (bad) {
		snprintf(why, whylen, "udp:HOST:PORT, tcp:HOST:PORT or "
			 "tls:HOST:PORT (%s)", bad);
		return -EINVAL;
	}
	return store_text(s, value, field);
}

/* One more NAME=VALUE line; "none" forgets the earlier ones. */
static int add_option(const char *value, char *field)
{
	size_t have = strlen(field), n = strlen(value), lines = 0;

	if (strcmp(value, "none") == 0) {
		field[0] = '\0';
		return 0;
	}
	for (const char *p = field; (p = strchr(p, '\n')); p++)
		lines++;
	if (!strchr(value, '=') || value[0] == '=' ||
	    n >= CTD_CONFIG_PATH_MAX || lines >= CTD_CONFIG_KAFKA_OPTIONS ||
	    have + n + 2 > CTD_CONFIG_KAFKA_OPTIONS_BYTES)
		return -EINVAL;
	memcpy(field + have, value, n);
	strcpy(field + have + n, "\n");
	return 0;
}

/* An address:port; one that is not loopback only with TLS and client
 * certificates (cfgcheck says so, naming the line). */
static bool listen_addr_ok(const char *value, struct sockaddr_in6 *sa,
			   unsigned *salen)
{
	int r = ctd_listen_parse_loopback(value, sa, salen);

	return r == 0 || r == -EADDRNOTAVAIL;
}

static int store(struct ctd_config *cfg, const struct setting *s,
		 const char *value, char *why, size_t whylen)
{
	void *field = (char *)cfg + s->off;
	struct sockaddr_in6 sa;
	unsigned salen;
	unsigned long long v;

	switch (s->type) {
	case T_BOOL:
		return parse_bool(value, field);
	case T_EVENTS:
		return parse_events(value, field);
	case T_FILTER:
		return check_filter(s, value, field, why, whylen);
	case T_CHOICE:
		return parse_choice(s, value, field);
	case T_LOOPBACK:
		if (strcmp(value, "none") != 0 && !listen_addr_ok(value, &sa, &salen))
			return -EINVAL;
		return store_text(s, value, field);
	case T_TARGET:
		return check_target(s, value, field, why, whylen);
	case T_PATH:
	case T_CONNINFO:
		return store_text(s, value, field);
	case T_OPTIONS:
		return add_option(value, field);
	default:
		break;
	}
	if (s->type == T_DURATION)
		return parse_duration(value, s, field);
	/* A value that defaults to something the system decides. */
	if (s->max == AUTO_OK && strcmp(value, "auto") == 0) {
		*(size_t *)field = CTD_CONFIG_AUTO;
		return 0;
	}
	if (parse_number(value, s->type == T_SIZE, &v) < 0 || v < s->min ||
	    v > upper(s))
		return -EINVAL;
	/* Its elements 1 and 2 would read as reverse octets and packets. */
	if (s->off == F(ipfix_pen) && v == CTD_IPFIX_PEN_REVERSE) {
		snprintf(why, whylen, "an enterprise number of your own "
			 "(29305 is RFC 5103's reverse elements)");
		return -EINVAL;
	}
	if (s->type == T_SIZE || s->type == T_COUNT)
		*(size_t *)field = (size_t)v;
	else
		*(unsigned *)field = (unsigned)v;
	return 0;
}

/* Text from the file or the command line, fit to quote in one log
 * line: bytes that are not printable ASCII as \xNN, and at most 64 of
 * them (a terminal or the journal must not get escapes from a config). */
static const char *quote(const char *text, char *buf, size_t cap)
{
	size_t n = 0;

	for (; *text && n + 8 < cap; text++) {
		unsigned char ch = (unsigned char)*text;

		if (n >= 64) {
			n += (size_t)snprintf(buf + n, cap - n, "...");
			break;
		}
		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			buf[n++] = (char)ch;
		else
			n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", ch);
	}
	buf[n] = '\0';
	return buf;
}

static int unknown(const char *key, char *err, size_t errlen)
{
	char qk[300];

	snprintf(err, errlen, "unknown setting '%s'", quote(key, qk, sizeof(qk)));
	return -ENOENT;
}

/* s gets value, set at line (CTD_CONFIG_CMDLINE: the command line). */
static int set_at(struct ctd_config *cfg, const struct setting *s,
		  const char *value, unsigned line, char *err, size_t errlen)
{
	char want[160], qv[300], masked[CTD_CONFIG_PATH_MAX];

	want[0] = '\0';
	if (store(cfg, s, value, want, sizeof(want)) == 0) {
		cfg->line[s - settings] = line;
		return 0;
	}
	if (!want[0])
		expected(s, want, sizeof(want));
	/* An error line must not carry the password either. */
	if (s->type == T_CONNINFO) {
		ctd_conninfo_mask(value, masked, sizeof(masked));
		value = masked;
	}
	snprintf(err, errlen, "%s: '%s' is not %s", s->key,
		 quote(value, qv, sizeof(qv)), want);
	return -EINVAL;
}

int ctd_config_set(struct ctd_config *cfg, const char *key, const char *value,
		   char *err, size_t errlen)
{
	const struct setting *s = find(key);

	if (!s)
		return unknown(key, err, errlen);
	return set_at(cfg, s, value, CTD_CONFIG_CMDLINE, err, errlen);
}

void ctd_config_where(const struct ctd_config *cfg, const char *key,
		      char *buf, size_t cap)
{
	const struct setting *s = find(key);
	unsigned line = s ? cfg->line[s - settings] : 0;

	if (line == CTD_CONFIG_CMDLINE)
		snprintf(buf, cap, "command line: --%s", key);
	else if (line)
		snprintf(buf, cap, "%s:%u: %s", cfg->file, line, key);
	else
		snprintf(buf, cap, "%s (default)", key);
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* A quoted value ("...") in place: \" and \\ are its only escapes
 * and nothing may follow the closing quote. Unquoted values stay as
 * written, inner blanks included. why says what is wrong. */
static int unquote(char *value, const char **why)
{
	char *out = value, *p = value + 1;

	if (*value != '"')
		return 0;
	for (; *p && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '"' && p[1] != '\\') {
			*why = "inside quotes only \\\" and \\\\ are escapes";
			return -EINVAL;
		}
		if (*p == '\\')
			p++;
		*out++ = *p;
	}
	if (!*p) {
		*why = "unterminated quote";
		return -EINVAL;
	}
	if (p[1]) {
		*why = "text after the closing quote";
		return -EINVAL;
	}
	*out = '\0';
	return 0;
}

/* A key the file set already: an error naming both lines, but a list
 * setting (kafka-option) adds one line each time. */
static int set_twice(const struct ctd_config *cfg, const struct setting *s,
		     unsigned lineno, char *err, size_t errlen)
{
	unsigned first = cfg->line[s - settings];

	if (s->type == T_OPTIONS || !first || first == CTD_CONFIG_CMDLINE)
		return 0;
	snprintf(err, errlen, "%s set twice: %s:%u and %s:%u", s->key,
		 cfg->file, first, cfg->file, lineno);
	return -EEXIST;
}

/* One line: blank, a comment, or `key value`; err gets the whole
 * message (file:line first). */
static int load_line(struct ctd_config *cfg, char *line, unsigned lineno,
		     char *err, size_t errlen)
{
	char *key = trim(line), *value, msg[CTD_CONFIG_ERR_MAX];
	const struct setting *s;
	const char *why = "missing value";
	int r;

	if (!*key || *key == '#')
		return 0;
	value = key + strcspn(key, " \t");
	if (*value)
		*value++ = '\0';
	value = trim(value);
	s = find(key);
	if (!s)
		r = unknown(key, msg, sizeof(msg));
	else if (!*value || unquote(value, &why) < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", key, why);
		r = -EINVAL;
	} else if (set_twice(cfg, s, lineno, err, errlen) < 0)
		return -EEXIST;
	else
		r = set_at(cfg, s, value, lineno, msg, sizeof(msg));
	if (r < 0)
		snprintf(err, errlen, "%s:%u: %s", cfg->file, lineno, msg);
	return r;
}

int ctd_config_load(struct ctd_config *cfg, const char *path, bool must_exist,
		    char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	int r;

	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = ctd_config_read(cfg, f, path, err, errlen);
	fclose(f);
	return r;
}

/* Reads one line of at most cap - 1 bytes into buf, without its
 * newline: 1, 0 at the end of the file, -EMSGSIZE for a longer line
 * (a `-c /dev/zero` must not eat the memory), -EBADMSG for a NUL or
 * another control character (*ret_bad: the byte), -EIO. */
static int read_line(FILE *f, char *buf, size_t cap, int *ret_bad)
{
	size_t n = 0;
	int ch;

	while ((ch = getc(f)) != EOF && ch != '\n') {
		if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f) {
			*ret_bad = ch;
			return -EBADMSG;
		}
		if (n + 1 >= cap)
			return -EMSGSIZE;
		buf[n++] = (char)ch;
	}
	buf[n] = '\0';
	if (ch == EOF && ferror(f))
		return -EIO;
	return ch == EOF && n == 0 ? 0 : 1;
}

static void bad_line(int r, int bad, char *msg, size_t cap)
{
	if (r == -EMSGSIZE)
		snprintf(msg, cap, "line longer than %d bytes",
			 CTD_CONFIG_LINE_MAX - 1);
	else if (r == -EBADMSG)
		snprintf(msg, cap, "control character \\x%02x (not a text "
			 "file?)", bad);
	else
		snprintf(msg, cap, "read error");
}

int ctd_config_read(struct ctd_config *cfg, FILE *f, const char *path,
		    char *err, size_t errlen)
{
	char line[CTD_CONFIG_LINE_MAX], msg[CTD_CONFIG_ERR_MAX];
	unsigned lineno = 0;
	int r, bad = 0;

	snprintf(cfg->file, sizeof(cfg->file), "%s", path);
	for (;;) {
		r = read_line(f, line, sizeof(line), &bad);
		if (r <= 0)
			break;
		lineno++;
		r = load_line(cfg, line, lineno, err, errlen);
		if (r < 0)
			return r;
	}
	if (r < 0) {
		bad_line(r, bad, msg, sizeof(msg));
		snprintf(err, errlen, "%s:%u: %s", path, lineno + 1, msg);
	}
	return r;
}

void ctd_config_finish(struct ctd_config *cfg)
{
	if (cfg->rcvbuf_max < cfg->rcvbuf)
		cfg->rcvbuf_max = cfg->rcvbuf;
}

static void format_events(unsigned mask, char *buf, size_t len)
{
	static const char *const names[CTD_EV__COUNT] = { "new", "update", "destroy" };

	buf[0] = '\0';
	for (unsigned i = 0; i < CTD_EV__COUNT; i++)
		if (mask & 1u << i)
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
				 buf[0] ? "," : "", names[i]);
}

/* Values of secrets (sasl.password, ssl.key.password, ...client.secret)
 * are not shown by ctd -t -v or a reload's log line. */
static bool secret_option(const char *line, size_t name_len)
{
	char name[CTD_CONFIG_PATH_MAX];

	snprintf(name, sizeof(name), "%.*s", (int)name_len, line);
	return strstr(name, "password") || strstr(name, "secret");
}

/* Option number i of a T_OPTIONS field ("NAME=VALUE", secrets hidden);
 * false past the last. */
static bool format_option(const char *field, size_t i, char *buf, size_t len)
{
	size_t n, name_len;

	for (; i && *field; i--)
		field += strcspn(field, "\n") + 1;
	if (!*field)
		return false;
	n = strcspn(field, "\n");
	name_len = strcspn(field, "=");
	if (secret_option(field, name_len))
		snprintf(buf, len, "%.*s=(hidden)", (int)name_len, field);
	else
		snprintf(buf, len, "%.*s", (int)n, field);
	return true;
}

/* A setting's value as the file would say it (of several options, the
 * first: the diff's line says which setting changed). */
static void format_value(const struct setting *s, const struct ctd_config *cfg,
			 char *buf, size_t len)
{
	const void *field = (const char *)cfg + s->off;

	switch (s->type) {
	case T_SIZE:
		if (*(const size_t *)field == CTD_CONFIG_AUTO)
			snprintf(buf, len, "auto");
		else
			human(*(const size_t *)field, buf, len);
		break;
	case T_COUNT:
		if (*(const size_t *)field == CTD_CONFIG_AUTO)
			snprintf(buf, len, "auto");
		else
			snprintf(buf, len, "%zu", *(const size_t *)field);
		break;
	case T_UINT:
	case T_SECS:
		snprintf(buf, len, "%u", *(const unsigned *)field);
		break;
	case T_DURATION:
		format_duration(*(const unsigned *)field, buf, len);
		break;
	case T_BOOL:
		snprintf(buf, len, "%s", *(const bool *)field ? "yes" : "no");
		break;
	case T_EVENTS:
		format_events(*(const unsigned *)field, buf, len);
		break;
	case T_CHOICE:
		snprintf(buf, len, "%s", choices[s->min][*(const unsigned *)field]);
		break;
	case T_PATH:
	case T_LOOPBACK:
	case T_TARGET:
		snprintf(buf, len, "%s",
			 *(const char *)field ? (const char *)field : "none");
		break;
	case T_FILTER:
		snprintf(buf, len, "%s", (const char *)field);
		break;
	case T_OPTIONS:
		if (!format_option(field, 0, buf, len))
			snprintf(buf, len, "none");
		break;
	case T_CONNINFO:
		if (*(const char *)field)
			ctd_conninfo_mask(field, buf, len);
		else
			snprintf(buf, len, "none");
		break;
	}
}

/* One `key value` line; a value with blanks or a leading quote is
 * quoted so that it reads back the same. */
static void write_line(FILE *f, const char *key, const char *value)
{
	fprintf(f, "%-23s ", key);
	if (!strpbrk(value, " \t") && *value != '"') {
		fprintf(f, "%s\n", value);
		return;
	}
	putc('"', f);
	for (; *value; value++) {
		if (*value == '"' || *value == '\\')
			putc('\\', f);
		putc(*value, f);
	}
	fputs("\"\n", f);
}

void ctd_config_write(const struct ctd_config *cfg, FILE *f)
{
	char value[CTD_CONFIG_PATH_MAX];

	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];

		format_value(s, cfg, value, sizeof(value));
		write_line(f, s->key, value);
		/* A list setting: one line per option. */
		for (size_t j = 1; s->type == T_OPTIONS &&
		     format_option((const char *)cfg + s->off, j, value,
				   sizeof(value)); j++)
			write_line(f, s->key, value);
	}
}

static bool same_value(const struct setting *s, const struct ctd_config *a,
		       const struct ctd_config *b)
{
	const void *fa = (const char *)a + s->off, *fb = (const char *)b + s->off;

	switch (s->type) {
	case T_SIZE:
	case T_COUNT:
		return *(const size_t *)fa == *(const size_t *)fb;
	case T_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case T_PATH:
	case T_LOOPBACK:
	case T_TARGET:
	case T_FILTER:
	case T_OPTIONS:
	case T_CONNINFO:
		return strcmp(fa, fb) == 0;
	default:
		return *(const unsigned *)fa == *(const unsigned *)fb;
	}
}

size_t ctd_config_diff(const struct ctd_config *old,
		       const struct ctd_config *next,
		       ctd_config_change_fn *fn, void *arg)
{
	char value[CTD_CONFIG_PATH_MAX];
	size_t n = 0;

	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];

		if (same_value(s, old, next))
			continue;
		n++;
		if (!fn)
			continue;
		format_value(s, next, value, sizeof(value));
		fn(arg, s->key, value, s->reload == LIVE);
	}
	return n;
}

struct ctd_filter *ctd_config_filter(const struct ctd_config *cfg)
{
	struct ctd_filter *f = ctd_filter_new();
	char err[160];

	for (size_t i = 0; f && i < CTD_FILTER__COUNT; i++)
		ctd_filter_set(f, (enum ctd_filter_key)i, cfg->filter[i], err,
			       sizeof(err));
	return f;
}
