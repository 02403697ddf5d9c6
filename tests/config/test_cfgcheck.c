/* Tests for src/cfgcheck.c against real users, groups and directories:
 * the defaults pass; an unknown user or group, a socket path too long
 * for sun_path, a missing directory and kernel-pressure marks without a
 * gap are each one problem naming the setting and where it was set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ctd/outputs/outputs.h"
#include "ctd/config/cfgcheck.h"
#include "ctd/config/config.h"

struct problems {
	size_t n;
	char text[8][512];
};

static void note(void *arg, const char *problem)
{
	struct problems *p = arg;

	if (p->n < 8)
		snprintf(p->text[p->n], sizeof(p->text[0]), "%s", problem);
	p->n++;
}

static void set(struct ctd_config *c, const char *key, const char *value)
{
	char err[256];

	assert_int_equal(ctd_config_set(c, key, value, err, sizeof(err)), 0);
}

/* The defaults with paths under /tmp that every test starts from. */
static void base(struct ctd_config *c)
{
	ctd_config_init(c, ctd_output_settings);
	set(c, "output", "/tmp/flows.json");
	set(c, "spool-dir", "/tmp/ctd-spool");
	set(c, "control", "/tmp/ctd.sock");
}

static size_t check(const struct ctd_config *c, struct problems *p)
{
	memset(p, 0, sizeof(*p));
	return ctd_cfgcheck(c, note, p);
}

static void test_defaults_pass(void **state)
{
	struct ctd_config c;
	struct problems p;

	(void)state;
	base(&c);
	assert_int_equal(check(&c, &p), 0);
}

static void test_each_problem_named(void **state)
{
	struct ctd_config c;
	struct problems p;
	char longpath[200];

	(void)state;
	base(&c);
	set(&c, "user", "no-such-user-ctd");
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "user"));
	assert_non_null(strstr(p.text[0], "no-such-user-ctd"));

	set(&c, "user", "none");
	set(&c, "control-group", "no-such-group-ctd");
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "control-group"));

	set(&c, "control-group", "none");
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	set(&c, "stream", longpath);
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "stream"));

	set(&c, "stream", "none");
	set(&c, "output", "/nonexistent-ctd-dir/flows.json");
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "output"));
	assert_non_null(strstr(p.text[0], "/nonexistent-ctd-dir"));

	set(&c, "output", "/tmp/flows.json");
	set(&c, "store", "/nonexistent-ctd-dir/flows.db");
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "store"));
	assert_non_null(strstr(p.text[0], "/nonexistent-ctd-dir"));

	set(&c, "store", "/tmp/flows.db");
	set(&c, "kernel-pressure-low", "85");
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "kernel-pressure-low"));
	assert_non_null(strstr(p.text[0], "kernel-pressure-high, which is 85"));

	set(&c, "kernel-pressure-low", "70");
	set(&c, "postgresql", "host=db password=s3cret nosuchkey=1");
	assert_int_equal(check(&c, &p), 1);
	assert_string_equal(p.text[0], "command line: --postgresql: invalid "
			    "connection option \"nosuchkey\"");
	set(&c, "postgresql", "postgresql://ctd:s3cret@db/flows");
	assert_int_equal(check(&c, &p), 0);
}

/* shards: up to 64, and not with what one process alone can own (a
 * stream socket, a raw capture, namespaces beside its own). */
static void test_shards(void **state)
{
	struct ctd_config c;
	struct problems p;

	(void)state;
	base(&c);
	set(&c, "shards", "4");
	assert_int_equal(check(&c, &p), 0);
	set(&c, "shards", "auto");
	assert_int_equal(check(&c, &p), 0);
	set(&c, "shards", "65");
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "at most 64 shards, not 65"));
	set(&c, "shards", "2");
	set(&c, "stream", "/tmp/ctd-stream.sock");
	set(&c, "record", "/tmp/ctd.nl");
	set(&c, "netns", "all");
	assert_int_equal(check(&c, &p), 3);
	/* ctd's own settings first, then each output's. */
	assert_non_null(strstr(p.text[0], "netns"));
	assert_non_null(strstr(p.text[1], "record"));
	assert_non_null(strstr(p.text[2], "stream"));
	set(&c, "shards", "1");
	assert_int_equal(check(&c, &p), 0);
}

/* The metrics endpoint off loopback: HTTPS with client certificates or
 * nothing; the three TLS settings together or not at all; and the
 * IPFIX/TLS target's CA. */
static void test_tls_settings(void **state)
{
	struct ctd_config c;
	struct problems p;

	(void)state;
	base(&c);
	set(&c, "metrics", "0.0.0.0:9477");
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "metrics: an address that is not "
				"loopback needs metrics-tls-cert"));
	set(&c, "metrics", "127.0.0.1:9477");
	assert_int_equal(check(&c, &p), 0);
	set(&c, "metrics-tls-cert", "/tmp/x.pem");
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "metrics-tls-cert"));
	assert_non_null(strstr(p.text[0], "together"));
	/* All three, none there: the key file is named. */
	set(&c, "metrics-tls-key", "/nonexistent-ctd-dir/x.key");
	set(&c, "metrics-client-ca", "/tmp/ca.pem");
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "metrics-tls-key"));
	assert_non_null(strstr(p.text[0], "/nonexistent-ctd-dir/x.key"));

	base(&c);
	set(&c, "ipfix", "tls:127.0.0.1:4740");
	assert_int_equal(check(&c, &p), 1);
	assert_non_null(strstr(p.text[0], "needs ipfix-tls-ca"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_pass),
		cmocka_unit_test(test_each_problem_named),
		cmocka_unit_test(test_tls_settings),
		cmocka_unit_test(test_shards),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
