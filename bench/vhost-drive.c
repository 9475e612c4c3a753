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
 *   vhost-drive (--backend-fd N | --tap IFNAME) [--mode tx|rx|ping|bounds] ...
 *   (--help lists the options)
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
 * (e.g. 16) and then checks that vhost still completes TX descriptors. Every
 * mode answers ARP requests for --src-ip. One JSON object goes to stdout.
 * Exit status: 0 ok, 1 runtime failure, 2 usage error.
 *
 * A TAP in a namespace (the namespace's own stack is the peer; create the TAP
 * and bring it up first, or its stack drops what we send):
 *   ip netns add vd
 *   ip netns exec vd ip tuntap add dev vd0 mode tap
 *   ip netns exec vd ip link set vd0 address 02:00:00:00:00:02 up
 *   ip netns exec vd ip addr add 10.0.0.2/24 dev vd0
 *   ip netns exec vd vhost-drive --tap vd0 --mode ping --seconds 3
 *   ip netns exec vd vhost-drive --tap vd0 --mode tx --tso 65000 --seconds 5
 * A KNI socket (fd 3 from `kniv sock exec`), vnet_hdr off, then on:
 *   kniv sock exec vEth0 -- vhost-drive --backend-fd {fd} --vhost-hdr --mode tx
 *   kniv sock vnet-hdr vEth0 on
 *   kniv sock exec vEth0 -- vhost-drive --backend-fd {fd} --mode tx --tso 65000
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vhost-drive writes ring and header fields in host order: little-endian only"
#endif

#define NS 1000000000ull
#define HEAD_MAX 256          /* bytes of each received frame kept for parsing */
#define CTRL_MAX 128          /* ARP and ICMP frames we build */
#define PING_PAYLOAD 56

enum mode { MODE_TX, MODE_RX, MODE_PING, MODE_BOUNDS };
static const char *const mode_names[] = { "tx", "rx", "ping", "bounds" };
enum kind { KIND_NONE, KIND_DATA, KIND_CTRL };  /* what a TX buffer holds */

struct opts {
	enum mode mode;
	int backend_fd;
	const char *tap, *vhost_dev;
	bool vhost_hdr, vnet_hdr, offload, seconds_set;
	unsigned hdr_len, frame_size, tso, mss, rx_buf, ring, ping_timeout_ms, mem_mb;
	uint8_t src_mac[6], dst_mac[6];
	uint32_t src_ip, dst_ip;      /* network order */
	uint16_t src_port, dst_port;
	double seconds, rate;
	unsigned long count;
};

struct ring {
	unsigned num, mask;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;           /* our shadow of avail->idx */
	uint16_t used_seen;           /* next used entry to read */
	int kick, call, err;          /* eventfds */
	uint8_t *buf;                 /* num buffers of buf_size bytes, buffer i = descriptor i */
	size_t buf_size;
};

struct stats {
	uint64_t tx_frames, tx_bytes, tx_done, rx_frames, rx_bytes, rx_bufs, rx_gso, rx_errors;
	uint64_t arp_requests, arp_replies, ctrl_drops, kicks, calls, full_waits;
};

struct drv {
	struct opts o;
	int vhost, backend;
	uint64_t features;
	unsigned hlen;                /* virtio-net header on each buffer */
	bool mrg;
	uint8_t *mem;
	size_t mem_size, mem_used;
	struct ring rx, tx;
	uint16_t *tx_free;            /* stack of free TX descriptor ids */
	unsigned tx_nfree;
	uint8_t *tx_kind;
	size_t data_len;              /* Ethernet bytes of a data frame */
	uint32_t tcp_seq;
	uint8_t head[HEAD_MAX];       /* the received frame being reassembled */
	size_t head_fill, frame_total;
	unsigned frame_bufs, frame_nbufs;
	uint16_t ping_id, ping_seq;
	bool ping_waiting, ping_got, arp_got;
	uint64_t ping_t1;
	struct stats s;
};

static volatile sig_atomic_t stop;
static const uint8_t zero_mac[6];

/* ---- errors and small helpers ---- */

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

#define EXIT_FN(name, status, err) \
	static void __attribute__((noreturn, format(printf, 1, 2))) name(const char *fmt, ...) \
	{ int e = errno; va_list ap; va_start(ap, fmt); (void)e; vexit(status, err, fmt, ap); }
EXIT_FN(die, 1, e)          /* a system call failed: its errno is shown */
EXIT_FN(fail, 1, 0)         /* a runtime failure */
EXIT_FN(usage_error, 2, 0)  /* bad command line */

