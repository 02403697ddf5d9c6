/* config: every setting ctd has, in one plain struct, set from the
 * configuration file (`key value` lines) and from the command line with
 * the same names, so each option is documented once. Parsing is pure:
 * errors come back as one line naming the file, the line and what was
 * expected; nothing here logs or exits. */
#ifndef CTD_CONFIG_H
#define CTD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctd/config/setting.h"
#include "ctd/flows/filter.h"

/* CMake passes the install's own (sysconfdir/ctd/ctd.conf). */
#ifndef CTD_CONFIG_FILE
#define CTD_CONFIG_FILE "/etc/ctd/ctd.conf"
#endif
/* A default whose directory ctd creates (the outputs name theirs). */
#define CTD_CONFIG_DEFAULT_CONTROL_DIR "/run/ctd"
#define CTD_CONFIG_DEFAULT_CONTROL CTD_CONFIG_DEFAULT_CONTROL_DIR "/ctd.sock"
#define CTD_CONFIG_PATH_MAX CTD_SETTING_TEXT_MAX
#define CTD_CONFIG_ERR_MAX 1280
#define CTD_CONFIG_LINE_MAX 4096
#define CTD_CONFIG_AUTO SIZE_MAX     /* a count the kernel decides (auto) */
/* Room for every setting's origin, ctd's own and the outputs'. */
#define CTD_CONFIG_SETTINGS 128
/* Setting groups (one per output) and the bytes of their structs. */
#define CTD_CONFIG_GROUPS 16
#define CTD_CONFIG_GROUP_BYTES (48u << 10)
/* The origin of a setting given on the command line. */
#define CTD_CONFIG_CMDLINE 0xffffffffu

struct ctd_config {
	char spool_dir[CTD_CONFIG_PATH_MAX];  /* "" none */
	char record[CTD_CONFIG_PATH_MAX];     /* "" none */
	char control[CTD_CONFIG_PATH_MAX];    /* "" none */
	char control_group[CTD_CONFIG_PATH_MAX]; /* may also use it; "" root only */
	char metrics[CTD_CONFIG_PATH_MAX];    /* loopback addr:port, "" none */
	char metrics_tls_cert[CTD_CONFIG_PATH_MAX]; /* HTTPS: our certificate */
	char metrics_tls_key[CTD_CONFIG_PATH_MAX];  /* ... its key */
	char metrics_client_ca[CTD_CONFIG_PATH_MAX]; /* ... scrapers' CA */
	char user[CTD_CONFIG_PATH_MAX];       /* drop to this user, "" stay */
	/* Network namespaces watched besides ctd's own: "self" none, "all",
	 * or a comma-separated list of /run/netns names. */
	char netns[CTD_CONFIG_PATH_MAX];
	/* Filter criteria as written ("any": none), by enum ctd_filter_key. */
	char filter[CTD_FILTER__COUNT][CTD_CONFIG_PATH_MAX];
	size_t rcvbuf;
	size_t rcvbuf_max;
	size_t max_flows;          /* 0: the kernel's nf_conntrack_max */
	size_t remember_ends;
	/* Processes reading the events, each a part (CTD_CONFIG_AUTO: the
	 * online CPUs, at most CTD_SHARDS_MAX); 1: ctd as it ever was. */
	size_t shards;
	unsigned shard;            /* this process's part (main sets it) */
	size_t dying_max;
	size_t memory_max;         /* bytes; CTD_CONFIG_AUTO: from the cgroup */
	unsigned budget;
	unsigned expiry_slack;     /* seconds */
	unsigned check_interval;
	unsigned pending_interval;
	unsigned active_timeout;
	unsigned grace;
	unsigned shutdown_timeout;
	unsigned subscribe;        /* 0 auto (what the outputs need), 1 all */
	unsigned kernel_pressure;  /* 0 fail-open, 1 hold */
	unsigned kernel_pressure_high;  /* table fill, percent */
	unsigned kernel_pressure_low;
	bool broadcast_error;
	bool resync;
	bool sysctl;
	bool record_labels;        /* conntrack labels in JSON and IPFIX */
	/* Where each setting got its value, by its place in config.c's
	 * table: 0 the default, a line of `file`, or CTD_CONFIG_CMDLINE.
	 * Errors found later (ctd -t's checks) name it. */
	unsigned line[CTD_CONFIG_SETTINGS];
	char file[CTD_CONFIG_PATH_MAX];
	/* The outputs' setting groups (NULL-terminated; NULL: none) and
	 * their structs, each at its offset in group_data. */
	const struct ctd_setting_group *const *groups;
	unsigned group_off[CTD_CONFIG_GROUPS];
	_Alignas(16) unsigned char group_data[CTD_CONFIG_GROUP_BYTES];
};

