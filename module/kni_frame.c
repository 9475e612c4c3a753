// SPDX-License-Identifier: GPL-2.0
/*
 * Frames in buffers (ABI 5, docs/abi.md "Frames and chains"): a frame is one
 * buffer or a chain of them, and its head carries what a virtio-net header
 * means (GSO type and size, partial checksum). Offloads cross the FIFOs
 * instead of being done here: whoever ends up with the frame (the port's
 * stack, the netdev's, a guest that accepted them) finishes the work.
 *
 * Egress: kni_tx_frame() copies a frame once, from a socket writer's iov or
 * from an skb, into as many alloc_q buffers as it needs and queues its head
 * on tx_q. Ingress: kni_rx_frame() reads a chain from rx_q into one skb, once,
 * and says what its head asks for as a virtio-net header.
 *
 * Trust: the buffers are writable by userspace at any time. Ingress reads
 * every field once per walk and checks it before use; the copy walks the
 * chain a second time and drops the frame if it no longer matches the first.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/etherdevice.h>
#include <linux/if_tun.h>
#include <linux/if_vlan.h>
#include <linux/skbuff.h>
#include <linux/virtio_net.h>

#include "kni_compat.h"
#include "kni_internal.h"

/* Frames up to this many bytes are copied into a linear skb. */
#define KNI_RX_LINEAR_MAX	SKB_MAX_HEAD(NET_SKB_PAD + NET_IP_ALIGN)
/* A larger frame's linear part: room for its headers, the rest in pages. */
#define KNI_RX_LINEAR_MIN	256

static struct kni_buf *kni_buf_hdr(const struct kni_dev *kd, u32 index)
{
	return (struct kni_buf *)kni_buf(kd, index);
}

/*
 * The offload fields of a header (a guest's, or a buffer head's) that the
 * next holder can honour, for a frame of len bytes: GSO only for TCP with a
 * partial checksum, at most KNI_GSO_MAX_SEGS segments, a partial checksum
 * inside the frame. Bounded here, before anyone allocates for the frame.
 */
