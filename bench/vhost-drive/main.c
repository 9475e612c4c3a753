// SPDX-License-Identifier: MIT
/*
 * vhost-drive: a userspace virtio-net driver for /dev/vhost-net.
 *
 * It plays the guest's virtio-net driver one emulation level down, so that the
 * vhost-net path of a KNI socket (or of a TAP) can be measured without booting
 * a guest. One anonymous memory region is the "guest memory" (guest physical
 * address == our virtual address); RX is queue 0, TX queue 1; split rings with
 * one descriptor per buffer, no EVENT_IDX, no indirect descriptors.
 *
 *   vhost-drive (--backend-fd N | --tap IFNAME | --inject IFNAME) [--mode tx|rx|ping|bounds] ...
 *   (--help lists the options)
 *
 * Build (only libc), from every .c file here (bench/proc.ts's ensureCTool
 * builds build/bench/vhost-drive the same way):
 *   cd bench/vhost-drive && gcc -O2 -Wall -Wextra -Werror -o /tmp/vhost-drive *.c
 * Parts: main.c options and main; modes.c the modes and the report; vring.c
 * guest memory, rings, vhost set-up and the backend; frames.c the frames;
 * inject.c the AF_PACKET sender.
 *
 * Header: every buffer carries a virtio-net header of --hdr-len bytes: 12
 * (VERSION_1 + MRG_RXBUF, what modern guests use) or 10 (legacy, one RX
 * buffer per frame). By default the backend carries it too (a TAP opened with
 * IFF_VNET_HDR, a KNI socket with vnet_hdr=1; TUNSETVNETHDRSZ is set to
 * --hdr-len). --vhost-hdr negotiates VHOST_NET_F_VIRTIO_NET_HDR: vhost adds and
 * strips the header and the backend sees plain frames (KNI vnet_hdr=0; what
 * qemu does for a backend without IFF_VNET_HDR). vhost-net has no mode without
 * a header on the guest side, so there is no --hdr-len 0.
 *
 * Modes: tx sends UDP/IPv4 frames (TCP/IPv4 TSO super-frames with --tso) as
 * fast as the ring allows or at --rate; rx counts what arrives; ping measures
 * ICMP echo round trips one at a time; bounds posts --rx-buf sized buffers
 * (e.g. 16) and then checks that vhost still completes TX descriptors (with
 * --grow-after S, the buffers get their full size after S seconds, so that
 * frames sent later must arrive). --kick-ms plays a guest that kicks its RX
 * queue on a timer, needed or not (a backend that makes vhost spin shows
 * then in vhostWorkerCpuS). Every
 * mode answers ARP requests for --src-ip. One JSON object goes to stdout.
 * Exit status: 0 ok, 1 runtime failure, 2 usage error.
 *
 * --inject IFNAME needs no vhost: the far end that sends towards a driver
 * instance. An AF_PACKET socket bound to IFNAME sends the same data frames as
 * --mode tx (the only mode it takes), each behind a 10-byte virtio-net header
 * (PACKET_VNET_HDR), so --tso super-frames leave as GSO frames and a veth
 * peer receives them whole. Sends the kernel refuses for now (ENOBUFS,
 * EAGAIN) are retried and counted ("sendErrors"); it answers nothing. The
 * options that configure vhost (--hdr-len, --vhost-hdr, --offload, --ring,
 * --rx-buf, --mem-mb, --vhost-dev) are usage errors with it; the report's
 * "backend" is "inject" and its vhost-only fields 0 or null.
 *
 * A TAP in a namespace (the namespace's own stack is the peer; create the TAP
 * and bring it up first, or its stack drops what we send):
 *   ip netns add vd
 *   ip netns exec vd ip tuntap add dev vd0 mode tap
 *   ip netns exec vd ip link set vd0 address 02:00:00:00:00:02 up
 *   ip netns exec vd ip addr add 10.0.0.2/24 dev vd0
 *   ip netns exec vd vhost-drive --tap vd0 --mode ping --seconds 3
 *   ip netns exec vd vhost-drive --tap vd0 --mode tx --tso 65000 --seconds 5
 * and the other way, injected into the TAP while a --mode rx driver listens
 * (--offload lets the TAP pass super-frames whole, counted in rxGsoFrames):
 *   ip netns exec vd vhost-drive --tap vd0 --offload --mode rx --seconds 4 &
 *   ip netns exec vd vhost-drive --inject vd0 --src-mac 02:00:00:00:00:02 \
 *     --dst-mac 02:00:00:00:00:01 --src-ip 10.0.0.2 --dst-ip 10.0.0.1 --tso 64000 --seconds 2
 * A KNI socket (fd 3 from `kniv sock exec`), vnet_hdr off, then on:
 *   kniv sock exec vEth0 -- vhost-drive --backend-fd {fd} --vhost-hdr --mode tx
 *   kniv sock vnet-hdr vEth0 on
 *   kniv sock exec vEth0 -- vhost-drive --backend-fd {fd} --mode tx --tso 65000
 * Injecting into one end of a veth pair; the other end receives each GSO
 * frame whole, so its RX bytes grow by txBytes (`ip -n t1 -s link show dev b`;
 * "name" and "dev" because ip reads a bare "a" as "address"):
 *   ip netns add t1
 *   ip -n t1 link add name a type veth peer name b
 *   ip -n t1 link set dev a up; ip -n t1 link set dev b up
 *   ip netns exec t1 vhost-drive --inject a --mode tx --tso 65000 --seconds 1
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/virtio_net.h>

#include "inject.h"
#include "modes.h"

const char *const mode_names[] = { "tx", "rx", "ping", "bounds" };
volatile sig_atomic_t stop;
static const uint8_t zero_mac[6];

/* ---- errors and the clock ---- */

