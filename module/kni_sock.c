// SPDX-License-Identifier: GPL-2.0
/*
 * The KNI socket: per interface, a raw socket that the kernel's vhost-net
 * accepts as the backend of a guest's virtio-net queue (and that qemu can
 * also read and write itself when vhost is off). Frames the data plane puts
 * on rx_q go to its receive queue instead of the stack; frames written to it
 * go to tx_q.
 *
 * What vhost-net and qemu demand of it (docs/abi.md, "KNI socket"):
 *  - a sockfs socket whose sk_family is AF_PACKET and sk_type SOCK_RAW
 *    (vhost's get_raw_socket() checks exactly that);
 *  - every proto_ops slot that a syscall calls unchecked filled;
 *  - skbs on sk_receive_queue, wakeups through sk_data_ready (a keyed
 *    EPOLLIN wakeup: vhost ignores unkeyed ones), recvmsg returning the exact
 *    length and honouring MSG_TRUNC, -EAGAIN when empty;
 *  - sendmsg copying synchronously (vhost's buffers are qemu's user memory,
 *    valid only during the call) and returning the length;
 *  - the TUN ioctls qemu sends on a tap fd, answered like tun, with -EINVAL
 *    for what is not supported; sk_sndbuf never INT_MAX, which would switch
 *    vhost to batched TUN_MSG_PTR sends meant for tun only.
 *
 * Locking. kni_sock_mutex serialises enable, detach, release and interface
 * destruction, and protects kni_dev.sock, .sock_fd, .vnet_hdr, .sock_dead.
 * kni_sock.lock protects kni_sock.kd and, while kni_dev.sock_tx is set, the
 * tx side of the interface (alloc_q, tx_q, tx stats): sendmsg holds it for the
 * whole copy. The polling thread finds the socket through kni_dev.sock under
 * RCU; detach waits for a grace period before the socket may go away.
 * Order: kni_sock_mutex, then kni_sock.lock, then the netdev TX lock;
 * RTNL is taken before kni_sock.lock (TUNGETIFF) and never under either.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/compat.h>
#include <linux/etherdevice.h>
#include <linux/file.h>
#include <linux/if_tun.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/uio.h>
#include <linux/virtio_net.h>
#include <net/checksum.h>
#include <net/sock.h>

#include "kni_compat.h"
#include "kni_internal.h"

/* Largest virtio-net header size TUNSETVNETHDRSZ accepts. */
#define KNI_SOCK_HDR_MAX	64
/*
 * TUNSETOFFLOAD says what the guest can receive (qemu passes what the
 * guest's driver accepted): these are the flags kept, and frames from rx_q
 * reach the guest with exactly those offloads (kni_sock_takes()). What the
 * guest sends is governed by its header alone.
 */
#define KNI_SOCK_OFFLOADS	(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)

atomic_t kni_live_socks = ATOMIC_INIT(0);
static DEFINE_MUTEX(kni_sock_mutex);

struct kni_sock {
	struct sock sk;			/* first: sk_alloc() allocates the whole */
	struct mutex lock;		/* kd; the tx side while kd->sock_tx */
	struct kni_dev *kd;		/* NULL once detached */
	bool vnet_hdr;			/* fixed at enable */
	int vnet_hdr_sz;		/* TUNSETVNETHDRSZ; READ_ONCE in the data path */
	int sndbuf;			/* TUNSETSNDBUF, kept apart from sk_sndbuf */
	unsigned int offload;		/* TUNSETOFFLOAD */
	/*
	 * Back-pressure: a writer found no room for tx_need frames and waits
	 * (or returned -EAGAIN to vhost, which waits for EPOLLOUT). Set under
	 * lock by writers and poll; the polling thread clears it and wakes
	 * sk_sleep when the data plane has made room.
	 */
	bool tx_wait;
	u32 tx_need;
	/* Frames published under MSG_MORE without waking the data plane; lock. */
	bool tx_unsignalled;
};

static struct kni_sock *kni_sk(struct sock *sk)
{
	return container_of(sk, struct kni_sock, sk);
}

static struct proto kni_sock_proto = {
	.name = "kni",
	.owner = THIS_MODULE,
	.obj_size = sizeof(struct kni_sock),
};

/* Receive: the polling thread queues, the reader (vhost, qemu) dequeues ---- */

