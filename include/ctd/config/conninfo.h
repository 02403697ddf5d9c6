/* conninfo: a PostgreSQL connection string as ctd shows it (ctd -t -v,
 * a reload's diff, log lines): every password hidden, the rest as
 * written. Pure; knows libpq's two syntaxes without libpq. */
#ifndef CTD_CONNINFO_H
#define CTD_CONNINFO_H

#include <stddef.h>

/* What replaces a hidden value. */
#define CTD_CONNINFO_HIDDEN "(hidden)"

/* Writes conninfo to buf (at most len bytes, NUL-terminated, cut short
 * when it does not fit) with the value of every keyword that names a
 * password (password, sslpassword) and a URI's user:password@ hidden.
 * Returns the length it wanted, as snprintf. */
size_t ctd_conninfo_mask(const char *conninfo, char *buf, size_t len);

#endif
