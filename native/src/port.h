// SPDX-License-Identifier: MIT
// Ports: where a data plane sends what the kernel transmitted on the KNI
// interface, and where it takes what it gives the kernel. All non-blocking.
#pragma once

#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "offload.h"

namespace kniv {

// One frame for Port::SendFrames: what the offloads still owe it, in
// virtio-net terms (NEEDS_CSUM, GSO), and its bytes as pieces in order,
// iovcnt of them, len in all. The pieces are the KNI buffers themselves.
struct TxFrame {
  VnetHdr vnet;
  const iovec* iov;
  uint32_t iovcnt;
  size_t len;
};

class Port {
 public:
  virtual ~Port() = default;
  // A frame into buf: its length (> cap means truncated, dropped by the
  // caller), 0 when nothing is waiting, or -errno.
  virtual long Recv(uint8_t* buf, size_t cap) = 0;
  // The same, and *flags the KNI_BUF_F_* that hold for the frame.
  virtual long RecvFlags(uint8_t* buf, size_t cap, uint32_t* flags) {
    *flags = 0;
    return Recv(buf, cap);
  }
  // 0 when sent (or deliberately consumed), -errno otherwise.
  virtual int Send(const uint8_t* buf, size_t len) = 0;
  // n frames of the kernel's (chained, maybe GSO super-frames) at once,
  // batched where the port can (one sendmmsg per 64 on an AF_PACKET port);
  // ok[i] is true only if all of frame i went out. By default each goes through
  // Send(): as it is when it is one piece with nothing owed, else gathered
  // and finished here (checksum completed, super-frame cut into segments);
  // what cannot be finished is a failure.
  virtual void SendFrames(const TxFrame* frames, size_t n, bool* ok) {
    for (size_t i = 0; i < n; i++) ok[i] = SendFinished(frames[i]);
  }
  // True for a port that speaks virtio-net headers (AF_PACKET with
  // PACKET_VNET_HDR): RecvVnet() hands over frames as they came, super-frames
  // and partial checksums included, and SendFrames() passes GSO frames on
  // whole, for the port's own kernel to cut.
  virtual bool TakesVnet() const { return false; }
  // With TakesVnet(): one frame scattered over iov and its header into *h.
  // The frame's whole length (more than iov holds: it was cut, and the
  // caller drops it), 0 when nothing is waiting, or -errno.
  virtual long RecvVnet(const iovec*, int, VnetHdr*) { return -EOPNOTSUPP; }
  // A descriptor to poll() for input, or -1.
  virtual int fd() const { return -1; }
  // True for a source that keeps its next frame until asked (the generator):
  // a forwarder with nowhere to put a frame leaves it there instead of
  // reading it to count a drop, so the generator runs at the rate the path
  // takes frames rather than at the rate they can be thrown away.
  virtual bool Holds() const { return false; }
  // Frames will come that no readable fd announces (a generator): whoever
  // reads this port must not sleep.
  virtual bool Pending() const { return false; }

 private:
  // SendFrames()'s default for one frame, and its scratch space (grown on
  // first use, so a port that never sees offloads never pays for it).
  bool SendFinished(const TxFrame& f);
  std::vector<uint8_t> linear_, cut_;
  std::vector<Segment> cut_segs_;
};

// AF_PACKET socket bound to a host interface (a NIC or a veth), promiscuous,
// not seeing its own transmissions, with virtio-net headers both ways
// (PACKET_VNET_HDR). A data plane uses RecvVnet/SendFrames: super-frames
// (GRO, a peer's TSO, the stack's TSO) and partial checksums cross whole,
// for the kernel on the other side to finish. Recv/RecvFlags (the relay)
// finish them here instead: checksums completed, TCP super-frames cut.
std::unique_ptr<Port> OpenPacketPort(const std::string& ifname, int* err);
// A TAP device created with the given name (IFF_TAP | IFF_NO_PI). With vnet,
// IFF_VNET_HDR and checksum/TSO offloads: RecvVnet/SendFrames carry
// super-frames and partial checksums whole, as between AF_PACKET and KNI.
std::unique_ptr<Port> OpenTapPort(const std::string& ifname, bool vnet, int* err);
// Generator/sink: offers `frame` up to `count` times (0 = forever) at most
// `pps` per second (0 = as fast as the kernel takes them); consumes and
// counts everything sent to it.
std::unique_ptr<Port> OpenGeneratorPort(std::vector<uint8_t> frame, uint64_t count, uint64_t pps);
// Sink only: never offers a frame; consumes and counts everything sent to it.
std::unique_ptr<Port> OpenSinkPort();

}  // namespace kniv
