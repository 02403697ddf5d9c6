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
#include "ctd/kernel/ctevent.h"

/* Short names for the rows below. */
#define T(x) CTD_SET_##x
#define S CTD_SETTING
#define RESTART false
#define LIVE true

enum { C_SUBSCRIBE, C_PRESSURE };

/* NULL-terminated word lists; a word's index is its stored value. */
static const char *const choices[][4] = {
	[C_SUBSCRIBE] = { "auto", "all", NULL },
	[C_PRESSURE] = { "fail-open", "hold", NULL },
};

#define F(field) offsetof(struct ctd_config, field)
/* max of a T(COUNT) or T(SIZE) that also takes "auto" (the bound is then
 * 10^8, or 1T for a size). */
#define AUTO_OK UINT64_MAX
#define AUTO_COUNT_MAX 100000000ULL
#define AUTO_SIZE_MAX (1ULL << 40)

/* ctd's own settings; the outputs' are in their groups (setting.h). */
static const struct ctd_setting settings[] = {
	S("spool-dir", T(PATH), F(spool_dir), 0, 0, true, RESTART),
	S("grace", T(SECS), F(grace), 1, 86400, false, RESTART),
	S("dying-max", T(COUNT), F(dying_max), 1, 10000000, false, RESTART),
	S("memory-max", T(SIZE), F(memory_max), 64u << 10, AUTO_OK, false, RESTART),
	S("shutdown-timeout", T(SECS), F(shutdown_timeout), 0, 86400, false, RESTART),
	S("control", T(PATH), F(control), 0, 0, true, RESTART),
	S("control-group", T(PATH), F(control_group), 0, 0, true, RESTART),
	S("metrics", T(LOOPBACK), F(metrics), 0, 0, true, RESTART),
	S("metrics-tls-cert", T(PATH), F(metrics_tls_cert), 0, 0, true, RESTART),
	S("metrics-tls-key", T(PATH), F(metrics_tls_key), 0, 0, true, RESTART),
	S("metrics-client-ca", T(PATH), F(metrics_client_ca), 0, 0, true, RESTART),
	S("user", T(PATH), F(user), 0, 0, true, RESTART),
	S("rcvbuf", T(SIZE), F(rcvbuf), 1024, 1ULL << 30, false, RESTART),
	S("rcvbuf-max", T(SIZE), F(rcvbuf_max), 1024, 1ULL << 30, false, RESTART),
	S("budget", T(UINT), F(budget), 1, 1000000, false, RESTART),
	S("broadcast-error", T(BOOL), F(broadcast_error), 0, 0, false, RESTART),
	S("resync", T(BOOL), F(resync), 0, 0, false, RESTART),
	S("kernel-pressure", T(CHOICE), F(kernel_pressure), 0, 0, false, RESTART, .words = choices[C_PRESSURE]),
	S("kernel-pressure-high", T(UINT), F(kernel_pressure_high), 2, 100, false, RESTART),
	S("kernel-pressure-low", T(UINT), F(kernel_pressure_low), 1, 99, false, RESTART),
	S("subscribe", T(CHOICE), F(subscribe), 0, 0, false, LIVE, .words = choices[C_SUBSCRIBE]),
	S("record-labels", T(BOOL), F(record_labels), 0, 0, false, LIVE),
	S("sysctl", T(BOOL), F(sysctl), 0, 0, false, RESTART),
	S("netns", T(PATH), F(netns), 0, 0, false, RESTART),
	S("max-flows", T(COUNT), F(max_flows), 0, 1ULL << 30, false, RESTART),
	S("remember-ends", T(COUNT), F(remember_ends), 0, AUTO_OK, false, RESTART),
	S("shards", T(COUNT), F(shards), 1, AUTO_OK, false, RESTART),
	S("expiry-slack", T(SECS), F(expiry_slack), 0, 86400, false, RESTART),
	S("check-interval", T(SECS), F(check_interval), 1, 86400, false, RESTART),
	S("pending-interval", T(SECS), F(pending_interval), 0, 86400, false, RESTART),
	S("active-timeout", T(SECS), F(active_timeout), 0, 86400, false, RESTART),
	S("record", T(PATH), F(record), 0, 0, true, RESTART),
	S("filter-proto", T(FILTER), F(filter[0]), CTD_FILTER_PROTO, 0, false, LIVE),
	S("filter-src", T(FILTER), F(filter[1]), CTD_FILTER_SRC, 0, false, LIVE),
	S("filter-dst", T(FILTER), F(filter[2]), CTD_FILTER_DST, 0, false, LIVE),
	S("ignore-src", T(FILTER), F(filter[3]), CTD_FILTER_IGNORE_SRC, 0, false, LIVE),
	S("ignore-dst", T(FILTER), F(filter[4]), CTD_FILTER_IGNORE_DST, 0, false, LIVE),
	S("filter-tcp-state", T(FILTER), F(filter[5]), CTD_FILTER_TCP_STATE, 0, false, LIVE),
	S("filter-zone", T(FILTER), F(filter[6]), CTD_FILTER_ZONE, 0, false, LIVE),
	S("filter-mark", T(FILTER), F(filter[7]), CTD_FILTER_MARK, 0, false, LIVE),
	S("filter-netns", T(FILTER), F(filter[8]), CTD_FILTER_NETNS, 0, false, LIVE),
	S("ignore-netns", T(FILTER), F(filter[9]), CTD_FILTER_IGNORE_NETNS, 0, false, LIVE),
};

