// SPDX-License-Identifier: MIT
/*
 * udp-blast: the Linux end of kniv's exception-path benchmark.
 *
 *   udp-blast recv ADDR PORT                  count datagrams arriving on ADDR:PORT
 *   udp-blast send SRC DST PORT PAYLOAD       send PAYLOAD-byte datagrams from SRC to DST:PORT
 *   udp-blast tcp-recv ADDR PORT              accept one TCP connection on ADDR:PORT, read all it sends
 *   udp-blast tcp-send SRC DST PORT           connect from SRC to DST:PORT, write as fast as it takes
 *
 * Both run until SIGTERM or SIGINT. They print "ready" once the socket is set
 * up, then one line "packets bytes ns errors" (cumulative, bytes of UDP payload,
 * ns on CLOCK_MONOTONIC) on every SIGUSR1 and a last one when they stop, so
 * the caller measures a window of its choosing without timing this process.
 * errors counts failed sends (ENOBUFS, EAGAIN); a receiver reports 0.
 * Batches of 64 through recvmmsg/sendmmsg keep the per-packet system call
 * cost out of the way of what is measured: the kernel path. For TCP, packets
 * counts read or write calls (of up to 256 KiB) and bytes is the stream's
 * payload, the figure that matters.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_PAYLOAD 65507

static volatile sig_atomic_t report_wanted, stop_wanted;

static void on_report(int sig)
{
	(void)sig;
	report_wanted = 1;
}

static void on_stop(int sig)
{
	(void)sig;
	stop_wanted = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "udp-blast: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: udp-blast recv ADDR PORT\n"
			"       udp-blast send SRC DST PORT PAYLOAD\n"
			"       udp-blast tcp-recv ADDR PORT\n"
			"       udp-blast tcp-send SRC DST PORT\n");
	exit(2);
}

/* No SA_RESTART: a signal ends a blocking recvmmsg with EINTR. */
static void handle(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0)
		die("sigaction");
}

static struct sockaddr_in address(const char *ip, const char *port)
{
	struct sockaddr_in sin;
	char *end;
	long p = strtol(port, &end, 10);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (*end || p < 0 || p > 65535 || inet_pton(AF_INET, ip, &sin.sin_addr) != 1) {
		fprintf(stderr, "udp-blast: bad address %s:%s\n", ip, port);
		exit(2);
	}
	sin.sin_port = htons((uint16_t)p);
	return sin;
}

struct counts {
	uint64_t packets, bytes, errors;
};

static void report(const struct counts *c)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	printf("%llu %llu %llu %llu\n", (unsigned long long)c->packets,
	       (unsigned long long)c->bytes,
	       (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec,
	       (unsigned long long)c->errors);
	fflush(stdout);
}

/* Between batches: answer a report request, and say whether to stop. */
static int checkpoint(const struct counts *c)
{
	if (report_wanted) {
		report_wanted = 0;
		report(c);
	}
	return stop_wanted;
}

static int run_recv(const char *ip, const char *port)
{
	static char bufs[BATCH][2048];
	struct sockaddr_in sin = address(ip, port);
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct counts c = { 0 };
	int fd, i, n, rcvbuf = 8 << 20;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	/* Root may exceed rmem_max: a deep queue keeps the receiver's scheduling
	 * hiccups from showing up as drops. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
		die("setsockopt SO_RCVBUF");
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("bind");
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);

	while (!checkpoint(&c)) {
		n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("recvmmsg");
		}
		c.packets += n;
		for (i = 0; i < n; i++)
			c.bytes += msgs[i].msg_len;
	}
	report(&c);
	return 0;
}

static int run_send(const char *src, const char *dst, const char *port, const char *size)
{
	static char payload[MAX_PAYLOAD];
	struct sockaddr_in from = address(src, "9");
	struct sockaddr_in to = address(dst, port);
	struct mmsghdr msgs[BATCH];
	struct iovec iov;
	struct counts c = { 0 };
	char *end;
	long len = strtol(size, &end, 10);
	int fd, i, n;

	if (*end || len < 0 || len > MAX_PAYLOAD) {
		fprintf(stderr, "udp-blast: bad payload size %s\n", size);
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0)
		die("bind");
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0)
		die("connect");
	memset(payload, 0xa5, sizeof(payload));
	iov.iov_base = payload;
	iov.iov_len = (size_t)len;
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);

	while (!checkpoint(&c)) {
		n = sendmmsg(fd, msgs, BATCH, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED)
				die("sendmmsg");
			c.errors++;
			continue;
		}
		c.packets += n;
		c.bytes += (uint64_t)n * (uint64_t)len;
	}
	report(&c);
	return 0;
}

#define TCP_CHUNK (256 * 1024)

static int run_tcp_recv(const char *ip, const char *port)
{
	static char buf[TCP_CHUNK];
	struct sockaddr_in sin = address(ip, port);
	struct counts c = { 0 };
	int lfd, fd = -1, one = 1;
	ssize_t n;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		die("setsockopt SO_REUSEADDR");
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("bind");
	if (listen(lfd, 1) < 0)
		die("listen");
	printf("ready\n");
	fflush(stdout);

	while (!checkpoint(&c)) {
		if (fd < 0) {
			fd = accept(lfd, NULL, NULL);
			if (fd < 0 && errno != EINTR)
				die("accept");
			continue;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		if (n == 0) {
			/* The sender went away: wait for the stop signal. */
			close(fd);
			fd = -1;
			continue;
		}
		c.packets++;
		c.bytes += (uint64_t)n;
	}
	report(&c);
	return 0;
}

static int run_tcp_send(const char *src, const char *dst, const char *port)
{
	static char buf[TCP_CHUNK];
	struct sockaddr_in from = address(src, "0");
	struct sockaddr_in to = address(dst, port);
	struct counts c = { 0 };
	int fd, tries;
	ssize_t n;

	memset(buf, 0xa5, sizeof(buf));
	/* The listener may be a moment behind: retry for up to 5 s. */
	for (tries = 0;; tries++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			die("socket");
		if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0)
			die("bind");
		if (connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0)
			break;
		if (tries >= 50 || (errno != ECONNREFUSED && errno != EINTR))
			die("connect");
		close(fd);
		usleep(100000);
	}
	printf("ready\n");
	fflush(stdout);

	while (!checkpoint(&c)) {
		n = write(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		c.packets++;
		c.bytes += (uint64_t)n;
	}
	report(&c);
	return 0;
}

int main(int argc, char **argv)
{
	handle(SIGUSR1, on_report);
	handle(SIGTERM, on_stop);
	handle(SIGINT, on_stop);
	if (argc == 4 && !strcmp(argv[1], "recv"))
		return run_recv(argv[2], argv[3]);
	if (argc == 6 && !strcmp(argv[1], "send"))
		return run_send(argv[2], argv[3], argv[4], argv[5]);
	if (argc == 4 && !strcmp(argv[1], "tcp-recv"))
		return run_tcp_recv(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "tcp-send"))
		return run_tcp_send(argv[2], argv[3], argv[4]);
	usage();
	return 2;
}
