/* restart: the kernel keeps undelivered conntrack events only for a
 * socket that exists, so ctd never lets its ctnetlink socket close on a
 * restart it can foresee, and hands it to the service manager early
 * enough that even one it cannot (a crash, kill -9, the OOM killer, a
 * watchdog abort) leaves the socket alive in the fd store. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/base/safefile.h"
#include "ctd/base/stats.h"
#include "ctd/kernel/nlsrc.h"
#include "ctd/service/daemon.h"
#include "ctd/service/notify.h"
#include "ctd/service/restart.h"
#include "ctd/service/runlock.h"

struct ctd_restart {
	struct ctd_runlock *lock;    /* NULL without a spool directory */
	struct ctd_stats *st;
	int fd;                      /* handed in, or -1 */
	bool kept;                   /* the socket came back */
	bool ended;                  /* ctd_restart_end marked the lock */
	long dead_pid;               /* a predecessor that died, or 0 */
};

static int take_lock(struct ctd_restart *r, const char *dir,
		     const struct ctd_owner *owner)
{
	enum ctd_runlock_last last;
	long pid;
	int err = ctd_runlock_take(dir, owner, &r->lock, &last, &pid);

	if (err == -EBUSY) {
		log_err("another ctd (pid %ld) is running with spool directory "
			"%s; refusing to start", pid, dir);
		return err;
	}
	/* Refusing to start would lose every record under a restart loop;
	 * without a spool only what cannot be delivered at once is lost,
	 * counted. */
	if (err < 0) {
		r->st->spool_degraded = 1;
		log_err("cannot lock %s/ctd.lock: %s; running without a spool: "
			"records an output cannot take in time are lost (counted)",
			dir, ctd_safefile_strerror(err));
		return 0;
	}
	if (last == CTD_LAST_UNCLEAN) {
		r->st->unclean_restarts = 1;
		r->dead_pid = pid;
	}
	return err;
}

int ctd_restart_begin(const char *spool_dir, const struct ctd_owner *owner,
		      struct ctd_stats *st, struct ctd_restart **ret)
{
	struct ctd_restart *r = calloc(1, sizeof(*r));
	int err = 0;

	if (!r)
		return -ENOMEM;
	r->st = st;
	*ret = r;
	if (*spool_dir)
		err = take_lock(r, spool_dir, owner);
	r->fd = ctd_daemon_listen_fd("ctnetlink");
	if (r->fd == -EINVAL)
		log_warn("ignoring malformed LISTEN_FDS/LISTEN_PID");
	if (r->fd < 0)
		r->fd = -1;
	return err;
}

bool ctd_restart_spool_ok(const struct ctd_restart *r)
{
	return r->lock != NULL;
}

int ctd_restart_socket(struct ctd_restart *r)
{
	int fd = r->fd;

	r->fd = -1;   /* the netlink source owns it now */
	r->kept = fd >= 0;
	return fd;
}

static void store(struct ctd_nlsrc *nl, struct ctd_notify *notify)
{
	int fd, err;

	if (!ctd_notify_active(notify))
		return;
	fd = ctd_nlsrc_dup_fd(nl);
	if (fd < 0)
		return;
	err = ctd_notify_send(notify, "FDSTORE=1\nFDNAME=ctnetlink", fd);
	close(fd);
	if (err == 1)
		log_info("ctnetlink socket kept in the service manager's fd store");
	else
		log_warn("cannot keep the ctnetlink socket in the service "
			 "manager's fd store: %s", strerror(-err));
}

const char *ctd_restart_unclean_note(bool kept, bool managed)
{
	if (kept)
		return "its socket came back, with what the kernel held for it";
	/* The store empties only when the manager itself went: a reboot or
	 * a power loss, which took the kernel's table and its events too. */
	if (managed)
		return "the fd store held no socket (after a reboot or power "
		       "loss the kernel's table went with it)";
	return "the events the kernel held for its socket are lost (run ctd "
	       "under a service manager with an fd store to keep them)";
}

void ctd_restart_opened(struct ctd_restart *r, struct ctd_nlsrc *nl,
			struct ctd_notify *notify)
{
	if (r->dead_pid)
		log_warn("the previous ctd (pid %ld) did not stop cleanly; %s",
			 r->dead_pid, ctd_restart_unclean_note(r->kept,
				ctd_notify_active(notify)));
	/* Once: a socket that came back is in the store already. */
	if (!r->kept)
		store(nl, notify);
}

int ctd_restart_end(struct ctd_restart *r, struct ctd_nlsrc *nl, bool reexec)
{
	int fd;

	ctd_runlock_mark(r->lock, reexec ? CTD_LAST_REEXEC : CTD_LAST_STOPPED);
	r->ended = true;
	if (!reexec)
		return -1;
	fd = ctd_nlsrc_dup_fd(nl);
	if (fd < 0)
		log_err("cannot keep the ctnetlink socket: %s", strerror(-fd));
	return fd;
}

void ctd_restart_free(struct ctd_restart *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	/* An exit that never ran (a refused start) is a clean one too. */
	if (!r->ended)
		ctd_runlock_mark(r->lock, CTD_LAST_STOPPED);
	ctd_runlock_free(r->lock);
	free(r);
}
