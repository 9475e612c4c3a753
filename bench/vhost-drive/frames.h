// SPDX-License-Identifier: MIT
/*
 * vhost-drive frames: the Ethernet frames vhost-drive sends, checksums filled,
 * and the two kinds it reads back (ARP, ICMP echo replies). Functions of their
 * arguments only, no rings and no sockets, so that the vhost path and the
 * AF_PACKET injector put the same bytes on the wire.
 */
#ifndef VHOST_DRIVE_FRAMES_H
#define VHOST_DRIVE_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTRL_MAX 128          /* ARP and ICMP frames we build */
#define PING_PAYLOAD 56

/* Who a frame is from and to. IPv4 addresses in network order. */
struct flow {
	uint8_t src_mac[6], dst_mac[6];
	uint32_t src_ip, dst_ip;
	uint16_t src_port, dst_port;
};

/* Big-endian field access: frames are built byte by byte, not by casting
 * packed structs onto possibly unaligned buffers. */
static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Ethernet length of a data frame: UDP of frame_size bytes, or with tso a
 * TCP/IPv4 super-frame of tso bytes of payload behind 54 bytes of headers. */
static inline size_t data_frame_len(unsigned frame_size, unsigned tso)
{
	return tso ? 54 + (size_t)tso : frame_size;
}

size_t build_data(const struct flow *fl, unsigned tso, unsigned mss, size_t len,
		  uint8_t *h, size_t hlen, uint8_t *f);

/* Each super-frame continues the byte stream of the one before; the sequence
 * number is outside every checksum build_data() fills, so the frame can be
 * sent again without rebuilding it. */
static inline void data_set_seq(uint8_t *f, uint32_t seq) { put32(f + 38, seq); }

size_t build_arp(const struct flow *fl, uint8_t *f, uint16_t op, const uint8_t *tmac,
		 const uint8_t *tip);
size_t build_echo(const struct flow *fl, uint8_t *f, uint16_t id, uint16_t seq, uint64_t stamp);

/* An Ethernet/IPv4 ARP packet: its operation and pointers into the frame. */
struct arp_view {
	uint16_t op;
	const uint8_t *sha, *spa, *tpa;
};

bool arp_parse(const uint8_t *f, size_t cap, struct arp_view *a);
bool echo_reply_match(const struct flow *fl, const uint8_t *f, size_t cap, uint16_t id,
		      uint16_t seq);

#endif
