/* out_json: JSON lines to a file or stdout.
 *
 * Records are rendered straight into the write buffer's tail and the
 * loop flushes once per iteration. A write error keeps the bytes in the
 * buffer and is logged once per error streak; only a record that finds
 * the buffer still full is lost, and that is counted (out_dropped).
 * Holding such records back for a retry is the output-reliability work
 * (missed-event cache and dying list), not this module's. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctd/jsonfmt.h"
#include "ctd/log.h"
#include "ctd/out_json.h"
#include "ctd/stats.h"
#include "ctd/wbuf.h"

#define JSON_BUF_SIZE (1u << 20)

struct ctd_out_json {
	int fd;
	bool own_fd;
	bool failing;           /* in an error streak: logged already */
	struct ctd_wbuf *wb;
	struct ctd_stats *stats;
	char *path;
};

static int open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

	return fd < 0 ? -errno : fd;
}

int ctd_out_json_new(const char *path, struct ctd_stats *stats,
		     struct ctd_out_json **ret)
{
	struct ctd_out_json *out = calloc(1, sizeof(*out));
	bool is_stdout = strcmp(path, "-") == 0;

	if (!out)
		return -ENOMEM;
	out->stats = stats;
	out->path = strdup(is_stdout ? "stdout" : path);
	out->fd = is_stdout ? STDOUT_FILENO : open_file(path);
	out->own_fd = !is_stdout;
	if (out->fd < 0 || !out->path) {
		int r = out->fd < 0 ? out->fd : -ENOMEM;

		free(out->path);
		free(out);
		return r;
	}
	out->wb = ctd_wbuf_new(out->fd, JSON_BUF_SIZE);
	if (!out->wb) {
		ctd_out_json_free(out);
		return -ENOMEM;
	}
	*ret = out;
	return 0;
}

void ctd_out_json_free(struct ctd_out_json *out)
{
	if (!out)
		return;
	if (out->wb)
		ctd_out_json_flush(out);
	ctd_wbuf_free(out->wb);
	if (out->own_fd)
		close(out->fd);
	free(out->path);
	free(out);
}

void ctd_out_json_submit(struct ctd_out_json *out, const struct ctd_record *rec)
{
	char *p = ctd_wbuf_reserve(out->wb, CTD_JSON_MAX);
	size_t n;

	if (!p) {
		if (out->stats->out_dropped++ == 0)
			log_err("%s: output stuck, dropping records (see out_dropped)",
				out->path);
		return;
	}
	n = ctd_jsonfmt_record(rec, p, CTD_JSON_MAX);
	if (!n) {
		out->stats->out_dropped++;
		return;
	}
	ctd_wbuf_commit(out->wb, n);
	out->stats->out_records++;
	out->stats->out_bytes += n;
}

int ctd_out_json_flush(struct ctd_out_json *out)
{
	int r = ctd_wbuf_flush(out->wb);

	if (r == 0 || r == -EAGAIN) {
		if (out->failing)
			log_info("%s: writing again", out->path);
		out->failing = false;
		return r;
	}
	out->stats->out_write_errors++;
	if (!out->failing)
		log_err("%s: write failed: %s; keeping records buffered",
			out->path, strerror(-r));
	out->failing = true;
	return r;
}
