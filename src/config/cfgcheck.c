/* cfgcheck: the start-up checks a configuration must pass, in one place
 * for `ctd -t` and the daemon.
 *
 * The parser (config.c) knows each value's syntax; what it cannot know
 * is whether the system agrees: a `user` or group that does not exist,
 * a socket path longer than sun_path, a file in a directory that is not
 * there. Found at start, each of these stopped ctd or left it running
 * without a control socket while `ctd -t` had said OK. Every problem is
 * one line naming the setting and where it was set. The lookups read
 * the user and group databases and stat directories: nothing here
 * creates, opens or changes anything. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <unistd.h>

#include "ctd/base/listen.h"
#include "ctd/base/log.h"
#include "ctd/base/membudget.h"
#include "ctd/base/safefile.h"
#include "ctd/base/tlsfile.h"
#include "ctd/config/cfgcheck.h"
#include "ctd/config/cli.h"
#include "ctd/config/config.h"
#include "ctd/format/ipfix.h"
#include "ctd/service/daemon.h"

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

struct check {
	const struct ctd_config *cfg;
	ctd_cfgcheck_fn *fn;
	void *arg;
	size_t problems;
};

static void problem(struct check *c, const char *key, const char *what,
		    const char *value)
{
	char where[CTD_CONFIG_PATH_MAX + 64], line[3 * CTD_CONFIG_PATH_MAX];

	ctd_config_where(c->cfg, key, where, sizeof(where));
	snprintf(line, sizeof(line), "%s: %s%s", where, what, value);
	c->fn(c->arg, line);
	c->problems++;
}

static void check_user(struct check *c)
{
	struct ctd_owner owner;
	int r = ctd_daemon_find_user(c->cfg->user, &owner);

	if (r == -ESRCH)
		problem(c, "user", "no such user: ", c->cfg->user);
	else if (r < 0)
		problem(c, "user", "cannot look it up: ", strerror(-r));
}

/* A group matters only where its socket is set. */
static void check_group(struct check *c, const char *key, const char *name,
			const char *socket)
{
	gid_t gid;

	if (*socket && ctd_daemon_find_group(name, &gid) < 0)
		problem(c, key, "no such group: ", name);
}

static void check_socket(struct check *c, const char *key, const char *path)
{
	char what[96];

	if (strlen(path) < SUN_PATH_MAX)
		return;
	snprintf(what, sizeof(what), "a Unix socket path has at most %zu "
		 "bytes, this one %zu: ", SUN_PATH_MAX - 1, strlen(path));
	problem(c, key, what, path);
}

/* path's directory exists; with creatable it is a default directory
 * ctd makes itself (/var/log/ctd, /run/ctd), so its parent must. */
