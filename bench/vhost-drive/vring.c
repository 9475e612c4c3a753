// SPDX-License-Identifier: MIT
/*
 * vhost-drive's virtio-net driver: backend and vhost set-up, feature
 * negotiation, posting and reclaiming descriptors, the eventfds, and putting
 * received frames back together. Guest physical address == our virtual
 * address: the memory table has one region mapping our anonymous mapping 1:1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <linux/virtio_net.h>

#include "vring.h"

static void xioctl(int fd, unsigned long req, void *arg, const char *name, int queue)
{
	if (ioctl(fd, req, arg) < 0) {
		if (queue >= 0)
			die("%s (queue %d, %s)", name, queue, queue ? "tx" : "rx");
		die("%s", name);
	}
}

/* ---- backend ---- */

int open_tap(const struct opts *o)
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
void setup_backend_hdr(struct drv *d)
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

/* Queue buffer id with len bytes; vhost sees it after ring_publish(). */
static void ring_post(struct ring *r, uint16_t id, uint32_t len)
{
	r->desc[id].len = len;
	r->avail->ring[r->avail_idx & r->mask] = id;
	r->avail_idx++;
}

/* Make what ring_post() queued visible to vhost, and kick it unless it
 * said it is polling anyway (VRING_USED_F_NO_NOTIFY). */
void ring_publish(struct drv *d, struct ring *r)
{
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
	ring_kick(d, r);
}

/* Kick whatever the ring says: what ring_publish() does when it must, and
 * what --kick-ms does to play a guest that keeps kicking. */
void ring_kick(struct drv *d, struct ring *r)
{
	uint64_t one = 1;

	if (write(r->kick, &one, sizeof one) != sizeof one)
		die("write to the kick eventfd");
	d->s.kicks++;
}

/* The bytes behind each RX descriptor: --rx-buf, or GROW_BUF when the
 * descriptors only claim --rx-buf until --grow-after. */
static size_t rx_buf_bytes(const struct opts *o)
{
	return o->grow_after > 0 && o->rx_buf < GROW_BUF ? GROW_BUF : o->rx_buf;
}

/* --grow-after: every RX descriptor still posted now claims its whole
 * buffer. vhost reads a descriptor when it takes it, so the next frame sees
 * the new length; the kick makes it look. */
void rx_grow(struct drv *d)
{
	for (unsigned i = 0; i < d->rx.num; i++)
		__atomic_store_n(&d->rx.desc[i].len, (uint32_t)d->rx.buf_size, __ATOMIC_RELAXED);
	/* Lengths before the kick; the eventfd write orders nothing for us. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ring_kick(d, &d->rx);
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

void mem_setup(struct drv *d, size_t tx_buf)
{
	size_t need = ring_bytes(d->o.ring, rx_buf_bytes(&d->o)) + ring_bytes(d->o.ring, tx_buf);

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

/* Owner, features, memory table, both rings, then the backend last: vhost
 * starts moving frames the moment it has one. */
void vhost_setup(struct drv *d)
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
	ring_alloc(d, &d->rx, true, rx_buf_bytes(&d->o));
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

unsigned tx_reclaim(struct drv *d)
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

int tx_take(struct drv *d)
{
	if (!d->tx_nfree)
		tx_reclaim(d);
	return d->tx_nfree ? d->tx_free[--d->tx_nfree] : -1;
}

/* Sleep until vhost signals a call eventfd or timeout_ns passes. With tx_irq,
 * TX completions are asked for meanwhile; RX always signals. */
void wait_calls(struct drv *d, uint64_t timeout_ns, bool tx_irq)
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

/* ---- TX ---- */

/* A data frame in TX buffer id. The frame is built once per buffer and then
 * reused; only a TSO frame's sequence number changes from one send to the
 * next. */
void tx_data(struct drv *d, uint16_t id)
{
	uint8_t *b = d->tx.buf + (size_t)id * d->tx.buf_size;

	if (d->tx_kind[id] != KIND_DATA) {
		build_data(&d->o.fl, d->o.tso, d->o.mss, d->data_len, b, d->hlen, b + d->hlen);
		d->tx_kind[id] = KIND_DATA;
	}
	if (d->o.tso) {
		data_set_seq(b + d->hlen, d->tcp_seq);
		d->tcp_seq += d->o.tso;
	}
	ring_post(&d->tx, id, (uint32_t)(d->hlen + d->data_len));
	d->s.tx_frames++;
	d->s.tx_bytes += d->data_len;
}

/* Send a control frame (ARP, ICMP) in TX buffer id, taken with tx_take(), at
 * once: it is published and kicked right away, unlike data frames. */
void tx_ctrl_post(struct drv *d, int id, const uint8_t *frame, size_t len)
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

/* ---- RX ---- */

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
	if (d->frame_total < d->hlen) {
		d->s.rx_errors++;
	} else {
		d->s.rx_frames++;
		d->s.rx_bytes += d->frame_total - d->hlen;
		if (((const struct virtio_net_hdr *)d->head)->gso_type != VIRTIO_NET_HDR_GSO_NONE)
			d->s.rx_gso++;
		frame_in(d, d->head + d->hlen, d->head_fill - d->hlen);
	}
	d->head_fill = d->frame_total = 0;
	d->frame_bufs = d->frame_nbufs = 0;
}

/* Take every used RX buffer, hand it on, and post it again at once. */
unsigned rx_poll(struct drv *d)
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
