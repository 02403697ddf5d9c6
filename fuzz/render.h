/* render: what the fuzz targets do with every record they get out of
 * ctd's code: each output's renderer, with the invariants that hold for
 * any record (the JSON line fits CTD_JSON_MAX; IPFIX takes one data
 * record, two for the uniflow shape). Aborts when one does not hold. */
#ifndef CTD_FUZZ_RENDER_H
#define CTD_FUZZ_RENDER_H

struct ctd_record;

void fuzz_render_record(const struct ctd_record *rec);

#endif
