/* report: what the control socket answers: counters and a health check
 * of the kernel side (`ctd -s`), the tracked flows (`ctd -l`) and the
 * top talkers (`ctd -s top`), as text or JSON, and each watched network
 * namespace's health and counters. Reads the state it is
 * given and /proc; owns nothing. */
#ifndef CTD_REPORT_H
#define CTD_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ctd_config;
struct ctd_flowtable;
struct ctd_netnstab;
struct ctd_stats;

struct ctd_report_src {
	const struct ctd_stats *stats;
	const struct ctd_flowtable *flows;
	const struct ctd_config *cfg;
	/* The other namespaces watched (`netns`), or NULL: their lines in
	 * stats and metrics, their names in listings. */
	const struct ctd_netnstab *netns;
	const char *proc_sys;        /* "/proc/sys", or a test directory */
	/* "/proc/net/netlink" (or a test file) and ctd's own port there:
	 * health names a stuck listener that is not ctd; NULL: never. */
	const char *proc_netlink;
	uint32_t nl_portid;
	uint64_t now_ns;             /* wall clock */
	uint64_t uptime_s;
	bool reliable;
	/* Listings (flows, top) from a fresh kernel dump, read a few
	 * datagrams per call, instead of ctd's flow table. */
	bool live;
};

/* A ctd_ctl_answer: request is "stats", "flows" or "top", optionally
 * followed by " json". out NULL releases what *cursor holds. */
bool ctd_report_answer(const struct ctd_report_src *src, const char *request,
		       FILE *out, size_t *cursor);

/* The health check alone: one plain sentence with the fix per problem,
 * written to out (one per line, "- " first). Returns the problem count. */
unsigned ctd_report_health(const struct ctd_report_src *src, FILE *out,
			   bool json);

#endif
