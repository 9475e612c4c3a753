// SPDX-License-Identifier: MIT
// What a host's offloads leave undone in frames an AF_PACKET port receives
// with their virtio-net header (PACKET_VNET_HDR): a partial checksum to
// complete, or a TCP super-frame (GRO on a NIC, TSO on a veth peer) to cut
// into frames that fit the MTU. The KNI buffers and the guests behind them
// only ever see whole, checksummed frames.
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