static void xioctl(int fd, unsigned long req, void *arg, const char *name, int queue)
{
	if (ioctl(fd, req, arg) < 0) {
		if (queue >= 0)
			die("%s (queue %d, %s)", name, queue, queue ? "tx" : "rx");
		die("%s", name);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Internet checksum over big-endian 16-bit words. */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
	for (; len > 1; p += 2, len -= 2)
		sum += get16(p);
	if (len)
		sum += (uint64_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
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

static void usage(void)
{
	puts("usage: vhost-drive (--backend-fd N | --tap IFNAME) [--mode tx|rx|ping|bounds] [options]\n"
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
	     "  --rate PPS            tx: pace data frames (default: as fast as the ring allows)\n"
	     "  --rx-buf BYTES        size of each RX buffer (default 2048)\n"
	     "  --ping-timeout-ms MS  ping: a request is lost after MS (default 1000)\n"
	     "  --mem-mb N            guest memory region size (default: what the rings need)\n"
	     "  --vhost-dev PATH      default /dev/vhost-net");
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_BACKEND = 256, O_TAP, O_MODE, O_HDR, O_VHOST_HDR, O_VNET_HDR, O_OFFLOAD, O_RING,
	       O_SMAC, O_DMAC, O_SIP, O_DIP, O_SPORT, O_DPORT, O_SECONDS, O_COUNT, O_FRAME, O_TSO,
	       O_MSS, O_RATE, O_RXBUF, O_PTIMEOUT, O_MEM, O_DEV, O_HELP };
	static const struct option longopts[] = {
		{ "backend-fd", 1, 0, O_BACKEND }, { "tap", 1, 0, O_TAP }, { "mode", 1, 0, O_MODE },
		{ "hdr-len", 1, 0, O_HDR }, { "vhost-hdr", 0, 0, O_VHOST_HDR },
		{ "vnet-hdr", 0, 0, O_VNET_HDR }, { "offload", 0, 0, O_OFFLOAD }, { "ring", 1, 0, O_RING },
		{ "src-mac", 1, 0, O_SMAC }, { "dst-mac", 1, 0, O_DMAC }, { "src-ip", 1, 0, O_SIP },
		{ "dst-ip", 1, 0, O_DIP }, { "src-port", 1, 0, O_SPORT }, { "dst-port", 1, 0, O_DPORT },
		{ "seconds", 1, 0, O_SECONDS }, { "count", 1, 0, O_COUNT }, { "frame-size", 1, 0, O_FRAME },
		{ "tso", 1, 0, O_TSO }, { "mss", 1, 0, O_MSS }, { "rate", 1, 0, O_RATE },
		{ "rx-buf", 1, 0, O_RXBUF }, { "ping-timeout-ms", 1, 0, O_PTIMEOUT },
		{ "mem-mb", 1, 0, O_MEM }, { "vhost-dev", 1, 0, O_DEV }, { "help", 0, 0, O_HELP },
		{ 0, 0, 0, 0 }
	};
	int c;

	*o = (struct opts){ .mode = MODE_TX, .backend_fd = -1, .vhost_dev = "/dev/vhost-net",
			    .hdr_len = 12, .frame_size = 60, .mss = 1448, .rx_buf = 2048, .ring = 256,
			    .ping_timeout_ms = 1000, .src_port = 1024, .dst_port = 9, .seconds = 5,
			    .src_mac = { 2, 0, 0, 0, 0, 1 }, .dst_mac = { 2, 0, 0, 0, 0, 2 } };
	parse_ip("10.0.0.1", &o->src_ip, "--src-ip");
	parse_ip("10.0.0.2", &o->dst_ip, "--dst-ip");
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_BACKEND: o->backend_fd = (int)parse_ul(optarg, 0, 1 << 30, "--backend-fd"); break;
		case O_TAP:
			if (!*optarg || strlen(optarg) >= IFNAMSIZ)
				usage_error("--tap wants an interface name of 1..%d bytes", IFNAMSIZ - 1);
			o->tap = optarg;
			break;
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
			break;
		case O_VHOST_HDR: o->vhost_hdr = true; break;
		case O_VNET_HDR: o->vnet_hdr = true; break;
		case O_OFFLOAD: o->offload = true; break;
		case O_RING:
			o->ring = (unsigned)parse_ul(optarg, 1, 32768, "--ring");
			if (o->ring & (o->ring - 1))
				usage_error("--ring must be a power of two");
			break;
		case O_SMAC: parse_mac(optarg, o->src_mac, "--src-mac"); break;
		case O_DMAC: parse_mac(optarg, o->dst_mac, "--dst-mac"); break;
		case O_SIP: parse_ip(optarg, &o->src_ip, "--src-ip"); break;
		case O_DIP: parse_ip(optarg, &o->dst_ip, "--dst-ip"); break;
		case O_SPORT: o->src_port = (uint16_t)parse_ul(optarg, 0, 65535, "--src-port"); break;
		case O_DPORT: o->dst_port = (uint16_t)parse_ul(optarg, 0, 65535, "--dst-port"); break;
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
		case O_RXBUF: o->rx_buf = (unsigned)parse_ul(optarg, 1, 1 << 20, "--rx-buf"); break;
		case O_PTIMEOUT: o->ping_timeout_ms = (unsigned)parse_ul(optarg, 1, 3600000, "--ping-timeout-ms"); break;
		case O_MEM: o->mem_mb = (unsigned)parse_ul(optarg, 1, 1 << 20, "--mem-mb"); break;
		case O_DEV: o->vhost_dev = optarg; break;
		case O_HELP: usage(); exit(0);
		default: usage_error("unknown option");
		}
	}
	if (optind < argc)
		usage_error("unexpected argument \"%s\"", argv[optind]);
	if ((o->backend_fd >= 0) == (o->tap != NULL))
		usage_error("give exactly one of --backend-fd N and --tap IFNAME");
	if (o->vhost_hdr && o->vnet_hdr)
		usage_error("--vhost-hdr and --vnet-hdr contradict each other");
	if (o->offload && o->vhost_hdr)
		usage_error("--offload needs a backend that carries the header (not --vhost-hdr)");
	if (o->tso && (o->vhost_hdr || o->mode != MODE_TX))
		usage_error("--tso needs --mode tx and a backend that carries the header (not --vhost-hdr)");
	if (o->count && o->mode != MODE_PING)
		usage_error("--count applies to --mode ping");
	if (o->count && !o->seconds_set)
		o->seconds = 1e9;
	if (o->hdr_len == 10 && o->mode != MODE_BOUNDS && o->rx_buf < 10 + 1514)
		fprintf(stderr, "vhost-drive: warning: without MRG_RXBUF (--hdr-len 10) vhost drops "
			"frames longer than --rx-buf %u minus the header\n", o->rx_buf);
}

/* ---- backend ---- */

