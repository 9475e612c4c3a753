// SPDX-License-Identifier: GPL-2.0
/*
 * The data path's side of the shared FIFOs: the polling thread's pass over
 * an interface (rx_q into the stack through NAPI and GRO, or into the KNI
 * socket; free_q back; a waiting socket writer or a stopped transmit queue
 * woken), the eventfd that wakes a sleeping data plane, and
 * the helpers with which the owner of tx_q (ndo_start_xmit or the socket)
 * takes buffers from alloc_q and queues them on tx_q.
 *
 * Trust: the region is writable by userspace at any time. Every value read
 * from it is read once (READ_ONCE), checked, and only the checked copy is
 * used. A bad buffer index, offset or length is a counted drop; a FIFO whose
 * peer counter is impossible is treated as empty (or full) and counted.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/etherdevice.h>
#include <linux/eventfd.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>
#include <linux/virtio_net.h>

#include "kni_compat.h"
#include "kni_internal.h"

/* Packets taken from rx_q per interface per pass. */
#define KNI_RX_BURST		32

u8 *kni_buf(const struct kni_dev *kd, u32 index)
{
	return kd->bufs + (size_t)index * kd->buf_size;
}

/*
 * Ingress: rx_q -> skb -> the stack, or the KNI socket while one is attached;
 * the buffer goes back on free_q either way.
 *
 * Towards the stack a pass owns the interface's NAPI context (it sets
 * NAPI_STATE_SCHED itself, as busy polling does, instead of scheduling a
 * softirq) and hands its frames to GRO with bottom halves off: a burst of TCP
 * segments from the data plane reaches IP as one skb, and a pass ends with
 * one flush instead of a softirq round per frame. The pass runs in the
 * polling thread (kthread_mode single: one thread for all interfaces;
 * multiple: one each) or in the data plane's KNI_IOCTL_KICK, under poll_lock
 * either way, so the context has one owner, as NAPI wants. Should anything
 * else own it (a socket busy-polling it), the pass falls back to netif_rx().
 */

static enum kni_rx_result kni_rx_one(struct kni_dev *kd, struct kni_sock *ks,
				     bool napi, u32 index, u32 *bytes, u32 *gso)
{
	struct net_device *dev = kd->netdev;
	enum kni_rx_result result;
	struct virtio_net_hdr vh;
	struct sk_buff *skb;

	if (ks)
		/* The socket's reader (vhost) takes the frame, its offloads if it can. */
		return kni_sock_rx_frame(ks, kd, index, bytes, gso);

	if (!(dev->flags & IFF_UP))
		return KNI_RX_DOWN;
	skb = kni_rx_frame(kd, dev, index, &vh, &result);
	if (!skb)
		return result;
	*bytes = skb->len;
	*gso = vh.gso_type != VIRTIO_NET_HDR_GSO_NONE;
	/* The stack finishes what the frame's head asks for, as for a tun write. */
	if (!kni_rx_offload(skb, &vh)) {
		kfree_skb(skb);
		return KNI_RX_BAD_OFFLOAD;
	}
	skb->protocol = eth_type_trans(skb, dev);
	/* Otherwise CHECKSUM_NONE: the stack verifies what userspace sent. */
	if ((vh.flags & VIRTIO_NET_HDR_F_DATA_VALID) && skb->ip_summed == CHECKSUM_NONE)
		skb->ip_summed = CHECKSUM_UNNECESSARY;
	if (napi) {
		napi_gro_receive(&kd->napi, skb);
		return KNI_RX_OK;
	}
	/* A full backlog frees the skb; it was not received. */
	if (netif_rx(skb) == NET_RX_DROP)
		return KNI_RX_BACKLOG;
	return KNI_RX_OK;
}

