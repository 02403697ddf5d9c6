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

#include "ctd/flows/filter.h"

/* CMake passes the install's own (sysconfdir/ctd/ctd.conf). */
#ifndef CTD_CONFIG_FILE
#define CTD_CONFIG_FILE "/etc/ctd/ctd.conf"
#endif
/* Defaults whose directory ctd creates (no other directory it makes). */
#define CTD_CONFIG_DEFAULT_OUTPUT_DIR "/var/log/ctd"
#define CTD_CONFIG_DEFAULT_OUTPUT CTD_CONFIG_DEFAULT_OUTPUT_DIR "/flows.json"
/* The flow store (out_store.c), beside the spool by default. */
#define CTD_CONFIG_DEFAULT_STORE "/var/lib/ctd/flows.db"
#define CTD_CONFIG_DEFAULT_CONTROL_DIR "/run/ctd"
#define CTD_CONFIG_DEFAULT_CONTROL CTD_CONFIG_DEFAULT_CONTROL_DIR "/ctd.sock"
#define CTD_CONFIG_PATH_MAX 1024
#define CTD_CONFIG_ERR_MAX 1280
#define CTD_CONFIG_LINE_MAX 4096
#define CTD_CONFIG_AUTO SIZE_MAX     /* a count the kernel decides (auto) */     /* longest line of a config file */
/* kafka-option lines kept at most, and their bytes ("NAME=VALUE\n"
 * each, NUL after the last). */
#define CTD_CONFIG_KAFKA_OPTIONS 32
#define CTD_CONFIG_KAFKA_OPTIONS_BYTES 8192
/* Room for every setting's origin (config.c asserts it is enough). */
#define CTD_CONFIG_SETTINGS 80
/* The origin of a setting given on the command line. */
#define CTD_CONFIG_CMDLINE 0xffffffffu

