/* out_file: rendered records to a file or stdout.
 *
 * Records are rendered straight into the write buffer's tail and the
 * loop flushes once per iteration. A write error (ENOSPC, EIO) keeps the
 * bytes in the buffer; when the buffer is full the output refuses
 * records, which then wait on the retry list, so a full disk delays
 * records instead of losing them. While a write streak fails, submit
 * does not retry the write itself: the loop's flush and the delivery
 * timer do, once per turn. Reopen (SIGHUP) moves the buffered bytes to
 * the new file, so log rotation loses nothing either. A file deleted or
 * moved away without a signal is noticed at the next flush (at most
 * every CHECK_GONE_NS) and opened again by its path; what was written
 * into a deleted file since the last look is copied into the new one,
 * so a record is never final in a file nobody can read. The two file
 * outputs of the table (outputs.h), the JSON record file and the
 * conntrackd log, are defined at the end. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/base/mountinfo.h"
#include "ctd/base/safefile.h"
#include "ctd/base/stats.h"
#include "ctd/base/wbuf.h"
#include "ctd/config/cfgcheck.h"
#include "ctd/config/config.h"
#include "ctd/format/ctlogfmt.h"
#include "ctd/format/jsonfmt.h"
#include "ctd/kernel/connlabel.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/out_file.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "ctd/outputs/settle.h"
#include "ctd/service/runlock.h"

/* The record file's default location, the only one ctd creates. */
/* Records in the buffer at most: about 1 MiB of short lines. */
#define SETTLE_MAX 16384
/* Between looks at whether the file is still at its path. */
#define CHECK_GONE_NS 100000000LL
/* Defaults whose directory ctd creates. */
#define DEFAULT_OUTPUT_DIR "/var/log/ctd"
#define DEFAULT_OUTPUT DEFAULT_OUTPUT_DIR "/flows.json"

/* What a file output counts beside delivery (ctd -s, metrics). */
struct file_counters {
	uint64_t torn_lines;    /* lines found cut short (crash, full disk)
	                         * and ended; their records came again */
	uint64_t gone;          /* times the file was found deleted or moved,
	                         * and opened again by its path */
	uint64_t recovered_bytes; /* bytes a deleted file took, copied anew */
};