/* Print "vhost-drive: <message>[: <errno text>]" and exit with status. */
static void __attribute__((noreturn)) vexit(int status, int err, const char *fmt, va_list ap)
{
	fputs("vhost-drive: ", stderr);
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputs(status == 2 ? " (see --help)\n" : "\n", stderr);
	exit(status);
}

/* errno is read first: the formatting could change it. */
#define EXIT_FN(name, status, err) \
	void name(const char *fmt, ...) \
	{ int e = errno; va_list ap; va_start(ap, fmt); (void)e; vexit(status, err, fmt, ap); }
EXIT_FN(die, 1, e)
EXIT_FN(fail, 1, 0)
EXIT_FN(usage_error, 2, 0)

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* ---- options ---- */

static unsigned long parse_ul(const char *s, unsigned long lo, unsigned long hi, const char *opt)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		usage_error("%s wants an integer in %lu..%lu, not \"%s\"", opt, lo, hi, s);
	return v;
}

static double parse_double(const char *s, double lo, const char *opt)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= lo))
		usage_error("%s wants a number >= %g, not \"%s\"", opt, lo, s);
	return v;
}

static void parse_mac(const char *s, uint8_t *mac, const char *opt)
{
	unsigned b[6];
	char extra;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &extra) != 6)
		usage_error("%s wants a MAC address like 02:00:00:00:00:01, not \"%s\"", opt, s);
	for (int i = 0; i < 6; i++) {
		if (b[i] > 255)
			usage_error("%s: bad MAC address \"%s\"", opt, s);
		mac[i] = (uint8_t)b[i];
	}
}

static void parse_ip(const char *s, uint32_t *ip, const char *opt)
{
	if (inet_pton(AF_INET, s, ip) != 1)
		usage_error("%s wants an IPv4 address, not \"%s\"", opt, s);
}

static const char *parse_ifname(const char *s, const char *opt)
{
	if (!*s || strlen(s) >= IFNAMSIZ)
		usage_error("%s wants an interface name of 1..%d bytes", opt, IFNAMSIZ - 1);
	return s;
}