struct ctd_config {
	char output[CTD_CONFIG_PATH_MAX];     /* "-" stdout, "" none */
	char stream[CTD_CONFIG_PATH_MAX];     /* "" none */
	char spool_dir[CTD_CONFIG_PATH_MAX];  /* "" none */
	char store[CTD_CONFIG_PATH_MAX];      /* SQLite flow store, "" none */
	/* A central PostgreSQL flow database (libpq conninfo), "" none;
	 * it may hold a password: shown through conninfo.h only. */
	char postgresql[CTD_CONFIG_PATH_MAX];
	char record[CTD_CONFIG_PATH_MAX];     /* "" none */
	char control[CTD_CONFIG_PATH_MAX];    /* "" none */
	char control_group[CTD_CONFIG_PATH_MAX]; /* may also use it; "" root only */
	char stream_group[CTD_CONFIG_PATH_MAX];  /* may read the stream; "" root only */
	char metrics[CTD_CONFIG_PATH_MAX];    /* loopback addr:port, "" none */
	char metrics_tls_cert[CTD_CONFIG_PATH_MAX]; /* HTTPS: our certificate */
	char metrics_tls_key[CTD_CONFIG_PATH_MAX];  /* ... its key */
	char metrics_client_ca[CTD_CONFIG_PATH_MAX]; /* ... scrapers' CA */
	char user[CTD_CONFIG_PATH_MAX];       /* drop to this user, "" stay */
	char conntrackd_log[CTD_CONFIG_PATH_MAX]; /* "" none */
	char ipfix[CTD_CONFIG_PATH_MAX];      /* udp:HOST:PORT, tcp:..., "" none */
	char ipfix_tls_ca[CTD_CONFIG_PATH_MAX];   /* tls: verify the collector */
	char ipfix_tls_name[CTD_CONFIG_PATH_MAX]; /* ... as this name, "" HOST */
	char ipfix_tls_cert[CTD_CONFIG_PATH_MAX]; /* ... our certificate, "" none */
	char ipfix_tls_key[CTD_CONFIG_PATH_MAX];  /* ... and its key */
	char syslog_socket[CTD_CONFIG_PATH_MAX];
	char kafka[CTD_CONFIG_PATH_MAX];       /* bootstrap brokers, "" none */
	char kafka_topic[CTD_CONFIG_PATH_MAX];
	/* Every kafka-option as "NAME=VALUE\n", in the order given. */
	char kafka_options[CTD_CONFIG_KAFKA_OPTIONS_BYTES];
	/* Network namespaces watched besides ctd's own: "self" none, "all",
	 * or a comma-separated list of /run/netns names. */
	char netns[CTD_CONFIG_PATH_MAX];
	/* Filter criteria as written ("any": none), by enum ctd_filter_key. */
	char filter[CTD_FILTER__COUNT][CTD_CONFIG_PATH_MAX];
	size_t rcvbuf;
	size_t rcvbuf_max;
	size_t max_flows;          /* 0: the kernel's nf_conntrack_max */
	size_t remember_ends;
	size_t dying_max;
	size_t memory_max;         /* bytes; CTD_CONFIG_AUTO: from the cgroup */
	unsigned budget;
	unsigned expiry_slack;     /* seconds */
	unsigned check_interval;
	unsigned pending_interval;
	unsigned active_timeout;
	unsigned grace;
	unsigned store_retention;  /* seconds the flow store keeps rows */
	unsigned store_rollup_retention; /* ... its hour and day rollups */
	size_t store_max_size;     /* bytes; CTD_CONFIG_AUTO: from the disk */
	unsigned shutdown_timeout;
	unsigned json_events;      /* 1 << CTD_EV_* */
	unsigned stream_events;
	unsigned ipfix_shape;      /* enum ctd_ipfix_shape */
	unsigned ipfix_domain;
	unsigned ipfix_mtu;
	unsigned ipfix_template_refresh;
	unsigned ipfix_template_messages;
	unsigned ipfix_nat_event;  /* enum ctd_ipfix_nat_event */
	unsigned ipfix_pen;
	unsigned syslog_facility;  /* syslog(3) facility number (0-23) */
	unsigned syslog_level;     /* 0 emerg .. 7 debug */
	unsigned syslog_format;    /* 0 RFC 3164, 1 RFC 5424 */
	unsigned kafka_key;        /* 0 the original tuple, 1 none */
	unsigned kafka_events;
	unsigned subscribe;        /* 0 auto (what the outputs need), 1 all */
	unsigned kernel_pressure;  /* 0 fail-open, 1 hold */
	unsigned kernel_pressure_high;  /* table fill, percent */
	unsigned kernel_pressure_low;
	bool syslog;
	bool broadcast_error;
	bool resync;
	bool sysctl;
	bool record_labels;        /* conntrack labels in JSON and IPFIX */
	/* Where each setting got its value, by its place in config.c's
	 * table: 0 the default, a line of `file`, or CTD_CONFIG_CMDLINE.
	 * Errors found later (ctd -t's checks) name it. */
	unsigned line[CTD_CONFIG_SETTINGS];
	char file[CTD_CONFIG_PATH_MAX];
};

void ctd_config_defaults(struct ctd_config *cfg);
/* One setting, from the command line (its origin). Returns 0, -ENOENT
 * for an unknown key or -EINVAL for a bad value, with a message in err
 * ("rcvbuf: 'x' is not a size ..."). */
int ctd_config_set(struct ctd_config *cfg, const char *key, const char *value,
		   char *err, size_t errlen);
/* Reads a file of `key value` lines (# comments). A value may be quoted
 * ("a b", with \" and \\ inside); a key set twice is an error naming
 * both lines, except list settings (kafka-option), which add a line
 * each. A missing file is an error only when must_exist. err gets
 * "path:line: message" ("key set twice: path:3 and path:9"). */
int ctd_config_load(struct ctd_config *cfg, const char *path, bool must_exist,
		    char *err, size_t errlen);
/* The same from an open stream; path only names it in errors. */
int ctd_config_read(struct ctd_config *cfg, FILE *f, const char *path,
		    char *err, size_t errlen);
/* Values that depend on each other, after everything was set. */
void ctd_config_finish(struct ctd_config *cfg);
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
/* Whether key names a setting (for command-line options that map 1:1). */
bool ctd_config_has(const char *key);

#endif
