// SPDX-License-Identifier: MIT
/*
 * vhost-drive --inject IFNAME: send the vhost TX path's data frames from an
 * AF_PACKET socket instead of a ring. With PACKET_VNET_HDR each send starts
 * with a virtio-net header, always the 10-byte legacy layout on a packet
 * socket (no num_buffers, whatever a vhost guest negotiates), so a TSO
 * super-frame is handed to the device as one GSO skb: a veth peer receives it
 * whole, as a KNI or TAP backend would get it from a guest.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>

#include "inject.h"

/*
 * Bound with ETH_P_ALL, the kernel takes each frame's skb->protocol from its
 * EtherType (a fixed protocol would stamp it on every frame), and GSO needs
 * it right to find the IPv4 header. Binding also makes the socket receive
 * everything on IFNAME; a filter that accepts nothing drops that before it
 * is cloned into a queue no one reads. No PACKET_QDISC_BYPASS: frames take
 * the device's ordinary transmit path, as a far end's stack's would.
 */
int inject_open(const char *ifname)
{
	static struct sock_filter none[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog prog = { .len = 1, .filter = none };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int one = 1, fd;

	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (!sll.sll_ifindex)
		die("--inject %s", ifname);
	/* Protocol 0 until bind: no receive hook on every interface meanwhile. */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket(AF_PACKET, SOCK_RAW)");
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
		die("SO_ATTACH_FILTER on the AF_PACKET socket");
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0)
		die("PACKET_VNET_HDR");
	if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0)
		die("bind the AF_PACKET socket to %s", ifname);
	return fd;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / NS), .tv_nsec = (long)(ns % NS) };

	/* A signal cuts it short; the caller's loop then sees stop. */
	ppoll(NULL, 0, &ts, NULL);
}

/* Sends never block, so a stalled device cannot hold us past --seconds; when
 * the socket's send buffer is full, wait here, 100 ms at most at a time. */
static void wait_writable(int fd, uint64_t t_end)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	uint64_t t = now_ns(), ns = t < t_end ? min_u64(t_end - t, NS / 10) : 0;
	struct timespec ts = { .tv_sec = (time_t)(ns / NS), .tv_nsec = (long)(ns % NS) };

	if (ppoll(&p, 1, &ts, NULL) < 0 && errno != EINTR)
		die("ppoll on the AF_PACKET socket");
}

/*
 * Send data frames back to back (or at --rate) until t_end. A frame the
 * kernel refuses for now is counted in send_errors and sent again, so
 * tx_frames and tx_bytes are what left: ENOBUFS means it was dropped below
 * us (a veth whose peer's backlog is full, a full qdisc), EAGAIN that our
 * send buffer is full. Anything else would fail every frame: fatal.
 */
void inject_tx(int fd, const struct opts *o, struct stats *s, uint64_t t0, uint64_t t_end)
{
	size_t hlen = sizeof(struct virtio_net_hdr), len = data_frame_len(o->frame_size, o->tso);
	uint8_t *b = malloc(hlen + len);
	uint64_t sent = 0;
	uint32_t seq = 0;

	if (!b)
		fail("out of memory");
	build_data(&o->fl, o->tso, o->mss, len, b, hlen, b + hlen);
	while (!stop) {
		uint64_t t = now_ns();
		ssize_t n;

		if (t >= t_end)
			break;
		if (!pace_allowed(o->rate, t0, t, sent)) {
			uint64_t next = pace_next(o->rate, t0, sent);

			sleep_ns(next > t ? min_u64(next - t, t_end - t) : 0);
			continue;
		}
		if (o->tso)
			data_set_seq(b + hlen, seq);
		n = send(fd, b, hlen + len, MSG_DONTWAIT);
		if (n == (ssize_t)(hlen + len)) {
			seq += o->tso;
			sent++;
			s->tx_frames++;
			s->tx_bytes += len;
			continue;
		}
		if (n >= 0)
			fail("send on %s took %zd of %zu bytes", o->inject, n, hlen + len);
		switch (errno) {
		case EINTR:
			break;
		case ENOBUFS:
			/* Let whoever drains the queue below us (ksoftirqd, the
			 * receiving driver) run before the retry, rather than
			 * spin on drops. */
			s->send_errors++;
			sched_yield();
			break;
		case EAGAIN:
			s->send_errors++;
			wait_writable(fd, t_end);
			break;
		case EMSGSIZE:
			die("send on %s: a %zu-byte frame without GSO is larger than its MTU allows "
			    "(--frame-size)", o->inject, len);
		case ENETDOWN:
			die("send on %s (is it up?)", o->inject);
		case ENXIO:
			die("send on %s (has it gone?)", o->inject);
		default:
			die("send on %s (a %zu-byte frame%s)", o->inject, len,
			    o->tso ? ", GSO TCPV4" : "");
		}
	}
	free(b);
}
