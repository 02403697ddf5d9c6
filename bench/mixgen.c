/* mixgen: the firewall's own connection rate. N TCP connections and N
 * UDP flows with a reply each, one after the other, as fast as one
 * process can make them, on loopback.
 *
 * TCP connection i: from 127.2.(i/256).(i%256) (own source address, so
 * 20,000 connections never run out of ports) to 127.0.0.1:8080; connect,
 * accept, 1 byte each way, close (client first: the conntrack stays in
 * TIME_WAIT until the flush). UDP flow i: from 127.3.(i/256).(i%256):7000
 * to 127.0.0.1:7777, 1 byte, a 1-byte reply from the server socket,
 * received. Every 5-tuple is distinct and known; only loopback addresses
 * are used; the loop is bounded by N.
 *
 * Usage: mixgen N        prints "<tcp made> <udp made> <seconds>"
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

#define MAX_N 65536

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct sockaddr_in addr(unsigned a, unsigned b, unsigned c, unsigned d,
			       unsigned port)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };

	s.sin_addr.s_addr = htonl(a << 24 | b << 16 | c << 8 | d);
	return s;
}

static int listener(int type, unsigned port)
{
	struct sockaddr_in a = addr(127, 0, 0, 1, port);
	int one = 1, fd = socket(AF_INET, type, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tcp_one(int lst, long i)
{
	struct sockaddr_in src = addr(127, 2, (unsigned)(i >> 8) & 255, (unsigned)i & 255, 0);
	struct sockaddr_in dst = addr(127, 0, 0, 1, 8080);
	int c = socket(AF_INET, SOCK_STREAM, 0), s = -1, ok = 0;
	char b = 'x';

	if (c >= 0 && bind(c, (struct sockaddr *)&src, sizeof(src)) == 0 &&
	    connect(c, (struct sockaddr *)&dst, sizeof(dst)) == 0 &&
	    (s = accept(lst, NULL, NULL)) >= 0 &&
	    write(c, &b, 1) == 1 && read(s, &b, 1) == 1 &&
	    write(s, &b, 1) == 1 && read(c, &b, 1) == 1)
		ok = 1;
	if (c >= 0)
		close(c);
	if (s >= 0)
		close(s);
	return ok;
}

static int udp_one(int srv, long i)
{
	struct sockaddr_in src = addr(127, 3, (unsigned)(i >> 8) & 255, (unsigned)i & 255, 7000);
	struct sockaddr_in dst = addr(127, 0, 0, 1, 7777), peer;
	socklen_t plen = sizeof(peer);
	int c = socket(AF_INET, SOCK_DGRAM, 0), ok = 0;
	char b = 'u';

	if (c >= 0 && bind(c, (struct sockaddr *)&src, sizeof(src)) == 0 &&
	    sendto(c, &b, 1, 0, (struct sockaddr *)&dst, sizeof(dst)) == 1 &&
	    recvfrom(srv, &b, 1, 0, (struct sockaddr *)&peer, &plen) == 1 &&
	    sendto(srv, &b, 1, 0, (struct sockaddr *)&peer, plen) == 1 &&
	    recv(c, &b, 1, 0) == 1)
		ok = 1;
	if (c >= 0)
		close(c);
	return ok;
}

int main(int argc, char **argv)
{
	long n, i, tcp = 0, udp = 0;
	int lst, srv;
	double t0;

	if (argc != 2 || (n = atol(argv[1])) <= 0 || n > MAX_N) {
		fprintf(stderr, "usage: mixgen N (1..%d)\n", MAX_N);
		return 2;
	}
	lst = listener(SOCK_STREAM, 8080);
	srv = listener(SOCK_DGRAM, 7777);
	if (lst < 0 || srv < 0) {
		perror("mixgen: listen");
		return 1;
	}
	t0 = now();
	for (i = 0; i < n; i++) {
		tcp += tcp_one(lst, i);
		udp += udp_one(srv, i);
	}
	printf("%ld %ld %.6f\n", tcp, udp, now() - t0);
	return tcp == n && udp == n ? 0 : 1;
}
