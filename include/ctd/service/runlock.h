/* runlock: one ctd per spool directory, and whether the last one there
 * stopped cleanly. <spool-dir>/ctd.lock is flock()ed by the running ctd
 * and says "running PID" while it runs, "reexec PID" across a SIGUSR2
 * re-execution and "stopped" after a clean exit; a ctd that finds
 * "running" without a lock holder knows its predecessor died (crash,
 * kill -9, OOM) and with it what the kernel held for its socket, unless
 * the socket came back from the service manager's fd store. Owns the
 * lock file's descriptor. The output files a ctd writes are locked the
 * same way (ctd_runlock_file), on their own descriptors. */
#ifndef CTD_RUNLOCK_H
#define CTD_RUNLOCK_H

struct ctd_owner;
struct ctd_runlock;

enum ctd_runlock_last {
	CTD_LAST_NONE,        /* no lock file yet: first start here */
	CTD_LAST_STOPPED,     /* stopped cleanly */
	CTD_LAST_REEXEC,      /* re-executed itself: this is it */
	CTD_LAST_UNCLEAN,     /* died without stopping */
};

/* What the lock file's text says about the last run; *ret_pid its pid
 * (0 when none). Pure. */
enum ctd_runlock_last ctd_runlock_parse(const char *text, long *ret_pid);

/* Takes the lock in dir (created for owner, as safefile.c does) and
 * marks it running. -EBUSY when another ctd holds it (*ret_pid: its pid),
 * another -errno when it cannot be taken. */
int ctd_runlock_take(const char *dir, const struct ctd_owner *owner,
		     struct ctd_runlock **ret, enum ctd_runlock_last *ret_last,
		     long *ret_pid);
/* Records a clean stop ("stopped") or a re-exec ("reexec PID"). */
int ctd_runlock_mark(struct ctd_runlock *l, enum ctd_runlock_last state);
/* Locks the output file open on fd for this ctd alone (flock, so it
 * ends with the descriptor): -EBUSY when another process holds it,
 * *ret_pid its pid (0 when unknown). A file that is not regular
 * (/dev/null, a pipe) is not locked: 0. */
int ctd_runlock_file(int fd, long *ret_pid);
/* The same, shared with the other shards of one ctd (`shards`): a
 * single ctd's exclusive lock still keeps them out, and theirs it. */
int ctd_runlock_file_shared(int fd, long *ret_pid);
/* Who holds a flock on fd's file, from /proc/locks; 0 when unknown. */
long ctd_runlock_holder(int fd);

/* Releases the lock (the file stays, with the last mark). */
void ctd_runlock_free(struct ctd_runlock *l);

#endif