/* Frames the polling thread may queue now; the bound is the netdev's txqueuelen. */
u32 kni_sock_rx_room(struct kni_sock *ks, struct kni_dev *kd)
{
	u32 limit = max_t(u32, READ_ONCE(kd->netdev->tx_queue_len), 16);
	u32 queued = skb_queue_len_lockless(&ks->sk.sk_receive_queue);

	return queued < limit ? limit - queued : 0;
}

/* What recvmsg writes in front of an skb: its virtio-net header. */
struct kni_sock_cb {
	struct virtio_net_hdr vh;
};

static struct kni_sock_cb *kni_sock_cb(struct sk_buff *skb)
{
	BUILD_BUG_ON(sizeof(struct kni_sock_cb) > sizeof(skb->cb));
	return (struct kni_sock_cb *)skb->cb;
}

/*
 * Whether the reader accepted the offloads vh asks for: TUNSETOFFLOAD says
 * what the guest's driver can receive. Without headers it can take none.
 */
static bool kni_sock_takes(const struct kni_sock *ks, const struct virtio_net_hdr *vh)
{
	unsigned int offload = ks->vnet_hdr ? READ_ONCE(ks->offload) : 0;

	if ((vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(offload & TUN_F_CSUM))
		return false;
	switch (vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(offload & TUN_F_TSO4))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(offload & TUN_F_TSO6))
			return false;
		break;
	}
	return !(vh->gso_type & VIRTIO_NET_HDR_GSO_ECN) || (offload & TUN_F_TSO_ECN);
}

/* Queue skb for the reader behind vh, or behind a plain header with flags. */
static void kni_sock_rx_queue(struct kni_sock *ks, struct sk_buff *skb,
			      const struct virtio_net_hdr *vh, u8 flags)
{
	struct kni_sock_cb *cb = kni_sock_cb(skb);

	memset(cb, 0, sizeof(*cb));
	if (vh) {
		cb->vh = *vh;
	} else {
		cb->vh.flags = flags;
		cb->vh.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	}
	skb_queue_tail(&ks->sk.sk_receive_queue, skb);
}

/*
 * The polling thread: the rx_q frame headed by index for the socket's
 * reader. Whole, with its offloads in the header, when the reader accepted
 * them; otherwise finished here, once: a super-frame cut by the kernel's own
 * GSO code (every segment with full checksums), a partial checksum
 * completed. KNI_RX_OK with the bytes taken and whether it was GSO, or why
 * not.
 */
enum kni_rx_result kni_sock_rx_frame(struct kni_sock *ks, struct kni_dev *kd,
				     u32 index, u32 *bytes, u32 *gso)
{
	enum kni_rx_result result;
	struct virtio_net_hdr vh;
	struct sk_buff *skb, *segs, *next;

	skb = kni_rx_frame(kd, NULL, index, &vh, &result);
	if (!skb)
		return result;
	*bytes = skb->len;
	*gso = vh.gso_type != VIRTIO_NET_HDR_GSO_NONE;
	if (kni_sock_takes(ks, &vh)) {
		kni_sock_rx_queue(ks, skb, &vh, 0);
		return KNI_RX_OK;
	}
	if (!kni_rx_offload(skb, &vh))
		goto bad;
	if (!skb_is_gso(skb)) {
		/* A checksum completed here is as good as one verified. */
		if (skb->ip_summed == CHECKSUM_PARTIAL) {
			if (skb_checksum_help(skb))
				goto bad;
			vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;
		}
		kni_sock_rx_queue(ks, skb, NULL, vh.flags & VIRTIO_NET_HDR_F_DATA_VALID);
		return KNI_RX_OK;
	}
	/* Features 0: software segmentation, full checksums in every segment. */
	segs = skb_gso_segment(skb, 0);
	if (IS_ERR_OR_NULL(segs))
		goto bad;
	consume_skb(skb);
	u64_stats_update_begin(&kd->rx.syncp);
	kd->rx.gso_cut++;
	u64_stats_update_end(&kd->rx.syncp);
	skb_list_walk_safe(segs, skb, next) {
		skb_mark_not_on_list(skb);
		kni_sock_rx_queue(ks, skb, NULL, VIRTIO_NET_HDR_F_DATA_VALID);
	}
	return KNI_RX_OK;
bad:
	kfree_skb(skb);
	return KNI_RX_BAD_OFFLOAD;
}

/* sock_def_readable(): an EPOLLIN-keyed wakeup, which vhost's poll needs. */
void kni_sock_rx_wake(struct kni_sock *ks)
{
	ks->sk.sk_data_ready(&ks->sk);
}