static int open_tap(const struct opts *o)
{
	struct ifreq ifr;
	int sock, fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open /dev/net/tun");
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, o->tap, strlen(o->tap));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (o->vhost_hdr ? 0 : IFF_VNET_HDR);
	xioctl(fd, TUNSETIFF, &ifr, "TUNSETIFF", -1);
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock >= 0 && ioctl(sock, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP))
		fprintf(stderr, "vhost-drive: warning: %s is down; its stack drops what we send "
			"(create it first: ip tuntap add dev %s mode tap; ip link set %s up)\n",
			o->tap, o->tap, o->tap);
	if (sock >= 0)
		close(sock);
	return fd;
}

/* The socket's header length must be vhost's sock_hlen, or every RX frame is
 * discarded by vhost (recvmsg's length != peeked length + sock_hlen). */
static void setup_backend_hdr(struct drv *d)
{
	struct ifreq ifr;
	bool has_hdr = true;
	int sz = (int)d->hlen;

	if (fcntl(d->backend, F_GETFD) < 0)
		usage_error("--backend-fd %d is not an open descriptor", d->backend);
	memset(&ifr, 0, sizeof ifr);
	if (ioctl(d->backend, TUNGETIFF, &ifr) == 0) {
		has_hdr = ifr.ifr_flags & IFF_VNET_HDR;
		if (has_hdr == d->o.vhost_hdr)
			fprintf(stderr, "vhost-drive: warning: the backend %s virtio-net headers (TUNGETIFF) "
				"but %s; frames will be misread\n", has_hdr ? "carries" : "carries no",
				has_hdr ? "--vhost-hdr has vhost add its own"
					: "vhost will expect them from it (use --vhost-hdr)");
	} else {
		fprintf(stderr, "vhost-drive: warning: TUNGETIFF on the backend: %s\n", strerror(errno));
	}
	if (d->o.vhost_hdr || !has_hdr)
		return;
	xioctl(d->backend, TUNSETVNETHDRSZ, &sz, "TUNSETVNETHDRSZ", -1);
	if (d->o.offload &&
	    ioctl(d->backend, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0)
		die("TUNSETOFFLOAD CSUM|TSO4|TSO6");
}

/* ---- rings ---- */

static void ring_post(struct ring *r, uint16_t id, uint32_t len)
{
	r->desc[id].len = len;
	r->avail->ring[r->avail_idx & r->mask] = id;
	r->avail_idx++;
}

static void ring_publish(struct drv *d, struct ring *r)
{
	uint64_t one = 1;

	if (r->avail->idx == r->avail_idx)
		return;
	/* Barrier pair 1: descriptors and avail ring entries before avail->idx
	 * (release); pairs with the read barrier in vhost_get_vq_desc() between
	 * reading avail->idx and reading the ring. */
	__atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
	/* Barrier pair 2: avail->idx before reading used->flags (full barrier);
	 * pairs with the smp_mb() in vhost_enable_notify() between clearing
	 * VRING_USED_F_NO_NOTIFY and re-reading avail->idx. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY)
		return;
	if (write(r->kick, &one, sizeof one) != sizeof one)
		die("write to the kick eventfd");
	d->s.kicks++;
}

/* ---- guest memory and vhost set-up ---- */

static size_t page_up(size_t n) { return (n + 4095) & ~(size_t)4095; }

static size_t ring_bytes(unsigned num, size_t buf_size)
{
	return page_up(16 * num) + page_up(6 + 2 * num) + page_up(6 + 8 * num) + 4096 +
	       num * buf_size + 64;
}

static void *mem_take(struct drv *d, size_t len, size_t align)
{
	size_t off = (d->mem_used + align - 1) & ~(align - 1);

	if (off + len > d->mem_size)
		fail("--mem-mb %u is too small for the rings and buffers (%zu bytes needed)",
		     d->o.mem_mb, off + len);
	d->mem_used = off + len;
	return d->mem + off;
}

static void mem_setup(struct drv *d, size_t tx_buf)
{
	size_t need = ring_bytes(d->o.ring, d->o.rx_buf) + ring_bytes(d->o.ring, tx_buf);

	d->mem_size = d->o.mem_mb ? (size_t)d->o.mem_mb << 20 : (need + (1u << 20) - 1) & ~(size_t)((1u << 20) - 1);
	d->mem = mmap(NULL, d->mem_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (d->mem == MAP_FAILED)
		die("mmap %zu bytes of guest memory", d->mem_size);
}

/* Lay out a split ring and its buffers in guest memory; descriptor i always
 * points at buffer i (device-writable on RX). */
static void ring_alloc(struct drv *d, struct ring *r, bool rx, size_t buf_size)
{
	r->num = d->o.ring;
	r->mask = r->num - 1;
	r->desc = mem_take(d, 16 * r->num, 4096);
	r->avail = mem_take(d, 6 + 2 * r->num, 4096);
	r->used = mem_take(d, 6 + 8 * r->num, 4096);
	r->buf_size = buf_size;
	r->buf = mem_take(d, r->num * buf_size, 64);
	for (unsigned i = 0; i < r->num; i++) {
		r->desc[i].addr = (uintptr_t)(r->buf + i * buf_size);
		r->desc[i].len = (uint32_t)buf_size;
		r->desc[i].flags = rx ? VRING_DESC_F_WRITE : 0;
		r->desc[i].next = 0;
	}
	r->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->call = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->err = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->kick < 0 || r->call < 0 || r->err < 0)
		die("eventfd");
}

static void ring_register(struct drv *d, struct ring *r, unsigned index)
{
	struct vhost_vring_state st = { .index = index, .num = r->num };
	struct vhost_vring_addr a = { .index = index };
	struct vhost_vring_file f = { .index = index };

	xioctl(d->vhost, VHOST_SET_VRING_NUM, &st, "VHOST_SET_VRING_NUM", (int)index);
	st.num = 0;
	xioctl(d->vhost, VHOST_SET_VRING_BASE, &st, "VHOST_SET_VRING_BASE", (int)index);
	a.desc_user_addr = (uintptr_t)r->desc;
	a.avail_user_addr = (uintptr_t)r->avail;
	a.used_user_addr = (uintptr_t)r->used;
	xioctl(d->vhost, VHOST_SET_VRING_ADDR, &a, "VHOST_SET_VRING_ADDR", (int)index);
	f.fd = r->kick;
	xioctl(d->vhost, VHOST_SET_VRING_KICK, &f, "VHOST_SET_VRING_KICK", (int)index);
	f.fd = r->call;
	xioctl(d->vhost, VHOST_SET_VRING_CALL, &f, "VHOST_SET_VRING_CALL", (int)index);
	f.fd = r->err;
	xioctl(d->vhost, VHOST_SET_VRING_ERR, &f, "VHOST_SET_VRING_ERR", (int)index);
}

static uint64_t negotiate(struct drv *d)
{
	uint64_t offered, want = 0;

	xioctl(d->vhost, VHOST_GET_FEATURES, &offered, "VHOST_GET_FEATURES", -1);
	if (d->hlen == 12) {
		/* vhost-net's header is 12 bytes with VERSION_1 or MRG_RXBUF, else 10. */
		if (!(offered & (1ull << VIRTIO_NET_F_MRG_RXBUF)))
			fail("vhost-net does not offer VIRTIO_NET_F_MRG_RXBUF (features 0x%llx)",
			     (unsigned long long)offered);
		want |= 1ull << VIRTIO_NET_F_MRG_RXBUF;
		want |= offered & (1ull << VIRTIO_F_VERSION_1);
	}
	/* Not VIRTIO_F_ANY_LAYOUT: it is bit 27, the same bit as
	 * VHOST_NET_F_VIRTIO_NET_HDR, which vhost-net reads as "vhost adds and
	 * strips the header" (vhost does not care about layout anyway). */
	if (d->o.vhost_hdr) {
		if (!(offered & (1ull << VHOST_NET_F_VIRTIO_NET_HDR)))
			fail("vhost-net does not offer VHOST_NET_F_VIRTIO_NET_HDR");
		want |= 1ull << VHOST_NET_F_VIRTIO_NET_HDR;
	}
	/* Deliberately not: EVENT_IDX (interrupts stay flag-driven), INDIRECT_DESC,
	 * NOTIFY_ON_EMPTY, LOG_ALL, ACCESS_PLATFORM, RING_RESET. */
	xioctl(d->vhost, VHOST_SET_FEATURES, &want, "VHOST_SET_FEATURES", -1);
	return want;
}

static void queues_prime(struct drv *d)
{
	/* RX: every buffer posted before the backend is attached, so vhost may
	 * fill them as soon as the socket is readable. */
	for (unsigned i = 0; i < d->rx.num; i++)
		ring_post(&d->rx, (uint16_t)i, d->o.rx_buf);
	ring_publish(d, &d->rx);
	/* TX: all descriptors free; completions are reclaimed lazily, so vhost
	 * need not signal them except while we wait for a full ring. */
	d->tx_free = calloc(d->tx.num, sizeof *d->tx_free);
	d->tx_kind = calloc(d->tx.num, 1);
	if (!d->tx_free || !d->tx_kind)
		fail("out of memory");
	for (unsigned i = 0; i < d->tx.num; i++)
		d->tx_free[d->tx_nfree++] = (uint16_t)(d->tx.num - 1 - i);
	d->tx.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
}

static void vhost_setup(struct drv *d)
{
	struct vhost_memory *m = calloc(1, sizeof *m + sizeof m->regions[0]);
	struct vhost_vring_file be;

	d->vhost = open(d->o.vhost_dev, O_RDWR | O_CLOEXEC);
	if (d->vhost < 0)
		die("open %s", d->o.vhost_dev);
	xioctl(d->vhost, VHOST_SET_OWNER, NULL, "VHOST_SET_OWNER", -1);
	d->features = negotiate(d);
	d->mrg = d->features & (1ull << VIRTIO_NET_F_MRG_RXBUF);
	if (!m)
		fail("out of memory");
	m->nregions = 1;
	m->regions[0].guest_phys_addr = (uintptr_t)d->mem;
	m->regions[0].userspace_addr = (uintptr_t)d->mem;
	m->regions[0].memory_size = d->mem_size;
	xioctl(d->vhost, VHOST_SET_MEM_TABLE, m, "VHOST_SET_MEM_TABLE", -1);
	free(m);
	ring_alloc(d, &d->rx, true, d->o.rx_buf);
	ring_alloc(d, &d->tx, false, d->tx.buf_size);
	ring_register(d, &d->rx, 0);
	ring_register(d, &d->tx, 1);
	queues_prime(d);
	for (unsigned q = 0; q < 2; q++) {
		be = (struct vhost_vring_file){ .index = q, .fd = d->backend };
		xioctl(d->vhost, VHOST_NET_SET_BACKEND, &be, "VHOST_NET_SET_BACKEND", (int)q);
	}
}


/* ---- completions and waiting ---- */

/* Barrier pair 3: used->idx (acquire) before the used entries and the buffer
 * contents; pairs with the smp_wmb() in vhost_add_used_n() before it writes
 * used->idx. */
static uint16_t used_end(const struct ring *r, const char *name)
{
	uint16_t end = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);

	if ((uint16_t)(end - r->used_seen) > r->num)
		fail("vhost moved the %s used index from %u to %u (ring of %u)", name,
		     r->used_seen, end, r->num);
	return end;
}

static bool used_pending(const struct ring *r)
{
	return __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE) != r->used_seen;
}

