// SPDX-License-Identifier: GPL-2.0
/*
 * KNI net devices: creation from a validated struct kni_create, the netdev
 * callbacks (transmit into tx_q among them), stats and ethtool. The FIFO side
 * of the data path is in kni_fifo.c, control requests in kni_req.c.
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
#include <linux/overflow.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/virtio_net.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "kni_compat.h"
#include "kni_internal.h"

#define KNI_MAX_IFACES		4096

atomic_t kni_live_ifaces = ATOMIC_INIT(0);
static DEFINE_IDA(kni_ida);

static size_t kni_fifo_bytes(u32 entries)
{
	return ALIGN(sizeof(struct kni_fifo) + entries * sizeof(u32), 64);
}

/*
 * Buffers the largest frame the stack may hand over now takes: what a
 * stopped queue waits for. A super-frame is at most gso_max_size, which
 * create capped so that one always fits alloc_q (kni_net_offloads()).
 */
static u32 kni_tx_max_bufs(struct kni_dev *kd)
{
	struct net_device *dev = kd->netdev;
	u32 len = dev->mtu + VLAN_ETH_HLEN;

	if (dev->features & NETIF_F_GSO_MASK)
		len = max_t(u32, len, READ_ONCE(dev->gso_max_size) + VLAN_ETH_HLEN);
	return kni_tx_bufs(kd, min_t(u32, len, KNI_FRAME_MAX));
}

/*
 * tx_q's owner: no room for a frame of need buffers, so stop the queue
 * until the polling thread sees the room (kni_net_tx_space()). Look once
 * more after saying so: the thread may have passed in between. Returns
 * whether there is room after all (the queue is running again then).
 */
static bool kni_tx_stop(struct kni_dev *kd, u32 need)
{
	struct net_device *dev = kd->netdev;

	WRITE_ONCE(kd->tx_stop_need, need);
	/* need before the stopped bit; the thread reads them in the other order. */
	smp_mb__before_atomic();
	netif_stop_queue(dev);
	kni_tx_count(kd, &kd->tx.queue_stops, 1);
	/* The data plane kicks the polling thread once it has made room. */
	if (kd->doorbells)
		WRITE_ONCE(kd->doorbell->kernel_tx_wait, 1);
	/* Pairs with kni_net_tx_space()'s smp_mb() and the data plane's fence. */
	smp_mb();
	if (!kni_tx_fits(kd, need))
		return false;
	netif_start_queue(dev);
	return true;
}

/*
 * Publish what this burst queued once it ends (netdev_xmit_more() says
 * another frame follows at once) or the queue stopped: one store and one
 * doorbell per burst instead of per frame.
 */
static void kni_tx_flush(struct kni_dev *kd)
{
	if (!kd->tx_pending || (netdev_xmit_more() && !netif_queue_stopped(kd->netdev)))
		return;
	kd->tx_pending = false;
	kni_tx_publish(kd);
}

static netdev_tx_t kni_start_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct virtio_net_hdr vh = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };
	struct kni_dev *kd = netdev_priv(dev);
	u32 len = skb->len, need;

	/* The socket owns tx_q: see "KNI socket" in docs/abi.md. */
	if (kd->sock_tx) {
		/* Not tx_q's owner now: kd->tx is the socket's to write. */
		atomic64_inc(&kd->tx_drop_sock);
		goto drop;
	}
	need = kni_tx_bufs(kd, len);
	/* The stack never makes a frame larger than gso_max_size allows; a forwarder might. */
	if (len > KNI_FRAME_MAX || need > kd->alloc_q.mask + 1) {
		kni_tx_count(kd, &kd->tx.drop_too_big, 1);
		goto drop;
	}
	/*
	 * With offloads the frame goes as the stack left it: a partial
	 * checksum, a TCP super-frame, for the handler's port to finish.
	 * Features the netdev does not offer never reach here, so a header
	 * the ABI cannot carry is a counted drop, not a case.
	 */
	if (kd->offloads &&
	    (virtio_net_hdr_from_skb(skb, &vh, true, false, 0) || !kni_offload_ok(&vh, len))) {
		kni_tx_count(kd, &kd->tx.drop_bad_offload, 1);
		goto drop;
	}
	/* Back-pressure: the queue stops rather than drop, and this frame waits in the qdisc. */
	if (!kni_tx_fits(kd, need) && !kni_tx_stop(kd, need)) {
		kni_tx_flush(kd);
		return NETDEV_TX_BUSY;
	}
	if (kni_tx_frame(kd, &vh, NULL, skb, len)) {
		kni_tx_count(kd, &kd->tx.drop_bad_offload, 1);
		goto drop;
	}
	kd->tx_pending = true;
	skb_tx_timestamp(skb);
	consume_skb(skb);
	/* Stop before the next frame could find no room, as a NIC driver stops at a full ring. */
	need = kni_tx_max_bufs(kd);
	if (!kni_tx_fits(kd, need))
		kni_tx_stop(kd, need);
	kni_tx_flush(kd);
	return NETDEV_TX_OK;

drop:
	kfree_skb(skb);
	kni_tx_flush(kd);
	return NETDEV_TX_OK;
}

