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
#include "ctd/kernel/shardfilter.h"
#include "ctd/service/daemon.h"

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

struct ctd_check {
	const struct ctd_config *cfg;
	ctd_cfgcheck_fn *fn;
	void *arg;
	size_t problems;
};

void ctd_check_problem(struct ctd_check *c, const char *key, const char *what,
		       const char *value)
{
	char where[CTD_CONFIG_PATH_MAX + 64], line[3 * CTD_CONFIG_PATH_MAX];

	ctd_config_where(c->cfg, key, where, sizeof(where));
	snprintf(line, sizeof(line), "%s: %s%s", where, what, value);
	c->fn(c->arg, line);
	c->problems++;
}

static void check_user(struct ctd_check *c)
{
	struct ctd_owner owner;
	int r = ctd_daemon_find_user(c->cfg->user, &owner);

	if (r == -ESRCH)
		ctd_check_problem(c, "user", "no such user: ", c->cfg->user);
	else if (r < 0)
		ctd_check_problem(c, "user", "cannot look it up: ", strerror(-r));
}

/* A group matters only where its socket is set. */
void ctd_check_group(struct ctd_check *c, const char *key, const char *name,
		     const char *socket)
{
	gid_t gid;

	if (*socket && ctd_daemon_find_group(name, &gid) < 0)
		ctd_check_problem(c, key, "no such group: ", name);
}

void ctd_check_socket(struct ctd_check *c, const char *key, const char *path)
{
	char what[96];

	if (strlen(path) < SUN_PATH_MAX)
		return;
	snprintf(what, sizeof(what), "a Unix socket path has at most %zu "
		 "bytes, this one %zu: ", SUN_PATH_MAX - 1, strlen(path));
	ctd_check_problem(c, key, what, path);
}

/* path's directory exists; with creatable it is a default directory
 * ctd makes itself (/var/log/ctd, /run/ctd), so its parent must. */
