/* flowgen: N one-packet UDP flows, as fast as one socket can send them.
 *
 * Flow i goes from 127.0.0.1:7000 to 127.(1 + i/65536).(i/256 % 256).(i % 256)
 * port 7777 with a 1-byte payload, so every 5-tuple is distinct and known.
 * Only loopback addresses (127.1.0.0 upward) are ever used; the loop is
 * bounded by N and by a cap on consecutive send errors. A socket bound to
 * port 7777 takes the packets (never read: once full, the kernel drops
 * them after conntrack has confirmed the flow) so no ICMP errors are made.
 *
 * Usage: flowgen N        prints "<flows sent> <seconds>" on stdout
 * Built by bench/storm.py with cc -O2; not part of ctd's build.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define MAX_FLOWS (200L * 65536)	/* stays inside 127.1.0.0 - 127.200.255.255 */
#define MAX_ERRORS 10000

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static struct sockaddr_in dst[BATCH];
	static struct mmsghdr msgs[BATCH];
	static struct iovec iov;
	struct sockaddr_in a;
	char payload = 'x';
	long n, i = 0, errors = 0;
	int one = 1, rcv, snd, small = 4096;
	double t0, t1;

	if (argc != 2 || (n = atol(argv[1])) <= 0 || n > MAX_FLOWS) {
		fprintf(stderr, "usage: flowgen N (1..%ld)\n", MAX_FLOWS);
		return 2;
	}
	rcv = socket(AF_INET, SOCK_DGRAM, 0);
	snd = socket(AF_INET, SOCK_DGRAM, 0);
	if (rcv < 0 || snd < 0) {
		perror("socket");
		return 1;
	}
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(7777);
	a.sin_addr.s_addr = htonl(INADDR_ANY);	/* inside the namespace only */
	setsockopt(rcv, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind(rcv, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("bind :7777");
		return 1;
	}
	a.sin_port = htons(7000);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(snd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(snd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("bind 127.0.0.1:7000");
		return 1;
	}
	iov.iov_base = &payload;
	iov.iov_len = 1;
	t0 = now();
	while (i < n) {
		int k, batch = n - i < BATCH ? (int)(n - i) : BATCH, sent;

		for (k = 0; k < batch; k++) {
			long j = i + k;

			dst[k].sin_family = AF_INET;
			dst[k].sin_port = htons(7777);
			dst[k].sin_addr.s_addr = htonl((127u << 24) |
				((unsigned)(1 + (j >> 16)) << 16) |
				((unsigned)((j >> 8) & 255) << 8) | (unsigned)(j & 255));
			memset(&msgs[k].msg_hdr, 0, sizeof(msgs[k].msg_hdr));
			msgs[k].msg_hdr.msg_name = &dst[k];
			msgs[k].msg_hdr.msg_namelen = sizeof(dst[k]);
			msgs[k].msg_hdr.msg_iov = &iov;
			msgs[k].msg_hdr.msg_iovlen = 1;
		}
		sent = sendmmsg(snd, msgs, batch, 0);
		if (sent <= 0) {
			if (++errors > MAX_ERRORS) {
				fprintf(stderr, "flowgen: giving up after %ld send errors "
					"at flow %ld: %s\n", errors, i, strerror(errno));
				break;
			}
			if (errno == ENOBUFS || errno == EAGAIN)
				usleep(100);
			continue;
		}
		errors = 0;
		i += sent;
	}
	t1 = now();
	printf("%ld %.6f\n", i, t1 - t0);
	return i == n ? 0 : 1;
}
