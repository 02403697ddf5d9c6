/* cli: the command line. Options that are settings keep their config
 * file names (--rcvbuf is `rcvbuf`) and are applied after the file, so
 * the command line wins; the rest choose what ctd does (run, check the
 * configuration, or ask a running ctd through its control socket). */
#ifndef CTD_CLI_H
#define CTD_CLI_H

#include <stdbool.h>
#include <stddef.h>

struct ctd_config;
struct ctd_setting_group;

#define CTD_CLI_MAX_SETTINGS 64

enum ctd_cli_mode {
	CTD_CLI_RUN,
	CTD_CLI_CHECK,      /* -t: check the configuration and exit */
	CTD_CLI_QUERY,      /* -s, -l: ask the running ctd */
};

struct ctd_cli {
	enum ctd_cli_mode mode;
	bool foreground;
	bool verbose;
	bool json;                 /* --json answers from the control socket */
	bool utc;                  /* --utc: -f lines in UTC, not local time */
	const char *sort;          /* -l --sort KEY, or NULL */
	const char *config;        /* -c, or the default */
	bool config_given;
	const char *query;         /* "stats", "all", "flows", "top" */
	size_t n;
	const char *keys[CTD_CLI_MAX_SETTINGS];
	const char *values[CTD_CLI_MAX_SETTINGS];
	/* The outputs' settings, besides ctd's own (NULL-terminated). */
	const struct ctd_setting_group *const *groups;
};

/* Parses argv; prints usage and exits on --help, --version and errors
 * in the options themselves (exit 2). Values are checked later. Every
 * setting of ctd's and of groups is an option. */
void ctd_cli_parse(int argc, char **argv, struct ctd_cli *cli,
		   const struct ctd_setting_group *const *groups);

/* Whether ctd only watches: -f without -o FILE (-o - puts the JSON
 * records on stdout instead of the lines). A watcher prints the events
 * and writes, binds and locks nothing of the service's (see watch_only
 * in cli.c), so it can run beside it. */
bool ctd_cli_watcher(const struct ctd_cli *cli);

/* Defaults, then the configuration file (a watcher's without the
 * outputs, spool, sockets and reliable mode), then the command line.
 * On error err holds one line ("file:line: ..." or "--key: ..."). */
int ctd_cli_config(const struct ctd_cli *cli, struct ctd_config *cfg,
		   char *err, size_t errlen);

#endif
