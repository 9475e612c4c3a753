// SPDX-License-Identifier: GPL-2.0
/*
 * KNI net devices: creation from a validated struct kni_create, the data path
 * between the Linux stack and the shared FIFOs, control requests, stats and
 * ethtool.
 *
 * Trust: the region is writable by userspace at any time. Every value read
 * from it is read once (READ_ONCE), checked, and only the checked copy is
 * used. A bad buffer index, offset or length is a counted drop; a FIFO whose
 * peer counter is impossible is treated as empty (or full) and counted.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/errno.h>
#include <linux/etherdevice.h>
#include <linux/eventfd.h>
#include <linux/ethtool.h>
#include <linux/idr.h>
#include <linux/if_vlan.h>
#include <linux/jiffies.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "kni_compat.h"
#include "kni_internal.h"

/* Packets taken from rx_q per interface per pass. */
#define KNI_RX_BURST		32
#define KNI_MAX_IFACES		4096

atomic_t kni_live_ifaces = ATOMIC_INIT(0);
static DEFINE_IDA(kni_ida);

static size_t kni_fifo_bytes(u32 entries)
{
	return ALIGN(sizeof(struct kni_fifo) + entries * sizeof(u32), 64);
}

u8 *kni_buf(const struct kni_dev *kd, u32 index)
{
	return kd->bufs + (size_t)index * kd->buf_size;
}

/* Control requests ------------------------------------------------------- */

static void kni_req_fill(struct kni_dev *kd, u32 seq, u32 type, u32 flags,
			 u32 value, const u8 *mac)
{
	struct kni_request *slot = &kd->req_slots[seq & (KNI_REQ_ENTRIES - 1)];

	memset(slot, 0, sizeof(*slot));
	slot->seq = seq;
	slot->type = type;
	slot->flags = flags;
	slot->value = value;
	if (mac)
		ether_addr_copy(slot->mac, mac);
}

/* Queue a request on req_q; returns its sequence number, or 0 if req_q is full. */
static u32 __kni_req_queue(struct kni_dev *kd, u32 type, u32 flags, u32 value,
			   const u8 *mac)
{
	bool corrupt = false;
	u32 seq;

	if (!kni_ring_space(&kd->req_q, &corrupt)) {
		kd->req.dropped++;
		return 0;
	}
	seq = ++kd->req_seq;
	if (!seq)
		seq = ++kd->req_seq;
	kni_req_fill(kd, seq, type, flags, value, mac);
	kni_ring_put(&kd->req_q, seq);
	kni_ring_publish(&kd->req_q);
	kni_user_wake(kd);
	kd->req.sent++;
	return seq;
}

/* Tell userspace about a change that already happened; callable in atomic context. */
static void kni_req_notify(struct kni_dev *kd, u32 type, u32 value)
{
	spin_lock_bh(&kd->req_lock);
	if (!kd->dead)
		__kni_req_queue(kd, type, KNI_REQ_F_NOTIFY, value, NULL);
	spin_unlock_bh(&kd->req_lock);
}

/*
 * Ask userspace to accept a change and wait for its answer, at most
 * req_timeout_ms. Called under RTNL from ndo callbacks: the wait is bounded
 * and is cut short when the interface is being destroyed.
 */
static int kni_req_call(struct kni_dev *kd, u32 type, u32 value, const u8 *mac)
{
	long left;
	int err;
	u32 seq;

	mutex_lock(&kd->req_mutex);
	spin_lock_bh(&kd->req_lock);
	if (kd->dead) {
		spin_unlock_bh(&kd->req_lock);
		err = -ENODEV;
		goto unlock_mutex;
	}
	seq = __kni_req_queue(kd, type, 0, value, mac);
	if (!seq) {
		spin_unlock_bh(&kd->req_lock);
		err = -EBUSY;
		goto unlock_mutex;
	}
	kd->wait_seq = seq;
	kd->wait_done = false;
	spin_unlock_bh(&kd->req_lock);

	left = wait_event_interruptible_timeout(kd->req_wq,
						READ_ONCE(kd->wait_done) ||
						READ_ONCE(kd->dead),
						msecs_to_jiffies(kni_req_timeout_ms));

	spin_lock_bh(&kd->req_lock);
	if (kd->wait_done) {
		err = kd->wait_result;
	} else if (kd->dead) {
		err = -ENODEV;
	} else if (left < 0) {
		err = -EINTR;
	} else {
		kd->req.timeout++;
		err = -ETIMEDOUT;
	}
	kd->wait_seq = 0;
	kd->wait_done = false;
	spin_unlock_bh(&kd->req_lock);
unlock_mutex:
	mutex_unlock(&kd->req_mutex);
	return err;
}