static void check_dir(struct check *c, const char *key, const char *path,
		      bool creatable)
{
	char dir[CTD_CONFIG_PATH_MAX], what[CTD_CONFIG_PATH_MAX + 64];
	const char *name;
	struct stat st;
	int r;

	if (ctd_safefile_split(path, dir, sizeof(dir), &name) < 0) {
		problem(c, key, "not a file name: ", path);
		return;
	}
	r = stat(dir, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (r == 0)
		return;
	if (creatable) {
		check_dir(c, key, dir, false);
		return;
	}
	snprintf(what, sizeof(what), "directory %s %s, for ", dir,
		 r == -ENOENT ? "does not exist" : r == -ENOTDIR ?
		 "is not a directory" : strerror(-r));
	problem(c, key, what, path);
}

static bool is(const char *path, const char *dflt)
{
	return strcmp(path, dflt) == 0;
}

static void check_paths(struct check *c)
{
	const struct ctd_config *o = c->cfg;

	if (*o->output && !is(o->output, "-"))
		check_dir(c, "output", o->output,
			  is(o->output, CTD_CONFIG_DEFAULT_OUTPUT));
	if (*o->conntrackd_log)
		check_dir(c, "conntrackd-log", o->conntrackd_log, false);
	if (*o->output && is(o->output, o->conntrackd_log))
		problem(c, "conntrackd-log", "the same file as output: ",
			o->output);
	if (*o->spool_dir)
		check_dir(c, "spool-dir", o->spool_dir, false);
	if (*o->control)
		check_dir(c, "control", o->control,
			  is(o->control, CTD_CONFIG_DEFAULT_CONTROL));
	if (*o->stream)
		check_dir(c, "stream", o->stream, false);
	if (*o->record)
		check_dir(c, "record", o->record, false);
	if (*o->store)
		check_dir(c, "store", o->store,
			  is(o->store, CTD_CONFIG_DEFAULT_STORE));
}

/* Hysteresis needs a gap: equal marks would flip the mode every tick. */
static void check_pressure(struct check *c)
{
	char high[32];

	if (c->cfg->kernel_pressure_low < c->cfg->kernel_pressure_high)
		return;
	snprintf(high, sizeof(high), "%u", c->cfg->kernel_pressure_high);
	problem(c, "kernel-pressure-low",
		"must be below kernel-pressure-high, which is ", high);
}

/* The user ctd runs as may own the TLS files too: it reads them again
 * on SIGHUP. */
static struct ctd_owner tls_owner(const struct ctd_config *o)
{
	struct ctd_owner owner = CTD_OWNER_NONE;

	if (*o->user)
		ctd_daemon_find_user(o->user, &owner);
	return owner;
}

/* A key only its owner reads, and files OpenSSL accepts. */
static void check_tls_files(struct check *c, const struct ctd_tls_files *f,
			    const char *key_key, const char *ca_key, bool server)
{
	struct ctd_owner owner = tls_owner(c->cfg);
	char why[CTD_CONFIG_PATH_MAX + 256];
	struct ssl_ctx_st *ctx;
	int r;

	if (*f->key && ctd_tlsfile_check_key(f->key, &owner, why,
					     sizeof(why)) < 0) {
		problem(c, key_key, "", why);
		return;
	}
	r = server ? ctd_tlsfile_server_ctx(f, &owner, &ctx, why, sizeof(why)) :
		     ctd_tlsfile_client_ctx(f, &owner, &ctx, why, sizeof(why));
	if (r < 0)
		problem(c, ca_key, "", why);
	else
		ctd_tlsfile_ctx_free(ctx);
}

/* IPFIX over TLS: a CA to verify against, and both halves of a client
 * identity or neither. */
static void check_tls(struct check *c)
{
	const struct ctd_config *o = c->cfg;
	struct ctd_tls_files f = { o->ipfix_tls_ca, o->ipfix_tls_cert,
				   o->ipfix_tls_key };
	size_t before = c->problems;

	if (!ctd_ipfix_target_tls(o->ipfix))
		return;
	if (!*o->ipfix_tls_ca)
		problem(c, "ipfix", "tls: needs ipfix-tls-ca (the CA bundle the "
			"collector's certificate chains to): ", o->ipfix);
	if (!*o->ipfix_tls_cert != !*o->ipfix_tls_key)
		problem(c, *o->ipfix_tls_cert ? "ipfix-tls-cert" : "ipfix-tls-key",
			"mutual TLS needs both ipfix-tls-cert and ipfix-tls-key", "");
	if (c->problems == before)
		check_tls_files(c, &f, "ipfix-tls-key", "ipfix-tls-ca", false);
}

/* The metrics endpoint off loopback: HTTPS with client certificates,
 * all three files or none. */
static void check_metrics(struct check *c)
{
	const struct ctd_config *o = c->cfg;
	struct ctd_tls_files f = { o->metrics_client_ca, o->metrics_tls_cert,
				   o->metrics_tls_key };
	int have = !!*f.ca + !!*f.cert + !!*f.key;
	struct sockaddr_in6 sa;
	unsigned len;

	if (!*o->metrics)
		return;
	if (have < 3 && ctd_listen_parse_loopback(o->metrics, &sa, &len) ==
			-EADDRNOTAVAIL)
		problem(c, "metrics", "an address that is not loopback needs "
			"metrics-tls-cert, metrics-tls-key and metrics-client-ca "
			"(HTTPS with client certificates): ", o->metrics);
	else if (have && have < 3)
		problem(c, *f.cert ? "metrics-tls-cert" : *f.key ?
			"metrics-tls-key" : "metrics-client-ca", "HTTPS metrics "
			"need metrics-tls-cert, metrics-tls-key and "
			"metrics-client-ca together", "");
	else if (have == 3)
		check_tls_files(c, &f, "metrics-tls-key", "metrics-tls-cert", true);
}

/* libpq's own parser: its message names the bad keyword or syntax,
 * never a password's value. A server down is no problem: the output
 * holds records until it is up. */
static void check_conninfo(struct check *c)
{
	char *err = NULL;
	PQconninfoOption *o;

	if (!*c->cfg->postgresql)
		return;
	o = PQconninfoParse(c->cfg->postgresql, &err);
	if (o)
		PQconninfoFree(o);
	else
		problem(c, "postgresql", "", err ? strtok(err, "\n") :
			"out of memory");
	PQfreemem(err);
}

size_t ctd_cfgcheck(const struct ctd_config *cfg, ctd_cfgcheck_fn *fn,
		    void *arg)
{
	struct check c = { cfg, fn, arg, 0 };

	check_user(&c);
	check_group(&c, "control-group", cfg->control_group, cfg->control);
	check_group(&c, "stream-group", cfg->stream_group, cfg->stream);
	check_socket(&c, "control", cfg->control);
	check_socket(&c, "stream", cfg->stream);
	if (cfg->syslog)
		check_socket(&c, "syslog-socket", cfg->syslog_socket);
	check_paths(&c);
	check_pressure(&c);
	check_tls(&c);
	check_metrics(&c);
	check_conninfo(&c);
	return c.problems;
}

static void log_problem(void *arg, const char *line)
{
	(void)arg;
	log_err("%s", line);
}

size_t ctd_cfgcheck_log(const struct ctd_config *cfg)
{
	return ctd_cfgcheck(cfg, log_problem, NULL);
}

static void print_problem(void *arg, const char *line)
{
	(void)arg;
	ctd_log_tool(CTD_LOG_ERR, "%s", line);
}

/* The bytes memory-max comes to here: auto depends on the cgroup. */
static void print_memory_max(const struct ctd_config *cfg)
{
	char why[160];
	size_t max = ctd_membudget_resolve(cfg->memory_max, "/", why,
					   sizeof(why));

	printf("ctd: memory-max is %zu bytes (%zu MiB)%s%s\n", max, max >> 20,
	       *why ? "; " : "", why);
}

int ctd_cfgcheck_main(const struct ctd_cli *cli, const struct ctd_config *cfg)
{
	if (ctd_cfgcheck(cfg, print_problem, NULL))
		return 1;
	printf("ctd: configuration %s is OK%s\n", cli->config,
	       cli->config_given || access(cli->config, F_OK) == 0 ? "" :
	       " (no file: defaults)");
	if (cfg->broadcast_error && cfg->kernel_pressure == 1)
		printf("ctd: note: kernel-pressure hold: a stopped or slow ctd "
		       "keeps conntracks in the kernel's table until it reads "
		       "their DESTROY; a full table drops new connections\n");
	if (cli->verbose) {
		print_memory_max(cfg);
		ctd_config_write(cfg, stdout);
	}
	return 0;
}