/* A frame the reader's buffers cannot hold was taken and dropped: count it. */
static void kni_sock_rx_short(struct kni_sock *ks)
{
	mutex_lock(&ks->lock);
	if (ks->kd)
		atomic64_inc(&ks->kd->sock_rx_drop_short);
	mutex_unlock(&ks->lock);
}

static int kni_sock_recvmsg(struct socket *sock, struct msghdr *m,
			    size_t total_len, int flags)
{
	struct kni_sock *ks = kni_sk(sock->sk);
	int hlen = ks->vnet_hdr ? READ_ONCE(ks->vnet_hdr_sz) : 0;
	size_t room = iov_iter_count(&m->msg_iter);
	struct sk_buff *skb;
	size_t copy;
	int err;

	if (flags & ~(MSG_DONTWAIT | MSG_TRUNC | MSG_PEEK | MSG_CMSG_COMPAT))
		return -EINVAL;

	/* -EAGAIN when empty and non-blocking; NULL and 0 once detached and drained. */
	skb = skb_recv_datagram(sock->sk, flags, &err);
	if (!skb)
		return err;

	/*
	 * Buffers smaller than the header: the frame is taken and dropped, as
	 * tun does. vhost discards a frame larger than the guest's buffers
	 * this way (a 1-byte iov with MSG_TRUNC); refusing before taking it
	 * would leave it at the head of the queue for ever, and vhost retrying.
	 */
	if (room < (size_t)hlen) {
		if (!(flags & MSG_PEEK))
			kni_sock_rx_short(ks);
		err = -EINVAL;
		goto out;
	}

	if (hlen) {
		/* Set by the polling thread: offloads the reader accepted, or DATA_VALID. */
		const struct virtio_net_hdr *vh = &kni_sock_cb(skb)->vh;

		if (copy_to_iter(vh, sizeof(*vh), &m->msg_iter) != sizeof(*vh) ||
		    iov_iter_zero(hlen - sizeof(*vh), &m->msg_iter) != hlen - sizeof(*vh)) {
			err = -EFAULT;
			goto out;
		}
		room -= hlen;
	}

	copy = min_t(size_t, skb->len, room);
	if (copy < skb->len)
		m->msg_flags |= MSG_TRUNC;
	err = skb_copy_datagram_iter(skb, 0, &m->msg_iter, copy);
	if (!err)
		err = hlen + ((flags & MSG_TRUNC) ? skb->len : copy);
out:
	skb_free_datagram(sock->sk, skb);
	return err;
}

/* vhost's busy polling asks this instead of guessing from the queue. */
static int kni_sock_peek_len(struct socket *sock)
{
	struct sk_buff_head *q = &sock->sk->sk_receive_queue;
	struct sk_buff *skb;
	unsigned long flags;
	int len = 0;

	spin_lock_irqsave(&q->lock, flags);
	skb = skb_peek(q);
	if (skb)
		len = skb->len;
	spin_unlock_irqrestore(&q->lock, flags);
	return len;
}

/* Back-pressure: a writer waits for room on tx_q ----------------------- */

/*
 * Room for need frames on tx_q and alloc_q, for the owner of tx_q (ks->lock
 * held)? If not, say so to the polling thread, which wakes sk_sleep once the
 * data plane has made room, and look once more: the thread may have passed
 * between the first look and the flag. Any context that may sleep.
 */
static bool kni_sock_tx_fits(struct kni_sock *ks, struct kni_dev *kd, u32 need)
{
	if (kni_tx_fits(kd, need))
		return true;
	WRITE_ONCE(ks->tx_need, need);
	WRITE_ONCE(ks->tx_wait, true);
	/* The data plane kicks the polling thread once it has made room. */
	if (kd->doorbells)
		WRITE_ONCE(kd->doorbell->kernel_tx_wait, 1);
	/*
	 * The flags before the second look; pairs with the thread's smp_mb()
	 * and with the data plane's fence between publishing and reading
	 * kernel_tx_wait.
	 */
	smp_mb();
	return kni_tx_fits(kd, need);
}

/*
 * The polling thread, in its pass over kd (RCU held): a writer waits for
 * room and the data plane has made it? Then wake the writer, or vhost's TX
 * poll, with an EPOLLOUT-keyed wake-up. A guess without ks->lock: the
 * writer looks again under it.
 */