/* Polling thread: match answers on resp_q with the waiting request. */
static bool kni_resp_poll(struct kni_dev *kd)
{
	bool corrupt = false;
	u32 n, i;

	n = kni_ring_avail(&kd->resp_q, &corrupt);
	if (corrupt) {
		u64_stats_update_begin(&kd->rx.syncp);
		kd->rx.fifo_corrupt++;
		u64_stats_update_end(&kd->rx.syncp);
	}
	if (!n)
		return false;

	spin_lock_bh(&kd->req_lock);
	for (i = 0; i < n; i++) {
		u32 seq = kni_ring_peek(&kd->resp_q, i);
		struct kni_request *slot;
		s32 result;

		if (!seq || seq != kd->wait_seq || kd->wait_done) {
			kd->req.stale++;
			continue;
		}
		slot = &kd->req_slots[seq & (KNI_REQ_ENTRIES - 1)];
		result = READ_ONCE(slot->result);
		/* Only 0 or an errno; anything else is a protocol error. */
		if (result > 0 || result < -MAX_ERRNO)
			result = -EPROTO;
		kd->wait_result = result;
		WRITE_ONCE(kd->wait_done, true);
	}
	kni_ring_consume(&kd->resp_q, n);
	spin_unlock_bh(&kd->req_lock);
	wake_up_interruptible(&kd->req_wq);
	return true;
}

/*
 * Ingress: rx_q -> skb -> the stack, or the KNI socket while one is attached;
 * the buffer goes back on free_q either way.
 */

/* What happened to one rx_q buffer; counted by kni_rx_poll(). */
enum kni_rx_result {
	KNI_RX_OK,
	KNI_RX_BAD_LEN,
	KNI_RX_DOWN,
	KNI_RX_NOMEM,
	KNI_RX_BACKLOG,
};

static enum kni_rx_result kni_rx_one(struct kni_dev *kd, struct kni_sock *ks,
				     u32 index, u32 *bytes)
{
	struct net_device *dev = kd->netdev;
	const struct kni_buf *hdr;
	struct sk_buff *skb;
	u32 off, len, flags;

	hdr = (const struct kni_buf *)kni_buf(kd, index);
	off = READ_ONCE(hdr->data_off);
	len = READ_ONCE(hdr->data_len);
	flags = READ_ONCE(hdr->flags);
	if (off < KNI_BUF_HDR_SIZE || off > kd->buf_size ||
	    len > kd->buf_size - off || len < ETH_HLEN)
		return KNI_RX_BAD_LEN;

	if (ks) {
		/* The socket's reader (vhost) takes the frame as it is. */
		skb = alloc_skb(len, GFP_ATOMIC);
		if (!skb)
			return KNI_RX_NOMEM;
		skb_put_data(skb, kni_buf(kd, index) + off, len);
		if (flags & KNI_BUF_F_CSUM_VALID)
			skb->ip_summed = CHECKSUM_UNNECESSARY;
		kni_sock_rx_queue(ks, skb);
	} else {
		if (!(dev->flags & IFF_UP))
			return KNI_RX_DOWN;
		skb = netdev_alloc_skb_ip_align(dev, len);
		if (!skb)
			return KNI_RX_NOMEM;
		skb_put_data(skb, kni_buf(kd, index) + off, len);
		skb->protocol = eth_type_trans(skb, dev);
		/* Otherwise CHECKSUM_NONE: the stack verifies what userspace sent. */
		if (flags & KNI_BUF_F_CSUM_VALID)
			skb->ip_summed = CHECKSUM_UNNECESSARY;
		/* A full backlog frees the skb; it was not received. */
		if (netif_rx(skb) == NET_RX_DROP)
			return KNI_RX_BACKLOG;
	}
	*bytes = len;
	return KNI_RX_OK;
}

