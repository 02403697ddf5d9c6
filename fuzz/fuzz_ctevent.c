/* Fuzz target: ctnetlink messages, as one datagram from the kernel,
 * through the parser and the whole engine (flow table, expiry lists,
 * dumps) to every record renderer. Seeds: tests/data's recordings of
 * real kernel messages. Invariants beyond "no crash, no sanitizer
 * report": every record renders as JSON within CTD_JSON_MAX and as IPFIX,
 * and once a resync dump lists nothing every flow has ended (only the
 * remembered ends stay in the table). */
#include <stdlib.h>
#include <string.h>
#include <libmnl/libmnl.h>

#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/flows/engine.h"
#include "ctd/flows/flowtable.h"
#include "ctd/flows/record.h"
#include "ctd/kernel/ctevent.h"
#include "ctd/kernel/nlsrc.h"
#include "render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_record(void *arg, const struct ctd_record *rec)
{
	(void)arg;
	fuzz_render_record(rec);
}

static void on_flow_event(void *arg, const struct ctd_record *rec,
			  uint8_t *missed)
{
	on_record(arg, rec);
	*missed = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint32_t aligned[65536 / 4];
	struct ctd_engine_cfg cfg = { .max_flows = 32, .remember_ends = 8,
				      .active_timeout_s = 60,
				      .want_events = true };
	struct ctd_engine_sinks sinks = { .record = on_record,
					  .flow_event = on_flow_event };
	struct ctd_now now = { .mono_us = 1000000, .wall_ns = 1 };
	const struct nlmsghdr *nlh, *msgs[CTD_NLSRC_BATCH];
	size_t n = 0;
	struct ctd_stats stats;
	struct ctd_engine *eng;
	int left;

	if (size > sizeof(aligned))
		return -1;
	memcpy(aligned, data, size);
	memset(&stats, 0, sizeof(stats));
	for (int i = 0; i < CTD_TMO__COUNT; i++)
		cfg.timeout_s[i] = 30;
	eng = ctd_engine_new(&cfg, &stats, &sinks);
	if (!eng)
		abort();
	/* The first half one by one, the rest as one batch (as ctd reads). */
	left = (int)size;
	for (nlh = (const struct nlmsghdr *)aligned; ctd_nlmsg_ok(nlh, left) &&
	     n < sizeof(msgs) / sizeof(msgs[0]); nlh = mnl_nlmsg_next(nlh, &left))
		msgs[n++] = nlh;
	for (size_t i = 0; i < n / 2; i++) {
		ctd_engine_message(eng, msgs[i], &now);
		now.mono_us += 1000;
		now.wall_ns += 1000000;
	}
	ctd_engine_messages(eng, msgs + n / 2, n - n / 2, &now);
	/* A day later the kernel lists nothing: suspects expire, and a
	 * resync completes every flow whatever timeout it claimed. */
	now.mono_us += 86400LL * 1000000;
	while (ctd_engine_sweep(eng, &now, 1000) == now.mono_us)
		;
	ctd_engine_dump_begin(eng, false);
	ctd_engine_dump_end(eng, true, &now);
	ctd_engine_dump_begin(eng, true);
	ctd_engine_dump_end(eng, true, &now);
	/* What stays is only the ends remembered against repeated DESTROYs. */
	if (ctd_flowtable_count(ctd_engine_flows(eng)) > cfg.remember_ends)
		abort();
	ctd_engine_free(eng);
	return 0;
}