void kni_sock_tx_space(struct kni_sock *ks, struct kni_dev *kd)
{
	if (!READ_ONCE(ks->tx_wait))
		return;
	/* Pairs with the writer's smp_mb() between the flag and its second look. */
	smp_mb();
	if (!kni_tx_fits_hint(kd, READ_ONCE(ks->tx_need)))
		return;
	WRITE_ONCE(ks->tx_wait, false);
	if (kd->doorbells)
		WRITE_ONCE(kd->doorbell->kernel_tx_wait, 0);
	wake_up_interruptible_poll(sk_sleep(&ks->sk), EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND);
}

/* Whether a writer waits for room: the polling thread keeps passing over kd meanwhile. */
bool kni_sock_tx_waiting(struct kni_sock *ks)
{
	return READ_ONCE(ks->tx_wait);
}

/*
 * Writable while there is room on tx_q (below). No EPOLLERR while attached:
 * vhost refuses a backend whose first poll reports it. Once detached,
 * EPOLLERR for good (as AF_PACKET reports a device that went away): vhost
 * then stops polling the socket instead of being woken by a readable EOF on
 * every pass, which spun a host core for as long as qemu kept the backend.
 */
static __poll_t kni_sock_poll(struct file *file, struct socket *sock,
			      poll_table *wait)
{
	struct kni_sock *ks = kni_sk(sock->sk);
	struct sock *sk = sock->sk;
	__poll_t mask = 0;

	poll_wait(file, sk_sleep(sk), wait);
	if (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN)
		return EPOLLERR | EPOLLHUP | EPOLLRDHUP;
	if (!skb_queue_empty_lockless(&sk->sk_receive_queue))
		mask |= EPOLLIN | EPOLLRDNORM;
	/*
	 * Writable while tx_q and alloc_q have room for what the last writer
	 * that found none needed (a whole GSO frame's segments): reporting
	 * room for one frame would have vhost retry a 45-segment frame in a
	 * loop. Without room the polling thread wakes us once there is.
	 */
	mutex_lock(&ks->lock);
	if (ks->kd && kni_sock_tx_fits(ks, ks->kd, max_t(u32, READ_ONCE(ks->tx_need), 1)))
		mask |= EPOLLOUT | EPOLLWRNORM;
	mutex_unlock(&ks->lock);
	return mask;
}

/* Transmit: the writer (vhost, qemu) copies into buffers on tx_q ---------- */

/*
 * The writer's frame, its pages pinned before ks->lock is taken: the copy
 * under the lock then reads pinned pages and cannot fault. A fault that never
 * completes (userfaultfd during a post-copy migration, FUSE) would otherwise
 * hold the lock that TUNGETIFF takes under RTNL, and that detach and
 * interface removal wait for.
 */
struct kni_sock_pin {
	struct bio_vec small[20];	/* a contiguous 64 KiB frame */
	struct bio_vec *bv;
	unsigned int n;
	struct iov_iter iter;		/* what kni_tx_frame() copies from */
};

static void kni_sock_unpin(struct kni_sock_pin *p)
{
	unsigned int i;

	for (i = 0; i < p->n; i++)
		put_page(p->bv[i].bv_page);
	if (p->bv != p->small)
		kvfree(p->bv);
	p->n = 0;
	p->bv = p->small;
}

/* Pin the next len bytes of from; 0, or -EFAULT/-ENOMEM with nothing pinned. */
static int kni_sock_pin(struct kni_sock_pin *p, struct iov_iter *from, size_t len)
{
	size_t done = 0;
	int npages;

	p->n = 0;
	p->bv = p->small;
	/* Kernel memory (a kvec or bvec writer) cannot fault: copy from it as is. */
	if (!user_backed_iter(from)) {
		p->iter = *from;
		return 0;
	}
	npages = iov_iter_npages(from, INT_MAX);
	if (npages > (int)ARRAY_SIZE(p->small)) {
		p->bv = kvmalloc_array(npages, sizeof(*p->bv), GFP_KERNEL);
		if (!p->bv) {
			p->bv = p->small;
			return -ENOMEM;
		}
	}
	while (done < len) {
		struct page *pages[16];
		size_t start, left;
		ssize_t got;
		int i, got_pages;

		got = iov_iter_get_pages2(from, pages, len - done, ARRAY_SIZE(pages), &start);
		got_pages = got > 0 ? DIV_ROUND_UP(start + got, PAGE_SIZE) : 0;
		if (got <= 0 || p->n + got_pages > (unsigned int)npages) {
			for (i = 0; i < got_pages; i++)
				put_page(pages[i]);
			kni_sock_unpin(p);
			return -EFAULT;
		}
		for (i = 0, left = got; left; i++) {
			size_t off = i ? 0 : start, chunk = min_t(size_t, PAGE_SIZE - off, left);

			bvec_set_page(&p->bv[p->n++], pages[i], chunk, off);
			left -= chunk;
		}
		done += got;
	}
	iov_iter_bvec(&p->iter, ITER_SOURCE, p->bv, p->n, len);
	return 0;
}

