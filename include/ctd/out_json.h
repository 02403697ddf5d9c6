/* out_json: the JSON-lines file output. Owns the file descriptor and
 * its write buffer; renders records with jsonfmt. Never blocks: flush
 * writes what the file takes and keeps the rest, and a full buffer
 * (disk full, write errors) refuses records for the dying list. */
#ifndef CTD_OUT_JSON_H
#define CTD_OUT_JSON_H

#include <stddef.h>

struct ctd_output;

#define CTD_OUT_JSON_BUF (1u << 20)

/* path "-" is standard output. buf_size 0 means CTD_OUT_JSON_BUF. */
int ctd_out_json_new(const char *path, size_t buf_size,
		     struct ctd_output **ret);

/* Writes to path from now on (reload); bytes still buffered follow
 * to the new file. Not for stdout. */
int ctd_out_json_set_path(struct ctd_output *out, const char *path);

#endif