/*
 * The polling thread, in its pass over kd: the queue stopped for want of
 * room that the data plane has made since? Then run it again. A guess from
 * the region's counters (kni_tx_fits_hint()): the transmit path looks again.
 * While the socket owns tx_q the queue runs regardless: the stack's frames
 * are dropped (tx_drop_sock), not kept waiting for room that is not theirs.
 */
void kni_net_tx_space(struct kni_dev *kd)
{
	struct net_device *dev = kd->netdev;

	if (!netif_running(dev) || !netif_queue_stopped(dev))
		return;
	/* Pairs with kni_tx_stop()'s smp_mb(). */
	smp_mb();
	if (!READ_ONCE(kd->sock_tx) && !kni_tx_fits_hint(kd, READ_ONCE(kd->tx_stop_need)))
		return;
	if (kd->doorbells)
		WRITE_ONCE(kd->doorbell->kernel_tx_wait, 0);
	/* The qdisc runs at once, in the softirq that bh_enable runs here. */
	local_bh_disable();
	netif_wake_queue(dev);
	local_bh_enable();
}

/* Whether the queue waits for room (without doorbells the polling thread keeps passing). */
bool kni_net_tx_waiting(struct kni_dev *kd)
{
	return netif_running(kd->netdev) && netif_queue_stopped(kd->netdev);
}

/*
 * Frames reach the stack from the pass over rx_q, which owns the NAPI
 * context while it runs (kni_fifo.c). Scheduled any other way (a socket's
 * busy polling, a prep that found it owned), it has nothing of its own to do.
 */
int kni_napi_poll(struct napi_struct *napi, int budget)
{
	napi_complete_done(napi, 0);
	return 0;
}

/* ndo callbacks ---------------------------------------------------------- */

/*
 * Link, MTU and address changes are applied at once and told to the
 * handler afterwards (kni_req.c): these run under RTNL, and nothing may wait
 * for userspace there. What the handler cannot accept, it says in advance
 * (min_mtu, max_mtu at create); the core checks the MTU against them.
 */
static int kni_open(struct net_device *dev)
{
	struct kni_dev *kd = netdev_priv(dev);

	napi_enable(&kd->napi);
	netif_start_queue(dev);
	kni_req_notify(kd, KNI_REQ_LINK, 1, NULL);
	return 0;
}

static int kni_stop(struct net_device *dev)
{
	struct kni_dev *kd = netdev_priv(dev);

	netif_stop_queue(dev);
	/* Waits for a pass over rx_q that owns the NAPI context; passes never wait for RTNL. */
	napi_disable(&kd->napi);
	kni_req_notify(kd, KNI_REQ_LINK, 0, NULL);
	return 0;
}

static int kni_change_mtu(struct net_device *dev, int new_mtu)
{
	struct kni_dev *kd = netdev_priv(dev);

	WRITE_ONCE(dev->mtu, new_mtu);
	kni_req_notify(kd, KNI_REQ_MTU, new_mtu, NULL);
	return 0;
}

static int kni_set_mac_address(struct net_device *dev, void *p)
{
	struct kni_dev *kd = netdev_priv(dev);
	const struct sockaddr *sa = p;
	u8 mac[ETH_ALEN];

	ether_addr_copy(mac, (const u8 *)sa->sa_data);
	if (!is_valid_ether_addr(mac))
		return -EADDRNOTAVAIL;
	eth_hw_addr_set(dev, mac);
	kni_req_notify(kd, KNI_REQ_MAC, 0, mac);
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
		kni_req_notify(kd, KNI_REQ_PROMISC, !!(dev->flags & IFF_PROMISC), NULL);
	if (change & IFF_ALLMULTI)
		kni_req_notify(kd, KNI_REQ_ALLMULTI, !!(dev->flags & IFF_ALLMULTI), NULL);
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
		out->drop_bad_offload = kd->rx.drop_bad_offload;
		out->gso_frames = kd->rx.gso_frames;
		out->gso_cut = kd->rx.gso_cut;
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
		out->drop_bad_vnet_hdr = kd->tx.drop_bad_vnet_hdr;
		out->gso_frames = kd->tx.gso_frames;
		out->csum_partial = kd->tx.csum_partial;
		out->sock_full = kd->tx.sock_full;
		out->queue_stops = kd->tx.queue_stops;
		out->drop_bad_offload = kd->tx.drop_bad_offload;
	} while (u64_stats_fetch_retry(&kd->tx.syncp, start));
}

