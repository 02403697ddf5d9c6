/* Tests for src/config.c and src/cli.c: defaults, every key with a good
 * and a bad value and the message naming what was expected, unknown
 * keys, file:line errors, comments, missing files, the file/command-line
 * precedence, that `ctd -t -v` output reads back to the same config, and
 * the diff a reload uses: every setting, its value and whether it is live. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctd/config/cli.h"
#include "ctd/config/config.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/outputs.h"

static char err[CTD_CONFIG_ERR_MAX];

/* ctd's own settings and every output's, at their defaults. */
static void init(struct ctd_config *c)
{
	ctd_config_init(c, ctd_output_settings);
}

/* A setting's value as the file would say it (of a list, the first). */
static const char *V(const struct ctd_config *c, const char *key)
{
	static char buf[CTD_CONFIG_PATH_MAX];

	if (ctd_config_get(c, key, buf, sizeof(buf)) < 0)
		fail_msg("no setting %s", key);
	return buf;
}

static void set_ok(struct ctd_config *c, const char *key, const char *value)
{
	int r = ctd_config_set(c, key, value, err, sizeof(err));

	if (r != 0)
		fail_msg("%s %s: %s", key, value, err);
}

static void set_bad(const char *key, const char *value, const char *msg)
{
	struct ctd_config c;

	init(&c);
	assert_int_equal(ctd_config_set(&c, key, value, err, sizeof(err)), -EINVAL);
	if (strcmp(err, msg) != 0)
		fail_msg("%s %s:\n got  %s\n want %s", key, value, err, msg);
}

static void test_defaults(void **state)
{
	struct ctd_config c;

	(void)state;
	init(&c);
	assert_string_equal(V(&c, "output"), "/var/log/ctd/flows.json");
	assert_string_equal(c.spool_dir, "/var/lib/ctd");
	assert_string_equal(c.control, "/run/ctd/ctd.sock");
	assert_string_equal(V(&c, "stream"), "none");
	assert_int_equal(c.rcvbuf, 8u << 20);
	assert_int_equal(c.rcvbuf_max, 64u << 20);
	assert_int_equal(c.memory_max, CTD_CONFIG_AUTO);
	assert_int_equal(c.budget, 4096);
	assert_int_equal(c.grace, 15);
	assert_string_equal(V(&c, "json-events"), "destroy");
	assert_true(c.broadcast_error && c.resync && c.sysctl);
}

