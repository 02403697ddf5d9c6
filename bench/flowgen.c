/* flowgen: one-packet UDP flows, as fast as one socket can send them or
 * at a set rate: the storm generator of bench/storm.py and of the
 * kernel-pressure test (tests/integration/test_pressure.py).
 *
 * Flow i goes from 127.0.0.1:7000 to 127.(1 + i/65536).(i/256 % 256).(i % 256)
 * port 7777 with a 1-byte payload, so every 5-tuple is distinct and known.
 * Only loopback addresses (127.1.0.0 upward) are ever used; the loop is
 * bounded by the flow count, the deadline and a cap on consecutive
 * retries. A socket bound to port 7777 takes the packets (never read: once
 * full, the kernel drops them after conntrack has confirmed the flow) so
 * no ICMP errors are made.
 *
 * A send the firewall refuses (EPERM: the conntrack table is full) made no
 * flow: it is skipped and reported. ENOBUFS/EAGAIN are retried (at most
 * MAX_RETRY times in a row); any other error ends the run (exit 1).
 *
 * Usage: flowgen N                  flows 0..N-1 flat out; prints
 *                                   "<flows sent> <seconds>"
 *        flowgen START COUNT RATE SECS
 *                                   flows START.. at RATE/s (0: flat out)
 *                                   for at most SECS s (0: no limit);
 *                                   prints "F first end" per refused range
 *                                   (end exclusive), "S sent failed
 *                                   seconds" and "E next-index"
 * Built with cc -O2 by its callers; not part of ctd's build.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_INDEX (200L * 65536)	/* stays inside 127.1.0.0 - 127.200.255.255 */
#define MAX_RETRY 100000

struct run {
	long start, end, i;          /* flows [start, end); i the next */
	double rate, secs, t0;
	long sent, failed, fail_from, retries;
	int snd;
	bool legacy;                 /* flowgen N: one summary line */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int bind_port(int fd, uint32_t addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int one = 1;

	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	return bind(fd, (struct sockaddr *)&a, sizeof(a));
}

/* The sink on :7777 (inside the namespace only) and the sender. */
static int open_sockets(struct run *r)
{
	int rcv = socket(AF_INET, SOCK_DGRAM, 0), small = 4096;

	r->snd = socket(AF_INET, SOCK_DGRAM, 0);
	if (rcv < 0 || r->snd < 0) {
		perror("flowgen: socket");
		return -1;
	}
	setsockopt(rcv, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind_port(rcv, INADDR_ANY, 7777) < 0) {
		perror("flowgen: bind :7777");
		return -1;
	}
	if (bind_port(r->snd, INADDR_LOOPBACK, 7000) < 0) {
		perror("flowgen: bind 127.0.0.1:7000");
		return -1;
	}
	return 0;
}

/* Sleeps until flow i is due; returns how many may go now. */
static int pace(const struct run *r, int batch)
{
	double due, t, d;
	int k;

	if (r->rate <= 0)
		return batch;
	due = r->t0 + (r->i - r->start) / r->rate;
	t = now();
	if (due > t) {
		d = due - t;
		nanosleep(&(struct timespec){ (time_t)d,
					      (long)((d - (time_t)d) * 1e9) }, NULL);
	}
	/* at most a batch ahead of the pace */
	k = (int)((now() - r->t0) * r->rate - (r->i - r->start)) + 1;
	return k < 1 ? 1 : k < batch ? k : batch;
}

static void fill(struct mmsghdr *msgs, struct sockaddr_in *dst,
		 struct iovec *iov, long first, int n)
{
	for (int k = 0; k < n; k++) {
		long j = first + k;

		dst[k] = (struct sockaddr_in){ .sin_family = AF_INET,
					       .sin_port = htons(7777) };
		dst[k].sin_addr.s_addr = htonl((127u << 24) |
			((unsigned)(1 + (j >> 16)) << 16) |
			((unsigned)((j >> 8) & 255) << 8) | (unsigned)(j & 255));
		memset(&msgs[k].msg_hdr, 0, sizeof(msgs[k].msg_hdr));
		msgs[k].msg_hdr.msg_name = &dst[k];
		msgs[k].msg_hdr.msg_namelen = sizeof(dst[k]);
		msgs[k].msg_hdr.msg_iov = iov;
		msgs[k].msg_hdr.msg_iovlen = 1;
	}
}

static void end_refused(struct run *r)
{
	if (r->fail_from >= 0 && !r->legacy)
		printf("F %ld %ld\n", r->fail_from, r->i);
	r->fail_from = -1;
}

/* A failed send: skipped (refused), retried, or the end (false). */
static bool send_failed(struct run *r)
{
	if (errno == EPERM) {
		if (r->fail_from < 0)
			r->fail_from = r->i;
		r->failed++;
		r->i++;
		return true;
	}
	if ((errno == ENOBUFS || errno == EAGAIN || errno == EINTR) &&
	    ++r->retries < MAX_RETRY) {
		usleep(100);
		return true;
	}
	fprintf(stderr, "flowgen: send of flow %ld failed: %s\n", r->i,
		strerror(errno));
	return false;
}

static bool generate(struct run *r)
{
	static struct sockaddr_in dst[BATCH];
	static struct mmsghdr msgs[BATCH];
	static char payload = 'x';
	struct iovec iov = { &payload, 1 };
	int n;

	while (r->i < r->end) {
		if (r->secs > 0 && now() - r->t0 >= r->secs)
			break;
		n = pace(r, r->end - r->i < BATCH ? (int)(r->end - r->i) : BATCH);
		fill(msgs, dst, &iov, r->i, n);
		n = sendmmsg(r->snd, msgs, n, 0);
		if (n <= 0 && !send_failed(r))
			return false;
		if (n <= 0)
			continue;
		end_refused(r);
		r->retries = 0;
		r->sent += n;
		r->i += n;
	}
	return true;
}

static int parse(int argc, char **argv, struct run *r)
{
	*r = (struct run){ .fail_from = -1, .legacy = argc == 2 };
	if (argc == 2) {
		r->end = atol(argv[1]);
	} else if (argc == 5) {
		r->start = atol(argv[1]);
		r->end = r->start + atol(argv[2]);
		r->rate = atof(argv[3]);
		r->secs = atof(argv[4]);
	} else {
		fprintf(stderr, "usage: flowgen N | flowgen START COUNT RATE SECS\n");
		return -1;
	}
	r->i = r->start;
	if (r->start < 0 || r->end <= r->start || r->end > MAX_INDEX) {
		fprintf(stderr, "flowgen: flows must lie in 0..%ld\n", MAX_INDEX);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct run r;
	bool ok;

	if (parse(argc, argv, &r) < 0)
		return 2;
	if (open_sockets(&r) < 0)
		return 1;
	r.t0 = now();
	ok = generate(&r);
	end_refused(&r);
	if (r.legacy) {
		printf("%ld %.6f\n", r.sent, now() - r.t0);
		return ok && r.sent == r.end ? 0 : 1;
	}
	printf("S %ld %ld %.6f\n", r.sent, r.failed, now() - r.t0);
	if (ok)
		printf("E %ld\n", r.i);   /* not attempted past it: the deadline */
	return ok ? 0 : 1;
}