/* ctd's own settings at their defaults, and no output's. */
void ctd_config_defaults(struct ctd_config *cfg);
/* The same, plus the settings of groups (NULL-terminated) at theirs. */
void ctd_config_init(struct ctd_config *cfg,
		     const struct ctd_setting_group *const *groups);
/* Group g's struct inside cfg; NULL when cfg has not got g. */
const void *ctd_config_group_get(const struct ctd_config *cfg,
				 const struct ctd_setting_group *g);
/* One setting, from the command line (its origin). Returns 0, -ENOENT
 * for an unknown key or -EINVAL for a bad value, with a message in err
 * ("rcvbuf: 'x' is not a size ..."). */
int ctd_config_set(struct ctd_config *cfg, const char *key, const char *value,
		   char *err, size_t errlen);
/* Reads a file of `key value` lines (# comments). A value may be quoted
 * ("a b", with \" and \\ inside); a key set twice is an error naming
 * both lines, except list settings (an OPTIONS row), which add a line
 * each. A missing file is an error only when must_exist. err gets
 * "path:line: message" ("key set twice: path:3 and path:9"). */
int ctd_config_load(struct ctd_config *cfg, const char *path, bool must_exist,
		    char *err, size_t errlen);
/* The same from an open stream; path only names it in errors. */
int ctd_config_read(struct ctd_config *cfg, FILE *f, const char *path,
		    char *err, size_t errlen);
/* Values that depend on each other, after everything was set. */
void ctd_config_finish(struct ctd_config *cfg);
/* key's value as the file would say it (secrets hidden; of a list,
 * the first); -ENOENT for a key cfg has not got. */
int ctd_config_get(const struct ctd_config *cfg, const char *key,
		   char *buf, size_t len);
/* Every key with its current value, in the file's syntax. */
void ctd_config_write(const struct ctd_config *cfg, FILE *f);

/* A setting that differs: its key, its new value as the file would say
 * it, and whether a reload applies it to a running ctd (live) or it
 * needs a restart. Live today: output, conntrackd-log, subscribe,
 * record-labels and the filter-* and ignore-* criteria. */
typedef void ctd_config_change_fn(void *arg, const char *key,
				  const char *value, bool live);
/* Calls fn (when not NULL) for each setting whose value differs between
 * old and next, in the order ctd_config_write lists them; returns how
 * many differ. */
size_t ctd_config_diff(const struct ctd_config *old,
		       const struct ctd_config *next,
		       ctd_config_change_fn *fn, void *arg);
/* The filter the settings describe (NULL when out of memory); every
 * text was checked when it was set. */
struct ctd_filter *ctd_config_filter(const struct ctd_config *cfg);
/* Where key got its value, to start a message about it:
 * "path:line: key", "command line: --key" or "key (default)". */
void ctd_config_where(const struct ctd_config *cfg, const char *key,
		      char *buf, size_t cap);
/* Whether key names a setting of cfg (ctd's own or a group's). */
bool ctd_config_has(const struct ctd_config *cfg, const char *key);
/* Calls fn with every setting, ctd's own and then groups' (NULL: none),
 * in ctd_config_write's order: the command line's options. */
void ctd_config_keys(const struct ctd_setting_group *const *groups,
		     void (*fn)(void *arg, const struct ctd_setting *s),
		     void *arg);
/* Copies every setting a reload applies live from next into cfg. */
void ctd_config_take_live(struct ctd_config *cfg,
			  const struct ctd_config *next);

#endif