static void usage(void)
{
	puts("usage: vhost-drive (--backend-fd N | --tap IFNAME | --inject IFNAME)\n"
	     "                   [--mode tx|rx|ping|bounds] [options]\n"
	     "  --inject IFNAME       no vhost: send --mode tx's frames from an AF_PACKET socket on IFNAME\n"
	     "  --hdr-len 12|10       virtio-net header on each buffer (12: VERSION_1+MRG_RXBUF; default 12)\n"
	     "  --vhost-hdr           vhost adds/strips the header; the backend carries plain frames\n"
	     "  --vnet-hdr            the backend carries the header (the default)\n"
	     "  --offload             TUNSETOFFLOAD CSUM|TSO4|TSO6 on the backend (not with --vhost-hdr)\n"
	     "  --ring N              entries per ring, a power of two (default 256)\n"
	     "  --src-mac/--dst-mac   default 02:00:00:00:00:01 / 02:00:00:00:00:02\n"
	     "  --src-ip/--dst-ip     default 10.0.0.1 / 10.0.0.2\n"
	     "  --src-port/--dst-port UDP/TCP ports of data frames (default 1024 / 9)\n"
	     "  --seconds S           how long to run (default 5; unlimited with --count alone)\n"
	     "  --count N             ping: stop after N requests\n"
	     "  --frame-size BYTES    Ethernet length of UDP data frames (default 60)\n"
	     "  --tso BYTES           tx: TCP/IPv4 GSO super-frames of BYTES payload, --mss segments\n"
	     "  --mss BYTES           gso_size for --tso (default 1448)\n"
	     "  --rate PPS            tx: pace data frames (default: as fast as the ring or socket allows)\n"
	     "  --rx-buf BYTES        size of each RX buffer (default 2048)\n"
	     "  --ping-timeout-ms MS  ping: a request is lost after MS (default 1000)\n"
	     "  --mem-mb N            guest memory region size (default: what the rings need)\n"
	     "  --vhost-dev PATH      default /dev/vhost-net\n"
	     "  --kick-ms MS          rx, bounds: kick the RX queue every MS, as a guest that keeps kicking\n"
	     "  --grow-after S        bounds: after S seconds give every posted RX buffer its full size\n"
	     "                        (2048 B) and kick: frames must reach buffers again\n"
	     "With --inject: --mode tx only, and none of --hdr-len, --vhost-hdr, --offload, --ring,\n"
	     "--rx-buf, --mem-mb, --vhost-dev (they configure vhost).");
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_BACKEND = 256, O_TAP, O_INJECT, O_MODE, O_HDR, O_VHOST_HDR, O_VNET_HDR, O_OFFLOAD,
	       O_RING, O_SMAC, O_DMAC, O_SIP, O_DIP, O_SPORT, O_DPORT, O_SECONDS, O_COUNT, O_FRAME,
	       O_TSO, O_MSS, O_RATE, O_RXBUF, O_PTIMEOUT, O_MEM, O_DEV, O_KICK, O_GROW, O_HELP };
	static const struct option longopts[] = {
		{ "backend-fd", 1, 0, O_BACKEND }, { "tap", 1, 0, O_TAP }, { "inject", 1, 0, O_INJECT },
		{ "mode", 1, 0, O_MODE }, { "hdr-len", 1, 0, O_HDR }, { "vhost-hdr", 0, 0, O_VHOST_HDR },
		{ "vnet-hdr", 0, 0, O_VNET_HDR }, { "offload", 0, 0, O_OFFLOAD }, { "ring", 1, 0, O_RING },
		{ "src-mac", 1, 0, O_SMAC }, { "dst-mac", 1, 0, O_DMAC }, { "src-ip", 1, 0, O_SIP },
		{ "dst-ip", 1, 0, O_DIP }, { "src-port", 1, 0, O_SPORT }, { "dst-port", 1, 0, O_DPORT },
		{ "seconds", 1, 0, O_SECONDS }, { "count", 1, 0, O_COUNT }, { "frame-size", 1, 0, O_FRAME },
		{ "tso", 1, 0, O_TSO }, { "mss", 1, 0, O_MSS }, { "rate", 1, 0, O_RATE },
		{ "rx-buf", 1, 0, O_RXBUF }, { "ping-timeout-ms", 1, 0, O_PTIMEOUT },
		{ "mem-mb", 1, 0, O_MEM }, { "vhost-dev", 1, 0, O_DEV }, { "kick-ms", 1, 0, O_KICK },
		{ "grow-after", 1, 0, O_GROW }, { "help", 0, 0, O_HELP },
		{ 0, 0, 0, 0 }
	};
	const char *vhost_opt = NULL;  /* the last option given that only vhost uses */
	int c;

	*o = (struct opts){ .mode = MODE_TX, .backend_fd = -1, .vhost_dev = "/dev/vhost-net",
			    .hdr_len = 12, .frame_size = 60, .mss = 1448, .rx_buf = 2048, .ring = 256,
			    .ping_timeout_ms = 1000, .seconds = 5,
			    .fl = { .src_port = 1024, .dst_port = 9,
				    .src_mac = { 2, 0, 0, 0, 0, 1 }, .dst_mac = { 2, 0, 0, 0, 0, 2 } } };
	parse_ip("10.0.0.1", &o->fl.src_ip, "--src-ip");
	parse_ip("10.0.0.2", &o->fl.dst_ip, "--dst-ip");
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_BACKEND: o->backend_fd = (int)parse_ul(optarg, 0, 1 << 30, "--backend-fd"); break;
		case O_TAP: o->tap = parse_ifname(optarg, "--tap"); break;
		case O_INJECT: o->inject = parse_ifname(optarg, "--inject"); break;
		case O_MODE: {
			unsigned m;

			for (m = 0; m < 4 && strcmp(optarg, mode_names[m]); m++)
				;
			if (m == 4)
				usage_error("--mode is tx, rx, ping or bounds, not \"%s\"", optarg);
			o->mode = (enum mode)m;
			break;
		}
		case O_HDR:
			o->hdr_len = (unsigned)parse_ul(optarg, 0, 12, "--hdr-len");
			if (o->hdr_len == 0)
				usage_error("--hdr-len 0: vhost-net has no header-less mode (the guest's buffers "
					    "always carry 10 or 12 bytes, and without VHOST_NET_F_VIRTIO_NET_HDR "
					    "vhost expects them from the socket); for a backend of plain frames "
					    "use --vhost-hdr");
			if (o->hdr_len != 10 && o->hdr_len != 12)
				usage_error("--hdr-len is 10 or 12");
			vhost_opt = "--hdr-len";
			break;
		case O_VHOST_HDR: o->vhost_hdr = true; vhost_opt = "--vhost-hdr"; break;
		case O_VNET_HDR: o->vnet_hdr = true; break;
		case O_OFFLOAD: o->offload = true; vhost_opt = "--offload"; break;
		case O_RING:
			o->ring = (unsigned)parse_ul(optarg, 1, 32768, "--ring");
			if (o->ring & (o->ring - 1))
				usage_error("--ring must be a power of two");
			vhost_opt = "--ring";
			break;
		case O_SMAC: parse_mac(optarg, o->fl.src_mac, "--src-mac"); break;
		case O_DMAC: parse_mac(optarg, o->fl.dst_mac, "--dst-mac"); break;
		case O_SIP: parse_ip(optarg, &o->fl.src_ip, "--src-ip"); break;
		case O_DIP: parse_ip(optarg, &o->fl.dst_ip, "--dst-ip"); break;
		case O_SPORT: o->fl.src_port = (uint16_t)parse_ul(optarg, 0, 65535, "--src-port"); break;
		case O_DPORT: o->fl.dst_port = (uint16_t)parse_ul(optarg, 0, 65535, "--dst-port"); break;
		case O_SECONDS:
			o->seconds = parse_double(optarg, 0, "--seconds");
			if (o->seconds > 1e9)
				usage_error("--seconds is at most 1e9");
			o->seconds_set = true;
			break;
		case O_COUNT: o->count = parse_ul(optarg, 1, ~0ul, "--count"); break;
		case O_FRAME: o->frame_size = (unsigned)parse_ul(optarg, 42, 65535, "--frame-size"); break;
		case O_TSO: o->tso = (unsigned)parse_ul(optarg, 1, 65535 - 40, "--tso"); break;
		case O_MSS: o->mss = (unsigned)parse_ul(optarg, 1, 65535 - 54, "--mss"); break;
		case O_RATE: o->rate = parse_double(optarg, 0, "--rate"); break;
		case O_RXBUF:
			o->rx_buf = (unsigned)parse_ul(optarg, 1, 1 << 20, "--rx-buf");
			vhost_opt = "--rx-buf";
			break;
		case O_PTIMEOUT: o->ping_timeout_ms = (unsigned)parse_ul(optarg, 1, 3600000, "--ping-timeout-ms"); break;
		case O_MEM:
			o->mem_mb = (unsigned)parse_ul(optarg, 1, 1 << 20, "--mem-mb");
			vhost_opt = "--mem-mb";
			break;
		case O_DEV: o->vhost_dev = optarg; vhost_opt = "--vhost-dev"; break;
		case O_KICK:
			o->kick_ms = parse_double(optarg, 0.001, "--kick-ms");
			vhost_opt = "--kick-ms";
			break;
		case O_GROW:
			o->grow_after = parse_double(optarg, 0.001, "--grow-after");
			vhost_opt = "--grow-after";
			break;
		case O_HELP: usage(); exit(0);
		default: usage_error("unknown option");
		}
	}
	if (optind < argc)
		usage_error("unexpected argument \"%s\"", argv[optind]);
	if (o->inject) {
		if (o->backend_fd >= 0 || o->tap)
			usage_error("--inject is a backend of its own: not with --backend-fd or --tap");
		if (o->mode != MODE_TX)
			usage_error("--inject only sends: it takes --mode tx, not --mode %s",
				    mode_names[o->mode]);
		if (vhost_opt)
			usage_error("%s configures vhost; it does not apply to --inject", vhost_opt);
	} else if ((o->backend_fd >= 0) == (o->tap != NULL)) {
		usage_error("give exactly one of --backend-fd N, --tap IFNAME and --inject IFNAME");
	}
	if (o->vhost_hdr && o->vnet_hdr)
		usage_error("--vhost-hdr and --vnet-hdr contradict each other");
	if (o->offload && o->vhost_hdr)
		usage_error("--offload needs a backend that carries the header (not --vhost-hdr)");
	if (o->tso && (o->vhost_hdr || o->mode != MODE_TX))
		usage_error("--tso needs --mode tx and a backend that carries the header (not --vhost-hdr)");
	if (o->kick_ms > 0 && o->mode != MODE_RX && o->mode != MODE_BOUNDS)
		usage_error("--kick-ms applies to --mode rx and --mode bounds");
	if (o->grow_after > 0 && (o->mode != MODE_BOUNDS || o->grow_after >= o->seconds))
		usage_error("--grow-after applies to --mode bounds and must be less than --seconds");
	if (o->count && o->mode != MODE_PING)
		usage_error("--count applies to --mode ping");
	if (o->count && !o->seconds_set)
		o->seconds = 1e9;
	if (!o->inject && o->hdr_len == 10 && o->mode != MODE_BOUNDS && o->rx_buf < 10 + 1514)
		fprintf(stderr, "vhost-drive: warning: without MRG_RXBUF (--hdr-len 10) vhost drops "
			"frames longer than --rx-buf %u minus the header\n", o->rx_buf);
}

