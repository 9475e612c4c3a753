/* SPDX-License-Identifier: GPL-2.0 */
#ifndef KNI_INTERNAL_H
#define KNI_INTERNAL_H

#include <linux/atomic.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/spinlock.h>
#include <linux/u64_stats_sync.h>
#include <linux/uidgid.h>
#include <linux/wait.h>

#include "kni_uapi.h"

struct eventfd_ctx;
struct vm_area_struct;
struct kni_sock;
struct sk_buff;

/* mmap() offset of interface id: id << KNI_MMAP_SHIFT (regions are < 4 GiB). */
#define KNI_MMAP_SHIFT		32

/* Module parameters: set at load time, read-only after. */
extern unsigned int kni_kthread_mode;
extern unsigned int kni_poll_interval_us;
extern bool kni_vnet_hdr_default;

/* Module-wide counters, reported by KNI_IOCTL_INFO so tests can prove no leaks. */
extern atomic_t kni_live_ifaces;
extern atomic_t kni_live_threads;
extern atomic64_t kni_shm_bytes;
extern atomic_t kni_live_socks;

/*
 * struct kni_mem - one interface's shared region
 *
 * Allocated with vmalloc_user(). The interface holds one reference and every
 * VMA mapping it holds one (taken in mmap and vm_ops->open, dropped in
 * vm_ops->close), so the pages outlive RELEASE while userspace still maps them.
 */
struct kni_mem {
	struct kref ref;
	void *base;
	size_t size;
};

struct kni_mem *kni_mem_alloc(size_t size);
void kni_mem_get(struct kni_mem *mem);
void kni_mem_put(struct kni_mem *mem);
int kni_mem_map(struct kni_mem *mem, struct vm_area_struct *vma);

/*
 * struct kni_ring - the kernel's view of one struct kni_fifo
 *
 * shm and mask are set at create and never change. pos is the kernel's own
 * counter (read for a FIFO the kernel consumes, write for one it produces);
 * it lives here, not in the region, so userspace cannot move it. Each ring
 * has exactly one kernel user at a time; which lock or thread that is, is
 * written where struct kni_dev declares it.
 */
struct kni_ring {
	struct kni_fifo *shm;
	u32 mask;
	u32 pos;
};

/* Entries the kernel may consume now; 0 and *corrupt set if the peer lies. */
static inline u32 kni_ring_avail(const struct kni_ring *r, bool *corrupt)
{
	/* Pairs with the producer's release store of write. */
	u32 n = smp_load_acquire(&r->shm->write) - r->pos;

	if (n > r->mask + 1) {
		*corrupt = true;
		return 0;
	}
	return n;
}

/* Free slots the kernel may produce into now; 0 and *corrupt set if the peer lies. */
static inline u32 kni_ring_space(const struct kni_ring *r, bool *corrupt)
{
	/* Pairs with the consumer's release store of read. */
	u32 used = r->pos - smp_load_acquire(&r->shm->read);

	if (used > r->mask + 1) {
		*corrupt = true;
		return 0;
	}
	return r->mask + 1 - used;
}

/* The i-th entry past pos; only for i < kni_ring_avail(). Unvalidated. */
static inline u32 kni_ring_peek(const struct kni_ring *r, u32 i)
{
	return READ_ONCE(r->shm->ring[(r->pos + i) & r->mask]);
}

static inline void kni_ring_consume(struct kni_ring *r, u32 n)
{
	r->pos += n;
	/* Slots read before this are free again; pairs with kni_ring_space() peers. */
	smp_store_release(&r->shm->read, r->pos);
}

/* Fill one slot; only after kni_ring_space() said there is room. */
static inline void kni_ring_put(struct kni_ring *r, u32 val)
{
	WRITE_ONCE(r->shm->ring[r->pos & r->mask], val);
	r->pos++;
}

static inline void kni_ring_publish(struct kni_ring *r)
{
	/* Slot and buffer contents before write; pairs with the consumer's acquire. */
	smp_store_release(&r->shm->write, r->pos);
}

/* Written by the kernel thread that polls the interface only. */
struct kni_rx_stats {
	struct u64_stats_sync syncp;
	u64 packets;
	u64 bytes;
	u64 drop_bad_index;
	u64 drop_bad_len;
	u64 drop_nomem;
	u64 drop_down;
	u64 fifo_corrupt;	/* rx_q, free_q */
	u64 sock_full;		/* passes that left rx_q waiting for the socket's reader */
	u64 drop_backlog;	/* netif_rx() refused; the core counts it in rx_dropped */
	u64 drop_bad_offload;	/* offload fields nobody could honour */
	u64 gso_frames;		/* GSO super-frames delivered */
	u64 gso_cut;		/* of those, cut here for a reader that cannot take them */
};