static unsigned tx_reclaim(struct drv *d)
{
	struct ring *r = &d->tx;
	uint16_t end = used_end(r, "TX");
	unsigned n = 0;

	for (; r->used_seen != end; r->used_seen++, n++) {
		uint32_t id = r->used->ring[r->used_seen & r->mask].id;

		if (id >= r->num)
			fail("vhost returned TX descriptor %u (ring of %u)", id, r->num);
		d->tx_free[d->tx_nfree++] = (uint16_t)id;
	}
	d->s.tx_done += n;
	return n;
}

static int tx_take(struct drv *d)
{
	if (!d->tx_nfree)
		tx_reclaim(d);
	return d->tx_nfree ? d->tx_free[--d->tx_nfree] : -1;
}

/* Sleep until vhost signals a call eventfd or timeout_ns passes. With tx_irq,
 * TX completions are asked for meanwhile; RX always signals. */
static void wait_calls(struct drv *d, uint64_t timeout_ns, bool tx_irq)
{
	struct pollfd p[2] = { { .fd = d->rx.call, .events = POLLIN }, { .fd = d->tx.call, .events = POLLIN } };
	struct timespec ts = { .tv_sec = (time_t)(timeout_ns / NS), .tv_nsec = (long)(timeout_ns % NS) };
	uint64_t v;

	if (tx_irq) {
		__atomic_store_n(&d->tx.avail->flags, 0, __ATOMIC_RELAXED);
		/* Barrier pair 4: enabling interrupts before re-reading used->idx
		 * (full barrier); pairs with the smp_mb() in vhost_notify() between
		 * writing used->idx and reading avail->flags. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	if (!(tx_irq && used_pending(&d->tx)) && !used_pending(&d->rx) && !stop) {
		if (ppoll(p, 2, &ts, NULL) < 0 && errno != EINTR)
			die("ppoll on the call eventfds");
		for (int i = 0; i < 2; i++)
			if ((p[i].revents & POLLIN) && read(p[i].fd, &v, sizeof v) == sizeof v)
				d->s.calls += v;
	}
	if (tx_irq)
		__atomic_store_n(&d->tx.avail->flags, VRING_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
}

/* ---- frames ---- */

static void eth_header(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
}

static void ip4_header(const struct opts *o, uint8_t *ip, uint8_t proto, size_t l4len)
{
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + l4len));
	put16(ip + 6, 0x4000);                          /* DF */
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &o->src_ip, 4);
	memcpy(ip + 16, &o->dst_ip, 4);
	put16(ip + 10, (uint16_t)~csum_fold(csum_add(0, ip, 20)));
}