_Static_assert(CTD_FILTER_PROTO == 0 && CTD_FILTER_MARK == 7 &&
	       CTD_FILTER_IGNORE_NETNS == 9 && CTD_FILTER__COUNT == 10, "filter settings follow the enum");

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* A setting of a configuration: its row, where its value is (its
 * struct's offset in struct ctd_config) and its origin's slot. */
struct slot {
	const struct ctd_setting *s;
	size_t base;
	size_t index;
};

static void *field_of(const struct ctd_config *cfg, const struct slot *sl)
{
	return (char *)cfg + sl->base + sl->s->off;
}

/* Setting number i: ctd's own first, then each group's rows. */
static bool slot_at(const struct ctd_config *cfg, size_t i, struct slot *ret)
{
	size_t at = i;

	if (at < N_SETTINGS) {
		*ret = (struct slot){ &settings[at], 0, i };
		return true;
	}
	at -= N_SETTINGS;
	for (size_t g = 0; cfg->groups && cfg->groups[g]; g++) {
		if (at < cfg->groups[g]->n_rows) {
			*ret = (struct slot){ &cfg->groups[g]->rows[at],
					      F(group_data) + cfg->group_off[g], i };
			return true;
		}
		at -= cfg->groups[g]->n_rows;
	}
	return false;
}

static bool lookup(const struct ctd_config *cfg, const char *key,
		   struct slot *ret)
{
	for (size_t i = 0; slot_at(cfg, i, ret); i++)
		if (strcmp(ret->s->key, key) == 0)
			return true;
	return false;
}

void ctd_config_defaults(struct ctd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->spool_dir, "/var/lib/ctd");
	strcpy(cfg->control, CTD_CONFIG_DEFAULT_CONTROL);
	cfg->rcvbuf = 8u << 20;
	cfg->rcvbuf_max = 64u << 20;
	cfg->max_flows = 0;
	cfg->remember_ends = CTD_CONFIG_AUTO;
	cfg->shards = 1;
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
	cfg->broadcast_error = true;
	cfg->resync = true;
	cfg->sysctl = true;
	for (size_t i = 0; i < CTD_FILTER__COUNT; i++)
		strcpy(cfg->filter[i], "any");
	strcpy(cfg->netns, "self");
}

static int store(struct ctd_config *cfg, const struct slot *sl,
		 const char *value, char *why, size_t whylen);

/* Each group's struct at the next 16-byte boundary, its rows at their
 * defaults. A group that does not fit is a build mistake: abort. */
static void lay_out(struct ctd_config *cfg)
{
	size_t at = 0, g, i;
	struct slot sl;
	char why[160];

	for (g = 0; cfg->groups[g]; g++) {
		if (g >= CTD_CONFIG_GROUPS ||
		    at + cfg->groups[g]->size > CTD_CONFIG_GROUP_BYTES)
			abort();
		cfg->group_off[g] = (unsigned)at;
		at = (at + cfg->groups[g]->size + 15) & ~(size_t)15;
	}
	for (i = N_SETTINGS; slot_at(cfg, i, &sl); i++)
		if (i >= CTD_CONFIG_SETTINGS ||
		    (sl.s->def && store(cfg, &sl, sl.s->def, why, sizeof(why)) < 0))
			abort();
}

void ctd_config_init(struct ctd_config *cfg,
		     const struct ctd_setting_group *const *groups)
{
	ctd_config_defaults(cfg);
	cfg->groups = groups;
	if (groups)
		lay_out(cfg);
}

