/* out_stream: the stream-socket output.
 *
 * Readers connect to a Unix socket and read JSON lines; listen.c admits
 * root and the members of stream-group only, by the peer's credentials. With
 * no reader connected, or while any reader's buffer is full, the output
 * refuses records: they wait on the retry list, and the spool beyond it,
 * until a reader can take them. All readers get the same records, and a
 * record goes to all of them or to none, so a retry never doubles one
 * for a reader that already had it. Bytes still queued for a reader that
 * disconnects are lost to that reader only, and counted (lost_bytes). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <ev.h>

#include "ctd/base/listen.h"
#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/base/wbuf.h"
#include "ctd/config/cfgcheck.h"
#include "ctd/config/config.h"
#include "ctd/format/jsonfmt.h"
#include "ctd/kernel/connlabel.h"
#include "ctd/outputs/out_stream.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "ctd/outputs/settle.h"
#include "ctd/service/daemon.h"

#define READER_BUF (256u << 10)
#define SETTLE_MAX 16384         /* records not in every socket yet */

struct out_stream;

struct reader {
	int fd;
	ev_io io;
	struct ctd_wbuf *wb;
	struct out_stream *s;
	uint64_t base;          /* the stream position when it connected */
};

/* What the stream counts beside delivery (ctd -s, metrics). */
struct stream_counters {
	uint64_t consumers;     /* gauge: connected readers */
	uint64_t refused;       /* readers refused: too many */
	uint64_t lost_bytes;    /* unread bytes of readers that went away */
};

#define SC(name, gauge, prom, help) \
	{ #name, offsetof(struct stream_counters, name), gauge, prom, help, false }

static const struct ctd_counter_def stream_counter_rows[] = {
	SC(consumers, true, "consumers", "Connected stream readers."),
	SC(refused, false, "refused_total", "Stream readers refused: too many."),
	SC(lost_bytes, false, "lost_bytes_total", "Unread bytes of stream readers that went away."),
};

static const struct ctd_counter_defs stream_counters = {
	stream_counter_rows,
	sizeof(stream_counter_rows) / sizeof(stream_counter_rows[0]),
	CTD_SHOWS_EVENTS,
};

struct out_stream {
	struct ctd_output base;
	struct stream_counters own;
	struct ev_loop *loop;
	int lfd;
	ev_io accept_io;
	bool refused;           /* said AGAIN since the last ready */
	char *path;
	gid_t group;            /* may read besides root; -1 none */
	struct reader *rd[CTD_STREAM_MAX_READERS];
	size_t n;
	uint64_t pos;           /* bytes of records taken since the start */
	struct ctd_settle settle;
	struct ctd_connlabel *names;  /* record-labels; NULL: off */
};

static struct out_stream *to_stream(struct ctd_output *out)
{
	return (struct out_stream *)out;
}

static void drop_reader(struct out_stream *s, size_t i, const char *why)
{
	struct reader *r = s->rd[i];

	s->own.lost_bytes += ctd_wbuf_pending(r->wb);
	log_info("%s: reader left (%s)", s->path, why);
	ev_io_stop(s->loop, &r->io);
	close(r->fd);
	ctd_wbuf_free(r->wb);
	free(r);
	s->rd[i] = s->rd[--s->n];
	s->own.consumers = s->n;
}

static size_t index_of(struct out_stream *s, struct reader *r)
{
	size_t i = 0;

	while (i < s->n && s->rd[i] != r)
		i++;
	return i;
}

static void became_ready(struct out_stream *s)
{
	if (!s->refused)
		return;
	s->refused = false;
	ctd_output_ready(&s->base);
}

/* Writes what the reader's socket takes; watches for writability while
 * bytes remain. Returns false when the reader is gone. */
static bool flush_reader(struct out_stream *s, size_t i)
{
	struct reader *r = s->rd[i];
	int err = ctd_wbuf_flush(r->wb);
	int want = EV_READ;

	if (err < 0 && err != -EAGAIN) {
		s->base.stats.write_errors++;
		drop_reader(s, i, strerror(-err));
		return false;
	}
	if (err == -EAGAIN)
		want |= EV_WRITE;
	if ((r->io.events & (EV_READ | EV_WRITE)) != want) {
		ev_io_stop(s->loop, &r->io);
		ev_io_set(&r->io, r->fd, want);
		ev_io_start(s->loop, &r->io);
	}
	return true;
}

static void on_reader(struct ev_loop *loop, ev_io *w, int revents)
{
	struct reader *r = w->data;
	struct out_stream *s = r->s;
	size_t i = index_of(s, r);
	char trash[512];
	ssize_t n;

	(void)loop;
	if (revents & EV_READ) {
		/* Readers have nothing to say; reading finds their EOF. */
		n = recv(r->fd, trash, sizeof(trash), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			drop_reader(s, i, n == 0 ? "closed" : strerror(errno));
			became_ready(s);
			return;
		}
	}
	if ((revents & EV_WRITE) && flush_reader(s, i) &&
	    !ctd_wbuf_pending(r->wb))
		became_ready(s);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct out_stream *s = w->data;
	struct reader *r;
	int fd;

	(void)revents;
	fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (s->n == CTD_STREAM_MAX_READERS ||
	    !ctd_listen_peer_allowed(fd, s->group)) {
		s->own.refused++;
		close(fd);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->wb = ctd_wbuf_new(fd, READER_BUF))) {
		free(r);
		close(fd);
		return;
	}
	ctd_wbuf_count_into(r->wb, &s->base.stats.bytes);
	r->fd = fd;
	r->s = s;
	r->base = s->pos;
	ev_io_init(&r->io, on_reader, fd, EV_READ);
	r->io.data = r;
	ev_io_start(loop, &r->io);
	s->rd[s->n++] = r;
	s->own.consumers = s->n;
	log_info("%s: reader connected (%zu now)", s->path, s->n);
	became_ready(s);
}