static uint64_t pseudo_sum(const struct opts *o, uint8_t proto, size_t l4len)
{
	uint64_t sum = csum_add(0, (const uint8_t *)&o->src_ip, 4);

	return csum_add(sum, (const uint8_t *)&o->dst_ip, 4) + proto + l4len;
}

/* A data frame at f: UDP of --frame-size bytes, or a TSO super-frame. Fills
 * the virtio-net header at h. Returns the Ethernet length. */
static size_t build_data(struct drv *d, uint8_t *h, uint8_t *f)
{
	const struct opts *o = &d->o;
	struct virtio_net_hdr *vh = (struct virtio_net_hdr *)h;
	size_t len = d->data_len, l4len = len - 34;
	uint8_t *l4 = f + 34;

	memset(h, 0, d->hlen);
	eth_header(f, o->dst_mac, o->src_mac, ETH_P_IP);
	ip4_header(o, f + 14, o->tso ? 6 : 17, l4len);
	for (size_t i = o->tso ? 54 : 42; i < len; i++)
		f[i] = (uint8_t)i;
	put16(l4, o->src_port);
	put16(l4 + 2, o->dst_port);
	if (!o->tso) {
		uint16_t c;

		put16(l4 + 4, (uint16_t)l4len);
		put16(l4 + 6, 0);
		c = (uint16_t)~csum_fold(csum_add(pseudo_sum(o, 17, l4len), l4, l4len));
		put16(l4 + 6, c ? c : 0xffff);
		return len;
	}
	memset(l4 + 4, 0, 16);
	put32(l4 + 8, 1);                               /* ack_seq */
	l4[12] = 5 << 4;                                /* doff */
	l4[13] = 0x18;                                  /* PSH|ACK */
	put16(l4 + 14, 0xffff);
	/* As a NEEDS_CSUM sender: the folded pseudo-header sum, not complemented. */
	put16(l4 + 16, csum_fold(pseudo_sum(o, 6, l4len)));
	vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	vh->hdr_len = 54;
	vh->gso_size = (uint16_t)o->mss;
	vh->csum_start = 34;
	vh->csum_offset = 16;
	return len;
}

static void tx_data(struct drv *d, uint16_t id)
{
	uint8_t *b = d->tx.buf + (size_t)id * d->tx.buf_size;

	if (d->tx_kind[id] != KIND_DATA) {
		build_data(d, b, b + d->hlen);
		d->tx_kind[id] = KIND_DATA;
	}
	if (d->o.tso) {
		put32(b + d->hlen + 38, d->tcp_seq);       /* seq is outside every checksum we fill */
		d->tcp_seq += d->o.tso;
	}
	ring_post(&d->tx, id, (uint32_t)(d->hlen + d->data_len));
	d->s.tx_frames++;
	d->s.tx_bytes += d->data_len;
}

static void tx_ctrl_post(struct drv *d, int id, const uint8_t *frame, size_t len)
{
	uint8_t *b = d->tx.buf + (size_t)id * d->tx.buf_size;

	memset(b, 0, d->hlen);
	memcpy(b + d->hlen, frame, len);
	d->tx_kind[id] = KIND_CTRL;
	ring_post(&d->tx, (uint16_t)id, (uint32_t)(d->hlen + len));
	d->s.tx_frames++;
	d->s.tx_bytes += len;
	ring_publish(d, &d->tx);
}