static bool kni_rx_poll(struct kni_dev *kd)
{
	u32 packets = 0, bytes = 0, bad_index = 0, bad_len = 0, down = 0;
	u32 nomem = 0, backlog = 0;
	bool corrupt = false, sock_full = false;
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

	for (i = 0; i < n; i++) {
		u32 index = kni_ring_peek(&kd->rx_q, i);
		u32 len = 0;

		if (index >= kd->buf_count) {
			bad_index++;
			continue;
		}
		switch (kni_rx_one(kd, ks, index, &len)) {
		case KNI_RX_OK:
			packets++;
			bytes += len;
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
	if (ks && packets)
		kni_sock_rx_wake(ks);
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
		u64_stats_update_end(&kd->rx.syncp);
	}
	return n != 0;
}

/* Called by the polling thread only; returns true if it found work. */
bool kni_dev_poll(struct kni_dev *kd)
{
	bool busy;

	busy = kni_rx_poll(kd);
	busy |= kni_resp_poll(kd);
	return busy;
}

/*
 * Polling thread, about to sleep, after setting kernel_sleeping and a full
 * barrier: is anything waiting on rx_q or resp_q? A FIFO whose counter is
 * impossible counts as empty (kni_dev_poll() counts it).
 */
bool kni_dev_pending(struct kni_dev *kd)
{
	bool corrupt = false;

	return kni_ring_avail(&kd->rx_q, &corrupt) ||
	       kni_ring_avail(&kd->resp_q, &corrupt);
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

/* True if n frames can be queued now; otherwise why not is counted. */
bool kni_tx_room(struct kni_dev *kd, u32 n)
{
	bool corrupt = false;
	u64 *reason = NULL;

	/* Room on tx_q first, so a buffer taken from alloc_q is never lost. */
	if (kni_ring_space(&kd->tx_q, &corrupt) < n)
		reason = &kd->tx.drop_tx_q_full;
	else if (kni_ring_avail(&kd->alloc_q, &corrupt) < n)
		reason = &kd->tx.drop_no_buf;
	if (corrupt)
		kni_tx_count(kd, &kd->tx.fifo_corrupt, 1);
	if (reason)
		kni_tx_count(kd, reason, 1);
	return !reason;
}

/*
 * After kni_tx_room(): the frame area of the buffer at the head of alloc_q,
 * still on alloc_q until kni_tx_push(). NULL if userspace put a bad index
 * there: that entry is consumed and counted.
 */
u8 *kni_tx_next(struct kni_dev *kd, u32 *index)
{
	u32 i = kni_ring_peek(&kd->alloc_q, 0);

	if (i >= kd->buf_count) {
		kni_ring_consume(&kd->alloc_q, 1);
		kni_tx_count(kd, &kd->tx.drop_bad_index, 1);
		return NULL;
	}
	*index = i;
	return kni_buf(kd, i) + KNI_BUF_HDR_SIZE;
}

/* The buffer kni_tx_next() gave holds a frame of len bytes: move it to tx_q. */
void kni_tx_push(struct kni_dev *kd, u32 index, u32 len)
{
	struct kni_buf *hdr = (struct kni_buf *)kni_buf(kd, index);

	WRITE_ONCE(hdr->data_off, KNI_BUF_HDR_SIZE);
	WRITE_ONCE(hdr->data_len, len);
	WRITE_ONCE(hdr->flags, 0);
	kni_ring_consume(&kd->alloc_q, 1);
	kni_ring_put(&kd->tx_q, index);
	u64_stats_update_begin(&kd->tx.syncp);
	kd->tx.packets++;
	kd->tx.bytes += len;
	u64_stats_update_end(&kd->tx.syncp);
}

void kni_tx_publish(struct kni_dev *kd)
{
	kni_ring_publish(&kd->tx_q);
	kni_user_wake(kd);
}

static netdev_tx_t kni_start_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct kni_dev *kd = netdev_priv(dev);
	u32 index, len = skb->len;
	u8 *frame;

	/* The socket owns tx_q: see "KNI socket" in docs/abi.md. */
	if (kd->sock_tx) {
		kni_tx_count(kd, &kd->tx.drop_sock, 1);
		goto drop;
	}
	if (len > kd->buf_size - KNI_BUF_HDR_SIZE) {
		kni_tx_count(kd, &kd->tx.drop_too_big, 1);
		goto drop;
	}
	if (!kni_tx_room(kd, 1))
		goto drop;
	frame = kni_tx_next(kd, &index);
	if (!frame)
		goto drop;
	skb_copy_bits(skb, 0, frame, len);
	kni_tx_push(kd, index, len);
	kni_tx_publish(kd);
	skb_tx_timestamp(skb);
	consume_skb(skb);
	return NETDEV_TX_OK;

drop:
	kfree_skb(skb);
	return NETDEV_TX_OK;
}

/* ndo callbacks ---------------------------------------------------------- */

static int kni_open(struct net_device *dev)
{
	struct kni_dev *kd = netdev_priv(dev);
	int err;

	err = kni_req_call(kd, KNI_REQ_LINK, 1, NULL);
	if (err)
		return err;
	netif_start_queue(dev);
	return 0;
}

/* Going down cannot be refused (dev_close ignores errors): notify only. */
static int kni_stop(struct net_device *dev)
{
	struct kni_dev *kd = netdev_priv(dev);

	netif_stop_queue(dev);
	kni_req_notify(kd, KNI_REQ_LINK, 0);
	return 0;
}

static int kni_change_mtu(struct net_device *dev, int new_mtu)
{
	struct kni_dev *kd = netdev_priv(dev);
	int err;

	err = kni_req_call(kd, KNI_REQ_MTU, new_mtu, NULL);
	if (err)
		return err;
	WRITE_ONCE(dev->mtu, new_mtu);
	return 0;
}

static int kni_set_mac_address(struct net_device *dev, void *p)
{
	struct kni_dev *kd = netdev_priv(dev);
	const struct sockaddr *sa = p;
	u8 mac[ETH_ALEN];
	int err;

	ether_addr_copy(mac, (const u8 *)sa->sa_data);
	if (!is_valid_ether_addr(mac))
		return -EADDRNOTAVAIL;
	err = kni_req_call(kd, KNI_REQ_MAC, 0, mac);
	if (err)
		return err;
	eth_hw_addr_set(dev, mac);
	return 0;
}

/*
 * Promiscuous and allmulticast changes cannot be refused (the callback is
 * void and may run in atomic context): userspace is notified.
 */
static void kni_change_rx_flags(struct net_device *dev, int change)
{
	struct kni_dev *kd = netdev_priv(dev);

	if (change & IFF_PROMISC)
		kni_req_notify(kd, KNI_REQ_PROMISC, !!(dev->flags & IFF_PROMISC));
	if (change & IFF_ALLMULTI)
		kni_req_notify(kd, KNI_REQ_ALLMULTI, !!(dev->flags & IFF_ALLMULTI));
}

/* Writing /sys/class/net/<name>/carrier: the data plane says whether the link is up. */
static int kni_change_carrier(struct net_device *dev, bool new_carrier)
{
	if (new_carrier)
		netif_carrier_on(dev);
	else
		netif_carrier_off(dev);
	return 0;
}

static void kni_read_rx(const struct kni_dev *kd, struct kni_rx_stats *out)
{
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&kd->rx.syncp);
		out->packets = kd->rx.packets;
		out->bytes = kd->rx.bytes;
		out->drop_bad_index = kd->rx.drop_bad_index;
		out->drop_bad_len = kd->rx.drop_bad_len;
		out->drop_nomem = kd->rx.drop_nomem;
		out->drop_down = kd->rx.drop_down;
		out->fifo_corrupt = kd->rx.fifo_corrupt;
		out->sock_full = kd->rx.sock_full;
		out->drop_backlog = kd->rx.drop_backlog;
	} while (u64_stats_fetch_retry(&kd->rx.syncp, start));
}