bool kni_offload_ok(const struct virtio_net_hdr *vh, u32 len)
{
	u16 start = __virtio16_to_cpu(true, vh->csum_start);
	u16 off = __virtio16_to_cpu(true, vh->csum_offset);
	u16 gso = __virtio16_to_cpu(true, vh->gso_size);

	if ((vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    (u32)start + off + sizeof(__sum16) > len)
		return false;
	switch (vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return !(vh->gso_type & VIRTIO_NET_HDR_GSO_ECN);
	case VIRTIO_NET_HDR_GSO_TCPV4:
	case VIRTIO_NET_HDR_GSO_TCPV6:
		/* Without NEEDS_CSUM the kernel's GSO code would warn. */
		return (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && gso &&
		       DIV_ROUND_UP(len, gso) <= KNI_GSO_MAX_SEGS;
	default:
		return false;
	}
}

/*
 * The frame's own headers agree with its GSO type: an IPv4 or IPv6
 * ethertype (behind at most one VLAN tag) for TCPV4 or TCPV6, and a partial
 * checksum that starts past the Ethernet header. The rest is checked by
 * whoever segments it (the port's GSO code, or the data plane's).
 */
static bool kni_frame_proto_ok(const u8 *frame, u32 len, const struct virtio_net_hdr *vh)
{
	__be16 proto = *(const __be16 *)(frame + 2 * ETH_ALEN);
	u32 l2 = ETH_HLEN;

	if ((vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    __virtio16_to_cpu(true, vh->csum_start) < ETH_HLEN)
		return false;
	if (vh->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return true;
	if (proto == htons(ETH_P_8021Q)) {
		if (len < VLAN_ETH_HLEN)
			return false;
		proto = *(const __be16 *)(frame + ETH_HLEN + 2);
		l2 = VLAN_ETH_HLEN;
	}
	if (__virtio16_to_cpu(true, vh->csum_start) < l2)
		return false;
	switch (vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return proto == htons(ETH_P_IP);
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return proto == htons(ETH_P_IPV6);
	default:
		return false;
	}
}

/* Buffers a frame of len bytes takes. */
u32 kni_tx_bufs(const struct kni_dev *kd, u32 len)
{
	return max_t(u32, DIV_ROUND_UP(len, kd->buf_size - KNI_BUF_HDR_SIZE), 1);
}

/*
 * After kni_tx_fits() for kni_tx_bufs(len) buffers: copy
 * the frame from the iov (from) or the skb into buffers taken from alloc_q,
 * chain them, describe its offloads (vh) in the head, and put the head on
 * tx_q; the caller publishes. 0; -EFAULT from a bad user pointer or
 * -EPROTO for a frame whose headers contradict vh (kni_frame_proto_ok()),
 * and then nothing was consumed. A bad index on alloc_q drops the frame
 * (counted) and consumes the entries taken for it up to the bad one: the
 * pool's owner put them there with it.
 */
int kni_tx_frame(struct kni_dev *kd, const struct virtio_net_hdr *vh,
		 struct iov_iter *from, const struct sk_buff *skb, u32 len)
{
	u32 cap = kd->buf_size - KNI_BUF_HDR_SIZE, n = kni_tx_bufs(kd, len);
	struct kni_buf *head = NULL, *prev = NULL;
	u32 head_index = 0, done = 0, i, flags = 0;

	for (i = 0; i < n; i++) {
		u32 index = kni_ring_peek(&kd->alloc_q, i);
		u32 chunk = min(cap, len - done);
		struct kni_buf *b;

		if (index >= kd->buf_count) {
			kni_ring_consume(&kd->alloc_q, i + 1);
			kni_tx_count(kd, &kd->tx.drop_bad_index, 1);
			return 0;
		}
		b = kni_buf_hdr(kd, index);
		/* The buffers stay on alloc_q until consumed below: a fault loses nothing. */
		if (from) {
			if (!copy_from_iter_full((u8 *)b + KNI_BUF_HDR_SIZE, chunk, from))
				return -EFAULT;
		} else {
			skb_copy_bits(skb, done, (u8 *)b + KNI_BUF_HDR_SIZE, chunk);
		}
		memset(b, 0, sizeof(*b));
		b->data_off = KNI_BUF_HDR_SIZE;
		b->data_len = chunk;
		if (prev) {
			prev->next = index + 1;
		} else {
			head = b;
			head_index = index;
		}
		prev = b;
		done += chunk;
	}

	/* The head holds at least the Ethernet header and the VLAN tag: cap >= 192. */
	if (!kni_frame_proto_ok((u8 *)head + KNI_BUF_HDR_SIZE, min(len, cap), vh))
		return -EPROTO;
	if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		flags |= KNI_BUF_F_NEEDS_CSUM;
	head->flags = flags;
	head->frame_len = len;
	head->gso_type = vh->gso_type;
	head->gso_size = __virtio16_to_cpu(true, vh->gso_size);
	head->csum_start = __virtio16_to_cpu(true, vh->csum_start);
	head->csum_offset = __virtio16_to_cpu(true, vh->csum_offset);
	head->hdr_len = __virtio16_to_cpu(true, vh->hdr_len);

	kni_ring_consume(&kd->alloc_q, n);
	kni_ring_put(&kd->tx_q, head_index);
	u64_stats_update_begin(&kd->tx.syncp);
	kd->tx.packets++;
	kd->tx.bytes += len;
	kd->tx.gso_frames += vh->gso_type != VIRTIO_NET_HDR_GSO_NONE;
	kd->tx.csum_partial += !!(flags & KNI_BUF_F_NEEDS_CSUM);
	u64_stats_update_end(&kd->tx.syncp);
	return 0;
}

/* One buffer of an rx_q chain: its bytes and what follows it, read once. */
struct kni_rx_piece {
	const struct kni_buf *b;
	u32 off, len, next;
};

/*
 * Read the buffer index of a chain, the count-th: false if its bytes lie
 * outside it. *index becomes the next buffer's when there is one (then
 * *result says if the link itself is bad; KNI_RX_OK otherwise).
 */
static bool kni_rx_piece(const struct kni_dev *kd, u32 *index, u32 count,
			 struct kni_rx_piece *p, enum kni_rx_result *result)
{
	p->b = kni_buf_hdr(kd, *index);
	p->off = READ_ONCE(p->b->data_off);
	p->len = READ_ONCE(p->b->data_len);
	p->next = READ_ONCE(p->b->next);
	*result = KNI_RX_BAD_LEN;
	if (p->off < KNI_BUF_HDR_SIZE || p->off > kd->buf_size ||
	    p->len > kd->buf_size - p->off)
		return false;
	*result = KNI_RX_OK;
	if (p->next) {
		if (count + 1 >= KNI_BUF_MAX_CHAIN)
			*result = KNI_RX_BAD_LEN;
		else if (p->next - 1 >= kd->buf_count)
			*result = KNI_RX_BAD_INDEX;
		else
			*index = p->next - 1;
	}
	return true;
}

/*
 * One walk over the chain headed by index: its length, every field read
 * once and checked. The head's fields land in *head. KNI_RX_OK or why not.
 */
static enum kni_rx_result kni_rx_walk(const struct kni_dev *kd, u32 index,
				      struct kni_buf *head, u32 *len)
{
	enum kni_rx_result result;
	struct kni_rx_piece p;
	u32 total = 0, count;

	for (count = 0;; count++) {
		if (!kni_rx_piece(kd, &index, count, &p, &result))
			return result;
		if (!count) {
			if (p.len < ETH_HLEN)
				return KNI_RX_BAD_LEN;
			head->flags = READ_ONCE(p.b->flags);
			head->gso_type = READ_ONCE(p.b->gso_type);
			head->gso_size = READ_ONCE(p.b->gso_size);
			head->csum_start = READ_ONCE(p.b->csum_start);
			head->csum_offset = READ_ONCE(p.b->csum_offset);
			head->hdr_len = READ_ONCE(p.b->hdr_len);
		}
		total += p.len;	/* at most KNI_FRAME_MAX + 65536: no overflow */
		if (total > KNI_FRAME_MAX)
			return KNI_RX_BAD_LEN;
		if (result != KNI_RX_OK)
			return result;
		if (!p.next)
			break;
	}
	*len = total;
	return KNI_RX_OK;
}

/* The second walk: copy len bytes of the chain into skb, or false if it changed. */
static bool kni_rx_copy(const struct kni_dev *kd, u32 index, struct sk_buff *skb, u32 len)
{
	enum kni_rx_result result;
	struct kni_rx_piece p;
	u32 done = 0, count;

	for (count = 0;; count++) {
		if (!kni_rx_piece(kd, &index, count, &p, &result) || result != KNI_RX_OK ||
		    p.len > len - done ||
		    skb_store_bits(skb, done, (const u8 *)p.b + p.off, p.len))
			return false;
		done += p.len;
		if (!p.next)
			return done == len;
	}
}

/* An skb of len bytes (linear up to a page's worth, else paged) on dev, or none. */
static struct sk_buff *kni_rx_alloc(struct net_device *dev, u32 len)
{
	struct sk_buff *skb;
	u32 linear;
	int err;

	if (len <= KNI_RX_LINEAR_MAX) {
		skb = dev ? netdev_alloc_skb_ip_align(dev, len) : alloc_skb(len, GFP_ATOMIC);
		if (skb)
			skb_put(skb, len);
		return skb;
	}
	linear = KNI_RX_LINEAR_MIN;
	skb = alloc_skb_with_frags(linear + NET_IP_ALIGN, len - linear,
				   PAGE_ALLOC_COSTLY_ORDER, &err, GFP_ATOMIC);
	if (!skb)
		return NULL;
	skb_reserve(skb, NET_IP_ALIGN);
	skb_put(skb, linear);
	skb->data_len = len - linear;
	skb->len = len;
	skb->dev = dev;
	return skb;
}

/*
 * Ingress: the frame headed by index (already checked < buf_count) as an skb
 * with skb->data at its Ethernet header, and what its head asks for as a
 * virtio-net header (little-endian, as the socket writes it). NULL and
 * *result why not.
 */
struct sk_buff *kni_rx_frame(struct kni_dev *kd, struct net_device *dev, u32 index,
			     struct virtio_net_hdr *vh, enum kni_rx_result *result)
{
	struct kni_buf head;
	struct sk_buff *skb;
	u32 len;

	*result = kni_rx_walk(kd, index, &head, &len);
	if (*result != KNI_RX_OK)
		return NULL;

	memset(vh, 0, sizeof(*vh));
	if (head.flags & KNI_BUF_F_NEEDS_CSUM)
		vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	else if (head.flags & KNI_BUF_F_CSUM_VALID)
		vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
	vh->gso_type = head.gso_type;
	vh->gso_size = __cpu_to_virtio16(true, head.gso_size);
	vh->csum_start = __cpu_to_virtio16(true, head.csum_start);
	vh->csum_offset = __cpu_to_virtio16(true, head.csum_offset);
	vh->hdr_len = __cpu_to_virtio16(true, head.hdr_len);
	if (!kni_offload_ok(vh, len)) {
		*result = KNI_RX_BAD_OFFLOAD;
		return NULL;
	}

	skb = kni_rx_alloc(dev, len);
	if (!skb) {
		*result = KNI_RX_NOMEM;
		return NULL;
	}
	if (!kni_rx_copy(kd, index, skb, len)) {
		kfree_skb(skb);
		*result = KNI_RX_BAD_LEN;
		return NULL;
	}
	/* The same rules as for a guest's frame; the headers are in the linear part. */
	if (!kni_frame_proto_ok(skb->data, skb_headlen(skb), vh)) {
		kfree_skb(skb);
		*result = KNI_RX_BAD_OFFLOAD;
		return NULL;
	}
	skb_reset_mac_header(skb);
	skb->protocol = eth_hdr(skb)->h_proto;
	return skb;
}

/*
 * What the offloads of vh become in skb: CHECKSUM_PARTIAL and the GSO
 * fields, as a tun device sets them for a frame it was written. False if
 * the stack would not accept them (counted as a bad offload by the caller).
 */
bool kni_rx_offload(struct sk_buff *skb, const struct virtio_net_hdr *vh)
{
	if (!(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    vh->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return true;
	skb_set_network_header(skb, ETH_HLEN);
	return !virtio_net_hdr_to_skb(skb, vh, true);
}
