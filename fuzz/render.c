/* render: see render.h. */
#include <stdint.h>
#include <stdlib.h>

#include "ctd/flows/record.h"
#include "ctd/format/ctlogfmt.h"
#include "ctd/format/ipfix.h"
#include "ctd/format/jsonfmt.h"
#include "ctd/format/textfmt.h"
#include "render.h"

void fuzz_render_record(const struct ctd_record *rec)
{
	static struct ctd_ctlog *ctlog;
	static char buf[CTD_JSON_MAX + CTD_CTLOG_MAX];
	static uint8_t msg[CTD_IPFIX_MSG_MAX];
	/* One shape per record (fuzz_ipfix covers them all in depth). */
	struct ctd_ipfix_cfg cfg = {
		.pen = 9, .shape = rec->id % CTD_IPFIX_SHAPE__COUNT };
	struct ctd_ipfix_msg m;

	if (!ctlog && !(ctlog = ctd_ctlog_new()))
		abort();
	if (ctd_jsonfmt_record(rec, buf, CTD_JSON_MAX) == 0)
		abort();
	ctd_textfmt_flow(rec, buf, sizeof(buf));
	ctd_ctlog_line(ctlog, rec, buf, sizeof(buf));
	ctd_ipfix_msg_begin(&m, msg, sizeof(msg));
	if (ctd_ipfix_msg_add_record(&m, &cfg, rec) !=
	    (cfg.shape == CTD_IPFIX_UNIFLOW ? 2u : 1u))
		abort();
	ctd_ipfix_msg_finish(&m, 0, 0, 0);
}