static bool all_have_room(struct out_stream *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (ctd_wbuf_room(s->rd[i]->wb) < CTD_JSON_MAX)
			return false;
	return s->n > 0;
}

static enum ctd_out_status stream_submit(struct ctd_output *out,
					 const struct ctd_record *rec)
{
	struct out_stream *s = to_stream(out);
	char *first;
	size_t len;

	if (!all_have_room(s) || ctd_settle_pending(&s->settle) >= SETTLE_MAX) {
		s->refused = true;
		return CTD_OUT_AGAIN;
	}
	first = ctd_wbuf_reserve(s->rd[0]->wb, CTD_JSON_MAX);
	len = ctd_jsonfmt_record_labels(rec, s->names, first, CTD_JSON_MAX);
	if (!len)
		return CTD_OUT_FAILED;
	for (size_t i = 1; i < s->n; i++) {
		memcpy(ctd_wbuf_reserve(s->rd[i]->wb, len), first, len);
		ctd_wbuf_commit(s->rd[i]->wb, len);
	}
	ctd_wbuf_commit(s->rd[0]->wb, len);
	s->pos += len;
	ctd_settle_take(&s->settle, s->pos);
	return CTD_OUT_DELIVERED;
}

/* Final once every reader has it in its socket (the kernel keeps it for
 * the reader even if ctd dies); a reader that left takes its unread
 * bytes with it (lost_bytes). */
static uint64_t stream_settled(struct ctd_output *out)
{
	struct out_stream *s = to_stream(out);
	uint64_t done = s->pos;

	for (size_t i = 0; i < s->n; i++) {
		uint64_t at = s->rd[i]->base + ctd_wbuf_total_out(s->rd[i]->wb);

		if (at < done)
			done = at;
	}
	return ctd_settle_advance(&s->settle, done);
}

static void stream_abandon(struct ctd_output *out)
{
	struct out_stream *s = to_stream(out);

	for (size_t i = 0; i < s->n; i++)
		ctd_wbuf_clear(s->rd[i]->wb);
	ctd_settle_abandon(&s->settle);
}

static void stream_flush(struct ctd_output *out)
{
	struct out_stream *s = to_stream(out);
	size_t i = s->n;

	/* Backwards: dropping a reader moves the last one into its slot. */
	while (i-- > 0)
		if (ctd_wbuf_pending(s->rd[i]->wb))
			flush_reader(s, i);
}

static void stream_free(struct ctd_output *out)
{
	struct out_stream *s = to_stream(out);

	while (s->n)
		drop_reader(s, s->n - 1, "ctd stops");
	if (s->lfd >= 0) {
		ev_io_stop(s->loop, &s->accept_io);
		close(s->lfd);
		unlink(s->path);
	}
	free(s->path);
	ctd_settle_free(&s->settle);
	ctd_connlabel_free(s->names);
	free(s);
}

