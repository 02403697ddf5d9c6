/* sysctl: makes the namespace's conntrack report what flow accounting
 * needs. acct and timestamp are off by default and apply only to
 * conntracks created after they are set; nf_conntrack_events=2 ("auto",
 * the default on many 6.x kernels) leaves conntracks created while no
 * listener existed without any event, not even DESTROY. So ctd sets all
 * three to 1 at start, after its socket exists. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctd/base/log.h"
#include "ctd/flows/sysctl.h"

static const char *const wanted[] = {
	"nf_conntrack_events", "nf_conntrack_acct", "nf_conntrack_timestamp",
};

static int read_long(const char *path, long *ret)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	*ret = strtol(buf, NULL, 10);
	return 0;
}

static int write_one(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "1\n", 2) != 2)
		r = -errno;
	close(fd);
	return r;
}

/* Returns true when the sysctl ends up at 1. */
static bool prepare_one(const char *procdir, const char *name, bool may_set)
{
	char path[512];
	long v = 0;
	int r;

	snprintf(path, sizeof(path), "%s/%s", procdir, name);
	r = read_long(path, &v);
	if (r < 0) {
		log_warn("cannot read %s: %s; flow records may be incomplete",
			 path, strerror(-r));
		return false;
	}
	if (v == 1)
		return true;
	if (!may_set) {
		log_warn("net.netfilter.%s is %ld, not 1: records will lack data "
			 "(set it with sysctl, or let ctd do it)", name, v);
		return false;
	}
	r = write_one(path);
	if (r < 0) {
		log_warn("cannot set net.netfilter.%s=1 (it is %ld): %s; "
			 "run as root with CAP_NET_ADMIN or set it yourself",
			 name, v, strerror(-r));
		return false;
	}
	log_info("set net.netfilter.%s=1 (was %ld)", name, v);
	return true;
}

int ctd_sysctl_prepare(const char *procdir, bool may_set)
{
	size_t i;
	int missing = 0;

	for (i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
		if (!prepare_one(procdir, wanted[i], may_set))
			missing++;
	return missing;
}

/* The kernel's defaults (seconds), for sysctls that are absent. */
static const uint32_t default_timeout[CTD_TMO__COUNT] = {
	[CTD_TMO_TCP_SYN_SENT] = 120, [CTD_TMO_TCP_SYN_RECV] = 60,
	[CTD_TMO_TCP_ESTABLISHED] = 432000, [CTD_TMO_TCP_FIN_WAIT] = 120,
	[CTD_TMO_TCP_CLOSE_WAIT] = 60, [CTD_TMO_TCP_LAST_ACK] = 30,
	[CTD_TMO_TCP_TIME_WAIT] = 120, [CTD_TMO_TCP_CLOSE] = 10,
	[CTD_TMO_UDP_UNREPLIED] = 30, [CTD_TMO_UDP_STREAM] = 120,
	[CTD_TMO_ICMP] = 30, [CTD_TMO_ICMPV6] = 30, [CTD_TMO_SCTP] = 210,
	[CTD_TMO_GRE] = 180, [CTD_TMO_GENERIC] = 600,
};

void ctd_sysctl_timeouts(const char *procdir, uint32_t ret[CTD_TMO__COUNT])
{
	char path[512];
	size_t i;
	long v = 0;

	for (i = 0; i < CTD_TMO__COUNT; i++) {
		snprintf(path, sizeof(path), "%s/nf_conntrack_%s", procdir,
			 ctd_expiry_class_sysctl((enum ctd_tmo)i));
		if (read_long(path, &v) == 0 && v > 0 && v < (long)UINT32_MAX)
			ret[i] = (uint32_t)v;
		else
			ret[i] = default_timeout[i];
	}
}

size_t ctd_sysctl_conntrack_max(const char *procdir)
{
	char path[512];
	long v = 0;

	snprintf(path, sizeof(path), "%s/nf_conntrack_max", procdir);
	if (read_long(path, &v) < 0 || v <= 0)
		return 0;
	return (size_t)v;
}