static void kni_read_tx(const struct kni_dev *kd, struct kni_tx_stats *out)
{
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&kd->tx.syncp);
		out->packets = kd->tx.packets;
		out->bytes = kd->tx.bytes;
		out->drop_no_buf = kd->tx.drop_no_buf;
		out->drop_tx_q_full = kd->tx.drop_tx_q_full;
		out->drop_too_big = kd->tx.drop_too_big;
		out->drop_bad_index = kd->tx.drop_bad_index;
		out->fifo_corrupt = kd->tx.fifo_corrupt;
		out->drop_sock = kd->tx.drop_sock;
		out->drop_bad_vnet_hdr = kd->tx.drop_bad_vnet_hdr;
		out->drop_gso = kd->tx.drop_gso;
		out->gso_frames = kd->tx.gso_frames;
		out->csum_done = kd->tx.csum_done;
	} while (u64_stats_fetch_retry(&kd->tx.syncp, start));
}

static void kni_get_stats64(struct net_device *dev, struct rtnl_link_stats64 *s)
{
	struct kni_dev *kd = netdev_priv(dev);
	struct kni_rx_stats rx;
	struct kni_tx_stats tx;

	kni_read_rx(kd, &rx);
	kni_read_tx(kd, &tx);
	s->rx_packets = rx.packets;
	s->rx_bytes = rx.bytes;
	s->rx_dropped = rx.drop_bad_index + rx.drop_bad_len + rx.drop_nomem +
			rx.drop_down;
	s->rx_errors = rx.drop_bad_index + rx.drop_bad_len;
	s->tx_packets = tx.packets;
	s->tx_bytes = tx.bytes;
	s->tx_dropped = tx.drop_no_buf + tx.drop_tx_q_full + tx.drop_too_big +
			tx.drop_bad_index + tx.drop_sock + tx.drop_bad_vnet_hdr +
			tx.drop_gso;
	s->tx_errors = tx.drop_bad_index + tx.drop_bad_vnet_hdr;
}

