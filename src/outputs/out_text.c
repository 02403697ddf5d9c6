/* out_text: buffers `ctd -f` lines and writes them once per loop
 * iteration. A line that does not fit while the terminal is stuck is
 * skipped and counted: this stream is for watching, records go to the
 * outputs. The filter-* settings choose the lines as they choose the
 * records: a DESTROY by its record, a NEW or UPDATE by the event.
 * Lines give local time (what the person at the terminal reads from the
 * clock on the wall) unless --utc; the zone is read for each line, so a
 * session that runs across a DST change stays right. */
#include <stdlib.h>
#include <time.h>

#include "ctd/base/stats.h"
#include "ctd/base/wbuf.h"
#include "ctd/flows/filter.h"
#include "ctd/flows/record.h"
#include "ctd/format/textfmt.h"
#include "ctd/outputs/out_text.h"

struct ctd_out_text {
	struct ctd_wbuf *wb;
	struct ctd_stats *stats;
	bool utc;
};

struct ctd_out_text *ctd_out_text_new(int fd, struct ctd_stats *stats,
				      bool utc)
{
	struct ctd_out_text *out = calloc(1, sizeof(*out));

	if (!out)
		return NULL;
	out->wb = ctd_wbuf_new(fd, 256u << 10);
	if (!out->wb) {
		free(out);
		return NULL;
	}
	out->stats = stats;
	out->utc = utc;
	return out;
}

void ctd_out_text_free(struct ctd_out_text *out)
{
	if (!out)
		return;
	ctd_wbuf_flush(out->wb);
	ctd_wbuf_free(out->wb);
	free(out);
}

static struct ctd_textfmt_tz zone_at(const struct ctd_out_text *out,
				    uint64_t wall_ns)
{
	struct ctd_textfmt_tz tz = { .utc = true };
	time_t t = (time_t)(wall_ns / 1000000000u);
	struct tm tm;

	if (!out->utc && localtime_r(&t, &tm)) {
		tz.utc = false;
		tz.off_s = (int32_t)tm.tm_gmtoff;
	}
	return tz;
}

void ctd_out_text_event(struct ctd_out_text *out,
			const struct ctd_filter *filter,
			const struct ctd_event *ev,
			const struct ctd_record *rec, const char *netns,
			uint64_t now_ns)
{
	struct ctd_textfmt_tz tz;
	char *p;
	size_t n;

	if (rec ? !ctd_filter_match(filter, rec) :
	    !ctd_filter_match_event(filter, ev, netns))
		return;
	p = ctd_wbuf_reserve(out->wb, CTD_TEXT_MAX);
	if (!p) {
		out->stats->text_dropped++;
		return;
	}
	tz = zone_at(out, now_ns);
	n = ctd_textfmt_event(ev, rec, netns, now_ns, &tz, p, CTD_TEXT_MAX);
	ctd_wbuf_commit(out->wb, n);
}

void ctd_out_text_end(struct ctd_out_text *out, const struct ctd_record *rec)
{
	struct ctd_textfmt_tz tz;
	char *p = ctd_wbuf_reserve(out->wb, CTD_TEXT_MAX);

	if (!p) {
		out->stats->text_dropped++;
		return;
	}
	tz = zone_at(out, rec->end_ns);
	ctd_wbuf_commit(out->wb, ctd_textfmt_end(rec, &tz, p, CTD_TEXT_MAX));
}

int ctd_out_text_flush(struct ctd_out_text *out)
{
	return ctd_wbuf_flush(out->wb);
}
