/* setting: the row that describes one setting, and the group that
 * brings an output's rows to the configuration.
 *
 * config.c keeps ctd's own rows (kernel, flows, delivery, control);
 * each output keeps its rows in its own file, in a group that also
 * sizes its part of struct ctd_config, checks its values against the
 * system for `ctd -t`, says how to turn it off for a watcher and gives
 * its --help lines. The file reader, the command line's options and
 * --help, `ctd -t -v`, a reload's diff and the man-page check all read
 * the rows, so an output's settings are written once, in its file. */
#ifndef CTD_SETTING_H
#define CTD_SETTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum ctd_setting_type {
	CTD_SET_SIZE,      /* size_t, k/M/G suffixes */
	CTD_SET_COUNT,     /* size_t, plain number */
	CTD_SET_UINT,      /* unsigned, plain number */
	CTD_SET_SECS,      /* unsigned seconds */
	CTD_SET_DURATION,  /* unsigned seconds, written with s/m/h/d */
	CTD_SET_BOOL,
	CTD_SET_PATH,      /* text; "none" clears it when none_ok */
	CTD_SET_EVENTS,    /* new,update,destroy as 1 << CTD_EV_* */
	CTD_SET_LOOPBACK,  /* ADDR:PORT, or none */
	CTD_SET_FILTER,    /* a filter criterion; min is its key */
	CTD_SET_CHOICE,    /* one of words, stored as its index */
	CTD_SET_OPTIONS,   /* NAME=VALUE, each line adds one; none clears */
	CTD_SET_CONNINFO,  /* a path-like text shown with passwords hidden */
};

/* The text fields of an output's struct (CTD_SET_PATH, _LOOPBACK,
 * _CONNINFO) are char[CTD_SETTING_TEXT_MAX]; an OPTIONS field is
 * char[max] holding at most min lines. */
#define CTD_SETTING_TEXT_MAX 1024

struct ctd_setting {
	const char *key;
	enum ctd_setting_type type;
	size_t off;                  /* in its group's struct */
	unsigned long long min, max; /* bounds; see the types */
	bool none_ok;
	bool live;                   /* a reload applies it (else: restart) */
	const char *const *words;    /* CHOICE: NULL-terminated */
	/* Optional: a stricter check of the value's text; 0 or -EINVAL
	 * with why saying what was wanted. */
	int (*check)(const char *value, char *why, size_t whylen);
	const char *def;             /* default as the file says it; NULL 0 */
};

/* A row: key, type, offset, min, max, none_ok, live, then any of
 * .words, .check, .def. */
#define CTD_SETTING(k, t, o, lo, hi, none, lv, ...)                    \
	{ .key = (k), .type = (t), .off = (o), .min = (lo), .max = (hi),   \
	  .none_ok = (none), .live = (lv), __VA_ARGS__ }

/* Reports one problem of a group's values (ctd -t and the start):
 * the key it is about and what is wrong. cfgcheck.h's helpers call it. */
struct ctd_check;

struct ctd_setting_group {
	const char *name;            /* the output's name */
	const struct ctd_setting *rows;
	size_t n_rows;
	size_t size;                 /* its struct's size */
	/* The key that turns the output off for a watcher (ctd -f), and
	 * its value then ("none", "no"). */
	const char *off_key, *off_value;
	/* What one process alone can own (a listening socket): while the
	 * output is on, ctd -t wants shards 1 ("a stream socket needs
	 * shards 1"); NULL: it works in every shard. */
	const char *one_process;
	/* Its --help lines, each ending in a newline. */
	const char *help;
	/* What its values need from the system (directories, sockets,
	 * files); may be NULL. conf is the group's struct. */
	void (*check)(const void *conf, struct ctd_check *c);
	/* What its values that the system decides come to here (ctd -t
	 * -v prints it: "ctd: store-max-size auto is ..."); may be NULL. */
	void (*note)(const void *conf, FILE *f);
};

#endif