static const struct net_device_ops kni_netdev_ops = {
	.ndo_open		= kni_open,
	.ndo_stop		= kni_stop,
	.ndo_start_xmit		= kni_start_xmit,
	.ndo_change_mtu		= kni_change_mtu,
	.ndo_set_mac_address	= kni_set_mac_address,
	.ndo_change_rx_flags	= kni_change_rx_flags,
	.ndo_change_carrier	= kni_change_carrier,
	.ndo_get_stats64	= kni_get_stats64,
	.ndo_validate_addr	= eth_validate_addr,
};

/* The KNI interface behind dev, or NULL if dev is not one. */
struct kni_dev *kni_dev_from_netdev(struct net_device *dev)
{
	return dev->netdev_ops == &kni_netdev_ops ? netdev_priv(dev) : NULL;
}

/* ethtool ---------------------------------------------------------------- */

static const char kni_stat_names[][ETH_GSTRING_LEN] = {
	"rx_packets", "rx_bytes", "rx_drop_bad_index", "rx_drop_bad_len",
	"rx_drop_nomem", "rx_drop_down", "rx_fifo_corrupt", "rx_sock_full",
	"rx_drop_backlog", "rx_drop_sock_short",
	"tx_packets", "tx_bytes", "tx_drop_no_buf", "tx_drop_tx_q_full",
	"tx_drop_too_big", "tx_drop_bad_index", "tx_fifo_corrupt",
	"tx_drop_sock", "tx_drop_bad_vnet_hdr", "tx_drop_gso", "tx_gso_frames",
	"tx_csum_done",
	"req_sent", "req_timeout", "req_dropped", "resp_stale",
};

#define KNI_N_STATS	ARRAY_SIZE(kni_stat_names)

static void kni_get_drvinfo(struct net_device *dev, struct ethtool_drvinfo *info)
{
	struct kni_dev *kd = netdev_priv(dev);

	strscpy(info->driver, kd->drv_name[0] ? kd->drv_name : KBUILD_MODNAME,
		sizeof(info->driver));
	strscpy(info->version, kd->drv_version, sizeof(info->version));
	strscpy(info->bus_info, kd->bus_info, sizeof(info->bus_info));
	strscpy(info->fw_version, kd->fw_version, sizeof(info->fw_version));
}

