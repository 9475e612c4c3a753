// SPDX-License-Identifier: MIT
// Ports: where a data plane sends what the kernel transmitted on the KNI
// interface, and where it takes what it gives the kernel. All non-blocking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kniv {

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
  // n frames at once where the port can batch them (one sendmmsg for an
  // AF_PACKET port); ok[i] says whether frame i was sent.
  virtual void SendBatch(const uint8_t* const* bufs, const size_t* lens, size_t n, bool* ok) {
    for (size_t i = 0; i < n; i++) ok[i] = Send(bufs[i], lens[i]) == 0;
  }
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
};

// AF_PACKET socket bound to a host interface (a NIC or a veth), promiscuous,
// not seeing its own transmissions. It takes frames with their virtio-net
// header, so that partial checksums are completed and TCP super-frames (GRO,
// a peer's TSO) are cut to size before they reach a KNI buffer.
std::unique_ptr<Port> OpenPacketPort(const std::string& ifname, int* err);
// A TAP device created with the given name (IFF_TAP | IFF_NO_PI).
std::unique_ptr<Port> OpenTapPort(const std::string& ifname, int* err);
// Generator/sink: offers `frame` up to `count` times (0 = forever) at most
// `pps` per second (0 = as fast as the kernel takes them); consumes and
// counts everything sent to it.
std::unique_ptr<Port> OpenGeneratorPort(std::vector<uint8_t> frame, uint64_t count, uint64_t pps);
// Sink only: never offers a frame; consumes and counts everything sent to it.
std::unique_ptr<Port> OpenSinkPort();

}  // namespace kniv