/* ARP request (op 1, for tip) or reply (op 2, to tmac/tip), padded to 60 bytes. */
static bool send_arp(struct drv *d, uint16_t op, const uint8_t *tmac, const uint8_t *tip)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t f[60] = { 0 }, *a = f + 14;
	int id = tx_take(d);

	if (id < 0) {
		d->s.ctrl_drops++;
		return false;
	}
	eth_header(f, op == 1 ? bcast : tmac, d->o.src_mac, ETH_P_ARP);
	put16(a, 1);
	put16(a + 2, ETH_P_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, d->o.src_mac, 6);
	memcpy(a + 14, &d->o.src_ip, 4);
	if (op == 2)
		memcpy(a + 18, tmac, 6);
	memcpy(a + 24, tip, 4);
	tx_ctrl_post(d, id, f, sizeof f);
	return true;
}

static size_t build_echo(struct drv *d, uint8_t *f)
{
	uint8_t *icmp = f + 34;
	uint64_t t = now_ns();

	eth_header(f, d->o.dst_mac, d->o.src_mac, ETH_P_IP);
	ip4_header(&d->o, f + 14, 1, 8 + PING_PAYLOAD);
	memset(icmp, 0, 8);
	icmp[0] = 8;
	put16(icmp + 4, d->ping_id);
	put16(icmp + 6, d->ping_seq);
	memcpy(icmp + 8, &t, 8);
	for (int i = 16; i < 8 + PING_PAYLOAD; i++)
		icmp[i] = (uint8_t)i;
	put16(icmp + 2, (uint16_t)~csum_fold(csum_add(0, icmp, 8 + PING_PAYLOAD)));
	return 34 + 8 + PING_PAYLOAD;
}

static void arp_in(struct drv *d, const uint8_t *f)
{
	const uint8_t *a = f + 14;

	if (get16(a) != 1 || get16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4)
		return;
	if (get16(a + 6) == 1 && !memcmp(a + 24, &d->o.src_ip, 4)) {
		d->s.arp_requests++;
		if (send_arp(d, 2, a + 8, a + 14))
			d->s.arp_replies++;
	} else if (get16(a + 6) == 2 && !memcmp(a + 14, &d->o.dst_ip, 4)) {
		d->arp_got = true;
	}
}

static void ip_in(struct drv *d, const uint8_t *f, size_t cap)
{
	const uint8_t *ip = f + 14, *icmp;
	size_t ihl = (size_t)(ip[0] & 15) * 4;

	if (!d->ping_waiting || ip[0] >> 4 != 4 || ihl < 20 || cap < 14 + ihl + 8 || ip[9] != 1)
		return;
	if (memcmp(ip + 12, &d->o.dst_ip, 4) || memcmp(ip + 16, &d->o.src_ip, 4))
		return;
	icmp = ip + ihl;
	if (icmp[0] == 0 && get16(icmp + 4) == d->ping_id && get16(icmp + 6) == d->ping_seq) {
		d->ping_got = true;
		d->ping_t1 = now_ns();
	}
}

static void frame_in(struct drv *d, const uint8_t *f, size_t cap, size_t len)
{
	d->s.rx_frames++;
	d->s.rx_bytes += len;
	if (((const struct virtio_net_hdr *)d->head)->gso_type != VIRTIO_NET_HDR_GSO_NONE)
		d->s.rx_gso++;
	if (cap < ETH_HLEN)
		return;
	if (get16(f + 12) == ETH_P_ARP && cap >= 42)
		arp_in(d, f);
	else if (get16(f + 12) == ETH_P_IP && cap >= 34)
		ip_in(d, f, cap);
}

/* One used RX buffer. With MRG_RXBUF a frame spans num_buffers buffers (the
 * header's last field, set by vhost in the first one); the first HEAD_MAX
 * bytes are copied aside, so each buffer can be reposted at once. */
static void rx_buffer(struct drv *d, const uint8_t *p, size_t len)
{
	size_t take = len < HEAD_MAX - d->head_fill ? len : HEAD_MAX - d->head_fill;

	d->s.rx_bufs++;
	memcpy(d->head + d->head_fill, p, take);
	d->head_fill += take;
	d->frame_total += len;
	d->frame_bufs++;
	if (!d->frame_nbufs && !d->mrg) {
		d->frame_nbufs = 1;
	} else if (!d->frame_nbufs && d->head_fill >= 12) {
		d->frame_nbufs = (unsigned)(d->head[10] | d->head[11] << 8);
		if (!d->frame_nbufs || d->frame_nbufs > d->rx.num) {
			d->s.rx_errors++;
			d->frame_nbufs = 1;
		}
	}
	if (!d->frame_nbufs || d->frame_bufs < d->frame_nbufs)
		return;
	if (d->frame_total < d->hlen)
		d->s.rx_errors++;
	else
		frame_in(d, d->head + d->hlen, d->head_fill - d->hlen, d->frame_total - d->hlen);
	d->head_fill = d->frame_total = 0;
	d->frame_bufs = d->frame_nbufs = 0;
}

static unsigned rx_poll(struct drv *d)
{
	struct ring *r = &d->rx;
	uint16_t end = used_end(r, "RX");
	unsigned n = 0;

	for (; r->used_seen != end; r->used_seen++, n++) {
		struct vring_used_elem e = r->used->ring[r->used_seen & r->mask];

		if (e.id >= r->num)
			fail("vhost returned RX descriptor %u (ring of %u)", e.id, r->num);
		if (e.len > r->buf_size) {
			d->s.rx_errors++;
			e.len = (uint32_t)r->buf_size;
		}
		rx_buffer(d, r->buf + (size_t)e.id * r->buf_size, e.len);
		ring_post(r, (uint16_t)e.id, (uint32_t)r->buf_size);
	}
	if (n)
		ring_publish(d, r);
	return n;
}