static bool kni_rx_poll(struct kni_dev *kd)
{
	u32 packets = 0, bytes = 0, bad_index = 0, bad_len = 0, down = 0;
	u32 nomem = 0, backlog = 0, bad_offload = 0, gso_frames = 0;
	bool corrupt = false, sock_full = false, napi = false;
	struct kni_sock *ks;
	u32 n, i;

	/* kni_sock_kill() and detach wait for this section to end. */
	rcu_read_lock();
	ks = rcu_dereference(kd->sock);
	n = min3(kni_ring_avail(&kd->rx_q, &corrupt),
		 kni_ring_space(&kd->free_q, &corrupt), (u32)KNI_RX_BURST);
	if (ks && n) {
		/* Frames wait in rx_q, not in memory, while the reader is behind. */
		u32 room = kni_sock_rx_room(ks, kd);

		sock_full = room < n;
		n = min(n, room);
	}
	if (!ks && n) {
		local_bh_disable();
		/* Fails while the interface is down (NAPI disabled): dropped below. */
		napi = napi_schedule_prep(&kd->napi);
	}

	for (i = 0; i < n; i++) {
		u32 index = kni_ring_peek(&kd->rx_q, i);
		u32 len = 0, gso = 0;

		if (index >= kd->buf_count) {
			bad_index++;
			continue;
		}
		switch (kni_rx_one(kd, ks, napi, index, &len, &gso)) {
		case KNI_RX_OK:
			packets++;
			bytes += len;
			gso_frames += gso;
			break;
		case KNI_RX_BAD_INDEX:
			bad_index++;
			break;
		case KNI_RX_BAD_OFFLOAD:
			bad_offload++;
			break;
		case KNI_RX_BAD_LEN:
			bad_len++;
			break;
		case KNI_RX_DOWN:
			down++;
			break;
		case KNI_RX_NOMEM:
			nomem++;
			break;
		case KNI_RX_BACKLOG:
			backlog++;
			break;
		}
		kni_ring_put(&kd->free_q, index);
	}
	if (!ks && n) {
		/* GRO's held frames go up now, in this pass. */
		if (napi)
			napi_complete_done(&kd->napi, packets);
		local_bh_enable();
	}
	if (ks && packets)
		kni_sock_rx_wake(ks);
	if (ks)
		kni_sock_tx_space(ks, kd);
	kni_net_tx_space(kd);
	rcu_read_unlock();

	if (n) {
		kni_ring_consume(&kd->rx_q, n);
		kni_ring_publish(&kd->free_q);
	}

	if (n || corrupt || sock_full) {
		u64_stats_update_begin(&kd->rx.syncp);
		kd->rx.packets += packets;
		kd->rx.bytes += bytes;
		kd->rx.drop_bad_index += bad_index;
		kd->rx.drop_bad_len += bad_len;
		kd->rx.drop_down += down;
		kd->rx.drop_nomem += nomem;
		kd->rx.fifo_corrupt += corrupt;
		kd->rx.sock_full += sock_full;
		kd->rx.drop_backlog += backlog;
		kd->rx.drop_bad_offload += bad_offload;
		kd->rx.gso_frames += gso_frames;
		u64_stats_update_end(&kd->rx.syncp);
	}
	return n != 0;
}

/* One pass over kd (the polling thread's); returns true if it found work. */
bool kni_dev_poll(struct kni_dev *kd)
{
	bool busy;

	mutex_lock(&kd->poll_lock);
	busy = kni_rx_poll(kd);
	mutex_unlock(&kd->poll_lock);
	return busy;
}

/*
 * KNI_IOCTL_KICK: the producer that rang does the pass itself, in its own
 * context, unless a pass is under way: a frame it queued on rx_q reaches the
 * socket or the stack without waiting for the polling thread to be
 * scheduled. The thread is woken for what is left (more than a pass takes,
 * frames waiting for a socket reader) and whenever the pass could not run.
 */
void kni_dev_kick(struct kni_dev *kd)
{
	bool left = true;

	if (mutex_trylock(&kd->poll_lock)) {
		kni_rx_poll(kd);
		mutex_unlock(&kd->poll_lock);
		left = kni_dev_pending(kd);
	}
	if (left)
		kni_thread_kick(kd);
}

/*
 * Polling thread, about to sleep, after setting kernel_sleeping and a full
 * barrier: is anything waiting on rx_q? A FIFO whose counter is
 * impossible counts as empty (kni_dev_poll() counts it).
 */