static void kni_get_stats64(struct net_device *dev, struct rtnl_link_stats64 *s)
{
	struct kni_dev *kd = netdev_priv(dev);
	struct kni_rx_stats rx;
	struct kni_tx_stats tx;

	kni_read_rx(kd, &rx);
	kni_read_tx(kd, &tx);
	tx.drop_sock = atomic64_read(&kd->tx_drop_sock);
	s->rx_packets = rx.packets;
	s->rx_bytes = rx.bytes;
	s->rx_dropped = rx.drop_bad_index + rx.drop_bad_len + rx.drop_nomem +
			rx.drop_down + rx.drop_bad_offload;
	s->rx_errors = rx.drop_bad_index + rx.drop_bad_len + rx.drop_bad_offload;
	s->tx_packets = tx.packets;
	s->tx_bytes = tx.bytes;
	s->tx_dropped = tx.drop_no_buf + tx.drop_tx_q_full + tx.drop_too_big +
			tx.drop_bad_index + tx.drop_sock + tx.drop_bad_vnet_hdr +
			tx.drop_bad_offload;
	s->tx_errors = tx.drop_bad_index + tx.drop_bad_vnet_hdr + tx.drop_bad_offload;
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
	"rx_drop_backlog", "rx_drop_sock_short", "rx_drop_bad_offload",
	"rx_gso_frames", "rx_gso_cut",
	"tx_packets", "tx_bytes", "tx_drop_no_buf", "tx_drop_tx_q_full",
	"tx_drop_too_big", "tx_drop_bad_index", "tx_fifo_corrupt",
	"tx_drop_sock", "tx_drop_bad_vnet_hdr", "tx_gso_frames",
	"tx_csum_partial", "tx_sock_full", "tx_queue_stops", "tx_drop_bad_offload",
	"req_sent", "req_dropped",
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
	tx.drop_sock = atomic64_read(&kd->tx_drop_sock);
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
	*p++ = rx.drop_bad_offload;
	*p++ = rx.gso_frames;
	*p++ = rx.gso_cut;
	*p++ = tx.packets;
	*p++ = tx.bytes;
	*p++ = tx.drop_no_buf;
	*p++ = tx.drop_tx_q_full;
	*p++ = tx.drop_too_big;
	*p++ = tx.drop_bad_index;
	*p++ = tx.fifo_corrupt;
	*p++ = tx.drop_sock;
	*p++ = tx.drop_bad_vnet_hdr;
	*p++ = tx.gso_frames;
	*p++ = tx.csum_partial;
	*p++ = tx.sock_full;
	*p++ = tx.queue_stops;
	*p++ = tx.drop_bad_offload;
	*p++ = req.sent;
	*p++ = req.dropped;
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

/*
 * KNI_CREATE_F_OFFLOADS: the stack may leave checksums and TCP segmentation
 * to the handler (ethtool -K turns each off again). A super-frame is capped
 * so that it takes at most half of alloc_q (a stopped queue always has room
 * to wait for) and half of KNI_GSO_MAX_SEGS segments: the ABI's bound,
 * ceil(length / gso_size), counts the headers too, which at a tiny MSS are
 * worth several segments.
 */
static void kni_net_offloads(struct kni_dev *kd, u32 fifo_entries)
{
	struct net_device *dev = kd->netdev;
	netdev_features_t f = NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_TSO |
			      NETIF_F_TSO6 | NETIF_F_TSO_ECN | NETIF_F_HIGHDMA;
	u32 bufs = min(fifo_entries, kd->buf_count) / 2;
	u32 max = min_t(u64, (u64)bufs * (kd->buf_size - KNI_BUF_HDR_SIZE),
			KNI_FRAME_MAX) - VLAN_ETH_HLEN;

	dev->hw_features = f | NETIF_F_RXCSUM;
	dev->features = dev->hw_features;
	dev->vlan_features = f;
	netif_set_tso_max_size(dev, min_t(u32, max, GSO_LEGACY_MAX_SIZE));
	netif_set_tso_max_segs(dev, KNI_GSO_MAX_SEGS / 2);
}

static bool kni_str_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size);
}

static int kni_check_create(struct kni_create *req)
{
	static const u8 zero_mac[ETH_ALEN];
	u32 frame_max, max_mtu;

	if (req->flags & ~(KNI_CREATE_F_BIND | KNI_CREATE_F_DOORBELL | KNI_CREATE_F_OFFLOADS))
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
	size_t req_fifo = kni_fifo_bytes(KNI_REQ_ENTRIES), pool;

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
	/* 65536 buffers of 64 KiB are 4 GiB: too much for a 32-bit size_t. */
	if (check_mul_overflow((size_t)req->buf_count, (size_t)req->buf_size, &pool) ||
	    check_add_overflow(off, pool, &off) || off > KNI_REGION_MAX_SIZE)
		return 0;
	return PAGE_ALIGN(off);
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
	kd->owner_uid = current_euid();
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
	kd->offloads = req->flags & KNI_CREATE_F_OFFLOADS;
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
	/* resp_q keeps its place in the layout, unused since ABI 5: never read. */
	((struct kni_fifo *)(mem->base + req->resp_q_off))->entries = KNI_REQ_ENTRIES;
	kd->sock_fd = -1;
	kd->vnet_hdr = kni_vnet_hdr_default;
	u64_stats_init(&kd->rx.syncp);
	u64_stats_init(&kd->tx.syncp);
	mutex_init(&kd->poll_lock);
	spin_lock_init(&kd->req_lock);

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
	if (kd->offloads)
		kni_net_offloads(kd, req->fifo_entries);
	netif_napi_add(dev, &kd->napi, kni_napi_poll);

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