/*
 * One frame from the writer (vhost, qemu) into buffers on tx_q, copied once,
 * its virtio-net header carried in the head: a GSO super-frame travels whole
 * and the port (or whoever takes it from the data plane) segments it. The
 * header is bounded first (kni_offload_ok()), before anything is taken.
 */
static int kni_sock_sendmsg(struct socket *sock, struct msghdr *m, size_t total_len)
{
	struct kni_sock *ks = kni_sk(sock->sk);
	struct virtio_net_hdr vh = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };
	size_t len = iov_iter_count(&m->msg_iter);
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	u64 *drop = NULL;
	struct kni_dev *kd;
	struct kni_sock_pin pin;
	bool queued, more = false;
	long timeo;
	u32 need;
	int err = 0;

	/*
	 * No ancillary data: in particular not vhost's TUN_MSG_PTR batches,
	 * which it only sends when sk_sndbuf is INT_MAX (never here).
	 */
	if (m->msg_controllen)
		return -EINVAL;
	if (ks->vnet_hdr) {
		int hlen = READ_ONCE(ks->vnet_hdr_sz);

		if (len < (size_t)hlen)
			return -EINVAL;
		if (!copy_from_iter_full(&vh, sizeof(vh), &m->msg_iter))
			return -EFAULT;
		iov_iter_advance(&m->msg_iter, hlen - sizeof(vh));
		len -= hlen;
		/* DATA_VALID means nothing on transmit (as for tun). */
		vh.flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	}
	if (len < ETH_HLEN)
		return -EINVAL;
	/* Faults happen here, with no lock held; the copy below cannot fault. */
	err = kni_sock_pin(&pin, &m->msg_iter, len);
	if (err)
		return err;

	timeo = sock_sndtimeo(sock->sk, (m->msg_flags & MSG_DONTWAIT) ||
			      (sock->file && (sock->file->f_flags & O_NONBLOCK)));
	/* On the queue before the first look at the room: no wake-up is missed. */
	queued = timeo != 0;
	if (queued)
		add_wait_queue(sk_sleep(sock->sk), &wait);
	for (;;) {
		mutex_lock(&ks->lock);
		kd = ks->kd;
		if (!kd) {
			err = -ENODEV;
			goto unlock;
		}
		if (len > KNI_FRAME_MAX) {
			drop = &kd->tx.drop_too_big;
			goto unlock;
		}
		if (!kni_offload_ok(&vh, len)) {
			drop = &kd->tx.drop_bad_vnet_hdr;
			goto unlock;
		}
		need = kni_tx_bufs(kd, len);
		/* More buffers than alloc_q can ever hold: waiting would be for ever. */
		if (need > kd->alloc_q.mask + 1) {
			drop = &kd->tx.drop_too_big;
			goto unlock;
		}
		/* Room for the whole frame before anything is copied. */
		if (kni_sock_tx_fits(ks, kd, need))
			break;
		kni_tx_count(kd, &kd->tx.sock_full, 1);
		/* The data plane must drain what this burst queued unsignalled. */
		if (ks->tx_unsignalled) {
			ks->tx_unsignalled = false;
			kni_user_wake(kd);
		}
		mutex_unlock(&ks->lock);
		if (!timeo) {
			err = -EAGAIN;
			goto out;
		}
		if (signal_pending(current)) {
			err = sock_intr_errno(timeo);
			goto out;
		}
		timeo = wait_woken(&wait, TASK_INTERRUPTIBLE, timeo);
	}
	err = kni_tx_frame(kd, &vh, &pin.iter, NULL, len);
	if (!err) {
		/*
		 * vhost says MSG_MORE while more of the guest's frames wait: the
		 * frame is published (an awake data plane takes it) but the
		 * wake-up waits for the end of the burst.
		 */
		kni_ring_publish(&kd->tx_q);
		ks->tx_unsignalled = true;
		more = m->msg_flags & MSG_MORE;
	} else if (err == -EPROTO) {
		drop = &kd->tx.drop_bad_vnet_hdr;
		err = 0;
	}
