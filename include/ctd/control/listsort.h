/* listsort: `ctd -l --sort KEY` orders the running ctd's listing in the
 * client, so the daemon keeps sending the table in slices and never holds
 * a sorted copy of it. Pure: text in, text out. */
#ifndef CTD_LISTSORT_H
#define CTD_LISTSORT_H

#include <stddef.h>
#include <stdio.h>

enum ctd_listsort_key {
	CTD_LISTSORT_BYTES,     /* both directions' bytes */
	CTD_LISTSORT_PACKETS,   /* both directions' packets */
	CTD_LISTSORT_AGE,       /* how long the flow has lived */
	CTD_LISTSORT__COUNT
};

/* "bytes", "packets" or "age" into *ret; -EINVAL for anything else. */
int ctd_listsort_parse(const char *name, enum ctd_listsort_key *ret);

/* Writes the lines of text[0..len) (ctd -l's text answer, lines as
 * ctd_textfmt_flow writes them) to out, largest key first, ties in their
 * order; lines without the key and the "# end" marker follow in theirs.
 * Returns 0 or -ENOMEM. */
int ctd_listsort_print(const char *text, size_t len, enum ctd_listsort_key key,
		       FILE *out);

#endif
