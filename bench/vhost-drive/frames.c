// SPDX-License-Identifier: MIT
/*
 * vhost-drive frames: builders and parsers for Ethernet, IPv4, UDP, TCP, ARP
 * and ICMP echo. Offsets are fixed (no VLAN tags, no IP options on what we
 * build), which keeps every builder a straight line of stores.
 */
#include <string.h>
#include <linux/if_ether.h>
#include <linux/virtio_net.h>

#include "frames.h"

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

static void eth_header(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
}

static void ip4_header(const struct flow *fl, uint8_t *ip, uint8_t proto, size_t l4len)
{
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + l4len));
	put16(ip + 6, 0x4000);                          /* DF */
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &fl->src_ip, 4);
	memcpy(ip + 16, &fl->dst_ip, 4);
	put16(ip + 10, (uint16_t)~csum_fold(csum_add(0, ip, 20)));
}

static uint64_t pseudo_sum(const struct flow *fl, uint8_t proto, size_t l4len)
{
	uint64_t sum = csum_add(0, (const uint8_t *)&fl->src_ip, 4);

	return csum_add(sum, (const uint8_t *)&fl->dst_ip, 4) + proto + l4len;
}

/*
 * A data frame of len Ethernet bytes (data_frame_len()) at f: UDP with its
 * checksum filled, or with tso a TCP super-frame that the other side cuts
 * into mss segments. h is the virtio-net header of hlen bytes in front of it
 * (10, or 12 with num_buffers, which a sender leaves 0): all zero for UDP,
 * GSO TCPV4 + NEEDS_CSUM for TSO. Returns len.
 */
size_t build_data(const struct flow *fl, unsigned tso, unsigned mss, size_t len,
		  uint8_t *h, size_t hlen, uint8_t *f)
{
	struct virtio_net_hdr *vh = (struct virtio_net_hdr *)h;
	size_t l4len = len - 34;
	uint8_t *l4 = f + 34;

	memset(h, 0, hlen);
	eth_header(f, fl->dst_mac, fl->src_mac, ETH_P_IP);
	ip4_header(fl, f + 14, tso ? 6 : 17, l4len);
	for (size_t i = tso ? 54 : 42; i < len; i++)
		f[i] = (uint8_t)i;
	put16(l4, fl->src_port);
	put16(l4 + 2, fl->dst_port);
	if (!tso) {
		uint16_t c;

		put16(l4 + 4, (uint16_t)l4len);
		put16(l4 + 6, 0);
		c = (uint16_t)~csum_fold(csum_add(pseudo_sum(fl, 17, l4len), l4, l4len));
		put16(l4 + 6, c ? c : 0xffff);
		return len;
	}
	memset(l4 + 4, 0, 16);
	put32(l4 + 8, 1);                               /* ack_seq */
	l4[12] = 5 << 4;                                /* doff */
	l4[13] = 0x18;                                  /* PSH|ACK */
	put16(l4 + 14, 0xffff);
	/* As a NEEDS_CSUM sender: the folded pseudo-header sum, not complemented. */
	put16(l4 + 16, csum_fold(pseudo_sum(fl, 6, l4len)));
	vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	vh->hdr_len = 54;
	vh->gso_size = (uint16_t)mss;
	vh->csum_start = 34;
	vh->csum_offset = 16;
	return len;
}

/* ARP request (op 1, broadcast, for tip) or reply (op 2, to tmac/tip) from
 * fl's source, padded to the 60-byte Ethernet minimum. Returns 60. */
size_t build_arp(const struct flow *fl, uint8_t *f, uint16_t op, const uint8_t *tmac,
		 const uint8_t *tip)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t *a = f + 14;

	memset(f, 0, 60);
	eth_header(f, op == 1 ? bcast : tmac, fl->src_mac, ETH_P_ARP);
	put16(a, 1);
	put16(a + 2, ETH_P_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, fl->src_mac, 6);
	memcpy(a + 14, &fl->src_ip, 4);
	if (op == 2)
		memcpy(a + 18, tmac, 6);
	memcpy(a + 24, tip, 4);
	return 60;
}

/* ICMP echo request id/seq carrying stamp (host order; only we read it) and
 * a counting pattern. Returns the Ethernet length. */
size_t build_echo(const struct flow *fl, uint8_t *f, uint16_t id, uint16_t seq, uint64_t stamp)
{
	uint8_t *icmp = f + 34;

	eth_header(f, fl->dst_mac, fl->src_mac, ETH_P_IP);
	ip4_header(fl, f + 14, 1, 8 + PING_PAYLOAD);
	memset(icmp, 0, 8);
	icmp[0] = 8;
	put16(icmp + 4, id);
	put16(icmp + 6, seq);
	memcpy(icmp + 8, &stamp, 8);
	for (int i = 16; i < 8 + PING_PAYLOAD; i++)
		icmp[i] = (uint8_t)i;
	put16(icmp + 2, (uint16_t)~csum_fold(csum_add(0, icmp, 8 + PING_PAYLOAD)));
	return 34 + 8 + PING_PAYLOAD;
}

/* Is the frame (cap bytes of it at hand) an Ethernet/IPv4 ARP packet? */
bool arp_parse(const uint8_t *f, size_t cap, struct arp_view *a)
{
	const uint8_t *p = f + 14;

	if (cap < 42 || get16(f + 12) != ETH_P_ARP)
		return false;
	if (get16(p) != 1 || get16(p + 2) != ETH_P_IP || p[4] != 6 || p[5] != 4)
		return false;
	a->op = get16(p + 6);
	a->sha = p + 8;
	a->spa = p + 14;
	a->tpa = p + 24;
	return true;
}

/* Is the frame the echo reply to our request id/seq, from fl's destination
 * to its source? The IPv4 header may carry options. */
bool echo_reply_match(const struct flow *fl, const uint8_t *f, size_t cap, uint16_t id,
		      uint16_t seq)
{
	const uint8_t *ip = f + 14, *icmp;
	size_t ihl;

	if (cap < 34 || get16(f + 12) != ETH_P_IP)
		return false;
	ihl = (size_t)(ip[0] & 15) * 4;
	if (ip[0] >> 4 != 4 || ihl < 20 || cap < 14 + ihl + 8 || ip[9] != 1)
		return false;
	if (memcmp(ip + 12, &fl->dst_ip, 4) || memcmp(ip + 16, &fl->src_ip, 4))
		return false;
	icmp = ip + ihl;
	return icmp[0] == 0 && get16(icmp + 4) == id && get16(icmp + 6) == seq;
}