const void *ctd_config_group_get(const struct ctd_config *cfg,
				 const struct ctd_setting_group *g)
{
	for (size_t i = 0; cfg->groups && cfg->groups[i]; i++)
		if (cfg->groups[i] == g)
			return cfg->group_data + cfg->group_off[i];
	return NULL;
}

bool ctd_config_has(const struct ctd_config *cfg, const char *key)
{
	struct slot sl;

	return lookup(cfg, key, &sl);
}

void ctd_config_keys(const struct ctd_setting_group *const *groups,
		     void (*fn)(void *arg, const struct ctd_setting *s),
		     void *arg)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		fn(arg, &settings[i]);
	for (size_t g = 0; groups && groups[g]; g++)
		for (size_t i = 0; i < groups[g]->n_rows; i++)
			fn(arg, &groups[g]->rows[i]);
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

static int parse_duration(const char *value, const struct ctd_setting *s,
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
static unsigned long long upper(const struct ctd_setting *s)
{
	if (s->max != AUTO_OK)
		return s->max;
	return s->type == T(SIZE) ? AUTO_SIZE_MAX : AUTO_COUNT_MAX;
}

static void expected(const struct ctd_setting *s, char *buf, size_t len)
{
	char lo[32], hi[32];

	switch (s->type) {
	case T(SIZE):
		human(s->min, lo, sizeof(lo));
		human(upper(s), hi, sizeof(hi));
		snprintf(buf, len, "%sa size from %s to %s (k, M, G suffixes)",
			 s->max == AUTO_OK ? "auto or " : "", lo, hi);
		break;
	case T(COUNT):
	case T(UINT):
		if (s->max == AUTO_OK)
			snprintf(buf, len, "auto or a number from %llu to "
				 "100000000", s->min);
		else
			snprintf(buf, len, "a number from %llu to %llu", s->min,
				 s->max);
		break;
	case T(SECS):
		snprintf(buf, len, "seconds from %llu to %llu", s->min, s->max);
		break;
	case T(DURATION):
		snprintf(buf, len, "a time from 1m to 3650d (a number with "
			 "s, m, h or d)");
		break;
	case T(BOOL):
		snprintf(buf, len, "yes or no");
		break;
	case T(EVENTS):
		snprintf(buf, len, "a comma-separated list of new, update, destroy");
		break;
	case T(PATH):
		snprintf(buf, len, "a path%s", s->none_ok ? " or none" : "");
		break;
	case T(LOOPBACK):
		snprintf(buf, len, "a loopback address and port "
			 "(127.0.0.1:9477, [::1]:9477) or none");
		break;
	case T(FILTER):
		break;
	case T(CHOICE):
		snprintf(buf, len, "one of:");
		for (size_t i = 0; s->words[i]; i++)
			snprintf(buf + strlen(buf), len - strlen(buf), " %s",
				 s->words[i]);
		break;
	case T(OPTIONS):
		snprintf(buf, len, "NAME=VALUE (at most %llu, each under %d bytes) "
			 "or none", s->min, CTD_CONFIG_PATH_MAX);
		break;
	case T(CONNINFO):
		snprintf(buf, len, "a libpq connection string or none");
		break;
	}
}

static int parse_choice(const struct ctd_setting *s, const char *value,
			unsigned *ret)
{
	for (unsigned i = 0; s->words[i]; i++) {
		if (strcmp(value, s->words[i]) == 0) {
			*ret = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Stores the text only if it compiles; why says what was wanted. */
static int check_filter(const struct ctd_setting *s, const char *value,
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

static int store_text(const struct ctd_setting *s, const char *value, char *field)
{
	if (!*value || strlen(value) >= CTD_CONFIG_PATH_MAX)
		return -EINVAL;
	strcpy(field, s->none_ok && strcmp(value, "none") == 0 ? "" : value);
	return 0;
}

/* One more NAME=VALUE line; "none" forgets the earlier ones. */
static int add_option(const struct ctd_setting *s, const char *value,
		      char *field)
{
	size_t have = strlen(field), n = strlen(value), lines = 0;

	if (strcmp(value, "none") == 0) {
		field[0] = '\0';
		return 0;
	}
	for (const char *p = field; (p = strchr(p, '\n')); p++)
		lines++;
	if (!strchr(value, '=') || value[0] == '=' ||
	    n >= CTD_CONFIG_PATH_MAX || lines >= s->min || have + n + 2 > s->max)
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

/* Numbers: a plain one, a size, or auto where the row allows it. */
static int store_number(const struct ctd_setting *s, const char *value,
			void *field)
{
	unsigned long long v;

	if (s->type == T(DURATION))
		return parse_duration(value, s, field);
	/* A value that defaults to something the system decides. */
	if (s->max == AUTO_OK && strcmp(value, "auto") == 0) {
		*(size_t *)field = CTD_CONFIG_AUTO;
		return 0;
	}
	if (parse_number(value, s->type == T(SIZE), &v) < 0 || v < s->min ||
	    v > upper(s))
		return -EINVAL;
	if (s->type == T(SIZE) || s->type == T(COUNT))
		*(size_t *)field = (size_t)v;
	else
		*(unsigned *)field = (unsigned)v;
	return 0;
}

static int store_value(const struct ctd_setting *s, const char *value,
		       void *field, char *why, size_t whylen)
{
	struct sockaddr_in6 sa;
	unsigned salen;

	switch (s->type) {
	case T(BOOL):
		return parse_bool(value, field);
	case T(EVENTS):
		return parse_events(value, field);
	case T(FILTER):
		return check_filter(s, value, field, why, whylen);
	case T(CHOICE):
		return parse_choice(s, value, field);
	case T(LOOPBACK):
		if (strcmp(value, "none") != 0 && !listen_addr_ok(value, &sa, &salen))
			return -EINVAL;
		return store_text(s, value, field);
	case T(PATH):
	case T(CONNINFO):
		return store_text(s, value, field);
	case T(OPTIONS):
		return add_option(s, value, field);
	default:
		return store_number(s, value, field);
	}
}

/* The row's own check first (an IPFIX target, an enterprise number),
 * then the type's parser. */
static int store(struct ctd_config *cfg, const struct slot *sl,
		 const char *value, char *why, size_t whylen)
{
	const struct ctd_setting *s = sl->s;

	if (s->check && !(s->none_ok && strcmp(value, "none") == 0) &&
	    s->check(value, why, whylen) < 0)
		return -EINVAL;
	return store_value(s, value, field_of(cfg, sl), why, whylen);
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
static int set_at(struct ctd_config *cfg, const struct slot *sl,
		  const char *value, unsigned line, char *err, size_t errlen)
{
	char want[160], qv[300], masked[CTD_CONFIG_PATH_MAX];
	const struct ctd_setting *s = sl->s;

	want[0] = '\0';
	if (store(cfg, sl, value, want, sizeof(want)) == 0) {
		cfg->line[sl->index] = line;
		return 0;
	}
	if (!want[0])
		expected(s, want, sizeof(want));
	/* An error line must not carry the password either. */
	if (s->type == T(CONNINFO)) {
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
	struct slot sl;

	if (!lookup(cfg, key, &sl))
		return unknown(key, err, errlen);
	return set_at(cfg, &sl, value, CTD_CONFIG_CMDLINE, err, errlen);
}

void ctd_config_where(const struct ctd_config *cfg, const char *key,
		      char *buf, size_t cap)
{
	struct slot sl;
	unsigned line = lookup(cfg, key, &sl) ? cfg->line[sl.index] : 0;

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
 * setting (an OPTIONS row) adds one line each time. */
static int set_twice(const struct ctd_config *cfg, const struct slot *sl,
		     unsigned lineno, char *err, size_t errlen)
{
	const struct ctd_setting *s = sl->s;
	unsigned first = cfg->line[sl->index];

	if (s->type == T(OPTIONS) || !first || first == CTD_CONFIG_CMDLINE)
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
	struct slot sl;
	const char *why = "missing value";
	int r;

	if (!*key || *key == '#')
		return 0;
	value = key + strcspn(key, " \t");
	if (*value)
		*value++ = '\0';
	value = trim(value);
	if (!lookup(cfg, key, &sl))
		r = unknown(key, msg, sizeof(msg));
	else if (!*value || unquote(value, &why) < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", key, why);
		r = -EINVAL;
	} else if (set_twice(cfg, &sl, lineno, err, errlen) < 0)
		return -EEXIST;
	else
		r = set_at(cfg, &sl, value, lineno, msg, sizeof(msg));
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

/* Option number i of a T(OPTIONS) field ("NAME=VALUE", secrets hidden);
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
static void format_value(const struct slot *sl, const struct ctd_config *cfg,
			 char *buf, size_t len)
{
	const struct ctd_setting *s = sl->s;
	const void *field = field_of(cfg, sl);

	switch (s->type) {
	case T(SIZE):
		if (*(const size_t *)field == CTD_CONFIG_AUTO)
			snprintf(buf, len, "auto");
		else
			human(*(const size_t *)field, buf, len);
		break;
	case T(COUNT):
		if (*(const size_t *)field == CTD_CONFIG_AUTO)
			snprintf(buf, len, "auto");
		else
			snprintf(buf, len, "%zu", *(const size_t *)field);
		break;
	case T(UINT):
	case T(SECS):
		snprintf(buf, len, "%u", *(const unsigned *)field);
		break;
	case T(DURATION):
		format_duration(*(const unsigned *)field, buf, len);
		break;
	case T(BOOL):
		snprintf(buf, len, "%s", *(const bool *)field ? "yes" : "no");
		break;
	case T(EVENTS):
		format_events(*(const unsigned *)field, buf, len);
		break;
	case T(CHOICE):
		snprintf(buf, len, "%s", s->words[*(const unsigned *)field]);
		break;
	case T(PATH):
	case T(LOOPBACK):
		snprintf(buf, len, "%s",
			 *(const char *)field ? (const char *)field : "none");
		break;
	case T(FILTER):
		snprintf(buf, len, "%s", (const char *)field);
		break;
	case T(OPTIONS):
		if (!format_option(field, 0, buf, len))
			snprintf(buf, len, "none");
		break;
	case T(CONNINFO):
		if (*(const char *)field)
			ctd_conninfo_mask(field, buf, len);
		else
			snprintf(buf, len, "none");
		break;
	}
}

int ctd_config_get(const struct ctd_config *cfg, const char *key,
		   char *buf, size_t len)
{
	struct slot sl;

	if (!lookup(cfg, key, &sl))
		return -ENOENT;
	format_value(&sl, cfg, buf, len);
	return 0;
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

	struct slot sl;

	for (size_t i = 0; slot_at(cfg, i, &sl); i++) {
		format_value(&sl, cfg, value, sizeof(value));
		write_line(f, sl.s->key, value);
		/* A list setting: one line per option. */
		for (size_t j = 1; sl.s->type == T(OPTIONS) &&
		     format_option(field_of(cfg, &sl), j, value,
				   sizeof(value)); j++)
			write_line(f, sl.s->key, value);
	}
}

static bool same_value(const struct slot *sl, const struct ctd_config *a,
		       const struct ctd_config *b)
{
	const void *fa = field_of(a, sl), *fb = field_of(b, sl);

	switch (sl->s->type) {
	case T(SIZE):
	case T(COUNT):
		return *(const size_t *)fa == *(const size_t *)fb;
	case T(BOOL):
		return *(const bool *)fa == *(const bool *)fb;
	case T(PATH):
	case T(LOOPBACK):
	case T(FILTER):
	case T(OPTIONS):
	case T(CONNINFO):
		return strcmp(fa, fb) == 0;
	default:
		return *(const unsigned *)fa == *(const unsigned *)fb;
	}
}

/* A reload's next configuration is read with the same groups, so a
 * setting's slot is the same in both. */
size_t ctd_config_diff(const struct ctd_config *old,
		       const struct ctd_config *next,
		       ctd_config_change_fn *fn, void *arg)
{
	char value[CTD_CONFIG_PATH_MAX];
	struct slot sl;
	size_t n = 0;

	for (size_t i = 0; slot_at(next, i, &sl); i++) {
		if (same_value(&sl, old, next))
			continue;
		n++;
		if (!fn)
			continue;
		format_value(&sl, next, value, sizeof(value));
		fn(arg, sl.s->key, value, sl.s->live);
	}
	return n;
}

/* A field's bytes, for copying it whole. */
static size_t field_size(const struct ctd_setting *s)
{
	switch (s->type) {
	case T(SIZE):
	case T(COUNT):
		return sizeof(size_t);
	case T(BOOL):
		return sizeof(bool);
	case T(PATH):
	case T(LOOPBACK):
	case T(FILTER):
	case T(CONNINFO):
		return CTD_CONFIG_PATH_MAX;
	case T(OPTIONS):
		return (size_t)s->max;
	default:
		return sizeof(unsigned);
	}
}

void ctd_config_take_live(struct ctd_config *cfg,
			  const struct ctd_config *next)
{
	struct slot sl;

	for (size_t i = 0; slot_at(next, i, &sl); i++)
		if (sl.s->live)
			memcpy(field_of(cfg, &sl), field_of(next, &sl),
			       field_size(sl.s));
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
