/* out_json: the JSON-lines file output. Owns the file descriptor and
 * its write buffer; renders records with jsonfmt. Never blocks: flush
 * writes what the descriptor takes and keeps the rest. */
#ifndef CTD_OUT_JSON_H
#define CTD_OUT_JSON_H

struct ctd_out_json;
struct ctd_record;
struct ctd_stats;

/* path "-" is standard output. */
int ctd_out_json_new(const char *path, struct ctd_stats *stats,
		     struct ctd_out_json **ret);
void ctd_out_json_free(struct ctd_out_json *out);
void ctd_out_json_submit(struct ctd_out_json *out, const struct ctd_record *rec);
int ctd_out_json_flush(struct ctd_out_json *out);

#endif
