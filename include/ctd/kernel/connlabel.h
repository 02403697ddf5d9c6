/* connlabel: the names of the conntrack label bits, as the system's
 * connlabel.conf gives them (libnetfilter_conntrack's and iptables'
 * /etc/xtables/connlabel.conf, nftables' /etc/connlabel.conf: lines
 * "BIT NAME", # comments). Owns one table of a name per bit for the
 * kernel's 128 label bits. Pure: reads the file it is told to, never
 * logs; a bit without a name is shown by its number. */
#ifndef CTD_CONNLABEL_H
#define CTD_CONNLABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The kernel's label bits (NF_CT_LABELS_MAX_SIZE * 8). */
#define CTD_CONNLABEL_BITS 128
/* Longest name kept: a record with every bit set must still fit a JSON
 * line (jsonfmt.h); a longer name leaves its bit shown by number. */
#define CTD_CONNLABEL_NAME_MAX 32
/* Where the system keeps them, in the order looked at: the first that
 * exists is read. */
#define CTD_CONNLABEL_PATHS { "/etc/xtables/connlabel.conf", \
			      "/etc/connlabel.conf" }

struct ctd_connlabel;

/* An empty table: every bit by number. NULL when out of memory. */
struct ctd_connlabel *ctd_connlabel_new(void);
void ctd_connlabel_free(struct ctd_connlabel *m);

/* Adds the names of f. As libnetfilter_conntrack reads it: a line that
 * starts with # is a comment; otherwise a bit number (decimal, 0x hex
 * or 0 octal) and the name after it, trimmed, of letters, digits,
 * spaces and '-'; the first line for a bit wins and a name taken by an
 * earlier bit is ignored. Returns how many non-blank lines were not
 * used (bad syntax, bit >= 128, name too long or taken). */
size_t ctd_connlabel_read(struct ctd_connlabel *m, FILE *f);
/* The same from a file: 0 (*ret_skipped set), -ENOENT or -errno. */
int ctd_connlabel_load(struct ctd_connlabel *m, const char *path,
		       size_t *ret_skipped);
/* A table from the system's file (CTD_CONNLABEL_PATHS); none there is
 * an empty table. *ret_path: the file read or NULL. 0 or -errno
 * (a file that exists and cannot be read). */
int ctd_connlabel_system(struct ctd_connlabel **ret, const char **ret_path,
			 size_t *ret_skipped);

/* What an output renders labels with: NULL when on is false (no
 * labels), else the system's table, or an empty one when it cannot be
 * read (the caller that logs said why: ctd_connlabel_system). NULL too
 * when out of memory. */
struct ctd_connlabel *ctd_connlabel_open(bool on);

/* bit's name, or NULL when it has none. */
const char *ctd_connlabel_name(const struct ctd_connlabel *m, unsigned bit);
size_t ctd_connlabel_count(const struct ctd_connlabel *m);

/* Whether bit is set in a label bitmap as ctnetlink carries it
 * (CTA_LABELS: 32-bit words in host order, libnetfilter_conntrack's
 * nfct_bitmask layout). */
bool ctd_connlabel_test(const uint8_t labels[16], unsigned bit);
/* Whether any bit is set. */
bool ctd_connlabel_any(const uint8_t labels[16]);

#endif
