/* out_file: a buffered record file (JSON lines, conntrackd log lines).
 * Owns the file descriptor and its write buffer; a format renders each
 * record into the buffer. Never blocks: flush writes what the file takes
 * and keeps the rest, and a full buffer (disk full, write errors)
 * refuses records for the retry list. */
#ifndef CTD_OUT_FILE_H
#define CTD_OUT_FILE_H

#include <stddef.h>
#include <stdint.h>

struct ctd_config;
struct ctd_output;
struct ctd_owner;
struct ctd_counter_defs;
struct ctd_output_desc;
struct ctd_setting_group;
struct ctd_record;

#define CTD_OUT_FILE_BUF (1u << 20)
#define CTD_OUT_FILE_SKIP ((size_t)0)
#define CTD_OUT_FILE_TOO_LONG SIZE_MAX

/* Renders rec into buf; returns its length, CTD_OUT_FILE_SKIP for a
 * record this format does not show, or CTD_OUT_FILE_TOO_LONG. */
typedef size_t ctd_out_file_render(void *arg, const struct ctd_record *rec,
				   char *buf, size_t cap);

struct ctd_out_file_fmt {
	const char *name;             /* the output's name: counters, spool */
	ctd_out_file_render *render;
	void *arg;
	void (*free_arg)(void *arg);  /* may be NULL */
	/* A reload's new configuration for arg; may be NULL. */
	void (*reload_arg)(void *arg, const struct ctd_config *next);
	size_t max;                   /* longest rendering */
	/* The file a configuration names, so a reload can move it; NULL:
	 * it cannot move. */
	const char *(*path_of)(const struct ctd_config *cfg);
	/* Its counters' rows (stats.h): the file's own counters, and
	 * which shared ones it can move (JSON: event records). */
	const struct ctd_counter_defs *counters;
	/* One of `shards` processes appending to the file (shards > 1):
	 * its lock is shared with them, and only shard 0 copies what a
	 * deleted file took (once, not once per shard). */
	unsigned shard, shards;
};

/* path "-" is standard output. buf_size 0 means CTD_OUT_FILE_BUF. The
 * file is opened as safefile.c says (no links a local user made; root's,
 * ours or owner's) and handed to owner (may be NULL). The output owns
 * fmt->arg from here on, also on error. */
int ctd_out_file_new(const char *path, const struct ctd_out_file_fmt *fmt,
		     size_t buf_size, const struct ctd_owner *owner,
		     struct ctd_output **ret);
/* JSON lines (jsonfmt), named "json", without labels. */
int ctd_out_json_new(const char *path, size_t buf_size,
		     const struct ctd_owner *owner, struct ctd_output **ret);

/* Whether cfg's JSON records go to standard output (output -). */
bool ctd_out_json_stdout(const struct ctd_config *cfg);

/* Writes to path from now on (reload); bytes still buffered follow
 * to the new file. Not for stdout. */
int ctd_out_file_set_path(struct ctd_output *out, const char *path);

/* The table's rows (outputs.h): `output` (JSON lines) and
 * `conntrackd-log` (conntrackd's log lines, ctlogfmt). */
extern const struct ctd_output_desc ctd_out_json_desc;
extern const struct ctd_output_desc ctd_out_ctlog_desc;
extern const struct ctd_setting_group ctd_out_json_settings;
extern const struct ctd_setting_group ctd_out_ctlog_settings;

#endif
