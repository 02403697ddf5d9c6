/* shardsum: a shard's counters as one flat snapshot, and their sum.
 * struct ctd_stats is uint64_t up to its output table, and struct
 * ctd_out_stats is uint64_t throughout: both are summed word by word, so
 * a counter added to either later is summed without a change here; only
 * the gauges every shard reads from the same place are listed, and take
 * the largest value instead (an output's own: its rows say "same"). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ctd/control/shardsum.h"
#include "ctd/outputs/outputs.h"

#define SOFF(f) offsetof(struct ctd_stats, f)
#define WORDS_STATS (offsetof(struct ctd_stats, out_name) / sizeof(uint64_t))
#define WORDS_OUT (sizeof(struct ctd_out_stats) / sizeof(uint64_t))

_Static_assert(offsetof(struct ctd_stats, out_name) % sizeof(uint64_t) == 0,
	       "struct ctd_stats is uint64_t up to out_name");
_Static_assert(sizeof(struct ctd_out_stats) % sizeof(uint64_t) == 0,
	       "struct ctd_out_stats is uint64_t throughout");

/* The one kernel table, the one governor setting and the one store all
 * shards look at: the same value N times is not N times the value. */
static const size_t max_stats[] = {
	SOFF(kernel_failed_open), SOFF(kernel_open_since_us),
	SOFF(kernel_table_count), SOFF(kernel_table_max),
	SOFF(kernel_table_peak_pct), SOFF(kernel_lag_us), SOFF(kernel_cause),
	SOFF(kernel_held_est), SOFF(spool_degraded), SOFF(unclean_restarts),
	SOFF(netns_watched),
};


static bool listed(const size_t *offs, size_t n, size_t off)
{
	for (size_t i = 0; i < n; i++)
		if (offs[i] == off)
			return true;
	return false;
}

static void add_words(uint64_t *sum, const uint64_t *add, size_t words,
		      const size_t *maxes, size_t n_max)
{
	for (size_t i = 0; i < words; i++) {
		if (!listed(maxes, n_max, i * sizeof(uint64_t)))
			sum[i] += add[i];
		else if (add[i] > sum[i])
			sum[i] = add[i];
	}
}

/* Output i's own counters, each at its word; rows past the room are
 * left out (a build mistake the unit test catches). */
static void take_own(struct ctd_shardsnap *s, const struct ctd_stats *st,
		     size_t i)
{
	const struct ctd_counter_defs *defs = st->out_defs[i];

	for (size_t k = 0; defs && st->out_own[i] && k < defs->n; k++) {
		size_t w = defs->rows[k].off / sizeof(uint64_t);

		if (w >= CTD_SHARDSUM_OWN)
			continue;
		memcpy(&s->own[i][w], (const char *)st->out_own[i] +
		       defs->rows[k].off, sizeof(uint64_t));
		if (defs->rows[k].same)
			s->own_same[i] |= 1u << w;
	}
}

void ctd_shardsum_take(struct ctd_shardsnap *s, const struct ctd_stats *st)
{
	memset(s, 0, sizeof(*s));
	memcpy(&s->st, st, WORDS_STATS * sizeof(uint64_t));
	for (size_t i = 0; i < CTD_OUT_MAX && st->out_name[i]; i++) {
		strncpy(s->name[i], st->out_name[i], CTD_SHARDSUM_NAME - 1);
		if (st->out[i])
			s->out[i] = *st->out[i];
		take_own(s, st, i);
	}
}

/* The slot of output name in sum, taken when new; -1 when full. */
static int slot(struct ctd_shardsnap *sum, const char *name)
{
	for (int i = 0; i < CTD_OUT_MAX; i++) {
		if (!sum->name[i][0]) {
			memcpy(sum->name[i], name, CTD_SHARDSUM_NAME);
			return i;
		}
		if (strncmp(sum->name[i], name, CTD_SHARDSUM_NAME) == 0)
			return i;
	}
	return -1;
}

static void add_own(uint64_t *sum, const uint64_t *add, uint32_t same)
{
	for (size_t w = 0; w < CTD_SHARDSUM_OWN; w++) {
		if (!(same & 1u << w))
			sum[w] += add[w];
		else if (add[w] > sum[w])
			sum[w] = add[w];
	}
}

void ctd_shardsum_add(struct ctd_shardsnap *sum, const struct ctd_shardsnap *s)
{
	add_words((uint64_t *)&sum->st, (const uint64_t *)&s->st, WORDS_STATS,
		  max_stats, sizeof(max_stats) / sizeof(max_stats[0]));
	for (int i = 0; i < CTD_OUT_MAX && s->name[i][0]; i++) {
		int j = slot(sum, s->name[i]);

		if (j < 0)
			continue;
		add_words((uint64_t *)&sum->out[j], (const uint64_t *)&s->out[i],
			  WORDS_OUT, NULL, 0);
		add_own(sum->own[j], s->own[i], s->own_same[i]);
		sum->own_same[j] |= s->own_same[i];
	}
}

const struct ctd_stats *ctd_shardsum_view(struct ctd_shardsnap *s)
{
	const struct ctd_output_desc *d;

	for (int i = 0; i < CTD_OUT_MAX; i++) {
		s->name[i][CTD_SHARDSUM_NAME - 1] = '\0';
		s->st.out_name[i] = s->name[i][0] ? s->name[i] : NULL;
		s->st.out[i] = s->name[i][0] ? &s->out[i] : NULL;
		d = s->name[i][0] ? ctd_output_find(s->name[i]) : NULL;
		s->st.out_defs[i] = d ? d->counters : NULL;
		s->st.out_own[i] = d && d->counters ? s->own[i] : NULL;
	}
	return &s->st;
}