unlock:
	if (drop)
		kni_tx_count(kd, drop, 1);
	/* The end of a burst, or a send that ends it early: wake the data plane. */
	if (kd && ks->tx_unsignalled && !more) {
		ks->tx_unsignalled = false;
		kni_user_wake(kd);
	}
	mutex_unlock(&ks->lock);
out:
	if (queued)
		remove_wait_queue(sk_sleep(sock->sk), &wait);
	kni_sock_unpin(&pin);
	return err ? err : total_len;
}

/* TUN ioctls --------------------------------------------------------------- */

static unsigned short kni_sock_tun_flags(const struct kni_sock *ks)
{
	return IFF_TAP | IFF_NO_PI | (ks->vnet_hdr ? IFF_VNET_HDR : 0);
}

/*
 * TUNGETIFF. ifr_size is what the caller's struct ifreq is: sizeof(struct
 * ifreq), or sizeof(struct compat_ifreq) from a 32-bit process, whose
 * structure is 8 bytes shorter (copying ours would write past it).
 */
static int kni_sock_getiff(struct kni_sock *ks, void __user *argp, size_t ifr_size)
{
	struct ifreq ifr = {};
	int err = 0;

	/* RTNL: the name cannot change while it is copied. */
	rtnl_lock();
	mutex_lock(&ks->lock);
	if (ks->kd)
		strscpy(ifr.ifr_name, ks->kd->netdev->name, sizeof(ifr.ifr_name));
	else
		err = -EBADFD;
	mutex_unlock(&ks->lock);
	rtnl_unlock();
	if (err)
		return err;
	ifr.ifr_flags = kni_sock_tun_flags(ks);
	return copy_to_user(argp, &ifr, ifr_size) ? -EFAULT : 0;
}

static int __kni_sock_ioctl(struct socket *sock, unsigned int cmd, unsigned long arg,
			    size_t ifr_size)
{
	struct kni_sock *ks = kni_sk(sock->sk);
	void __user *argp = (void __user *)arg;
	int __user *ip = argp;
	struct ifreq ifr = {};
	int val;

	switch (cmd) {
	case TUNGETIFF:
		return kni_sock_getiff(ks, argp, ifr_size);
	case TUNSETIFF:
		/* The socket is what it is: accept only a request for exactly that. */
		if (copy_from_user(&ifr, argp, ifr_size))
			return -EFAULT;
		return ifr.ifr_flags == kni_sock_tun_flags(ks) ? 0 : -EINVAL;
	case TUNGETFEATURES:
		return put_user((unsigned int)kni_sock_tun_flags(ks), (unsigned int __user *)argp);
	case TUNSETOFFLOAD:
		/* qemu probes with 0 and stays quiet on -EINVAL: no offloads without headers. */
		if (!ks->vnet_hdr || (arg & ~KNI_SOCK_OFFLOADS))
			return -EINVAL;
		WRITE_ONCE(ks->offload, arg);
		return 0;
	case TUNGETVNETHDRSZ:
		return put_user(READ_ONCE(ks->vnet_hdr_sz), ip);
	case TUNSETVNETHDRSZ:
		if (get_user(val, ip))
			return -EFAULT;
		if (val < (int)sizeof(struct virtio_net_hdr) || val > KNI_SOCK_HDR_MAX)
			return -EINVAL;
		WRITE_ONCE(ks->vnet_hdr_sz, val);
		return 0;
	case TUNGETSNDBUF:
		return put_user(READ_ONCE(ks->sndbuf), ip);
	case TUNSETSNDBUF:
		/* Kept, reported, never copied to sk_sndbuf (see the top of this file). */
		if (get_user(val, ip))
			return -EFAULT;
		if (val <= 0)
			return -EINVAL;
		WRITE_ONCE(ks->sndbuf, val);
		return 0;
	}
	/* Other tun ioctls (queues, endianness, filters): -EINVAL, as qemu expects. */
	if (_IOC_TYPE(cmd) == 'T')
		return -EINVAL;
	/* Socket and device ioctls: the generic code may know them. */
	return -ENOIOCTLCMD;
}

static int kni_sock_ioctl(struct socket *sock, unsigned int cmd, unsigned long arg)
{
	return __kni_sock_ioctl(sock, cmd, arg, sizeof(struct ifreq));
}

