// SPDX-License-Identifier: MIT
#include "relay.h"

#include "packet_thread.h"

namespace kniv {

namespace {

constexpr unsigned kBurst = 64;
// One more byte than the largest frame a port may hand over (a super-frame:
// 64 KiB of IP behind a VLAN-tagged Ethernet header), so that a cut frame (a
// TAP read returns at most the buffer) is seen as too big.
constexpr size_t kBufSize = 65535 + 18 + 1;

}  // namespace

Relay::Relay(std::unique_ptr<Port> a, std::unique_ptr<Port> b, unsigned idle_us, int cpu)
    : a_(std::move(a)), b_(std::move(b)), idle_us_(idle_us), cpu_(cpu), buf_(kBufSize) {
  thread_ = std::thread([this] { Run(); });
}

Relay::~Relay() { Stop(); }

// Joins the thread and closes both ports; the counters stay readable.
void Relay::Stop() {
  stop_.store(true, std::memory_order_relaxed);
  waker_.Wake();
  if (thread_.joinable()) thread_.join();
  a_.reset();
  b_.reset();
}

// When both ports speak virtio-net headers (a TAP with them, AF_PACKET),
// each frame crosses as it came, super-frames and partial checksums
// included, for the kernel on the far side to finish, as a vhost-net
// guest's would; otherwise as plain frames, finished by the source port.
bool Relay::Forward(Port& src, Port& dst, RelayDirectionStats& s) {
  const bool vnet = src.TakesVnet() && dst.TakesVnet();
  bool work = false;
  for (unsigned i = 0; i < kBurst; i++) {
    TxFrame f{};
    iovec iov{buf_.data(), buf_.size()};
    long n = vnet ? src.RecvVnet(&iov, 1, &f.vnet) : src.Recv(buf_.data(), buf_.size());
    if (n == 0) break;
    work = true;
    if (n < 0) {
      Add(s.recv_errors, 1);
      break;
    }
    if (static_cast<size_t>(n) >= buf_.size()) {
      Add(s.drop_too_big, 1);
      continue;
    }
    bool ok = false;
    if (vnet) {
      iov.iov_len = static_cast<size_t>(n);
      f.iov = &iov;
      f.iovcnt = 1;
      f.len = iov.iov_len;
      dst.SendFrames(&f, 1, &ok);
    } else {
      ok = dst.Send(buf_.data(), static_cast<size_t>(n)) == 0;
    }
    if (!ok) {
      Add(s.drop_send, 1);
      continue;
    }
    Add(s.packets, 1);
    Add(s.bytes, static_cast<uint64_t>(n));
  }
  return work;
}

void Relay::Run() {
  std::vector<pollfd> fds;
  for (Port* p : {a_.get(), b_.get()})
    if (p->fd() >= 0) fds.push_back({p->fd(), POLLIN, 0});
  // Both sides are ports: their fds wake a sleep, unless one is a generator.
  RunPacketLoop(
      "kniv-relay", cpu_, std::move(fds), idle_us_, stop_, waker_,
      [this] {
        bool work = Forward(*a_, *b_, a_to_b);
        work |= Forward(*b_, *a_, b_to_a);
        return work;
      },
      [this](bool) { return !a_->Pending() && !b_->Pending(); }, [] {});
}

}  // namespace kniv