/* Written by the owner of tx_q (see struct kni_dev: ndo_start_xmit or the socket). */
struct kni_tx_stats {
	struct u64_stats_sync syncp;
	u64 packets;
	u64 bytes;
	u64 drop_no_buf;
	u64 drop_tx_q_full;
	u64 drop_too_big;
	u64 drop_bad_index;
	u64 fifo_corrupt;	/* tx_q, alloc_q */
	u64 drop_sock;		/* a copy of kni_dev.tx_drop_sock, for readers */
	u64 drop_bad_vnet_hdr;	/* socket frames with a header we cannot honour */
	u64 gso_frames;		/* GSO super-frames queued whole */
	u64 csum_partial;	/* frames queued with a partial checksum to complete */
	u64 sock_full;		/* socket sends that found no room and waited (back-pressure) */
	u64 queue_stops;	/* the netdev's queue stopped for want of room (back-pressure) */
	u64 drop_bad_offload;	/* stack frames whose offloads have no ABI 5 form */
};

/*
 * struct kni_waker - where a polling thread sleeps while its interfaces have
 * rung no doorbell. kicked is set by KNI_IOCTL_KICK (and by anything else
 * that gives the thread new work) before waking wq; the thread clears it
 * before it looks at the rings for the last time.
 */
struct kni_waker {
	wait_queue_head_t wq;
	bool kicked;		/* WRITE_ONCE/READ_ONCE, paired with wq's lock */
};

void kni_waker_init(struct kni_waker *w);
void kni_waker_kick(struct kni_waker *w);

/* Protected by kni_dev.req_lock. */
struct kni_req_stats {
	u64 sent;
	u64 dropped;		/* req_q full or corrupt */
};

/*
 * struct kni_dev - one KNI interface, the private area of its net_device
 *
 * Everything above the "mutable" comment is set at create and constant until
 * the interface is destroyed.
 */
struct kni_dev {
	struct net_device *netdev;
	u32 id;
	u32 buf_count;
	u32 buf_size;
	int cpu;
	bool bind;
	struct kni_mem *mem;
	u8 *bufs;
	struct kni_request *req_slots;
	char drv_name[KNI_STRSIZE];
	char drv_version[KNI_STRSIZE];
	char bus_info[KNI_STRSIZE];
	char fw_version[KNI_STRSIZE];
	struct kni_create layout;	/* the answer to CREATE: sizes and offsets */
	struct kni_ctx *owner;		/* the file that created it */
	kuid_t owner_uid;		/* its creator's effective uid, for ATTACH */
	struct kni_doorbell *doorbell;	/* in the region: written by both sides */
	bool doorbells;			/* created with KNI_CREATE_F_DOORBELL */
	bool offloads;			/* created with KNI_CREATE_F_OFFLOADS */
	/*
	 * NAPI context of frames for the stack: owned (NAPI_STATE_SCHED) by
	 * the pass over rx_q that holds poll_lock, never scheduled to a softirq.
	 */
	struct napi_struct napi;

	/* mutable */
	struct kni_ctx *handler;	/* attached file or NULL; kni_attach_lock */
	bool ready;			/* created and not being destroyed; kni_attach_lock */
	struct list_head ctx_node;	/* kni_ctx.lock */
	bool listed;			/* on its creator's devs list; kni_ctx.lock */
	struct list_head thread_node;	/* kni_single_lock */
	struct task_struct *thread;	/* multiple mode; set before polling starts */
	struct kni_waker own_waker;	/* multiple mode */
	struct kni_waker *waker;	/* the polling thread's; set before polling starts */

	/* KNI_IOCTL_NOTIFY: swapped with xchg(), read under RCU. */
	struct eventfd_ctx __rcu *notify;

	/*
	 * Under poll_lock (one pass at a time: the polling thread's, or a
	 * KNI_IOCTL_KICK's): consumer of rx_q, producer of free_q.
	 */
	struct mutex poll_lock;
	struct kni_ring rx_q;
	struct kni_ring free_q;
	struct kni_rx_stats rx;

	/*
	 * Consumer of alloc_q and producer of tx_q: ndo_start_xmit (under the TX
	 * queue lock) while sock_tx is false, the socket's sendmsg (under
	 * kni_sock.lock) while it is true. sock_tx changes under both locks.
	 */
	struct kni_ring alloc_q;
	struct kni_ring tx_q;
	struct kni_tx_stats tx;
	bool sock_tx;
	/*
	 * Back-pressure: buffers the frame that stopped the netdev's queue
	 * needs (tx_q's owner writes it before stopping; the polling thread
	 * wakes the queue once they are there).
	 */
	u32 tx_stop_need;
	bool tx_pending;		/* netdev frames queued on tx_q, not yet published */
	/* Stack frames dropped while the socket owns tx_q (then kd->tx is its). */
	atomic64_t tx_drop_sock;

	/* The KNI socket (kni_sock.c); everything here changes under kni_sock_mutex. */
	struct kni_sock __rcu *sock;	/* RCU for the polling thread */
	int sock_fd;			/* its number in the enabling process, or -1 */
	bool vnet_hdr;			/* the next socket carries virtio-net headers */
	bool sock_dead;			/* being destroyed: no new socket */
	/* Frames a socket reader's buffers could not hold (vhost's discard); any reader. */
	atomic64_t sock_rx_drop_short;

