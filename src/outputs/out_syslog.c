/* out_syslog: records as syslog messages.
 *
 * The text is conntrackd's log line (what conntrackd's stats mode sends
 * to syslog), so a syslog pipeline built for conntrackd keeps working.
 * RFC 5424 adds the record's fields as structured data. Messages are
 * rendered into a buffer and leave with sendmmsg at the loop's flush; the
 * socket is non-blocking, so a stalled syslog daemon fills the buffer and
 * then the retry list instead of stalling the event loop. */
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/base/stats.h"
#include "ctd/config/cfgcheck.h"
#include "ctd/config/config.h"
#include "ctd/flows/record.h"
#include "ctd/format/ctlogfmt.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/outputs/out_syslog.h"
#include "ctd/outputs/output.h"
#include "ctd/outputs/outputs.h"
#include "ctd/outputs/settle.h"

#define BUF_SIZE (256u << 10)
#define MSG_MAX 2048
#define BATCH 64
#define SETTLE_MAX 16384

struct out_syslog {
	struct ctd_output base;
	struct ev_loop *loop;
	struct ctd_out_syslog_cfg cfg;
	struct sockaddr_un addr;
	struct ctd_ctlog *fmt;
	char host[64];
	int fd;
	ev_io io;
	bool failing;
	bool refusing;
	/* Messages as [u16 length][bytes], oldest at head. */
	uint8_t *buf;
	size_t head, len;
	uint64_t queued, sent;     /* messages since the start */
	struct ctd_settle settle;
};

static struct out_syslog *to_syslog(struct ctd_output *out)
{
	return (struct out_syslog *)out;
}

static size_t header(struct out_syslog *s, const struct ctd_record *rec,
		     char *p, size_t cap)
{
	unsigned pri = s->cfg.facility * 8 + s->cfg.level;
	time_t t = (time_t)(rec->end_ns / 1000000000u);
	struct tm tm;
	char stamp[40];

	if (!s->cfg.rfc5424) {
		localtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
		return (size_t)snprintf(p, cap, "<%u>%s ctd[%d]: ", pri, stamp,
					(int)getpid());
	}
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	return (size_t)snprintf(p, cap, "<%u>1 %s.%06uZ %s ctd %d flow "
				"[ctd@32473 end_reason=\"%s\" id=\"%u\"] ", pri,
				stamp, (unsigned)(rec->end_ns % 1000000000u / 1000),
				s->host, (int)getpid(),
				ctd_end_reason_name(rec->end_reason), rec->id);
}

static enum ctd_out_status syslog_submit(struct ctd_output *out,
					 const struct ctd_record *rec)
{
	struct out_syslog *s = to_syslog(out);
	char *p;
	size_t n, text;

	if (rec->events || rec->end_reason == CTD_END_ACTIVE) {
		out->stats.skipped++;
		ctd_settle_take(&s->settle, s->queued);
		return CTD_OUT_DELIVERED;
	}
	if (s->len + 2 + MSG_MAX > BUF_SIZE && s->head) {
		memmove(s->buf, s->buf + s->head, s->len - s->head);
		s->len -= s->head;
		s->head = 0;
	}
	if (s->len + 2 + MSG_MAX > BUF_SIZE ||
	    ctd_settle_pending(&s->settle) >= SETTLE_MAX) {
		s->refusing = true;
		return CTD_OUT_AGAIN;
	}
	p = (char *)s->buf + s->len + 2;
	n = header(s, rec, p, MSG_MAX);
	text = ctd_ctlog_text(s->fmt, rec, p + n, MSG_MAX - n);
	if (n >= MSG_MAX || !text)
		return CTD_OUT_FAILED;
	n += text;
	s->buf[s->len] = (uint8_t)(n >> 8);
	s->buf[s->len + 1] = (uint8_t)n;
	s->len += 2 + n;
	ctd_settle_take(&s->settle, ++s->queued);
	return CTD_OUT_DELIVERED;
}