#ifdef CONFIG_COMPAT
static int kni_sock_compat_ioctl(struct socket *sock, unsigned int cmd,
				 unsigned long arg)
{
	/* TUNSETOFFLOAD passes a value, the others a pointer. */
	if (cmd == TUNSETOFFLOAD)
		return kni_sock_ioctl(sock, cmd, arg);
	return __kni_sock_ioctl(sock, cmd, (unsigned long)compat_ptr(arg),
				sizeof(struct compat_ifreq));
}
#endif

static int kni_sock_setsockopt(struct socket *sock, int level, int optname,
			       sockptr_t optval, unsigned int optlen)
{
	return -ENOPROTOOPT;
}

static int kni_sock_getsockopt(struct socket *sock, int level, int optname,
			       char __user *optval, int __user *optlen)
{
	return -ENOPROTOOPT;
}

static void kni_sock_show_fdinfo(struct seq_file *m, struct socket *sock)
{
	struct kni_sock *ks = kni_sk(sock->sk);

	mutex_lock(&ks->lock);
	seq_printf(m, "kni-iface:\t%s\n", ks->kd ? ks->kd->netdev->name : "");
	mutex_unlock(&ks->lock);
	seq_printf(m, "kni-vnet-hdr:\t%d\n", ks->vnet_hdr ? READ_ONCE(ks->vnet_hdr_sz) : 0);
}

/* Attach and detach --------------------------------------------------------- */

/*
 * Detach the socket from kd, if one is attached: after this no sendmsg
 * touches kd, tx_q belongs to ndo_start_xmit again, the polling thread no
 * longer queues to the socket, and a blocked reader wakes up to EOF.
 */
static void __kni_sock_unbind(struct kni_dev *kd)
{
	struct kni_sock *ks;

	lockdep_assert_held(&kni_sock_mutex);
	ks = rcu_dereference_protected(kd->sock, lockdep_is_held(&kni_sock_mutex));
	if (!ks)
		return;

	mutex_lock(&ks->lock);		/* waits for a sendmsg in progress */
	ks->kd = NULL;
	mutex_unlock(&ks->lock);
	netif_tx_lock_bh(kd->netdev);
	kd->sock_tx = false;
	netif_tx_unlock_bh(kd->netdev);

	RCU_INIT_POINTER(kd->sock, NULL);
	kd->sock_fd = -1;
	synchronize_rcu();		/* pairs with rcu_read_lock() in kni_rx_poll() */

	WRITE_ONCE(ks->sk.sk_shutdown, ks->sk.sk_shutdown | RCV_SHUTDOWN);
	ks->sk.sk_state_change(&ks->sk);
}

static int kni_sock_release(struct socket *sock)
{
	struct sock *sk = sock->sk;
	struct kni_sock *ks;

	if (!sk)
		return 0;
	ks = kni_sk(sk);

	mutex_lock(&kni_sock_mutex);
	if (ks->kd)
		__kni_sock_unbind(ks->kd);
	mutex_unlock(&kni_sock_mutex);

	skb_queue_purge(&sk->sk_receive_queue);
	sock_orphan(sk);
	sock->sk = NULL;
	sock_put(sk);
	return 0;
}

static const struct proto_ops kni_sock_ops = {
	.family		= PF_PACKET,
	.owner		= THIS_MODULE,
	.release	= kni_sock_release,
	.bind		= sock_no_bind,
	.connect	= sock_no_connect,
	.socketpair	= sock_no_socketpair,
	.accept		= sock_no_accept,
	.getname	= sock_no_getname,
	.poll		= kni_sock_poll,
	.ioctl		= kni_sock_ioctl,
#ifdef CONFIG_COMPAT
	.compat_ioctl	= kni_sock_compat_ioctl,
#endif
	.gettstamp	= sock_gettstamp,
	.listen		= sock_no_listen,
	.shutdown	= sock_no_shutdown,
	.setsockopt	= kni_sock_setsockopt,
	.getsockopt	= kni_sock_getsockopt,
	.show_fdinfo	= kni_sock_show_fdinfo,
	.sendmsg	= kni_sock_sendmsg,
	.recvmsg	= kni_sock_recvmsg,
	.mmap		= sock_no_mmap,
	KNI_SOCK_NO_SENDPAGE
	.sendmsg_locked	= sock_no_sendmsg_locked,
	.peek_len	= kni_sock_peek_len,
};

static void kni_sock_destruct(struct sock *sk)
{
	skb_queue_purge(&sk->sk_receive_queue);
	atomic_dec(&kni_live_socks);
}

/* A socket with its ops and data initialised, not yet attached; NULL on failure. */
static struct socket *kni_sock_alloc(struct kni_dev *kd, int *err)
{
	struct kni_sock *ks;
	struct socket *sock;
	struct sock *sk;