	/* Control notifications (kni_req.c). */
	spinlock_t req_lock;		/* the fields below and req_q as producer */
	struct kni_ring req_q;
	u32 req_seq;			/* last sequence number used */
	bool dead;			/* written under req_lock, read with READ_ONCE */
	struct kni_req_stats req;
};

/* An interface a file attached to as its handler. */
struct kni_link {
	struct list_head node;		/* kni_ctx.links, kni_ctx.lock */
	struct kni_dev *kd;
};

/*
 * Per open /dev/kni file. Lock order: kni_attach_lock, then kni_ctx.lock;
 * kni_ctx.lock is also taken under mmap_lock (in mmap), so nothing that can
 * fault on user memory runs under it.
 */
struct kni_ctx {
	struct mutex lock;		/* devs, links */
	struct list_head devs;
	struct list_head links;
	struct net *net;		/* opener's namespace, referenced */
};

int kni_ctl_register(void);
void kni_ctl_unregister(void);
void kni_ctl_unlink(struct kni_dev *kd);

/* kni_net.c */
struct kni_dev *kni_dev_create(struct kni_ctx *ctx, struct kni_create *req);
void kni_dev_destroy(struct kni_dev *kd);
bool kni_dev_poll(struct kni_dev *kd);
void kni_dev_kick(struct kni_dev *kd);
bool kni_dev_pending(struct kni_dev *kd);
void kni_user_wake(struct kni_dev *kd);

/* kni_req.c: control notifications to the interface's handler. */
void kni_req_notify(struct kni_dev *kd, u32 type, u32 value, const u8 *mac);
void kni_req_kill(struct kni_dev *kd);
int kni_dev_set_notify(struct kni_dev *kd, int fd);
struct kni_dev *kni_dev_from_netdev(struct net_device *dev);
void kni_net_exit(void);
u8 *kni_buf(const struct kni_dev *kd, u32 index);

/* The owner of tx_q (see struct kni_dev) queues frames with these. */
bool kni_tx_fits(struct kni_dev *kd, u32 n);
bool kni_tx_fits_hint(struct kni_dev *kd, u32 n);
void kni_tx_publish(struct kni_dev *kd);
void kni_net_tx_space(struct kni_dev *kd);
bool kni_net_tx_waiting(struct kni_dev *kd);
int kni_napi_poll(struct napi_struct *napi, int budget);

/* kni_frame.c: frames as buffer chains with offload metadata. */
struct virtio_net_hdr;

/* What happened to one rx_q frame; counted by the polling thread. */
enum kni_rx_result {
	KNI_RX_OK,
	KNI_RX_BAD_INDEX,
	KNI_RX_BAD_LEN,
	KNI_RX_BAD_OFFLOAD,
	KNI_RX_DOWN,
	KNI_RX_NOMEM,
	KNI_RX_BACKLOG,
};

bool kni_offload_ok(const struct virtio_net_hdr *vh, u32 len);
u32 kni_tx_bufs(const struct kni_dev *kd, u32 len);
int kni_tx_frame(struct kni_dev *kd, const struct virtio_net_hdr *vh,
		 struct iov_iter *from, const struct sk_buff *skb, u32 len);
struct sk_buff *kni_rx_frame(struct kni_dev *kd, struct net_device *dev, u32 index,
			     struct virtio_net_hdr *vh, enum kni_rx_result *result);
bool kni_rx_offload(struct sk_buff *skb, const struct virtio_net_hdr *vh);
void kni_tx_count(struct kni_dev *kd, u64 *counter, u64 n);

/* kni_sock.c */
int kni_sock_enable(struct kni_dev *kd, bool cloexec);
int kni_sock_disable(struct kni_dev *kd);
void kni_sock_kill(struct kni_dev *kd);
int kni_sock_fd(struct kni_dev *kd);
int kni_sock_set_vnet_hdr(struct kni_dev *kd, bool on);
bool kni_sock_get_vnet_hdr(struct kni_dev *kd);
u32 kni_sock_rx_room(struct kni_sock *ks, struct kni_dev *kd);
enum kni_rx_result kni_sock_rx_frame(struct kni_sock *ks, struct kni_dev *kd,
				     u32 index, u32 *bytes, u32 *gso);
void kni_sock_rx_wake(struct kni_sock *ks);
void kni_sock_tx_space(struct kni_sock *ks, struct kni_dev *kd);
bool kni_sock_tx_waiting(struct kni_sock *ks);

/* kni_sysfs.c */
extern const struct attribute_group kni_sysfs_group;

/* kni_thread.c */
int kni_thread_attach(struct kni_dev *kd);
void kni_thread_detach(struct kni_dev *kd);
void kni_thread_kick(struct kni_dev *kd);

#endif /* KNI_INTERNAL_H */