static int kni_get_sset_count(struct net_device *dev, int sset)
{
	return sset == ETH_SS_STATS ? KNI_N_STATS : -EOPNOTSUPP;
}

static void kni_get_strings(struct net_device *dev, u32 sset, u8 *data)
{
	if (sset == ETH_SS_STATS)
		memcpy(data, kni_stat_names, sizeof(kni_stat_names));
}

static void kni_get_ethtool_stats(struct net_device *dev,
				  struct ethtool_stats *stats, u64 *data)
{
	struct kni_dev *kd = netdev_priv(dev);
	struct kni_req_stats req;
	struct kni_rx_stats rx;
	struct kni_tx_stats tx;
	u64 *p = data;

	kni_read_rx(kd, &rx);
	kni_read_tx(kd, &tx);
	spin_lock_bh(&kd->req_lock);
	req = kd->req;
	spin_unlock_bh(&kd->req_lock);

	*p++ = rx.packets;
	*p++ = rx.bytes;
	*p++ = rx.drop_bad_index;
	*p++ = rx.drop_bad_len;
	*p++ = rx.drop_nomem;
	*p++ = rx.drop_down;
	*p++ = rx.fifo_corrupt;
	*p++ = rx.sock_full;
	*p++ = rx.drop_backlog;
	*p++ = atomic64_read(&kd->sock_rx_drop_short);
	*p++ = tx.packets;
	*p++ = tx.bytes;
	*p++ = tx.drop_no_buf;
	*p++ = tx.drop_tx_q_full;
	*p++ = tx.drop_too_big;
	*p++ = tx.drop_bad_index;
	*p++ = tx.fifo_corrupt;
	*p++ = tx.drop_sock;
	*p++ = tx.drop_bad_vnet_hdr;
	*p++ = tx.drop_gso;
	*p++ = tx.gso_frames;
	*p++ = tx.csum_done;
	*p++ = req.sent;
	*p++ = req.timeout;
	*p++ = req.dropped;
	*p++ = req.stale;
	WARN_ON_ONCE(p - data != KNI_N_STATS);
}

static const struct ethtool_ops kni_ethtool_ops = {
	.get_drvinfo		= kni_get_drvinfo,
	.get_link		= ethtool_op_get_link,
	.get_sset_count		= kni_get_sset_count,
	.get_strings		= kni_get_strings,
	.get_ethtool_stats	= kni_get_ethtool_stats,
};

/* Creation and destruction ----------------------------------------------- */

static void kni_net_setup(struct net_device *dev)
{
	ether_setup(dev);
	dev->netdev_ops = &kni_netdev_ops;
	dev->ethtool_ops = &kni_ethtool_ops;
	dev->priv_flags |= IFF_LIVE_ADDR_CHANGE;
	/* Slot 0 is the driver's: the attributes exist as soon as the device does. */
	dev->sysfs_groups[0] = &kni_sysfs_group;
}

static bool kni_str_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size);
}

