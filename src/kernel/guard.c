/* guard: the kernel-pressure governor's own process.
 *
 * Inside ctd's loop the governor could not help when it is needed most:
 * a SIGSTOPped or hung ctd reads nothing and decides nothing while the
 * kernel holds one conntrack per DESTROY it could not deliver. The flag
 * NETLINK_BROADCAST_ERROR belongs to the socket, not the descriptor, so
 * a second process holding a duplicate can clear it; that is all this
 * child does, every tick, from gauges it reads itself (the socket's
 * SO_MEMINFO, the namespace's nf_conntrack_count and _max) and the
 * progress ctd publishes on a shared page. It keeps no other descriptor
 * of ctd's (a spool lock held by a child would outlive ctd), ignores the
 * signals a terminal or a reload sends, and when ctd is gone (a crash:
 * the service manager then sends SIGTERM, or the parent changes) it
 * exits at once, so the restart does not wait for it, failing open first
 * if the table is already past the low mark: the socket may wait in the
 * fd store through a restart loop with nobody watching. Below that mark
 * the next ctd takes the socket over reliable, with its own guard. ctd
 * stops it with SIGKILL at an orderly exit and before a re-exec: the
 * flag then stays as the governor left it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <cap-ng.h>

#include "ctd/base/log.h"
#include "ctd/kernel/guard.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* The page both processes map. ctd writes the first two, the guard the
 * rest; each field is read whole (lock-free atomics), which is all a
 * gauge needs. */
struct guard_page {
	_Atomic uint64_t progress;
	_Atomic int64_t lag_us;
	_Atomic uint64_t count, max, fill_pct, peak_pct;
	_Atomic uint64_t fail_opens, rearms, lost, released;
	_Atomic uint64_t since_wall_s;
	_Atomic uint32_t open, cause;
};

struct ctd_guard {
	struct guard_page *page;
	pid_t pid;
};

/* The child's descriptors, moved to fixed numbers. */
enum { FD_SOCK = 3, FD_COUNT, FD_MAX, FD__FIRST_FREE };

static volatile sig_atomic_t guard_term;