static void test_every_key(void **state)
{
	struct ctd_config c;

	(void)state;
	init(&c);
	set_ok(&c, "output", "/tmp/x.json");
	assert_string_equal(V(&c, "output"), "/tmp/x.json");
	set_ok(&c, "output", "none");
	assert_string_equal(V(&c, "output"), "none");
	set_ok(&c, "json-events", "new,destroy");
	assert_string_equal(V(&c, "json-events"), "new,destroy");
	set_ok(&c, "stream", "/run/ctd/stream.sock");
	assert_string_equal(V(&c, "stream"), "/run/ctd/stream.sock");
	set_ok(&c, "stream-events", "update");
	assert_string_equal(V(&c, "stream-events"), "update");
	set_ok(&c, "spool-dir", "none");
	assert_string_equal(c.spool_dir, "");
	set_ok(&c, "grace", "30");
	assert_int_equal(c.grace, 30);
	set_ok(&c, "dying-max", "5");
	assert_int_equal(c.dying_max, 5);
	set_ok(&c, "shutdown-timeout", "0");
	assert_int_equal(c.shutdown_timeout, 0);
	set_ok(&c, "control", "/tmp/ctl");
	assert_string_equal(c.control, "/tmp/ctl");
	set_ok(&c, "control-group", "adm");
	assert_string_equal(c.control_group, "adm");
	set_ok(&c, "control-group", "none");
	assert_string_equal(c.control_group, "");
	set_ok(&c, "rcvbuf", "2k");
	assert_int_equal(c.rcvbuf, 2048);
	set_ok(&c, "rcvbuf-max", "1G");
	assert_int_equal(c.rcvbuf_max, 1u << 30);
	set_ok(&c, "memory-max", "48M");
	assert_int_equal(c.memory_max, 48u << 20);
	set_ok(&c, "memory-max", "auto");
	assert_int_equal(c.memory_max, CTD_CONFIG_AUTO);
	set_ok(&c, "budget", "64");
	assert_int_equal(c.budget, 64);
	set_ok(&c, "broadcast-error", "no");
	set_ok(&c, "resync", "off");
	set_ok(&c, "sysctl", "false");
	assert_false(c.broadcast_error || c.resync || c.sysctl);
	set_ok(&c, "sysctl", "yes");
	assert_true(c.sysctl);
	set_ok(&c, "max-flows", "1000");
	assert_int_equal(c.max_flows, 1000);
	set_ok(&c, "remember-ends", "0");
	assert_int_equal(c.remember_ends, 0);
	set_ok(&c, "expiry-slack", "0");
	set_ok(&c, "check-interval", "1");
	set_ok(&c, "pending-interval", "0");
	set_ok(&c, "active-timeout", "60");
	assert_int_equal(c.active_timeout, 60);
	set_ok(&c, "metrics", "127.0.0.1:9477");
	assert_string_equal(c.metrics, "127.0.0.1:9477");
	set_ok(&c, "metrics", "[::1]:9100");
	set_ok(&c, "metrics", "none");
	/* Other addresses parse; cfgcheck wants HTTPS for them. */
	set_ok(&c, "metrics", "0.0.0.0:9477");
	set_ok(&c, "metrics", "[2001:db8::1]:80");
	set_ok(&c, "metrics", "none");
	assert_string_equal(c.metrics, "");
	set_ok(&c, "filter-proto", "tcp,udp");
	assert_string_equal(c.filter[CTD_FILTER_PROTO], "tcp,udp");
	set_ok(&c, "filter-src", "10.0.0.0/8");
	set_ok(&c, "filter-dst", "::1");
	set_ok(&c, "ignore-src", "192.0.2.0/24");
	set_ok(&c, "ignore-dst", "2001:db8::/32");
	set_ok(&c, "filter-tcp-state", "ESTABLISHED");
	set_ok(&c, "filter-zone", "3");
	set_ok(&c, "filter-mark", "0x10/0xf0");
	assert_string_equal(c.filter[CTD_FILTER_MARK], "0x10/0xf0");
	set_ok(&c, "record", "/tmp/rec.nl");
	assert_string_equal(c.record, "/tmp/rec.nl");
}

static char *written(const struct ctd_config *c);

/* kafka-option adds one line per use, none forgets them, each is
 * NAME=VALUE, the list is bounded, and ctd -t -v shows every one on its
 * own line but never a password's value. */
static void test_kafka_options(void **state)
{
	struct ctd_config c;
	char *text, opt[32];

	(void)state;
	init(&c);
	assert_string_equal(V(&c, "kafka-topic"), "ctd-flows");
	assert_string_equal(V(&c, "kafka-key"), "tuple");
	assert_string_equal(V(&c, "kafka-events"), "destroy");
	set_ok(&c, "kafka", "10.0.0.1:9092,10.0.0.2:9092");
	set_ok(&c, "kafka-key", "none");
	assert_string_equal(V(&c, "kafka-key"), "none");
	set_ok(&c, "kafka-option", "compression.codec=zstd");
	set_ok(&c, "kafka-option", "sasl.password=s3cret=x");
	text = written(&c);
	assert_non_null(strstr(text, "kafka-option            compression.codec=zstd\n"
			       "kafka-option            sasl.password=(hidden)\n"));
	assert_null(strstr(text, "s3cret"));
	free(text);
	set_ok(&c, "kafka-option", "none");
	assert_string_equal(V(&c, "kafka-option"), "none");
	set_bad("kafka-option", "linger.ms",
		"kafka-option: 'linger.ms' is not NAME=VALUE (at most 32, each "
		"under 1024 bytes) or none");
	set_bad("kafka-option", "=5", "kafka-option: '=5' is not NAME=VALUE "
		"(at most 32, each under 1024 bytes) or none");
	set_bad("kafka-key", "value", "kafka-key: 'value' is not one of: tuple none");
	for (int i = 0; i < 32; i++) {
		snprintf(opt, sizeof(opt), "o%d=%d", i, i);
		set_ok(&c, "kafka-option", opt);
	}
	assert_int_equal(ctd_config_set(&c, "kafka-option", "one=more", err,
					sizeof(err)), -EINVAL);
}