static int kni_check_create(struct kni_create *req)
{
	static const u8 zero_mac[ETH_ALEN];
	u32 frame_max, max_mtu;

	if (req->flags & ~(KNI_CREATE_F_BIND | KNI_CREATE_F_DOORBELL))
		return -EINVAL;
	if (!kni_str_ok(req->name, sizeof(req->name)) ||
	    !dev_valid_name(req->name) || strchr(req->name, '%'))
		return -EINVAL;
	if (!kni_str_ok(req->drv_name, KNI_STRSIZE) ||
	    !kni_str_ok(req->drv_version, KNI_STRSIZE) ||
	    !kni_str_ok(req->bus_info, KNI_STRSIZE) ||
	    !kni_str_ok(req->fw_version, KNI_STRSIZE))
		return -EINVAL;
	if (memcmp(req->mac, zero_mac, ETH_ALEN) && !is_valid_ether_addr(req->mac))
		return -EINVAL;

	if (req->fifo_entries < KNI_FIFO_MIN_ENTRIES ||
	    req->fifo_entries > KNI_FIFO_MAX_ENTRIES ||
	    !is_power_of_2(req->fifo_entries))
		return -EINVAL;
	if (req->buf_size < KNI_BUF_MIN_SIZE || req->buf_size > KNI_BUF_MAX_SIZE ||
	    !IS_ALIGNED(req->buf_size, 64))
		return -EINVAL;
	if (!req->buf_count || req->buf_count > KNI_BUF_MAX_COUNT)
		return -EINVAL;

	/* Largest MTU whose frame (with one VLAN tag) fits in a buffer. */
	frame_max = req->buf_size - KNI_BUF_HDR_SIZE;
	max_mtu = min_t(u32, frame_max - VLAN_ETH_HLEN, ETH_MAX_MTU);
	if (!req->max_mtu)
		req->max_mtu = max_mtu;
	if (!req->min_mtu)
		req->min_mtu = ETH_MIN_MTU;
	if (!req->mtu)
		req->mtu = min_t(u32, ETH_DATA_LEN, req->max_mtu);
	if (req->max_mtu > max_mtu || req->min_mtu < ETH_MIN_MTU ||
	    req->mtu < req->min_mtu || req->mtu > req->max_mtu)
		return -EINVAL;

	if (req->flags & KNI_CREATE_F_BIND) {
		if (req->cpu >= nr_cpu_ids || !cpu_online(req->cpu))
			return -EINVAL;
	}
	return 0;
}

/* Fill the layout fields of req; returns the region size or 0 if too big. */
static size_t kni_layout(struct kni_create *req)
{
	size_t off = 0, data_fifo = kni_fifo_bytes(req->fifo_entries);
	size_t req_fifo = kni_fifo_bytes(KNI_REQ_ENTRIES);

	req->rx_q_off = off;
	off += data_fifo;
	req->tx_q_off = off;
	off += data_fifo;
	req->alloc_q_off = off;
	off += data_fifo;
	req->free_q_off = off;
	off += data_fifo;
	req->req_q_off = off;
	off += req_fifo;
	req->resp_q_off = off;
	off += req_fifo;
	req->req_slots_off = off;
	off += KNI_REQ_ENTRIES * sizeof(struct kni_request);
	req->doorbell_off = off;
	off += sizeof(struct kni_doorbell);
	off = PAGE_ALIGN(off);
	req->bufs_off = off;
	/* Both factors are bounded by KNI_BUF_MAX_*: no overflow in size_t. */
	off += (size_t)req->buf_count * req->buf_size;
	off = PAGE_ALIGN(off);
	return off > KNI_REGION_MAX_SIZE ? 0 : off;
}

/* No more requests: a waiting one ends with -ENODEV, later ones fail at once. */
static void kni_req_kill(struct kni_dev *kd)
{
	spin_lock_bh(&kd->req_lock);
	WRITE_ONCE(kd->dead, true);
	spin_unlock_bh(&kd->req_lock);
	wake_up_interruptible(&kd->req_wq);
}

static void kni_ring_init(struct kni_ring *r, struct kni_mem *mem, u32 off,
			  u32 entries)
{
	r->shm = mem->base + off;
	r->shm->entries = entries;
	r->mask = entries - 1;
	r->pos = 0;
}

/*
 * Create, register and start polling an interface. req has been copied from
 * userspace; its checked values are written back into it along with the
 * layout. Returns the interface or an ERR_PTR.
 */
struct kni_dev *kni_dev_create(struct kni_ctx *ctx, struct kni_create *req)
{
	struct net_device *dev;
	struct kni_mem *mem;
	struct kni_dev *kd;
	size_t size;
	int err, id;

	err = kni_check_create(req);
	if (err)
		return ERR_PTR(err);
	size = kni_layout(req);
	if (!size)
		return ERR_PTR(-EINVAL);

	mem = kni_mem_alloc(size);
	if (!mem)
		return ERR_PTR(-ENOMEM);

	id = ida_alloc_range(&kni_ida, 1, KNI_MAX_IFACES, GFP_KERNEL);
	if (id < 0) {
		err = id;
		goto put_mem;
	}

	dev = alloc_netdev(sizeof(*kd), req->name, NET_NAME_USER, kni_net_setup);
	if (!dev) {
		err = -ENOMEM;
		goto free_id;
	}
	dev_net_set(dev, ctx->net);