/* A message is final once the syslog socket took it. */
static uint64_t syslog_settled(struct ctd_output *out)
{
	struct out_syslog *s = to_syslog(out);

	return ctd_settle_advance(&s->settle, s->sent);
}

static void syslog_abandon(struct ctd_output *out)
{
	struct out_syslog *s = to_syslog(out);

	s->sent = s->queued;
	s->head = s->len = 0;
	ctd_settle_abandon(&s->settle);
}

static int reconnect(struct out_syslog *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	if (connect(s->fd, (struct sockaddr *)&s->addr, sizeof(s->addr)) < 0)
		return -errno;
	return 0;
}

static void note_error(struct out_syslog *s, int err)
{
	s->base.stats.write_errors++;
	if (!s->failing)
		log_err("syslog %s: %s; holding records", s->cfg.socket, strerror(err));
	s->failing = true;
}

/* One sendmmsg; false when the socket takes no more now. */
static bool send_batch(struct out_syslog *s)
{
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	size_t off = s->head;
	unsigned k = 0;
	int r;

	for (; k < BATCH && off < s->len; k++) {
		size_t n = (size_t)s->buf[off] << 8 | s->buf[off + 1];

		iov[k] = (struct iovec){ s->buf + off + 2, n };
		mm[k] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[k],
						       .msg_iovlen = 1 } };
		off += 2 + n;
	}
	r = sendmmsg(s->fd, mm, k, MSG_DONTWAIT);
	if (r < 0) {
		if (errno == EAGAIN) {
			ev_io_start(s->loop, &s->io);
			return false;
		}
		note_error(s, errno);
		/* The daemon restarted or is gone: a new socket next time. */
		if (errno == ECONNREFUSED || errno == ENOTCONN || errno == ENOENT)
			reconnect(s);
		return false;
	}
	if (s->failing)
		log_info("syslog %s: sending again", s->cfg.socket);
	s->failing = false;
	for (int i = 0; i < r; i++) {
		s->head += 2 + iov[i].iov_len;
		s->base.stats.bytes += iov[i].iov_len;
	}
	s->sent += (uint64_t)r;
	return true;
}

static void syslog_flush(struct ctd_output *out)
{
	struct out_syslog *s = to_syslog(out);

	if (s->fd < 0 && reconnect(s) < 0)
		return;
	ev_io_stop(s->loop, &s->io);
	while (s->head < s->len && send_batch(s))
		;
	if (s->head == s->len)
		s->head = s->len = 0;
	if (s->refusing && s->len - s->head < BUF_SIZE / 2) {
		s->refusing = false;
		ctd_output_ready(out);
	}
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct out_syslog *s = w->data;

	(void)loop;
	(void)revents;
	syslog_flush(&s->base);
}

static void syslog_free(struct ctd_output *out)
{
	struct out_syslog *s = to_syslog(out);

	if (!s)
		return;
	ev_io_stop(s->loop, &s->io);
	if (s->fd >= 0)
		close(s->fd);
	ctd_ctlog_free(s->fmt);
	free(s->buf);
	ctd_settle_free(&s->settle);
	free(s);
}

static const struct ctd_output_ops syslog_ops = {
	.submit = syslog_submit,
	.flush = syslog_flush,
	.settled = syslog_settled,
	.abandon = syslog_abandon,
	.free = syslog_free,
};

int ctd_out_syslog_new(struct ev_loop *loop, const struct ctd_out_syslog_cfg *cfg,
		       struct ctd_output **ret)
{
	struct out_syslog *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	ctd_settle_init(&s->settle, SETTLE_MAX);
	s->base.ops = &syslog_ops;
	s->base.name = ctd_out_syslog_desc.name;
	s->loop = loop;
	s->cfg = *cfg;
	s->fd = -1;
	s->addr.sun_family = AF_UNIX;
	if (strlen(cfg->socket) >= sizeof(s->addr.sun_path)) {
		free(s);
		return -ENAMETOOLONG;
	}
	strcpy(s->addr.sun_path, cfg->socket);
	if (gethostname(s->host, sizeof(s->host) - 1) < 0 || !*s->host)
		strcpy(s->host, "-");
	s->fmt = ctd_ctlog_new();
	s->buf = malloc(BUF_SIZE);
	if (!s->fmt || !s->buf) {
		syslog_free(&s->base);
		return -ENOMEM;
	}
	r = reconnect(s);
	if (r < 0) {
		syslog_free(&s->base);
		return r;
	}
	ev_io_init(&s->io, on_writable, s->fd, EV_WRITE);
	s->io.data = s;
	*ret = &s->base;
	return 0;
}