#define FC(name, prom, help) \
	{ #name, offsetof(struct file_counters, name), false, prom, help, false }

static const struct ctd_counter_def file_counter_rows[] = {
	FC(torn_lines, "torn_lines_total", "Lines found cut short (crash, full disk) and ended."),
	FC(gone, "files_gone_total", "Times the file was found deleted or moved away and opened again by its path."),
	FC(recovered_bytes, "recovered_bytes_total", "Bytes written into a file after it was deleted, copied into the new one."),
};

#define N_FILE_COUNTERS (sizeof(file_counter_rows) / sizeof(file_counter_rows[0]))

/* JSON takes event records, conntrackd's log only ends. */
static const struct ctd_counter_defs json_counters = {
	file_counter_rows, N_FILE_COUNTERS, CTD_SHOWS_EVENTS,
};
static const struct ctd_counter_defs ctlog_counters = {
	file_counter_rows, N_FILE_COUNTERS, 0,
};

struct out_file {
	struct ctd_output base;
	struct file_counters own;
	int fd;
	bool own_fd;
	bool failing;           /* in an error streak: logged already */
	struct ctd_wbuf *wb;
	char *path;
	struct ctd_out_file_fmt fmt;
	struct ctd_owner owner;     /* ctd's user, also for reopens */
	struct ctd_settle settle;   /* records by their end in the byte stream */
	off_t seen_size;            /* size at the last look that found it */
	int64_t seen_ns;            /* when (CLOCK_MONOTONIC_COARSE) */
};

/* EROFS has two causes with two fixes: /proc/self/mountinfo tells. */
static const char *file_errstr(const char *path, int err)
{
	return err == -EROFS ? ctd_mountinfo_erofs(path) : ctd_log_errstr(-err);
}

static struct out_file *to_file(struct ctd_output *out)
{
	return (struct out_file *)out;
}

/* Never through a link a local user made, never someone else's file,
 * and never a file another ctd writes: its lines and ours would
 * interleave, and a flow would be in it twice. Readable too:
 * complete_tail reads the last byte. */
static int open_file(const struct out_file *j, const char *path)
{
	long pid;
	int fd = ctd_safefile_open(path, O_RDWR | O_CREAT | O_APPEND, 0640,
				   CTD_SAFE_OUTPUT, &j->owner), r;

	if (fd < 0)
		return fd;
	r = j->fmt.shards > 1 ? ctd_runlock_file_shared(fd, &pid) :
				ctd_runlock_file(fd, &pid);
	if (r == -EBUSY && pid)
		log_err("another ctd (pid %ld) is writing %s", pid, path);
	else if (r == -EBUSY)
		log_err("another ctd is writing %s", path);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* A reopen of the file ctd holds locked already: its lock goes first
 * (flock locks each open, not the file), and comes back if the new
 * one cannot be had. */
static int reopen_file(const struct out_file *j, const char *path)
{
	int fd;

	if (j->own_fd && j->fd >= 0)
		flock(j->fd, LOCK_UN);
	fd = open_file(j, path);
	if (fd < 0 && j->own_fd && j->fd >= 0)
		flock(j->fd, (j->fmt.shards > 1 ? LOCK_SH : LOCK_EX) | LOCK_NB);
	return fd;
}

/* A crash or a full disk can leave the file ending inside a line. That
 * line ends here, as a line of its own (counted), so the next record is
 * never glued to it; the record it belonged to comes again from the
 * spool, since it was not final. */
static void complete_tail(struct out_file *j)
{
	struct stat st;
	char last;

	if (fstat(j->fd, &st) < 0 || !S_ISREG(st.st_mode) || !st.st_size ||
	    pread(j->fd, &last, 1, st.st_size - 1) != 1 || last == '\n')
		return;
	if (write(j->fd, "\n", 1) != 1)
		return;
	j->own.torn_lines++;
	log_warn("%s: the last line was cut short (a crash or a full disk); "
		 "ended it, its record follows again", j->path);
}

/* Before the file changes (rotation): a record half written ends in the
 * old file, so the new one starts with a whole line. When even that
 * cannot be written (the disk is full), its rest goes to the new file. */
static void finish_line(struct out_file *j)
{
	uint64_t out = ctd_wbuf_total_out(j->wb);

	if (!ctd_settle_inside(&j->settle, out))
		return;
	if (ctd_wbuf_flush_to(j->wb, ctd_settle_oldest_end(&j->settle)) == 0)
		return;
	j->own.torn_lines++;
	log_warn("%s: cannot end the last line before reopening; its rest "
		 "starts the new file", j->path);
}

/* Reserves room for n bytes; NULL when the output must refuse. */
static char *reserve(struct out_file *j, size_t n)
{
	if (j->failing && ctd_wbuf_room(j->wb) < n)
		return NULL;
	return ctd_wbuf_reserve(j->wb, n);
}

static enum ctd_out_status file_submit(struct ctd_output *out,
				       const struct ctd_record *rec)
{
	struct out_file *j = to_file(out);
	char *p = reserve(j, j->fmt.max);
	size_t n;

	if (!p || ctd_settle_pending(&j->settle) >= SETTLE_MAX)
		return CTD_OUT_AGAIN;
	n = j->fmt.render(j->fmt.arg, rec, p, j->fmt.max);
	if (n == CTD_OUT_FILE_TOO_LONG)
		return CTD_OUT_FAILED;
	if (n == CTD_OUT_FILE_SKIP)
		out->stats.skipped++;
	else
		ctd_wbuf_commit(j->wb, n);
	/* Final once the file has every byte up to the record's end. */
	ctd_settle_take(&j->settle, ctd_wbuf_total_in(j->wb));
	return CTD_OUT_DELIVERED;
}

static uint64_t file_settled(struct ctd_output *out)
{
	struct out_file *j = to_file(out);

	return ctd_settle_advance(&j->settle, ctd_wbuf_total_out(j->wb));
}

/* Shutdown: what is not written stays unwritten (delivery's write-ahead
 * log has the records for the spool). */
static void file_abandon(struct ctd_output *out)
{
	struct out_file *j = to_file(out);

	ctd_wbuf_clear(j->wb);
	ctd_settle_abandon(&j->settle);
}

static enum ctd_out_status file_submit_raw(struct ctd_output *out,
					   const void *data, size_t len)
{
	struct out_file *j = to_file(out);
	char *p;

	if (len > CTD_OUT_FILE_BUF)
		return CTD_OUT_FAILED;
	p = reserve(j, len);
	if (!p)
		return CTD_OUT_AGAIN;
	memcpy(p, data, len);
	ctd_wbuf_commit(j->wb, len);
	return CTD_OUT_DELIVERED;
}

static void check_gone(struct out_file *j);

static void file_flush(struct ctd_output *out)
{
	struct out_file *j = to_file(out);
	int r;

	/* First: a file on a disk that failed read-only takes nothing,
	 * and its replacement at the path takes the held bytes. */
	check_gone(j);
	r = ctd_wbuf_flush(j->wb);
	if (r == 0 || r == -EAGAIN) {
		if (j->failing)
			log_info("%s: writing again", j->path);
		if (j->failing && r == 0)
			ctd_output_ready(out);
		j->failing = false;
		return;
	}
	j->base.stats.write_errors++;
	if (!j->failing)
		log_err("%s: write failed: %s; holding records until it "
			"works again", j->path, file_errstr(j->path, r));
	j->failing = true;
}

/* Bytes [from, to) of the deleted file at old into the new file. */
static void recover(struct out_file *j, int old, off_t from, off_t to)
{
	char buf[65536];
	ssize_t n;

	while (from < to) {
		size_t want = (size_t)(to - from) < sizeof(buf) ?
			      (size_t)(to - from) : sizeof(buf);

		n = pread(old, buf, want, from);
		if (n <= 0 || write(j->fd, buf, (size_t)n) != n) {
			j->base.stats.write_errors++;
			log_err("%s: cannot copy what the deleted file held: %s",
				j->path, n < 0 ? strerror(errno) : "short");
			return;
		}
		from += n;
		j->own.recovered_bytes += (uint64_t)n;
	}
}

/* Opens the path again; the deleted file's unread tail comes along,
 * up to its size after the reopen's last flush into it. */
static void reopen_gone(struct out_file *j, const struct stat *held)
{
	int old = dup(j->fd), r;
	off_t from = j->seen_size;
	struct stat end;

	j->own.gone++;
	log_warn("%s was %s while ctd wrote it; opening it again", j->path,
		 held->st_nlink ? "moved or replaced" : "deleted");
	r = ctd_out_file_set_path(&j->base, j->path);
	if (r < 0)
		log_err("%s: cannot open it again: %s", j->path,
			ctd_safefile_strerror(r));
	else if (!held->st_nlink && old >= 0 && j->fmt.shard == 0 &&
		 fstat(old, &end) == 0)
		recover(j, old, from, end.st_size);
	if (old >= 0)
		close(old);
}

static int64_t coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void note_size(struct out_file *j)
{
	struct stat st;

	if (fstat(j->fd, &st) == 0)
		j->seen_size = st.st_size;
}

/* Still the file at the path? Two syscalls, at most every 100 ms. */
static void check_gone(struct out_file *j)
{
	struct stat held, at;
	int64_t now = coarse_ns();

	if (!j->own_fd || now - j->seen_ns < CHECK_GONE_NS ||
	    fstat(j->fd, &held) < 0)
		return;
	j->seen_ns = now;
	if (held.st_nlink && stat(j->path, &at) == 0 &&
	    at.st_ino == held.st_ino && at.st_dev == held.st_dev) {
		j->seen_size = held.st_size;
		return;
	}
	reopen_gone(j, &held);
}

static int file_reopen(struct ctd_output *out)
{
	struct out_file *j = to_file(out);

	return j->own_fd ? ctd_out_file_set_path(out, j->path) : 0;
}

int ctd_out_file_set_path(struct ctd_output *out, const char *path)
{
	struct out_file *j = to_file(out);
	char *copy;
	int fd;

	if (!j->own_fd)
		return -EINVAL;
	ctd_wbuf_flush(j->wb);
	finish_line(j);
	fd = reopen_file(j, path);
	if (fd < 0)
		return fd;
	if (path != j->path) {
		copy = strdup(path);
		if (!copy) {
			close(fd);
			return -ENOMEM;
		}
		free(j->path);
		j->path = copy;
	}
	close(j->fd);
	j->fd = fd;
	ctd_wbuf_set_fd(j->wb, fd);
	if (!ctd_settle_inside(&j->settle, ctd_wbuf_total_out(j->wb)))
		complete_tail(j);
	note_size(j);
	log_info("%s: reopened", j->path);
	/* The new file takes writes: what waits comes now, not at its
	 * next re-send (a file on a failed disk was replaced). */
	if (j->failing) {
		j->failing = false;
		ctd_output_ready(out);
	}
	return 0;
}

static void file_free(struct ctd_output *out)
{
	struct out_file *j = to_file(out);

	if (!j)
		return;
	ctd_wbuf_free(j->wb);
	ctd_settle_free(&j->settle);
	if (j->fmt.free_arg)
		j->fmt.free_arg(j->fmt.arg);
	if (j->own_fd && j->fd >= 0)
		close(j->fd);
	free(j->path);
	free(j);
}

/* A moved path takes effect at once (opened first: a path that cannot
 * be opened changes nothing); to or from stdout needs a restart. */
static int follow_path(struct out_file *j, const char *want)
{
	int r;

	if (strcmp(want, j->own_fd ? j->path : "-") == 0)
		return 0;
	if (!j->own_fd || !*want || strcmp(want, "-") == 0) {
		log_warn("reload: output %s to %s needs a restart",
			 j->base.name, *want ? want : "none");
		return 0;
	}
	r = ctd_out_file_set_path(&j->base, want);
	if (r < 0)
		log_err("reload: cannot open %s: %s; still writing to %s",
			want, ctd_safefile_strerror(r), j->path);
	return r;
}

static int file_reload(struct ctd_output *out, const struct ctd_config *next)
{
	struct out_file *j = to_file(out);
	int r = 0;

	if (j->fmt.path_of)
		r = follow_path(j, j->fmt.path_of(next));
	if (r == 0 && j->fmt.reload_arg)
		j->fmt.reload_arg(j->fmt.arg, next);
	return r;
}

static const struct ctd_output_ops file_ops = {
	.submit = file_submit,
	.submit_raw = file_submit_raw,
	.flush = file_flush,
	.settled = file_settled,
	.abandon = file_abandon,
	.reopen = file_reopen,
	.reload = file_reload,
	.free = file_free,
};

int ctd_out_file_new(const char *path, const struct ctd_out_file_fmt *fmt,
		     size_t buf_size, const struct ctd_owner *owner,
		     struct ctd_output **ret)
{
	struct out_file *j = calloc(1, sizeof(*j));
	bool is_stdout = strcmp(path, "-") == 0;

	if (!j) {
		if (fmt->free_arg)
			fmt->free_arg(fmt->arg);
		return -ENOMEM;
	}
	j->fmt = *fmt;
	j->base.ops = &file_ops;
	j->base.name = fmt->name;
	j->base.counters = fmt->counters;
	j->base.own = &j->own;
	j->fd = -1;
	ctd_settle_init(&j->settle, SETTLE_MAX);
	j->owner = owner ? *owner : CTD_OWNER_NONE;
	j->path = strdup(is_stdout ? "stdout" : path);
	if (!j->path) {
		file_free(&j->base);
		return -ENOMEM;
	}
	j->fd = is_stdout ? STDOUT_FILENO : open_file(j, path);
	j->own_fd = !is_stdout;
	if (j->fd < 0) {
		int r = j->fd;

		file_free(&j->base);
		return r;
	}
	j->wb = ctd_wbuf_new(j->fd, buf_size ? buf_size : CTD_OUT_FILE_BUF);
	if (!j->wb) {
		file_free(&j->base);
		return -ENOMEM;
	}
	if (j->own_fd) {
		complete_tail(j);
		note_size(j);
	}
	ctd_wbuf_count_into(j->wb, &j->base.stats.bytes);
	*ret = &j->base;
	return 0;
}

/* The JSON format's arg: the label names while record-labels is on
 * (NULL: off), replaced on each reload so an edited connlabel.conf
 * takes effect with it. */
struct json_arg {
	struct ctd_connlabel *names;
};

static size_t render_json(void *arg, const struct ctd_record *rec, char *buf,
			  size_t cap)
{
	const struct json_arg *a = arg;
	size_t n = ctd_jsonfmt_record_labels(rec, a->names, buf, cap);

	return n ? n : CTD_OUT_FILE_TOO_LONG;
}

static void json_free_arg(void *arg)
{
	struct json_arg *a = arg;

	ctd_connlabel_free(a->names);
	free(a);
}

/* The output and json-events settings; conntrackd-log's below. */
struct json_settings {
	char path[CTD_SETTING_TEXT_MAX];   /* "-" stdout, "" none */
	unsigned events;
};

struct ctlog_settings {
	char path[CTD_SETTING_TEXT_MAX];   /* "" none */
};

#define JF(field) offsetof(struct json_settings, field)

static const struct ctd_setting json_rows[] = {
	CTD_SETTING("output", CTD_SET_PATH, JF(path), 0, 0, true, true,
		    .def = DEFAULT_OUTPUT),
	CTD_SETTING("json-events", CTD_SET_EVENTS, JF(events), 0, 0, false,
		    false, .def = "destroy"),
};

static const struct ctd_setting ctlog_rows[] = {
	CTD_SETTING("conntrackd-log", CTD_SET_PATH,
		    offsetof(struct ctlog_settings, path), 0, 0, true, true),
};

static const struct json_settings *json_of(const struct ctd_config *cfg)
{
	return ctd_config_group_get(cfg, &ctd_out_json_settings);
}

static const struct ctlog_settings *ctlog_of(const struct ctd_config *cfg)
{
	return ctd_config_group_get(cfg, &ctd_out_ctlog_settings);
}

static const char *json_path(const struct ctd_config *cfg)
{
	return json_of(cfg)->path;
}

bool ctd_out_json_stdout(const struct ctd_config *cfg)
{
	return strcmp(json_path(cfg), "-") == 0;
}

static const char *ctlog_path(const struct ctd_config *cfg)
{
	return ctlog_of(cfg)->path;
}

/* Only the default location is ours to create. */
static void json_check(const void *conf, struct ctd_check *c)
{
	const struct json_settings *set = conf;

	if (*set->path && strcmp(set->path, "-") != 0)
		ctd_check_dir(c, "output", set->path,
			      strcmp(set->path, DEFAULT_OUTPUT) == 0);
}

static void ctlog_check(const void *conf, struct ctd_check *c)
{
	const struct ctlog_settings *set = conf;
	const struct json_settings *json = json_of(ctd_check_config(c));

	if (!*set->path)
		return;
	ctd_check_dir(c, "conntrackd-log", set->path, false);
	if (json && strcmp(json->path, set->path) == 0)
		ctd_check_problem(c, "conntrackd-log", "the same file as "
				  "output: ", set->path);
}

const struct ctd_setting_group ctd_out_json_settings = {
	.name = "json",
	.rows = json_rows,
	.n_rows = sizeof(json_rows) / sizeof(json_rows[0]),
	.size = sizeof(struct json_settings),
	.off_key = "output", .off_value = "none",
	.check = json_check,
	.help =
"  -o, --output FILE        JSON-lines record file (default " DEFAULT_OUTPUT ";\n"
"                           '-' for stdout, 'none' for no file)\n"
"      --json-events LIST   what the JSON file gets: new,update,destroy\n"
"                           (default destroy: one record per flow)\n",
};

const struct ctd_setting_group ctd_out_ctlog_settings = {
	.name = "ctlog",
	.rows = ctlog_rows,
	.n_rows = 1,
	.size = sizeof(struct ctlog_settings),
	.off_key = "conntrackd-log", .off_value = "none",
	.check = ctlog_check,
	.help =
"      --conntrackd-log FILE  also log ended flows in conntrackd's LogFile\n"
"                           format (stats mode), for existing parsers\n",
};

static void json_reload_arg(void *arg, const struct ctd_config *next)
{
	struct json_arg *a = arg;

	ctd_connlabel_free(a->names);
	a->names = ctd_connlabel_open(next->record_labels);
}

static int json_new(const char *path, size_t buf_size, bool labels,
		    unsigned shard, unsigned shards,
		    const struct ctd_owner *owner, struct ctd_output **ret)
{
	struct ctd_out_file_fmt json = {
		ctd_out_json_desc.name, render_json, NULL, json_free_arg,
		json_reload_arg, CTD_JSON_MAX, json_path, &json_counters,
		shard, shards
	};
	struct json_arg *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->names = ctd_connlabel_open(labels);
	json.arg = a;
	return ctd_out_file_new(path, &json, buf_size, owner, ret);
}

int ctd_out_json_new(const char *path, size_t buf_size,
		     const struct ctd_owner *owner, struct ctd_output **ret)
{
	return json_new(path, buf_size, false, 0, 1, owner, ret);
}

/* A path that is there but not safe to write as root is named as such:
 * the admin must look at what someone put there. */
static void log_open_error(const char *what, const char *path, int err)
{
	if (err == -EBUSY)
		return;    /* named the other ctd already */
	if (ctd_safefile_refused(err))
		log_err("refusing %s %s: it %s; left untouched (see ctd(8), "
			"SECURITY)", what, path, ctd_safefile_strerror(err));
	else
		log_err("cannot open %s %s: %s", what, path,
			file_errstr(path, err));
}

static bool json_enabled(const struct ctd_config *cfg)
{
	return *json_of(cfg)->path;
}

static int json_create(struct ev_loop *loop, const struct ctd_config *cfg,
		       const struct ctd_owner *owner, struct ctd_output **ret)
{
	const char *path = json_of(cfg)->path;
	int r;

	(void)loop;
	/* Only the default location is ours to create. */
	if (strcmp(path, DEFAULT_OUTPUT) == 0) {
		r = ctd_safefile_dir(DEFAULT_OUTPUT_DIR, true, 0750, NULL);
		if (r < 0)
			log_warn("cannot create %s: %s", DEFAULT_OUTPUT_DIR,
				 ctd_safefile_strerror(r));
		else
			close(r);
	}
	r = json_new(path, 0, cfg->record_labels, cfg->shard,
		     (unsigned)cfg->shards, owner, ret);
	if (r < 0)
		log_open_error("output", path, r);
	return r;
}

const struct ctd_output_desc ctd_out_json_desc = {
	.name = "json",
	.settings = &ctd_out_json_settings,
	.counters = &json_counters,
	.enabled = json_enabled,
	.create = json_create,
	.events_setting = JF(events),
};

static bool ctlog_enabled(const struct ctd_config *cfg)
{
	return *ctlog_path(cfg);
}

static int ctlog_create(struct ev_loop *loop, const struct ctd_config *cfg,
			const struct ctd_owner *owner,
			struct ctd_output **ret)
{
	struct ctd_out_file_fmt fmt = {
		ctd_out_ctlog_desc.name, ctd_ctlog_line, NULL, ctd_ctlog_free,
		NULL, CTD_CTLOG_MAX, ctlog_path, &ctlog_counters, cfg->shard,
		(unsigned)cfg->shards
	};
	int r;

	(void)loop;
	fmt.arg = ctd_ctlog_new();
	if (!fmt.arg)
		return -ENOMEM;
	r = ctd_out_file_new(ctlog_path(cfg), &fmt, 0, owner, ret);
	if (r < 0)
		log_open_error("conntrackd log", ctlog_path(cfg), r);
	return r;
}

/* conntrackd writes a line only when a flow ends. */
const struct ctd_output_desc ctd_out_ctlog_desc = {
	.name = "ctlog",
	.settings = &ctd_out_ctlog_settings,
	.counters = &ctlog_counters,
	.enabled = ctlog_enabled,
	.create = ctlog_create,
	.events = 1u << CTD_EV_DESTROY,
	.events_setting = CTD_OUTPUT_EVENTS_FIXED,
};