	kd = netdev_priv(dev);
	kd->netdev = dev;
	kd->owner = ctx;
	kd->id = id;
	kd->mem = mem;
	kd->buf_count = req->buf_count;
	kd->buf_size = req->buf_size;
	kd->cpu = req->cpu;
	kd->bind = req->flags & KNI_CREATE_F_BIND;
	kd->bufs = mem->base + req->bufs_off;
	kd->req_slots = mem->base + req->req_slots_off;
	kd->doorbell = mem->base + req->doorbell_off;
	kd->doorbells = req->flags & KNI_CREATE_F_DOORBELL;
	strscpy(kd->drv_name, req->drv_name, sizeof(kd->drv_name));
	strscpy(kd->drv_version, req->drv_version, sizeof(kd->drv_version));
	strscpy(kd->bus_info, req->bus_info, sizeof(kd->bus_info));
	strscpy(kd->fw_version, req->fw_version, sizeof(kd->fw_version));
	INIT_LIST_HEAD(&kd->ctx_node);
	INIT_LIST_HEAD(&kd->thread_node);
	kni_ring_init(&kd->rx_q, mem, req->rx_q_off, req->fifo_entries);
	kni_ring_init(&kd->tx_q, mem, req->tx_q_off, req->fifo_entries);
	kni_ring_init(&kd->alloc_q, mem, req->alloc_q_off, req->fifo_entries);
	kni_ring_init(&kd->free_q, mem, req->free_q_off, req->fifo_entries);
	kni_ring_init(&kd->req_q, mem, req->req_q_off, KNI_REQ_ENTRIES);
	kni_ring_init(&kd->resp_q, mem, req->resp_q_off, KNI_REQ_ENTRIES);
	kd->sock_fd = -1;
	kd->vnet_hdr = kni_vnet_hdr_default;
	u64_stats_init(&kd->rx.syncp);
	u64_stats_init(&kd->tx.syncp);
	mutex_init(&kd->req_mutex);
	spin_lock_init(&kd->req_lock);
	init_waitqueue_head(&kd->req_wq);

	if (is_zero_ether_addr(req->mac))
		eth_hw_addr_random(dev);
	else
		eth_hw_addr_set(dev, req->mac);
	ether_addr_copy(req->mac, dev->dev_addr);
	dev->min_mtu = req->min_mtu;
	dev->max_mtu = req->max_mtu;
	dev->mtu = req->mtu;
	/* Carrier stays off until the data plane writes the carrier attribute. */
	netif_carrier_off(dev);

	err = register_netdev(dev);
	if (err)
		goto free_netdev;

	err = kni_thread_attach(kd);
	if (err)
		goto unregister;

	atomic_inc(&kni_live_ifaces);
	req->id = id;
	req->ifindex = dev->ifindex;
	req->mmap_size = size;
	req->mmap_offset = (u64)id << KNI_MMAP_SHIFT;
	kd->layout = *req;
	return kd;

unregister:
	kni_sock_kill(kd);
	kni_req_kill(kd);
	unregister_netdev(dev);
free_netdev:
	free_netdev(dev);
free_id:
	ida_free(&kni_ida, id);
put_mem:
	kni_mem_put(mem);
	return ERR_PTR(err);
}

/*
 * Tear an interface down: stop its polling, detach its socket for good, end
 * any waiting request, unregister it, and drop its reference on the region (mappings keep theirs).
 */
void kni_dev_destroy(struct kni_dev *kd)
{
	struct net_device *dev = kd->netdev;
	struct kni_mem *mem = kd->mem;
	u32 id = kd->id;

	kni_ctl_unlink(kd);
	kni_thread_detach(kd);
	kni_sock_kill(kd);
	kni_req_kill(kd);
	unregister_netdev(dev);
	/* Nothing produces on tx_q or req_q any more: no kni_user_wake() left. */
	kni_dev_set_notify(kd, -1);
	free_netdev(dev);
	ida_free(&kni_ida, id);
	kni_mem_put(mem);
	atomic_dec(&kni_live_ifaces);
}

void kni_net_exit(void)
{
	ida_destroy(&kni_ida);
}