static void test_bad_values(void **state)
{
	(void)state;
	set_bad("rcvbuf", "abc", "rcvbuf: 'abc' is not a size from 1k to 1G (k, M, G suffixes)");
	set_bad("rcvbuf", "512", "rcvbuf: '512' is not a size from 1k to 1G (k, M, G suffixes)");
	set_bad("rcvbuf", "2T", "rcvbuf: '2T' is not a size from 1k to 1G (k, M, G suffixes)");
	set_bad("rcvbuf", "-1", "rcvbuf: '-1' is not a size from 1k to 1G (k, M, G suffixes)");
	set_bad("memory-max", "32k", "memory-max: '32k' is not auto or a size "
		"from 64k to 1024G (k, M, G suffixes)");
	set_bad("budget", "0", "budget: '0' is not a number from 1 to 1000000");
	set_bad("ipfix-pen", "29305", "ipfix-pen: '29305' is not an enterprise number of your own (29305 is RFC 5103's reverse elements)");
	set_bad("budget", "1k", "budget: '1k' is not a number from 1 to 1000000");
	set_bad("grace", "0", "grace: '0' is not seconds from 1 to 86400");
	set_bad("check-interval", "86401", "check-interval: '86401' is not seconds from 1 to 86400");
	set_bad("dying-max", "99999999", "dying-max: '99999999' is not a number from 1 to 10000000");
	set_bad("max-flows", "99999999999", "max-flows: '99999999999' is not a number from 0 to 1073741824");
	set_bad("resync", "maybe", "resync: 'maybe' is not yes or no");
	set_bad("json-events", "new,close", "json-events: 'new,close' is not a comma-separated list of new, update, destroy");
	set_bad("json-events", ",", "json-events: ',' is not a comma-separated list of new, update, destroy");
	set_bad("metrics", "127.0.0.1", "metrics: '127.0.0.1' is not a "
		"loopback address and port (127.0.0.1:9477, [::1]:9477) or none");
	set_bad("filter-src", "10.0.0.0/33", "filter-src: '10.0.0.0/33' is not "
		"up to 64 prefixes (10.0.0.0/8,2001:db8::/32) or any");
	set_bad("filter-tcp-state", "OPEN", "filter-tcp-state: 'OPEN' is not "
		"TCP states (ESTABLISHED,TIME_WAIT,CLOSE,...) or any");
	set_bad("budget", "99999999999999999999999", "budget: '99999999999999999999999' is not a number from 1 to 1000000");
}