/* ---- main ---- */

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* No SA_RESTART: a blocking wait returns at once and the loop sees stop. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* --inject: no vhost, no rings; the report's queue fields stay 0. */
static int main_inject(struct drv *d)
{
	uint64_t t0, t1;
	int fd;

	d->hlen = sizeof(struct virtio_net_hdr);
	d->rx.err = d->tx.err = -1;
	fd = inject_open(d->o.inject);
	catch_signals();
	t0 = now_ns();
	inject_tx(fd, &d->o, &d->s, t0, t0 + (uint64_t)(d->o.seconds * NS));
	t1 = now_ns();
	report(d, (double)(t1 - t0) / NS, NULL, -1, -1, -1);
	return 0;
}

int main(int argc, char **argv)
{
	static struct drv drv;
	struct drv *d = &drv;
	struct ping_result pr = { 0 };
	uint64_t t0, t_end, t1;
	double vcpu0, vcpu1;
	int alive = -1;
	size_t frame_max;

	parse_args(argc, argv, &d->o);
	d->data_len = data_frame_len(d->o.frame_size, d->o.tso);
	if (d->o.inject)
		return main_inject(d);
	d->hlen = d->o.hdr_len;
	frame_max = d->data_len > CTRL_MAX ? d->data_len : CTRL_MAX;
	d->tx.buf_size = (d->hlen + frame_max + 63) & ~(size_t)63;
	d->backend = d->o.tap ? open_tap(&d->o) : d->o.backend_fd;
	setup_backend_hdr(d);
	mem_setup(d, d->tx.buf_size);
	vhost_setup(d);
	catch_signals();

	if (d->o.mode == MODE_PING) {
		/* An ARP request for dst-ip teaches the peer our address; the reply
		 * (if any) is not used: --dst-mac is. */
		send_arp(d, 1, zero_mac, (const uint8_t *)&d->o.fl.dst_ip);
		idle_until(d, now_ns() + NS / 5, &d->arp_got);
	}
	vcpu0 = vhost_worker_cpu();
	t0 = now_ns();
	t_end = t0 + (uint64_t)(d->o.seconds * NS);
	switch (d->o.mode) {
	case MODE_TX: run_tx(d, t0, t_end); break;
	case MODE_PING: run_ping(d, t_end, &pr); break;
	case MODE_RX: idle_until(d, t_end, NULL); break;
	case MODE_BOUNDS:
		if (d->o.grow_after > 0) {
			idle_until(d, t0 + (uint64_t)(d->o.grow_after * NS), NULL);
			d->rx_frames_small = d->s.rx_frames;
			d->vcpu_small = vhost_worker_cpu() - vcpu0;
			rx_grow(d);
		}
		idle_until(d, t_end, NULL);
		break;
	}
	t1 = now_ns();
	if (d->o.mode == MODE_BOUNDS) {
		/* Liveness probe: after the hostile RX phase, does vhost still move TX? */
		stop = 0;
		for (int i = 0; i < 8; i++)
			send_arp(d, 1, zero_mac, (const uint8_t *)&d->o.fl.dst_ip);
		alive = tx_drain(d, NS);
	} else {
		tx_drain(d, NS / 2);
	}
	vcpu1 = vhost_worker_cpu();
	report(d, (double)(t1 - t0) / NS, d->o.mode == MODE_PING ? &pr : NULL, alive, vcpu0, vcpu1);
	return 0;
}