/* The syslog and syslog-* settings. */
struct syslog_settings {
	char socket[CTD_SETTING_TEXT_MAX];
	unsigned facility;       /* syslog(3) facility number (0-23) */
	unsigned level;          /* 0 emerg .. 7 debug */
	unsigned format;         /* 0 RFC 3164, 1 RFC 5424 */
	bool on;
};

/* syslog(3)'s facility numbers: kern is 0, local7 is 23. */
static const char *const facilities[] = {
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console",
	"solaris-cron", "local0", "local1", "local2", "local3", "local4",
	"local5", "local6", "local7", NULL
};
static const char *const levels[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
	NULL
};
static const char *const formats[] = { "rfc3164", "rfc5424", NULL };

#define YF(field) offsetof(struct syslog_settings, field)

static const struct ctd_setting syslog_rows[] = {
	CTD_SETTING("syslog", CTD_SET_BOOL, YF(on), 0, 0, false, false),
	CTD_SETTING("syslog-facility", CTD_SET_CHOICE, YF(facility), 0, 0,
		    false, false, .words = facilities, .def = "local0"),
	CTD_SETTING("syslog-level", CTD_SET_CHOICE, YF(level), 0, 0, false,
		    false, .words = levels, .def = "info"),
	CTD_SETTING("syslog-format", CTD_SET_CHOICE, YF(format), 0, 0, false,
		    false, .words = formats),
	CTD_SETTING("syslog-socket", CTD_SET_PATH, YF(socket), 0, 0, false,
		    false, .def = "/dev/log"),
};

static void syslog_check(const void *conf, struct ctd_check *c)
{
	const struct syslog_settings *set = conf;

	if (set->on)
		ctd_check_socket(c, "syslog-socket", set->socket);
}

const struct ctd_setting_group ctd_out_syslog_settings = {
	.name = "syslog",
	.rows = syslog_rows,
	.n_rows = sizeof(syslog_rows) / sizeof(syslog_rows[0]),
	.size = sizeof(struct syslog_settings),
	.off_key = "syslog", .off_value = "no",
	.check = syslog_check,
	.help =
"      --syslog yes         also send each record to syslog (--syslog-facility,\n"
"                           --syslog-level, --syslog-format rfc3164|rfc5424)\n",
};

static const struct syslog_settings *settings_of(const struct ctd_config *cfg)
{
	return ctd_config_group_get(cfg, &ctd_out_syslog_settings);
}

static bool syslog_enabled(const struct ctd_config *cfg)
{
	return settings_of(cfg)->on;
}

static int syslog_create(struct ev_loop *loop, const struct ctd_config *cfg,
			 const struct ctd_owner *owner, struct ctd_output **ret)
{
	const struct syslog_settings *set = settings_of(cfg);
	struct ctd_out_syslog_cfg sc = {
		set->socket, set->facility, set->level, set->format == 1,
	};
	int r = ctd_out_syslog_new(loop, &sc, ret);

	(void)owner;    /* no files */

	if (r < 0)
		log_err("cannot send records to syslog at %s: %s", sc.socket,
			strerror(-r));
	return r;
}

/* A message per ended flow, as conntrackd's syslog mode. */
const struct ctd_output_desc ctd_out_syslog_desc = {
	.name = "syslog",
	.settings = &ctd_out_syslog_settings,
	.enabled = syslog_enabled,
	.create = syslog_create,
	.events = 1u << CTD_EV_DESTROY,
	.events_setting = CTD_OUTPUT_EVENTS_FIXED,
};