/* ---- modes ---- */

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Serve RX (ARP) and reclaim TX until t_end or until *flag is set. */
static void idle_until(struct drv *d, uint64_t t_end, const bool *flag)
{
	while (!stop && !(flag && *flag)) {
		uint64_t t = now_ns();

		if (t >= t_end)
			break;
		tx_reclaim(d);
		if (!rx_poll(d))
			wait_calls(d, t_end - t, false);
	}
}

static void run_tx(struct drv *d, uint64_t t0, uint64_t t_end)
{
	uint64_t sent = 0;

	while (!stop) {
		uint64_t t = now_ns(), allowed = UINT64_MAX;
		unsigned posted = 0;

		if (t >= t_end)
			break;
		rx_poll(d);
		tx_reclaim(d);
		if (d->o.rate > 0) {
			uint64_t due = (uint64_t)((double)(t - t0) / NS * d->o.rate) + 1;

			allowed = due > sent ? due - sent : 0;
		}
		while (d->tx_nfree && posted < allowed) {
			tx_data(d, d->tx_free[--d->tx_nfree]);
			posted++;
		}
		sent += posted;
		ring_publish(d, &d->tx);
		if (!d->tx_nfree) {
			d->s.full_waits++;
			wait_calls(d, min_u64(t_end - t, NS / 10), true);
		} else if (d->o.rate > 0) {
			uint64_t next = t0 + (uint64_t)((double)sent / d->o.rate * NS);

			wait_calls(d, next > t ? min_u64(next - t, t_end - t) : 0, false);
		}
	}
}

