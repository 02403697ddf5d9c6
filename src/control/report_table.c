/* report_table: the look of `ctd report` output.
 *
 * A table is for people: bytes in binary units, times in local time,
 * columns padded to the width report_query.c gives (a longer value
 * pushes the line rather than being cut). JSON and CSV are for
 * programs: exact numbers, times as UTC ISO 8601 with milliseconds. Rows
 * are printed as they come, so a long listing streams. */
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "ctd/base/timeutil.h"
#include "ctd/control/report_table.h"
#include "ctd/format/jsonfmt.h"

void ctd_report_human_bytes(uint64_t v, char *buf, size_t cap)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB" };
	double d = (double)v;
	size_t u = 0;

	while (d >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, cap, d < 9.95 ? "%.1f %s" : "%.0f %s", d, unit[u]);
}

static void local_time(int64_t ms, char *buf, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, cap, "?");
}

static void iso_time(int64_t ms, char *buf, size_t cap)
{
	ctd_fmt_iso8601_ms((uint64_t)ms * 1000000, buf, cap);
}

static void put_json_string(FILE *f, const char *s)
{
	char esc[512];
	size_t n = ctd_jsonfmt_string(s, esc, sizeof(esc));

	if (n)
		fwrite(esc, 1, n, f);
	else
		fputs("\"\"", f);
}

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void put_csv_string(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void cell_table(FILE *f, const struct ctd_rcol *c, const struct ctd_rval *v)
{
	char buf[64];

	switch (c->type) {
	case CTD_RCOL_TEXT:
		fprintf(f, "%-*s", c->width, v->s ? v->s : "");
		return;
	case CTD_RCOL_COUNT:
		fprintf(f, "%*lld", c->width, (long long)v->i);
		return;
	case CTD_RCOL_BYTES:
		ctd_report_human_bytes((uint64_t)v->i, buf, sizeof(buf));
		break;
	default:
		local_time(v->i, buf, sizeof(buf));
		fprintf(f, "%-*s", c->width, buf);
		return;
	}
	fprintf(f, "%*s", c->width, buf);
}

static void cell_data(FILE *f, bool json, const struct ctd_rcol *c,
		      const struct ctd_rval *v)
{
	char buf[32];

	if (c->type == CTD_RCOL_COUNT || c->type == CTD_RCOL_BYTES) {
		fprintf(f, "%lld", (long long)v->i);
		return;
	}
	if (c->type == CTD_RCOL_TIME)
		iso_time(v->i, buf, sizeof(buf));
	if (json)
		put_json_string(f, c->type == CTD_RCOL_TIME ? buf : v->s ? v->s : "");
	else
		put_csv_string(f, c->type == CTD_RCOL_TIME ? buf : v->s ? v->s : "");
}

void ctd_report_print_row(void *arg, const struct ctd_rval *v)
{
	struct ctd_report_printer *p = arg;

	if (p->fmt == CTD_RFMT_JSON)
		fputs(p->rows ? ",{" : "{", p->f);
	for (size_t i = 0; i < p->ncols; i++) {
		const struct ctd_rcol *c = &p->cols[i];

		if (p->fmt == CTD_RFMT_JSON)
			fprintf(p->f, "%s\"%s\":", i ? "," : "", c->name);
		else if (i)
			fputc(p->fmt == CTD_RFMT_CSV ? ',' : ' ', p->f);
		if (p->fmt == CTD_RFMT_TABLE)
			cell_table(p->f, c, &v[i]);
		else
			cell_data(p->f, p->fmt == CTD_RFMT_JSON, c, &v[i]);
	}
	fputs(p->fmt == CTD_RFMT_JSON ? "}" : "\n", p->f);
	p->rows++;
}

static void json_head(FILE *f, const struct ctd_report_query *q)
{
	char from[32], to[32];

	iso_time((int64_t)q->from_ms, from, sizeof(from));
	iso_time((int64_t)q->to_ms, to, sizeof(to));
	fprintf(f, "{\"report\":\"%s\",", ctd_rq_cmd_name[q->cmd]);
	if (q->cmd == CTD_RQ_TOP)
		fprintf(f, "\"by\":\"%s\",\"order\":\"%s\",", ctd_rq_by_name[q->by],
			ctd_rq_order_name[q->order]);
	if (q->cmd == CTD_RQ_TOTALS)
		fprintf(f, "\"every_s\":%llu,",
			(unsigned long long)(q->every_ms / 1000));
	fprintf(f, "\"from\":\"%s\",\"to\":\"%s\",\"rows\":[", from, to);
}

void ctd_report_print_begin(struct ctd_report_printer *p, FILE *f,
			    enum ctd_rfmt fmt, const struct ctd_report_query *q)
{
	p->f = f;
	p->fmt = fmt;
	p->rows = 0;
	p->cols = ctd_report_columns(q, &p->ncols);
	if (fmt == CTD_RFMT_JSON) {
		json_head(f, q);
		return;
	}
	for (size_t i = 0; i < p->ncols; i++) {
		const struct ctd_rcol *c = &p->cols[i];
		bool left = c->type == CTD_RCOL_TEXT || c->type == CTD_RCOL_TIME;

		if (fmt == CTD_RFMT_CSV)
			fprintf(f, "%s%s", i ? "," : "", c->name);
		else
			fprintf(f, "%s%*s", i ? " " : "", left ? -c->width :
				c->width, c->name);
	}
	fputc('\n', f);
}

void ctd_report_print_end(struct ctd_report_printer *p)
{
	if (p->fmt == CTD_RFMT_JSON)
		fputs("]}\n", p->f);
}
