/* sysctl: the conntrack sysctls flow accounting depends on, checked and
 * (unless told not to) set at start for the namespace ctd runs in. */
#ifndef CTD_SYSCTL_H
#define CTD_SYSCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctd/flows/expiry.h"

/* Returns the number of prerequisites still not met (0 = all good);
 * logs what it changed and warns about what it could not. */
int ctd_sysctl_prepare(const char *procdir, bool may_set);
/* The kernel's timeout per expiry class, from the namespace's sysctls;
 * a class whose sysctl is missing (protocol module not loaded) gets the
 * kernel's built-in default. */
void ctd_sysctl_timeouts(const char *procdir, uint32_t ret[CTD_TMO__COUNT]);

/* nf_conntrack_max, or 0 when it cannot be read. */
size_t ctd_sysctl_conntrack_max(const char *procdir);

#endif
