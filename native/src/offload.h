// SPDX-License-Identifier: MIT
// What offloads leave undone in a frame that carries a virtio-net header: a
// partial checksum to complete, or a TCP super-frame (GRO on a NIC, TSO on a
// veth peer or the KNI interface) to cut into frames that fit the MTU. Used
// where a frame must reach a port that cannot take it as it is (a TAP, the
// relay's side of an AF_PACKET port); between AF_PACKET and KNI buffers the
// frames cross whole and the kernels finish them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kniv {

// struct virtio_net_hdr of <linux/virtio_net.h> (little-endian on the hosts
// kniv runs on), which C++ cannot include: it has a member named "class".
struct VnetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(VnetHdr) == 10, "the virtio-net header is 10 bytes");

constexpr uint8_t kVnetNeedsCsum = 1, kVnetDataValid = 2;
constexpr uint8_t kVnetGsoNone = 0, kVnetGsoTcp4 = 1, kVnetGsoTcp6 = 4, kVnetGsoEcn = 0x80;

// Completes the checksum at start + off, seeded with the pseudo-header sum
// already there, over everything from start on. False if it does not fit.
bool CompleteChecksum(uint8_t* frame, size_t len, size_t start, size_t off);

// Makes the TCP checksum of a super-frame partial, as NEEDS_CSUM with GSO
// wants it: the pseudo-header sum for the whole len bytes goes into the
// checksum field, *start and *off say where that is. Only the first
// head_len bytes are at f, and the headers must be among them. For a
// super-frame a NIC merged (LRO) and verified, whose header still carries
// the first segment's checksum. False if it is not TCP over IPv4/IPv6.
bool SeedTcpChecksum(uint8_t* f, size_t head_len, size_t len, uint16_t* start, uint16_t* off);

// A frame cut out of a super-frame: [offset, offset + len) of the output.
struct Segment {
  size_t offset, len;
};

// Cuts a TCP over IPv4 or IPv6 super-frame into frames carrying at most
// gso_size bytes of payload each, with their own IP lengths, IDs and
// checksums, TCP sequence numbers, flags and checksums. Appends them to out
// and segs; false (nothing appended) if the frame is not one it can cut.
bool SegmentTcp(const uint8_t* frame, size_t len, uint16_t gso_size, std::vector<uint8_t>* out,
                std::vector<Segment>* segs);

}  // namespace kniv
