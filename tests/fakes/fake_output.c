/* fake_output: see fake_output.h. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "ctd/flows/record.h"
#include "fake_output.h"

static enum ctd_out_status fake_submit(struct ctd_output *out,
				       const struct ctd_record *rec)
{
	struct fake_output *f = (struct fake_output *)out;

	if (!f->accept || (f->limit && f->taken >= f->limit))
		return CTD_OUT_AGAIN;
	if (rec->id < FAKE_OUTPUT_IDS)
		f->got[rec->id]++;
	if (f->taken < FAKE_OUTPUT_IDS)
		f->order[f->taken] = rec->id;
	f->taken++;
	f->last_id = rec->id;
	f->last_events = rec->events;
	return CTD_OUT_DELIVERED;
}

static enum ctd_out_status fake_submit_raw(struct ctd_output *out,
					   const void *data, size_t len)
{
	struct fake_output *f = (struct fake_output *)out;

	(void)data;
	if (!f->accept)
		return CTD_OUT_AGAIN;
	f->raw_bytes += len;
	return CTD_OUT_DELIVERED;
}

/* A flush makes everything taken final, unless the test holds back
 * (a write that fails, acknowledgements to come). */
static void fake_flush(struct ctd_output *out)
{
	struct fake_output *f = (struct fake_output *)out;

	if (!f->hold_back)
		f->final = f->taken;
}

static uint64_t fake_settled(struct ctd_output *out)
{
	return ((struct fake_output *)out)->final;
}

static void fake_abandon(struct ctd_output *out)
{
	struct fake_output *f = (struct fake_output *)out;

	f->abandoned = true;
	f->final = f->taken;
}

static void fake_free(struct ctd_output *out)
{
	struct fake_output *f = (struct fake_output *)out;

	if (f->freed)
		*f->freed = true;
}

static const struct ctd_output_ops fake_ops = {
	.submit = fake_submit,
	.submit_raw = fake_submit_raw,
	.flush = fake_flush,
	.settled = fake_settled,
	.abandon = fake_abandon,
	.free = fake_free,
};

void fake_output_init(struct fake_output *f, const char *name, bool accept)
{
	memset(f, 0, sizeof(*f));
	f->base.ops = &fake_ops;
	f->base.name = name;
	f->accept = accept;
}