/* record-labels and connlabel.conf, as the file output takes them. */
static int stream_reload(struct ctd_output *out, const struct ctd_config *next)
{
	struct out_stream *s = to_stream(out);

	ctd_connlabel_free(s->names);
	s->names = ctd_connlabel_open(next->record_labels);
	return 0;
}

static const struct ctd_output_ops stream_ops = {
	.submit = stream_submit,
	.flush = stream_flush,
	.settled = stream_settled,
	.abandon = stream_abandon,
	.free = stream_free,
	.reload = stream_reload,
};

int ctd_out_stream_new(struct ev_loop *loop, const char *path, gid_t group,
		       struct ctd_output **ret)
{
	struct out_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base.ops = &stream_ops;
	ctd_settle_init(&s->settle, SETTLE_MAX);
	s->base.name = ctd_out_stream_desc.name;
	s->base.counters = &stream_counters;
	s->base.own = &s->own;
	s->loop = loop;
	s->group = group;
	s->path = strdup(path);
	s->lfd = s->path ? ctd_listen_unix(path, group) : -ENOMEM;
	if (s->lfd < 0) {
		int r = s->lfd;

		stream_free(&s->base);
		return r;
	}
	ev_io_init(&s->accept_io, on_accept, s->lfd, EV_READ);
	s->accept_io.data = s;
	ev_io_start(loop, &s->accept_io);
	*ret = &s->base;
	return 0;
}

/* The stream, stream-events and stream-group settings. */
struct stream_settings {
	char path[CTD_SETTING_TEXT_MAX];    /* "" none */
	char group[CTD_SETTING_TEXT_MAX];   /* may read it; "" root only */
	unsigned events;
};

#define SF(field) offsetof(struct stream_settings, field)

static const struct ctd_setting stream_rows[] = {
	CTD_SETTING("stream", CTD_SET_PATH, SF(path), 0, 0, true, false),
	CTD_SETTING("stream-events", CTD_SET_EVENTS, SF(events), 0, 0, false,
		    false, .def = "destroy"),
	CTD_SETTING("stream-group", CTD_SET_PATH, SF(group), 0, 0, true, false),
};

static void stream_check(const void *conf, struct ctd_check *c)
{
	const struct stream_settings *set = conf;

	ctd_check_group(c, "stream-group", set->group, set->path);
	if (!*set->path)
		return;
	ctd_check_socket(c, "stream", set->path);
	ctd_check_dir(c, "stream", set->path, false);
}

const struct ctd_setting_group ctd_out_stream_settings = {
	.name = "stream",
	.rows = stream_rows,
	.n_rows = sizeof(stream_rows) / sizeof(stream_rows[0]),
	.size = sizeof(struct stream_settings),
	.off_key = "stream", .off_value = "none",
	/* One listening socket cannot be split between shard processes. */
	.one_process = "a stream socket",
	.check = stream_check,
	.help =
"      --stream PATH        also serve records as JSON lines on a Unix socket\n"
"      --stream-events LIST the same for --stream (default destroy)\n"
"      --stream-group GROUP members of GROUP may read the stream socket too\n"
"                           (default none: root only)\n",
};

static const struct stream_settings *settings_of(const struct ctd_config *cfg)
{
	return ctd_config_group_get(cfg, &ctd_out_stream_settings);
}

static bool stream_enabled(const struct ctd_config *cfg)
{
	return *settings_of(cfg)->path;
}

static int stream_create(struct ev_loop *loop, const struct ctd_config *cfg,
			 const struct ctd_owner *owner, struct ctd_output **ret)
{
	const struct stream_settings *set = settings_of(cfg);
	gid_t group;
	char why[CTD_CONFIG_PATH_MAX + 128];
	int r = ctd_daemon_find_group(set->group, &group);

	(void)owner;    /* a socket: root's, its group stream-group's */
	if (r < 0) {
		log_err("stream-group: no group '%s'", set->group);
		return r;
	}
	r = ctd_out_stream_new(loop, set->path, group, ret);
	if (r < 0)
		log_err("%s", ctd_listen_refusal(r, set->path, why, sizeof(why)));
	else
		stream_reload(*ret, cfg);
	return r;
}

const struct ctd_output_desc ctd_out_stream_desc = {
	.name = "stream",
	.settings = &ctd_out_stream_settings,
	.counters = &stream_counters,
	.enabled = stream_enabled,
	.create = stream_create,
	.events_setting = SF(events),
};