bool kni_dev_pending(struct kni_dev *kd)
{
	bool corrupt = false, waiting;
	struct kni_sock *ks;

	/*
	 * A socket writer waiting for room keeps the thread passing, not
	 * asleep, unless the interface has doorbells: then the data plane
	 * kicks once it has made room (kernel_tx_wait).
	 */
	rcu_read_lock();
	ks = rcu_dereference(kd->sock);
	waiting = ks && !kd->doorbells && kni_sock_tx_waiting(ks);
	rcu_read_unlock();
	/* Likewise the netdev's stopped queue. */
	waiting |= !kd->doorbells && kni_net_tx_waiting(kd);
	return waiting || kni_ring_avail(&kd->rx_q, &corrupt);
}

/*
 * After publishing on tx_q or req_q: signal the eventfd userspace sleeps on,
 * if it says it sleeps. Any context; the caller owns the FIFO it published.
 */
void kni_user_wake(struct kni_dev *kd)
{
	struct eventfd_ctx *ev;

	if (!kd->doorbells)
		return;
	/* Pairs with userspace's fence between user_sleeping and its last look. */
	smp_mb();
	if (!READ_ONCE(kd->doorbell->user_sleeping))
		return;
	rcu_read_lock();
	ev = rcu_dereference(kd->notify);
	if (ev)
		kni_eventfd_signal(ev);
	rcu_read_unlock();
}

/* KNI_IOCTL_NOTIFY: fd is an eventfd to signal, or -1 for none. */
int kni_dev_set_notify(struct kni_dev *kd, int fd)
{
	struct eventfd_ctx *ev = NULL, *old;

	if (fd != -1) {
		ev = eventfd_ctx_fdget(fd);
		if (IS_ERR(ev))
			return PTR_ERR(ev);
	}
	old = unrcu_pointer(xchg(&kd->notify, RCU_INITIALIZER(ev)));
	if (old) {
		synchronize_rcu();	/* pairs with rcu_read_lock() in kni_user_wake() */
		eventfd_ctx_put(old);
	}
	return 0;
}

/*
 * Egress: a frame -> buffer from alloc_q -> tx_q. The functions below are for
 * the owner of tx_q (see struct kni_dev): ndo_start_xmit, or the socket.
 */

void kni_tx_count(struct kni_dev *kd, u64 *counter, u64 n)
{
	u64_stats_update_begin(&kd->tx.syncp);
	*counter += n;
	u64_stats_update_end(&kd->tx.syncp);
}

/*
 * True if a frame of n buffers (kni_tx_bufs()) can be queued now: one tx_q
 * slot for its head, n buffers on alloc_q. A corrupt FIFO is counted. For
 * tx_q's owner, which waits (or stops its queue) when it is false.
 */
bool kni_tx_fits(struct kni_dev *kd, u32 n)
{
	bool corrupt = false;
	bool fits = kni_ring_space(&kd->tx_q, &corrupt) >= 1 &&
		    kni_ring_avail(&kd->alloc_q, &corrupt) >= n;

	if (corrupt)
		kni_tx_count(kd, &kd->tx.fifo_corrupt, 1);
	return fits;
}

/*
 * Whether a frame of n buffers would fit, for anyone but tx_q's owner (the polling
 * thread): from the counters in the region alone, which the owner publishes
 * (tx_q.write, alloc_q.read) and the data plane moves. Only a hint, for a
 * wake-up; a lying peer gets a spurious one. Plain loads: nothing is read
 * through these counters here, the woken writer reads them again in order.
 */
bool kni_tx_fits_hint(struct kni_dev *kd, u32 n)
{
	u32 tx_used = READ_ONCE(kd->tx_q.shm->write) - READ_ONCE(kd->tx_q.shm->read);
	u32 bufs = READ_ONCE(kd->alloc_q.shm->write) - READ_ONCE(kd->alloc_q.shm->read);

	return tx_used <= kd->tx_q.mask && /* one slot free */
	       bufs <= kd->alloc_q.mask + 1 && bufs >= n;
}

void kni_tx_publish(struct kni_dev *kd)
{
	kni_ring_publish(&kd->tx_q);
	kni_user_wake(kd);
}
