/* route: one record's way from the engine to the outputs: its
 * namespace's name on it (a copy: the engine's record is const), the
 * filter, then delivery; events to the -f lines. */
#include <stddef.h>

#include "ctd/base/stats.h"
#include "ctd/base/timeutil.h"
#include "ctd/delivery/deliver.h"
#include "ctd/flows/filter.h"
#include "ctd/flows/record.h"
#include "ctd/outputs/out_text.h"
#include "ctd/route.h"
#include "ctd/sync/netns.h"
#include "ctd/sync/netnstab.h"

static const struct ctd_record *named(const struct ctd_route *r,
				      const struct ctd_record *rec,
				      struct ctd_record *copy)
{
	if (!r->netns || rec->nsid == CTD_NSID_SELF)
		return rec;
	*copy = *rec;
	ctd_netns_name(r->netns, copy);
	return copy;
}

/* The record as the outputs see it (named), or NULL when the filter
 * drops it (counted). */
static const struct ctd_record *passed(struct ctd_route *r,
				       const struct ctd_record *rec,
				       struct ctd_record *copy)
{
	rec = named(r, rec, copy);
	if (ctd_filter_match(*r->filter, rec))
		return rec;
	r->stats->records_filtered++;
	return NULL;
}

void ctd_route_record(void *arg, const struct ctd_record *rec)
{
	struct ctd_route *r = arg;
	struct ctd_record copy;

	rec = passed(r, rec, &copy);
	if (!rec)
		return;
	ctd_deliver_record(r->deliver, rec);
	/* A DESTROY has had its line; an end ctd found alone has not. */
	if (r->text && rec->end_reason != CTD_END_DESTROY &&
	    rec->end_reason != CTD_END_ACTIVE)
		ctd_out_text_end(r->text, rec);
}

void ctd_route_event(void *arg, const struct ctd_event *ev,
		     const struct ctd_record *rec, const struct ctd_now *now)
{
	struct ctd_route *r = arg;
	struct ctd_record copy;
	char netns[CTD_NETNS_NAME_MAX] = "";

	if (!r->text)
		return;
	if (r->netns && ev->nsid != CTD_NSID_SELF)
		ctd_netnstab_label(ctd_netns_table(r->netns), ev->nsid,
				   netns, sizeof(netns));
	if (rec)
		rec = named(r, rec, &copy);
	ctd_out_text_event(r->text, *r->filter, ev, rec, netns,
			   now->wall_ns);
}

void ctd_route_flow_event(void *arg, const struct ctd_record *rec,
			  uint8_t *missed)
{
	struct ctd_route *r = arg;
	struct ctd_record copy;

	rec = passed(r, rec, &copy);
	if (rec)
		ctd_deliver_event(r->deliver, rec, missed);
}