/* Wait (up to timeout) until vhost has completed every TX descriptor. */
static bool tx_drain(struct drv *d, uint64_t timeout)
{
	uint64_t t_end = now_ns() + timeout;

	for (;;) {
		uint64_t t = now_ns();

		tx_reclaim(d);
		rx_poll(d);
		if (d->tx_nfree == d->tx.num)
			return true;
		if (t >= t_end || stop)
			return false;
		wait_calls(d, t_end - t, true);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct ping_result {
	double *us;
	size_t n, cap;
	uint64_t sent, lost;
};

static void run_ping(struct drv *d, uint64_t t_end, struct ping_result *pr)
{
	uint64_t timeout = (uint64_t)d->o.ping_timeout_ms * 1000000;
	uint8_t f[CTRL_MAX];

	d->ping_id = (uint16_t)(getpid() & 0xffff);
	while (!stop && now_ns() < t_end && !(d->o.count && pr->sent >= d->o.count)) {
		uint64_t t0, deadline = now_ns() + timeout;
		size_t len;
		int id;

		while ((id = tx_take(d)) < 0 && now_ns() < deadline && !stop)
			wait_calls(d, NS / 100, true);
		if (id < 0) {
			fprintf(stderr, "vhost-drive: ping: no TX descriptor came back within "
				"--ping-timeout-ms; stopping\n");
			break;
		}
		d->ping_seq++;
		d->ping_got = false;
		d->ping_waiting = true;
		len = build_echo(d, f);
		t0 = now_ns();
		tx_ctrl_post(d, id, f, len);
		pr->sent++;
		idle_until(d, t0 + timeout, &d->ping_got);
		d->ping_waiting = false;
		if (!d->ping_got) {
			pr->lost++;
			continue;
		}
		if (pr->n == pr->cap) {
			pr->cap = pr->cap ? 2 * pr->cap : 1024;
			pr->us = realloc(pr->us, pr->cap * sizeof *pr->us);
			if (!pr->us)
				fail("out of memory");
		}
		pr->us[pr->n++] = (double)(d->ping_t1 - t0) / 1000;
	}
}

/* ---- reporting ---- */

/* User+system seconds of this vhost device's worker: on 6.4+ a thread of this
 * process (vhost_task), on 6.1 a kernel thread; both are named vhost-<pid>. */
static double scan_worker(const char *dir, const char *want)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	double r = -1;

	if (!dp)
		return -1;
	while (r < 0 && (e = readdir(dp))) {
		char path[600], buf[512], *open_p, *close_p;
		unsigned long ut, st;
		FILE *fp;
		size_t n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
		if (!(fp = fopen(path, "r")))
			continue;
		n = fread(buf, 1, sizeof buf - 1, fp);
		fclose(fp);
		buf[n] = 0;
		open_p = strchr(buf, '(');
		close_p = strrchr(buf, ')');
		if (!open_p || !close_p || close_p < open_p)
			continue;
		*close_p = 0;
		if (strcmp(open_p + 1, want))
			continue;
		if (sscanf(close_p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
			r = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	}
	closedir(dp);
	return r;
}

static double vhost_worker_cpu(void)
{
	char want[32];
	double r;

	snprintf(want, sizeof want, "vhost-%d", (int)getpid());
	r = scan_worker("/proc/self/task", want);
	return r >= 0 ? r : scan_worker("/proc", want);
}

static uint64_t drain_eventfd(int fd)
{
	uint64_t v = 0;

	return read(fd, &v, sizeof v) == sizeof v ? v : 0;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

static void report(struct drv *d, double seconds, const struct ping_result *pr, int alive,
		   double vcpu0, double vcpu1)
{
	const struct stats *s = &d->s;
	struct rusage self, thread;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_THREAD, &thread);
	printf("{\"mode\":\"%s\",\"backend\":\"%s\",\"hdrLen\":%u,\"vhostHdr\":%s,\"features\":\"0x%llx\","
	       "\"ring\":%u,\"rxBuf\":%u,\"frameSize\":%zu,\"tso\":%u,\"mss\":%u,\"seconds\":%.6f,",
	       mode_names[d->o.mode], d->o.tap ? "tap" : "fd", d->hlen, d->o.vhost_hdr ? "true" : "false",
	       (unsigned long long)d->features, d->o.ring, d->o.rx_buf, d->data_len, d->o.tso,
	       d->o.mss, seconds);
	printf("\"txFrames\":%llu,\"txBytes\":%llu,\"txCompleted\":%llu,\"rxFrames\":%llu,"
	       "\"rxBytes\":%llu,\"rxBuffers\":%llu,\"rxGsoFrames\":%llu,\"rxErrors\":%llu,"
	       "\"arpRequests\":%llu,\"arpReplies\":%llu,\"ctrlDrops\":%llu,\"kicks\":%llu,"
	       "\"calls\":%llu,\"ringFullWaits\":%llu,\"vqErrors\":{\"rx\":%llu,\"tx\":%llu},",
	       (unsigned long long)s->tx_frames, (unsigned long long)s->tx_bytes,
	       (unsigned long long)s->tx_done, (unsigned long long)s->rx_frames,
	       (unsigned long long)s->rx_bytes, (unsigned long long)s->rx_bufs,
	       (unsigned long long)s->rx_gso, (unsigned long long)s->rx_errors,
	       (unsigned long long)s->arp_requests, (unsigned long long)s->arp_replies,
	       (unsigned long long)s->ctrl_drops, (unsigned long long)s->kicks,
	       (unsigned long long)s->calls, (unsigned long long)s->full_waits,
	       (unsigned long long)drain_eventfd(d->rx.err), (unsigned long long)drain_eventfd(d->tx.err));
	if (pr && pr->n) {
		double sum = 0;

		qsort(pr->us, pr->n, sizeof *pr->us, cmp_double);
		for (size_t i = 0; i < pr->n; i++)
			sum += pr->us[i];
		printf("\"latencyUs\":{\"count\":%zu,\"sent\":%llu,\"lost\":%llu,\"min\":%.3f,\"median\":%.3f,"
		       "\"p99\":%.3f,\"max\":%.3f,\"mean\":%.3f},", pr->n, (unsigned long long)pr->sent,
		       (unsigned long long)pr->lost, pr->us[0],
		       pr->n % 2 ? pr->us[pr->n / 2] : (pr->us[pr->n / 2 - 1] + pr->us[pr->n / 2]) / 2,
		       pr->us[(pr->n * 99 + 99) / 100 - 1], pr->us[pr->n - 1], sum / (double)pr->n);
	} else if (pr) {
		printf("\"latencyUs\":{\"count\":0,\"sent\":%llu,\"lost\":%llu,\"min\":null,\"median\":null,"
		       "\"p99\":null,\"max\":null,\"mean\":null},",
		       (unsigned long long)pr->sent, (unsigned long long)pr->lost);
	}
	if (alive >= 0)
		printf("\"vhostAlive\":%s,", alive ? "true" : "false");
	if (vcpu0 >= 0 && vcpu1 >= 0)
		printf("\"vhostWorkerCpuS\":%.3f,", vcpu1 - vcpu0);
	else
		printf("\"vhostWorkerCpuS\":null,");
	printf("\"cpuUserS\":%.6f,\"cpuSysS\":%.6f,\"threadUserS\":%.6f,\"threadSysS\":%.6f}\n",
	       tv_s(self.ru_utime), tv_s(self.ru_stime), tv_s(thread.ru_utime), tv_s(thread.ru_stime));
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static struct drv drv;
	struct drv *d = &drv;
	struct ping_result pr = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t t0, t_end, t1;
	double vcpu0, vcpu1;
	int alive = -1;
	size_t frame_max;

	parse_args(argc, argv, &d->o);
	d->hlen = d->o.hdr_len;
	d->data_len = d->o.tso ? 54 + (size_t)d->o.tso : d->o.frame_size;
	frame_max = d->data_len > CTRL_MAX ? d->data_len : CTRL_MAX;
	d->tx.buf_size = (d->hlen + frame_max + 63) & ~(size_t)63;
	d->backend = d->o.tap ? open_tap(&d->o) : d->o.backend_fd;
	setup_backend_hdr(d);
	mem_setup(d, d->tx.buf_size);
	vhost_setup(d);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (d->o.mode == MODE_PING) {
		/* An ARP request for dst-ip teaches the peer our address; the reply
		 * (if any) is not used: --dst-mac is. */
		send_arp(d, 1, zero_mac, (const uint8_t *)&d->o.dst_ip);
		idle_until(d, now_ns() + NS / 5, &d->arp_got);
	}
	vcpu0 = vhost_worker_cpu();
	t0 = now_ns();
	t_end = t0 + (uint64_t)(d->o.seconds * NS);
	switch (d->o.mode) {
	case MODE_TX: run_tx(d, t0, t_end); break;
	case MODE_PING: run_ping(d, t_end, &pr); break;
	case MODE_RX:
	case MODE_BOUNDS: idle_until(d, t_end, NULL); break;
	}
	t1 = now_ns();
	if (d->o.mode == MODE_BOUNDS) {
		/* Liveness probe: after the hostile RX phase, does vhost still move TX? */
		stop = 0;
		for (int i = 0; i < 8; i++)
			send_arp(d, 1, zero_mac, (const uint8_t *)&d->o.dst_ip);
		alive = tx_drain(d, NS);
	} else {
		tx_drain(d, NS / 2);
	}
	vcpu1 = vhost_worker_cpu();
	report(d, (double)(t1 - t0) / NS, d->o.mode == MODE_PING ? &pr : NULL, alive, vcpu0, vcpu1);
	return 0;
}