static void test_unknown_key(void **state)
{
	struct ctd_config c;

	(void)state;
	init(&c);
	assert_int_equal(ctd_config_set(&c, "rcvbuff", "8M", err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "unknown setting 'rcvbuff'");
	assert_true(ctd_config_has(&c, "grace"));
	assert_true(ctd_config_has(&c, "kafka-topic"));
	assert_false(ctd_config_has(&c, "verbose"));
}

static const char *write_file(const char *text)
{
	static char path[64];
	FILE *f;

	strcpy(path, "/tmp/ctd-conf-XXXXXX");
	assert_true(mkstemp(path) >= 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_file(void **state)
{
	struct ctd_config c;
	const char *p;

	(void)state;
	init(&c);
	p = write_file("# a comment\n\n  rcvbuf   16M  \n\tgrace 20\n"
		       "output /var/log/flows.json\n");
	assert_int_equal(ctd_config_load(&c, p, true, err, sizeof(err)), 0);
	assert_int_equal(c.rcvbuf, 16u << 20);
	assert_int_equal(c.grace, 20);
	assert_string_equal(V(&c, "output"), "/var/log/flows.json");
	unlink(p);

	init(&c);
	p = write_file("grace 20\n\nbudget none\n");
	assert_int_equal(ctd_config_load(&c, p, true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":3: budget: 'none' is not a number from 1 to 1000000"));
	assert_int_equal(strncmp(err, p, strlen(p)), 0);
	unlink(p);

	init(&c);
	p = write_file("grace\n");
	assert_int_equal(ctd_config_load(&c, p, true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1: grace: missing value"));
	unlink(p);

	p = write_file("colour blue\n");
	assert_int_equal(ctd_config_load(&c, p, true, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, ":1: unknown setting 'colour'"));
	unlink(p);

	assert_int_equal(ctd_config_load(&c, "/nonexistent/ctd.conf", false,
					 err, sizeof(err)), 0);
	assert_int_equal(ctd_config_load(&c, "/nonexistent/ctd.conf", true,
					 err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/ctd.conf: No such file or directory");
}

/* Hostile or broken input: one error line, bounded memory, nothing in
 * the message a terminal would act on. */
static void test_bad_bytes(void **state)
{
	struct ctd_config c;
	char long_line[CTD_CONFIG_LINE_MAX + 16];
	const char *p;

	(void)state;
	init(&c);
	assert_int_equal(ctd_config_load(&c, "/dev/zero", true, err,
					 sizeof(err)), -EBADMSG);
	assert_string_equal(err, "/dev/zero:1: control character \\x00 (not a "
			    "text file?)");

	memset(long_line, 'a', sizeof(long_line) - 2);
	long_line[sizeof(long_line) - 2] = '\n';
	long_line[sizeof(long_line) - 1] = '\0';
	memcpy(long_line, "grace ", 6);
	p = write_file(long_line);
	assert_int_equal(ctd_config_load(&c, p, true, err, sizeof(err)), -EMSGSIZE);
	assert_non_null(strstr(err, ":1: line longer than 4095 bytes"));
	unlink(p);

	p = write_file("grace 20\noutput /tmp/a\033[2Jb\n");
	assert_int_equal(ctd_config_load(&c, p, true, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, ":2: control character \\x1b"));
	unlink(p);

	/* From the command line a value may hold anything: quoted escaped. */
	assert_int_equal(ctd_config_set(&c, "grace", "1\033]0;pwned\a", err,
					sizeof(err)), -EINVAL);
	assert_string_equal(err, "grace: '1\\x1b]0;pwned\\x07' is not seconds "
			    "from 1 to 86400");
}

static void test_written_config_reads_back(void **state)
{
	struct ctd_config a, b;
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);
	const char *p;

	(void)state;
	init(&a);
	set_ok(&a, "stream", "/tmp/s.sock");
	set_ok(&a, "json-events", "new,update,destroy");
	set_ok(&a, "rcvbuf", "3000");
	set_ok(&a, "resync", "no");
	set_ok(&a, "kafka-option", "linger.ms=20");
	set_ok(&a, "kafka-option", "compression.codec=lz4");
	set_ok(&a, "output", "/tmp/a b \"q\" \\x.json");
	set_ok(&a, "conntrackd-log", "\"lead");
	ctd_config_write(&a, f);
	fclose(f);
	p = write_file(text);
	init(&b);
	assert_int_equal(ctd_config_load(&b, p, true, err, sizeof(err)), 0);
	/* Every setting; only where each was set differs. */
	assert_memory_equal(&a, &b, offsetof(struct ctd_config, line));
	assert_non_null(strstr(text, "\"/tmp/a b \\\"q\\\" \\\\x.json\"\n"));
	unlink(p);
	free(text);
}

/* What ctd_config_diff reported, one "key=value live|restart" per line. */
struct changes {
	char text[4096];
};

static void note_change(void *arg, const char *key, const char *value,
			bool live)
{
	struct changes *ch = arg;
	size_t n = strlen(ch->text);

	snprintf(ch->text + n, sizeof(ch->text) - n, "%s=%s %s\n", key, value,
		 live ? "live" : "restart");
}

static void test_diff(void **state)
{
	struct ctd_config a, b;
	struct changes ch = { "" };

	(void)state;
	init(&a);
	init(&b);
	assert_int_equal(ctd_config_diff(&a, &b, note_change, &ch), 0);
	assert_string_equal(ch.text, "");
	set_ok(&b, "filter-proto", "tcp");
	set_ok(&b, "rcvbuf", "16M");
	set_ok(&b, "output", "/tmp/x.json");
	set_ok(&b, "ignore-dst", "192.0.2.0/24");
	set_ok(&b, "stream-events", "new,destroy");
	set_ok(&b, "syslog", "yes");
	set_ok(&b, "spool-dir", "none");
	/* Set to what it was: no change. */
	set_ok(&b, "grace", "15");
	assert_int_equal(ctd_config_diff(&a, &b, note_change, &ch), 7);
	assert_string_equal(ch.text,
			    "spool-dir=none restart\n"
			    "rcvbuf=16M restart\n"
			    "filter-proto=tcp live\n"
			    "ignore-dst=192.0.2.0/24 live\n"
			    "output=/tmp/x.json live\n"
			    "stream-events=new,destroy restart\n"
			    "syslog=yes restart\n");
	assert_int_equal(ctd_config_diff(&b, &a, NULL, NULL), 7);
}

/* What `ctd -t -v` prints for c; the caller frees it. */
static char *written(const struct ctd_config *c)
{
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	ctd_config_write(c, f);
	fclose(f);
	return text;
}

/* Every setting alone, changed to the first value it takes that differs:
 * the diff names exactly it, with the line `ctd -t -v` writes for it, and
 * only output, conntrackd-log, subscribe, record-labels and the filter-*
 * and ignore-* criteria are live (what the reload handler applies). */
static void test_diff_every_setting(void **state)
{
	static const char *const values[] = {
		"2", "/tmp/x", "yes", "no", "new", "uniflow", "legacy", "kern",
		"debug", "rfc5424", "udp:127.0.0.1:9", "127.0.0.1:9", "tcp",
		"2d", "2000", "600", "10.0.0.0/8", "ESTABLISHED", "none", "linger.ms=5", "all", "hold",
		"64M",
	};
	struct ctd_config a, b;
	char *text, *key, *save, *line;
	size_t keys = 0;

	(void)state;
	init(&a);
	text = written(&a);
	for (key = strtok_r(text, "\n", &save); key;
	     key = strtok_r(NULL, "\n", &save), keys++) {
		struct changes ch = { "" };
		char want[CTD_CONFIG_PATH_MAX + 64], *sp = strchr(key, ' ');
		size_t i;

		*sp = '\0';
		for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
			b = a;
			if (ctd_config_set(&b, key, values[i], err, sizeof(err)) == 0 &&
			    ctd_config_diff(&a, &b, NULL, NULL))
				break;
		}
		if (i == sizeof(values) / sizeof(values[0]))
			fail_msg("no value changes %s", key);
		assert_int_equal(ctd_config_diff(&a, &b, note_change, &ch), 1);
		snprintf(want, sizeof(want), "%s=%s %s\n", key, values[i],
			 strcmp(key, "output") == 0 ||
			 strcmp(key, "conntrackd-log") == 0 ||
			 strcmp(key, "subscribe") == 0 ||
			 strcmp(key, "record-labels") == 0 ||
			 strcmp(key, "ipfix-tls-ca") == 0 ||
			 strcmp(key, "ipfix-tls-cert") == 0 ||
			 strcmp(key, "ipfix-tls-key") == 0 ||
			 strncmp(key, "filter-", 7) == 0 ||
			 strncmp(key, "ignore-", 7) == 0 ? "live" : "restart");
		assert_string_equal(ch.text, want);
		snprintf(want, sizeof(want), "%-23s %s\n", key, values[i]);
		line = written(&b);
		assert_non_null(strstr(line, want));
		free(line);
	}
	assert_true(keys > 40);
	free(text);
}

static void test_command_line_wins(void **state)
{
	struct ctd_config c;
	struct ctd_cli cli;
	const char *p = write_file("rcvbuf 16M\ngrace 20\n");
	char *argv[] = { "ctd", "-c", (char *)p, "-b", "4M", "--no-resync",
			 "--grace", "7", NULL };

	(void)state;
	optind = 1;
	ctd_cli_parse(8, argv, &cli, ctd_output_settings);
	assert_int_equal(cli.mode, CTD_CLI_RUN);
	assert_int_equal(ctd_cli_config(&cli, &c, err, sizeof(err)), 0);
	assert_int_equal(c.rcvbuf, 4u << 20);
	assert_int_equal(c.grace, 7);
	assert_false(c.resync);
	unlink(p);

	/* rcvbuf-max follows a larger rcvbuf. */
	char *argv2[] = { "ctd", "-b", "128M", "--rcvbuf-max", "64M", "-s", "top", NULL };
	optind = 1;
	ctd_cli_parse(7, argv2, &cli, ctd_output_settings);
	assert_int_equal(cli.mode, CTD_CLI_QUERY);
	assert_string_equal(cli.query, "top");
	cli.config = "/nonexistent/ctd.conf";
	assert_int_equal(ctd_cli_config(&cli, &c, err, sizeof(err)), 0);
	assert_int_equal(c.rcvbuf_max, 128u << 20);

	char *argv3[] = { "ctd", "--budget", "zero", NULL };
	optind = 1;
	ctd_cli_parse(3, argv3, &cli, ctd_output_settings);
	cli.config = "/nonexistent/ctd.conf";
	assert_int_equal(ctd_cli_config(&cli, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "command line: --budget: 'zero' is not a number "
			    "from 1 to 1000000");
}

/* The error loading a file of text gives: msg with each @ the path. */
static void file_bad(const char *text, int want_r, const char *msg)
{
	struct ctd_config c;
	const char *p = write_file(text);
	char want[512];
	size_t n = 0;

	for (; *msg && n + strlen(p) + 1 < sizeof(want); msg++) {
		if (*msg == '@')
			n += (size_t)sprintf(want + n, "%s", p);
		else
			want[n++] = *msg;
	}
	want[n] = '\0';
	init(&c);
	assert_int_equal(ctd_config_load(&c, p, true, err, sizeof(err)), want_r);
	if (strcmp(err, want) != 0)
		fail_msg("%s:\n got  %s\n want %s", text, err, want);
	unlink(p);
}

static void test_quotes(void **state)
{
	struct ctd_config c;
	const char *p;

	(void)state;
	init(&c);
	p = write_file("output \"/tmp/a b.json\"\n"
		       "conntrackd-log \"/tmp/q\\\"x\\\\y\"\n"
		       "stream /tmp/unquoted inner blanks\n"
		       "kafka-topic \"\"\"\"\n");
	assert_int_equal(ctd_config_load(&c, p, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":4: kafka-topic: text after the closing quote"));
	unlink(p);
	init(&c);
	p = write_file("output \"/tmp/a b.json\"\n"
		       "conntrackd-log \"/tmp/q\\\"x\\\\y\"\n"
		       "stream /tmp/unquoted inner blanks\n"
		       "grace \"7\"\n");
	assert_int_equal(ctd_config_load(&c, p, true, err, sizeof(err)), 0);
	assert_string_equal(V(&c, "output"), "/tmp/a b.json");
	assert_string_equal(V(&c, "conntrackd-log"), "/tmp/q\"x\\y");
	assert_string_equal(V(&c, "stream"), "/tmp/unquoted inner blanks");
	assert_int_equal(c.grace, 7);
	unlink(p);

	file_bad("grace 5\noutput \"/tmp/a b.json\n", -EINVAL,
		 "@:2: output: unterminated quote");
	file_bad("output \"/tmp/a\\\"\n", -EINVAL,
		 "@:1: output: unterminated quote");
	file_bad("output \"/tmp/a\\n\"\n", -EINVAL,
		 "@:1: output: inside quotes only \\\" and \\\\ are escapes");
	file_bad("grace \"\"\n", -EINVAL,
		 "@:1: grace: '' is not seconds from 1 to 86400");
	/* Command-line values are the shell's already: quotes are kept. */
	set_ok(&c, "output", "\"x\"");
	assert_string_equal(V(&c, "output"), "\"x\"");
}

static void test_duplicates(void **state)
{
	struct ctd_config c;
	const char *p;
	char *text;

	(void)state;
	file_bad("# ctd\nrcvbuf 4M\ngrace 5\n\n\n\n\n\ngrace 9\n", -EEXIST,
		 "grace set twice: @:3 and @:9");
	file_bad("output /a\noutput none\n", -EEXIST,
		 "output set twice: @:1 and @:2");
	file_bad("filter-proto tcp\nfilter-proto udp\n", -EEXIST,
		 "filter-proto set twice: @:1 and @:2");
	/* A list setting adds a line each time. */
	init(&c);
	p = write_file("kafka-option linger.ms=5\nkafka-option acks=all\n"
		       "kafka-option client.id=x\n");
	assert_int_equal(ctd_config_load(&c, p, true, err, sizeof(err)), 0);
	assert_non_null(strstr(text = written(&c),
			       "kafka-option            linger.ms=5\n"
			       "kafka-option            acks=all\n"
			       "kafka-option            client.id=x\n"));
	free(text);
	unlink(p);
}

/* Where each setting got its value; the command line overriding the
 * file is not a second setting but wins, and says so. */
static void test_where(void **state)
{
	struct ctd_config c;
	struct ctd_cli cli;
	char where[1200], want[1200];
	const char *p = write_file("rcvbuf 16M\n\ngrace 20\n");
	char *argv[] = { "ctd", "-c", (char *)p, "--grace", "7", NULL };

	(void)state;
	optind = 1;
	ctd_cli_parse(5, argv, &cli, ctd_output_settings);
	assert_int_equal(ctd_cli_config(&cli, &c, err, sizeof(err)), 0);
	assert_int_equal(c.grace, 7);
	ctd_config_where(&c, "grace", where, sizeof(where));
	assert_string_equal(where, "command line: --grace");
	ctd_config_where(&c, "rcvbuf", where, sizeof(where));
	snprintf(want, sizeof(want), "%s:1: rcvbuf", p);
	assert_string_equal(where, want);
	ctd_config_where(&c, "user", where, sizeof(where));
	assert_string_equal(where, "user (default)");
	unlink(p);
}

/* ctd -f without -o FILE watches: nothing of the service's from the
 * file (outputs, spool, sockets), lossy unless told; filters kept. */
static void test_watcher(void **state)
{
	struct ctd_config c;
	struct ctd_cli cli;
	const char *p = write_file("output /tmp/svc.json\nspool-dir /tmp/sp\n"
				   "control /tmp/c.sock\nstream /tmp/s.sock\n"
				   "ipfix udp:127.0.0.1:4739\nsyslog yes\n"
				   "filter-proto tcp\n");
	char *watch[] = { "ctd", "-f", "-c", (char *)p, NULL };
	char *reliable[] = { "ctd", "-f", "-c", (char *)p, "--broadcast-error",
			     "yes", "-o", "-", NULL };
	char *service[] = { "ctd", "-f", "-c", (char *)p, "-o", "/tmp/x", NULL };

	(void)state;
	optind = 1;
	ctd_cli_parse(4, watch, &cli, ctd_output_settings);
	assert_true(ctd_cli_watcher(&cli));
	assert_int_equal(ctd_cli_config(&cli, &c, err, sizeof(err)), 0);
	assert_string_equal(V(&c, "output"), "none");
	assert_string_equal(c.spool_dir, "");
	assert_string_equal(c.control, "");
	assert_string_equal(V(&c, "stream"), "none");
	assert_string_equal(V(&c, "ipfix"), "none");
	assert_string_equal(V(&c, "syslog"), "no");
	assert_false(c.broadcast_error);
	assert_string_equal(c.filter[CTD_FILTER_PROTO], "tcp");

	optind = 1;
	ctd_cli_parse(8, reliable, &cli, ctd_output_settings);
	assert_true(ctd_cli_watcher(&cli));
	assert_int_equal(ctd_cli_config(&cli, &c, err, sizeof(err)), 0);
	assert_string_equal(V(&c, "output"), "-");
	assert_string_equal(c.spool_dir, "");
	assert_true(c.broadcast_error);

	optind = 1;
	ctd_cli_parse(6, service, &cli, ctd_output_settings);
	assert_false(ctd_cli_watcher(&cli));
	assert_int_equal(ctd_cli_config(&cli, &c, err, sizeof(err)), 0);
	assert_string_equal(V(&c, "output"), "/tmp/x");
	assert_string_equal(c.spool_dir, "/tmp/sp");
	assert_string_equal(c.control, "/tmp/c.sock");
	assert_true(c.broadcast_error);
	unlink(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_bad_bytes),
		cmocka_unit_test(test_written_config_reads_back),
		cmocka_unit_test(test_kafka_options),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_diff_every_setting),
		cmocka_unit_test(test_command_line_wins),
		cmocka_unit_test(test_quotes),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_where),
		cmocka_unit_test(test_watcher),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
