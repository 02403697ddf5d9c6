/* out_text: buffers `ctd -f` lines and writes them once per loop
 * iteration. A line that does not fit while the terminal is stuck is
 * skipped and counted: this stream is for watching, records go to the
 * outputs. The filter-* settings choose the lines as they choose the
 * records: a DESTROY by its record, a NEW or UPDATE by the event. */
#include <stdlib.h>

#include "ctd/base/stats.h"
#include "ctd/base/wbuf.h"
#include "ctd/flows/filter.h"
#include "ctd/format/textfmt.h"
#include "ctd/outputs/out_text.h"

struct ctd_out_text {
	struct ctd_wbuf *wb;
	struct ctd_stats *stats;
};

struct ctd_out_text *ctd_out_text_new(int fd, struct ctd_stats *stats)
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

void ctd_out_text_event(struct ctd_out_text *out,
			const struct ctd_filter *filter,
			const struct ctd_event *ev,
			const struct ctd_record *rec, const char *netns,
			uint64_t now_ns)
{
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
	n = ctd_textfmt_event(ev, rec, netns, now_ns, p, CTD_TEXT_MAX);
	ctd_wbuf_commit(out->wb, n);
}

int ctd_out_text_flush(struct ctd_out_text *out)
{
	return ctd_wbuf_flush(out->wb);
}