static void on_term(int sig)
{
	(void)sig;
	guard_term = 1;
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t read_sysctl(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

/* The shared socket's queue, buffer and drops (zeros when unreadable). */
static void read_meminfo(uint32_t mem[SK_MEMINFO_VARS])
{
	socklen_t len = SK_MEMINFO_VARS * sizeof(mem[0]);

	memset(mem, 0, len);
	getsockopt(FD_SOCK, SOL_SOCKET, SO_MEMINFO, mem, &len);
}

static void read_gauges(const struct guard_page *page,
			struct ctd_pressure_gauges *g)
{
	uint32_t mem[SK_MEMINFO_VARS];

	read_meminfo(mem);
	*g = (struct ctd_pressure_gauges){
		.count = read_sysctl(FD_COUNT),
		.max = read_sysctl(FD_MAX),
		.rmem = mem[SK_MEMINFO_RMEM_ALLOC],
		.rcvbuf = mem[SK_MEMINFO_RCVBUF],
		.drops = mem[SK_MEMINFO_DROPS],
		.progress = atomic_load_explicit(&page->progress, memory_order_relaxed),
		.lag_us = atomic_load_explicit(&page->lag_us, memory_order_relaxed),
	};
}

static uint32_t read_drops(void)
{
	uint32_t mem[SK_MEMINFO_VARS];

	read_meminfo(mem);
	return mem[SK_MEMINFO_DROPS];
}

static int set_reliable(int on)
{
	return setsockopt(FD_SOCK, SOL_NETLINK, NETLINK_BROADCAST_ERROR, &on,
			  sizeof(on)) < 0 ? -errno : 0;
}

static void publish(struct guard_page *page, const struct ctd_pressure *p,
		    const struct ctd_pressure_gauges *g, bool changed)
{
	const struct ctd_pressure_state *st = ctd_pressure_state(p);

	atomic_store(&page->count, g->count);
	atomic_store(&page->max, g->max);
	atomic_store(&page->fill_pct, st->fill_pct);
	atomic_store(&page->peak_pct, st->peak_pct);
	atomic_store(&page->fail_opens, st->fail_opens);
	atomic_store(&page->rearms, st->rearms);
	atomic_store(&page->lost, st->lost);
	atomic_store(&page->released, st->released);
	atomic_store(&page->open, st->open);
	atomic_store(&page->cause, (uint32_t)st->cause);
	if (changed)
		atomic_store(&page->since_wall_s, (uint64_t)time(NULL));
}

static void log_fail_open(const struct ctd_pressure *p,
			  const struct ctd_pressure_gauges *g)
{
	const struct ctd_pressure_state *st = ctd_pressure_state(p);

	log_warn("kernel pressure: the conntrack table is %llu%% full "
		 "(%llu of %llu) and %s: failing open, the kernel stops "
		 "holding DESTROY events for ctd; what it drops is counted "
		 "in kernel_lost (kernel-pressure hold keeps them at the "
		 "firewall's risk)",
		 (unsigned long long)st->fill_pct, (unsigned long long)g->count,
		 (unsigned long long)g->max,
		 st->cause == CTD_PRESSURE_STALLED ?
		 "ctd reads nothing (stopped or hung)" :
		 "ctd reads slower than flows end (its CPU)");
}

static void apply(struct ctd_pressure *p, enum ctd_pressure_action act,
		  const struct ctd_pressure_gauges *g)
{
	const struct ctd_pressure_state *st = ctd_pressure_state(p);
	int r;

	if (act == CTD_PRESSURE_FAIL_OPEN) {
		ctd_pressure_opening(p, read_drops());
		r = set_reliable(0);
		if (r < 0)
			log_err("kernel pressure: cannot fail open: %s", strerror(-r));
		else
			log_fail_open(p, g);
	} else if (act == CTD_PRESSURE_REARM) {
		r = set_reliable(1);
		ctd_pressure_rearmed(p, read_drops());
		if (r < 0)
			log_err("kernel pressure: cannot restore reliable mode: %s",
				strerror(-r));
		else
			log_info("kernel pressure: table %llu%% full, ctd caught up: "
				 "reliable mode restored; %llu DESTROY events lost "
				 "while failed open (kernel_lost)",
				 (unsigned long long)st->fill_pct,
				 (unsigned long long)st->lost);
	}
}

static void sleep_us(int64_t us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);   /* a signal cuts it short: checked next */
}

/* ctd is gone: fail open (unless holding) and leave. */
static void orphaned(struct guard_page *page, struct ctd_pressure *p)
{
	struct ctd_pressure_gauges g;
	enum ctd_pressure_action act = ctd_pressure_orphaned(p, mono_us());

	read_gauges(page, &g);
	if (act == CTD_PRESSURE_FAIL_OPEN && set_reliable(0) == 0)
		log_warn("kernel pressure: ctd is gone with the conntrack table "
			 "%llu%% full; failing open so the kernel holds nothing "
			 "for a socket nobody reads until the next ctd",
			 (unsigned long long)ctd_pressure_state(p)->fill_pct);
	publish(page, p, &g, act != CTD_PRESSURE_KEEP);
	_exit(0);
}

static void guard_loop(struct guard_page *page, const struct ctd_guard_cfg *cfg,
		       pid_t parent)
{
	struct ctd_pressure *p = ctd_pressure_new(&cfg->pressure);
	struct ctd_pressure_gauges g;
	enum ctd_pressure_action act;

	if (!p)
		_exit(1);
	for (;;) {
		sleep_us(cfg->tick_us);
		if (getppid() != parent)
			orphaned(page, p);
		if (guard_term)
			_exit(0);
		read_gauges(page, &g);
		act = ctd_pressure_step(p, &g, mono_us());
		apply(p, act, &g);
		publish(page, p, &g, act != CTD_PRESSURE_KEEP);
	}
}

/* Gives the three descriptors the numbers FD_SOCK.. by way of copies
 * above the range, so no move overwrites one still to be moved. */
static int place_fds(const int fds[3])
{
	int high[3];

	for (int i = 0; i < 3; i++)
		if ((high[i] = fcntl(fds[i], F_DUPFD, 64)) < 0)
			return -1;
	for (int i = 0; i < 3; i++)
		if (dup2(high[i], FD_SOCK + i) < 0)
			return -1;
	return 0;
}

static void child_signals(void)
{
	static const int ignored[] = { SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGPIPE };
	struct sigaction sa = { .sa_handler = on_term };
	sigset_t none;

	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		signal(ignored[i], SIG_IGN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* Clearing the flag of a socket it holds and reading sysctls need no
 * privilege: the guard keeps none, even when ctd runs as root. */
static void drop_all(void)
{
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_apply(CAPNG_SELECT_BOTH) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(1);
}

static void child(struct guard_page *page, const struct ctd_guard_cfg *cfg,
		  int fds[3], pid_t parent)
{
	child_signals();
	drop_all();
	if (getppid() != parent)
		_exit(0);
	if (place_fds(fds) < 0)
		_exit(1);
	close_range(FD__FIRST_FREE, ~0u, 0);
	guard_loop(page, cfg, parent);
}

static int open_sysctls(const char *procdir, int fds[3])
{
	char path[512];

	snprintf(path, sizeof(path), "%s/nf_conntrack_count", procdir);
	fds[1] = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/nf_conntrack_max", procdir);
	fds[2] = open(path, O_RDONLY | O_CLOEXEC);
	return fds[1] < 0 || fds[2] < 0 ? -errno : 0;
}

static void close_fds(int fds[3])
{
	for (int i = 1; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int ctd_guard_start(const struct ctd_guard_cfg *cfg, struct ctd_guard **ret)
{
	struct ctd_guard *g = calloc(1, sizeof(*g));
	int fds[3] = { cfg->sock_fd, -1, -1 }, r;
	pid_t parent = getpid();

	if (!g)
		return -ENOMEM;
	g->page = mmap(NULL, sizeof(*g->page), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	r = g->page == MAP_FAILED ? -errno : open_sysctls(cfg->procdir, fds);
	if (r == 0 && (g->pid = fork()) < 0)
		r = -errno;
	if (r == 0 && g->pid == 0)
		child(g->page, cfg, fds, parent);
	close_fds(fds);
	if (r < 0) {
		if (g->page != MAP_FAILED)
			munmap(g->page, sizeof(*g->page));
		free(g);
		return r;
	}
	*ret = g;
	return 0;
}

void ctd_guard_stop(struct ctd_guard *g)
{
	if (!g)
		return;
	if (g->pid > 0) {
		kill(g->pid, SIGKILL);
		waitpid(g->pid, NULL, 0);   /* ECHILD if libev reaped it */
	}
	munmap(g->page, sizeof(*g->page));
	free(g);
}

pid_t ctd_guard_pid(const struct ctd_guard *g)
{
	return g ? g->pid : 0;
}

void ctd_guard_exited(struct ctd_guard *g)
{
	g->pid = 0;
}

void ctd_guard_publish(struct ctd_guard *g, uint64_t progress, int64_t lag_us)
{
	atomic_store_explicit(&g->page->progress, progress, memory_order_relaxed);
	atomic_store_explicit(&g->page->lag_us, lag_us, memory_order_relaxed);
}

void ctd_guard_view(const struct ctd_guard *g, struct ctd_guard_view *ret)
{
	const struct guard_page *pg = g->page;

	*ret = (struct ctd_guard_view){
		.st = {
			.open = atomic_load(&pg->open),
			.cause = (enum ctd_pressure_cause)atomic_load(&pg->cause),
			.fail_opens = atomic_load(&pg->fail_opens),
			.rearms = atomic_load(&pg->rearms),
			.lost = atomic_load(&pg->lost),
			.fill_pct = atomic_load(&pg->fill_pct),
			.peak_pct = atomic_load(&pg->peak_pct),
			.released = atomic_load(&pg->released),
		},
		.count = atomic_load(&pg->count),
		.max = atomic_load(&pg->max),
		.since_wall_s = atomic_load(&pg->since_wall_s),
		.running = g->pid > 0,
	};
}
