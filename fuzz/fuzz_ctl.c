/* Fuzz target: what a control-socket or metrics client sends, through
 * the request parser and, when it takes the request, the whole answer
 * (counters, health check, flow listing, top talkers) over a small table
 * of flows. The first byte picks the endpoint. Invariants: a request is
 * either refused or answered to the end, and the parsed line is text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctd/base/stats.h"
#include "ctd/config/config.h"
#include "ctd/control/ctl.h"
#include "ctd/control/report.h"
#include "ctd/flows/flowtable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ctd_flowtable *flows;
static struct ctd_config cfg;
static struct ctd_stats stats;
static FILE *sink;

static void setup(void)
{
	flows = ctd_flowtable_new(64);
	sink = fopen("/dev/null", "w");
	if (!flows || !sink)
		abort();
	ctd_config_defaults(&cfg);
	for (uint16_t i = 0; i < 20; i++) {
		struct ctd_event ev = { .family = 2, .proto = i % 2 ? 6 : 17 };
		struct ctd_flow_key key;
		struct ctd_flow *f;

		ev.tuple[0].src[0] = 10;
		ev.tuple[0].src[3] = (uint8_t)(i % 3);
		ev.tuple[0].dst[0] = 192;
		ev.tuple[0].dst[3] = (uint8_t)i;
		ev.tuple[0].sport = (uint16_t)(40000 + i);
		ev.tuple[0].dport = 53;
		ev.tuple[1] = ev.tuple[0];
		ctd_flow_key_from_event(&ev, &key);
		if (ctd_flowtable_insert(flows, &key, &f) < 0)
			abort();
		if (!ctd_flow_cold(flows, f))
			abort();
		f->cold->cnt[0].bytes = 100u * i;
		f->cold->cnt[0].packets = i;
		if (ctd_flow_set_reply(flows, f, &ev.tuple[1]) < 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctd_report_src src = { .stats = &stats, .cfg = &cfg,
				      .proc_sys = "/nonexistent",
				      .now_ns = 1, .uptime_s = 1,
				      .reliable = true };
	char line[CTD_CTL_MAX_HTTP_REQUEST];
	size_t cursor = 0, chunks = 0;
	bool http;
	int r;

	if (!flows)
		setup();
	src.flows = flows;
	if (size < 1 || size > 2 * CTD_CTL_MAX_HTTP_REQUEST)
		return -1;
	http = data[0] & 1;
	r = ctd_ctl_request_parse((const char *)data + 1, size - 1, http,
				  line, sizeof(line));
	if (r <= 0)
		return 0;
	for (const char *p = line; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
	/* The metrics endpoint answers only GET /metrics, as "metrics". */
	if (http && strncmp(line, "GET /metrics", 12) == 0)
		strcpy(line, "metrics");
	while (ctd_report_answer(&src, line, sink, &cursor))
		if (++chunks > 1000)
			abort();
	return 0;
}