void ctd_check_dir(struct ctd_check *c, const char *key, const char *path,
		   bool creatable)
{
	char dir[CTD_CONFIG_PATH_MAX], what[CTD_CONFIG_PATH_MAX + 64];
	const char *name;
	struct stat st;
	int r;

	if (ctd_safefile_split(path, dir, sizeof(dir), &name) < 0) {
		ctd_check_problem(c, key, "not a file name: ", path);
		return;
	}
	r = stat(dir, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (r == 0)
		return;
	if (creatable) {
		ctd_check_dir(c, key, dir, false);
		return;
	}
	snprintf(what, sizeof(what), "directory %s %s, for ", dir,
		 r == -ENOENT ? "does not exist" : r == -ENOTDIR ?
		 "is not a directory" : strerror(-r));
	ctd_check_problem(c, key, what, path);
}

static void check_paths(struct ctd_check *c)
{
	const struct ctd_config *o = c->cfg;

	if (*o->spool_dir)
		ctd_check_dir(c, "spool-dir", o->spool_dir, false);
	if (*o->control)
		ctd_check_dir(c, "control", o->control,
			      strcmp(o->control, CTD_CONFIG_DEFAULT_CONTROL) == 0);
	if (*o->record)
		ctd_check_dir(c, "record", o->record, false);
}

/* Hysteresis needs a gap: equal marks would flip the mode every tick. */
static void check_pressure(struct ctd_check *c)
{
	char high[32];

	if (c->cfg->kernel_pressure_low < c->cfg->kernel_pressure_high)
		return;
	snprintf(high, sizeof(high), "%u", c->cfg->kernel_pressure_high);
	ctd_check_problem(c, "kernel-pressure-low",
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

/* The setting whose file a tlsfile message is about (it starts with
 * the path): a key that does not match its certificate is the key's
 * line, not the CA's. names: the settings of f->ca, f->cert, f->key. */
static const char *tls_setting(const struct ctd_tls_files *f,
			       const char *const names[3], const char *why)
{
	const char *paths[3] = { f->ca, f->cert, f->key };

	for (int i = 2; i >= 0; i--)
		if (*paths[i] && strncmp(why, paths[i], strlen(paths[i])) == 0 &&
		    why[strlen(paths[i])] == ':')
			return names[i];
	return names[0];
}

/* A key only its owner reads, and files OpenSSL accepts. */
void ctd_check_tls_files(struct ctd_check *c, const struct ctd_tls_files *f,
			 const char *const names[3], bool server)
{
	struct ctd_owner owner = tls_owner(c->cfg);
	char why[CTD_CONFIG_PATH_MAX + 256];
	struct ssl_ctx_st *ctx;
	int r;

	if (*f->key && ctd_tlsfile_check_key(f->key, &owner, why,
					     sizeof(why)) < 0) {
		ctd_check_problem(c, names[2], "", why);
		return;
	}
	r = server ? ctd_tlsfile_server_ctx(f, &owner, &ctx, why, sizeof(why)) :
		     ctd_tlsfile_client_ctx(f, &owner, &ctx, why, sizeof(why));
	if (r < 0)
		ctd_check_problem(c, tls_setting(f, names, why), "", why);
	else
		ctd_tlsfile_ctx_free(ctx);
}

/* The metrics endpoint off loopback: HTTPS with client certificates,
 * all three files or none. */
static void check_metrics(struct ctd_check *c)
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
		ctd_check_problem(c, "metrics", "an address that is not loopback needs "
			"metrics-tls-cert, metrics-tls-key and metrics-client-ca "
			"(HTTPS with client certificates): ", o->metrics);
	else if (have && have < 3)
		ctd_check_problem(c, *f.cert ? "metrics-tls-cert" : *f.key ?
			"metrics-tls-key" : "metrics-client-ca", "HTTPS metrics "
			"need metrics-tls-cert, metrics-tls-key and "
			"metrics-client-ca together", "");
	else if (have == 3)
		ctd_check_tls_files(c, &f, (const char *const[3]){
				    "metrics-client-ca", "metrics-tls-cert",
				    "metrics-tls-key" }, true);
}

const struct ctd_config *ctd_check_config(const struct ctd_check *c)
{
	return c->cfg;
}

/* Each output's own checks, on its part of the configuration. */
static void check_groups(struct ctd_check *c)
{
	for (size_t i = 0; c->cfg->groups && c->cfg->groups[i]; i++) {
		const struct ctd_setting_group *g = c->cfg->groups[i];

		if (g->check)
			g->check(ctd_config_group_get(c->cfg, g), c);
	}
}

/* An output is on unless its off setting has the value that turns it
 * off (what ctd -f sets). */
static bool output_on(const struct ctd_config *cfg,
		      const struct ctd_setting_group *g)
{
	char value[CTD_CONFIG_PATH_MAX];

	return ctd_config_get(cfg, g->off_key, value, sizeof(value)) == 0 &&
	       strcmp(value, g->off_value) != 0;
}

static void one_process(struct ctd_check *c, const struct ctd_setting_group *g,
			const char *n)
{
	char what[128];

	snprintf(what, sizeof(what), "%s needs shards 1, not ", g->one_process);
	ctd_check_problem(c, g->off_key, what, n);
}

/* Each shard is a process with its own sockets and files: what one
 * path can be for one process only cannot be split (yet). */
static void check_shards(struct ctd_check *c)
{
	const struct ctd_config *o = c->cfg;
	char n[32];

	if (o->shards == 1)
		return;
	if (o->shards == CTD_CONFIG_AUTO)
		snprintf(n, sizeof(n), "auto");
	else
		snprintf(n, sizeof(n), "%zu", o->shards);
	if (o->shards != CTD_CONFIG_AUTO && o->shards > CTD_SHARDS_MAX)
		ctd_check_problem(c, "shards", "at most 64 shards, not ", n);
	if (strcmp(o->netns, "self") != 0)
		ctd_check_problem(c, "netns", "other namespaces need shards 1, "
				  "not ", n);
	if (*o->record)
		ctd_check_problem(c, "record", "a raw capture needs shards 1, "
				  "not ", n);
	for (size_t i = 0; o->groups && o->groups[i]; i++)
		if (o->groups[i]->one_process && output_on(o, o->groups[i]))
			one_process(c, o->groups[i], n);
}

size_t ctd_cfgcheck(const struct ctd_config *cfg, ctd_cfgcheck_fn *fn,
		    void *arg)
{
	struct ctd_check c = { cfg, fn, arg, 0 };

	check_user(&c);
	ctd_check_group(&c, "control-group", cfg->control_group, cfg->control);
	ctd_check_socket(&c, "control", cfg->control);
	check_paths(&c);
	check_pressure(&c);
	check_metrics(&c);
	check_shards(&c);
	check_groups(&c);
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

/* The outputs' values that the system decides, resolved here. */
static void print_notes(const struct ctd_config *cfg)
{
	for (size_t i = 0; cfg->groups && cfg->groups[i]; i++)
		if (cfg->groups[i]->note)
			cfg->groups[i]->note(ctd_config_group_get(cfg,
						cfg->groups[i]), stdout);
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
		print_notes(cfg);
		ctd_config_write(cfg, stdout);
	}
	return 0;
}
