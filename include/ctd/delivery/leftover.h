/* leftover: spool and write-ahead-log files in the spool directory whose
 * output is no longer configured (removed from ctd.conf, or a spool
 * directory shared by another setup). Their records were never made
 * final, so ctd never deletes them; the start says where they wait. */
#ifndef CTD_LEFTOVER_H
#define CTD_LEFTOVER_H

#include <stddef.h>
#include <stdint.h>

struct ctd_leftover {
	char file[64];           /* "NAME.spool", "NAME.wal", "NAME.wal.N" */
	uint64_t bytes;
};

/* Non-empty *.spool and *.wal regular files in dir whose output name is
 * none of in_use[0..n): up to cap into ret, in directory order. Returns
 * how many were found (possibly more than cap), or -errno. */
int ctd_leftover_scan(const char *dir, const char *const *in_use, size_t n,
		      struct ctd_leftover *ret, size_t cap);

#endif