	*err = sock_create_lite(PF_PACKET, SOCK_RAW, 0, &sock);
	if (*err)
		return NULL;
	sk = sk_alloc(dev_net(kd->netdev), PF_PACKET, GFP_KERNEL, &kni_sock_proto, 0);
	if (!sk) {
		sock_release(sock);
		*err = -ENOMEM;
		return NULL;
	}
	/* __sock_release() drops a module reference for ops->owner. */
	__module_get(THIS_MODULE);
	sock->ops = &kni_sock_ops;
	sock_init_data(sock, sk);
	sk->sk_destruct = kni_sock_destruct;
	atomic_inc(&kni_live_socks);

	ks = kni_sk(sk);
	mutex_init(&ks->lock);
	ks->vnet_hdr_sz = sizeof(struct virtio_net_hdr);
	ks->sndbuf = sk->sk_sndbuf;
	return sock;
}

/*
 * sock_en = 1 or KNI_IOCTL_SOCKET: create the socket, attach it, and install
 * a descriptor for it in the calling process, close-on-exec only if asked
 * (sysfs never asks: its descriptor is meant to be inherited by qemu).
 * Returns the descriptor or -errno.
 *
 * The socket and its file are made before kni_sock_mutex is taken: a failed
 * sock_alloc_file() releases the socket, and so does the fput() of one that
 * lost the race, through kni_sock_release(), which takes that mutex.
 */
int kni_sock_enable(struct kni_dev *kd, bool cloexec)
{
	struct socket *sock;
	struct file *file;
	struct kni_sock *ks;
	int fd, err;

	fd = get_unused_fd_flags(cloexec ? O_CLOEXEC : 0);
	if (fd < 0)
		return fd;
	sock = kni_sock_alloc(kd, &err);
	if (!sock)
		goto put_fd;
	/* On failure this releases the socket itself. */
	file = sock_alloc_file(sock, 0, NULL);
	if (IS_ERR(file)) {
		err = PTR_ERR(file);
		goto put_fd;
	}
	ks = kni_sk(sock->sk);

	mutex_lock(&kni_sock_mutex);
	if (kd->sock_dead) {
		err = -ENODEV;
		goto unlock;
	}
	if (rcu_access_pointer(kd->sock)) {
		err = -EBUSY;
		goto unlock;
	}
	ks->vnet_hdr = kd->vnet_hdr;
	ks->kd = kd;
	netif_tx_lock_bh(kd->netdev);
	kd->sock_tx = true;
	netif_tx_unlock_bh(kd->netdev);
	rcu_assign_pointer(kd->sock, ks);
	kd->sock_fd = fd;
	/* Last: from here on userspace may use, and close, the descriptor. */
	fd_install(fd, file);
	mutex_unlock(&kni_sock_mutex);
	return fd;

unlock:
	mutex_unlock(&kni_sock_mutex);
	fput(file);
put_fd:
	put_unused_fd(fd);
	return err;
}

/* sock_en = 0: the socket lives on in whoever holds it, detached. */
int kni_sock_disable(struct kni_dev *kd)
{
	mutex_lock(&kni_sock_mutex);
	__kni_sock_unbind(kd);
	mutex_unlock(&kni_sock_mutex);
	return 0;
}

/* The interface is going away: detach its socket and refuse new ones. */
void kni_sock_kill(struct kni_dev *kd)
{
	mutex_lock(&kni_sock_mutex);
	kd->sock_dead = true;
	__kni_sock_unbind(kd);
	mutex_unlock(&kni_sock_mutex);
}

int kni_sock_fd(struct kni_dev *kd)
{
	int fd;

	mutex_lock(&kni_sock_mutex);
	fd = kd->sock_fd;
	mutex_unlock(&kni_sock_mutex);
	return fd;
}

int kni_sock_set_vnet_hdr(struct kni_dev *kd, bool on)
{
	int err = 0;

	mutex_lock(&kni_sock_mutex);
	if (rcu_access_pointer(kd->sock))
		err = -EBUSY;
	else
		kd->vnet_hdr = on;
	mutex_unlock(&kni_sock_mutex);
	return err;
}

bool kni_sock_get_vnet_hdr(struct kni_dev *kd)
{
	bool on;

	mutex_lock(&kni_sock_mutex);
	on = kd->vnet_hdr;
	mutex_unlock(&kni_sock_mutex);
	return on;
}
