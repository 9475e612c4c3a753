// SPDX-License-Identifier: MIT
#include "dataplane.h"

#include <algorithm>
#include <cstring>

#include "packet_thread.h"

namespace kniv {

namespace {

constexpr uint32_t kBurst = 64;

}  // namespace

DataPlane::DataPlane(std::vector<Link> links, Post post, int32_t default_result, unsigned idle_us, int cpu)
    : links_(std::move(links)), post_(std::move(post)), default_result_(default_result), idle_us_(idle_us), cpu_(cpu) {
  // The kernel signals our waker for tx_q and req_q while we sleep.
  for (auto& l : links_) l.iface->SetNotify(waker_.fd());
  thread_ = std::thread([this] { Run(); });
}

DataPlane::~DataPlane() { Stop(); }

void DataPlane::Stop() {
  stop_.store(true, std::memory_order_relaxed);
  waker_.Wake();
  if (thread_.joinable()) thread_.join();
  for (auto& l : links_) {
    if (l.iface->busy.load()) l.iface->SetNotify(-1);
    l.iface->busy.store(false);
  }
}

// One pass over one link; true if it moved anything.
bool DataPlane::Service(Link& l) {
  Interface& k = *l.iface;
  Stats& s = k.stats;
  const uint32_t cap = k.info().buf_size - KNI_BUF_HDR_SIZE;
  bool work = false;

  // free_q: buffers the kernel delivered to the stack come back to the pool.
  if (uint32_t n = k.free.Avail()) {
    for (uint32_t i = 0; i < n; i++) {
      uint32_t b = k.free.Peek(i);
      if (k.valid(b)) k.pool.push_back(b); else Add(s.bad_buffer, 1);
    }
    k.free.Consume(n);
    work = true;
  }

  // tx_q: frames the stack sent out of the interface go to the port.
  // One batch per pass (sendmmsg on an AF_PACKET port); the buffers go back
  // to the pool once the batch is out.
  if (uint32_t n = std::min(k.tx.Avail(), kBurst)) {
    const uint8_t* frames[kBurst];
    size_t lens[kBurst];
    bool ok[kBurst];
    uint32_t taken[kBurst], nframes = 0, ntaken = 0;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t b = k.tx.Peek(i);
      if (!k.valid(b)) {
        Add(s.bad_buffer, 1);
        continue;
      }
      taken[ntaken++] = b;
      auto* hdr = reinterpret_cast<kni_buf*>(k.buf(b));
      uint32_t off = __atomic_load_n(&hdr->data_off, __ATOMIC_RELAXED);
      uint32_t len = __atomic_load_n(&hdr->data_len, __ATOMIC_RELAXED);
      if (off < KNI_BUF_HDR_SIZE || off > k.info().buf_size || len > k.info().buf_size - off) {
        Add(s.bad_buffer, 1);
        continue;
      }
      frames[nframes] = k.buf(b) + off;
      lens[nframes++] = len;
    }
    l.port->SendBatch(frames, lens, nframes, ok);
    uint64_t sent = 0, bytes = 0;
    for (uint32_t i = 0; i < nframes; i++) {
      sent += ok[i];
      bytes += ok[i] ? lens[i] : 0;
    }
    Add(s.to_port_packets, sent);
    Add(s.to_port_bytes, bytes);
    Add(s.drop_port_error, nframes - sent);
    for (uint32_t i = 0; i < ntaken; i++) k.pool.push_back(taken[i]);
    k.tx.Consume(n);
    work = true;
  }
  bool made_room = work;

  // alloc_q: keep the kernel supplied with empty buffers, but leave half the
  // pool for frames coming from the port.
  if (uint32_t space = k.alloc.Space()) {
    uint32_t give = std::min<uint32_t>(space, k.pool.size() > k.info().buf_count / 2
                                                  ? k.pool.size() - k.info().buf_count / 2 : 0);
    for (uint32_t i = 0; i < give; i++) {
      k.alloc.Put(k.pool.back());
      k.pool.pop_back();
    }
    if (give) k.alloc.Publish();
    made_room |= give != 0;
  }
  // A KNI socket writer (vhost) may be waiting for exactly this room.
  if (made_room) k.KickIfTxWait();

  // Port -> rx_q.
  uint32_t queued = 0;
  uint8_t scratch[2048];
  for (uint32_t i = 0; i < kBurst; i++) {
    bool room = k.rx.Space() > queued;
    if (k.pool.empty() || !room) {
      if (l.port->Holds()) break;
      // Still take the frame, so that a drop is counted rather than left
      // to overflow the port silently.
      uint32_t flags;
      long n = l.port->RecvFlags(scratch, sizeof(scratch), &flags);
      if (n <= 0) break;
      Add(k.pool.empty() ? s.drop_no_buffer : s.drop_rx_full, 1);
      work = true;
      continue;
    }
    uint32_t b = k.pool.back();
    uint32_t flags;
    long n = l.port->RecvFlags(k.buf(b) + KNI_BUF_HDR_SIZE, cap, &flags);
    if (n == 0) break;
    work = true;
    if (n < 0) {
      Add(s.port_errors, 1);
      break;
    }
    if (static_cast<unsigned long>(n) > cap) {
      Add(s.drop_too_big, 1);
      continue;
    }
    auto* hdr = reinterpret_cast<kni_buf*>(k.buf(b));
    hdr->data_off = KNI_BUF_HDR_SIZE;
    hdr->data_len = static_cast<uint32_t>(n);
    hdr->flags = flags;
    k.pool.pop_back();
    k.rx.Put(b);
    queued++;
    Add(s.to_kernel_packets, 1);
    Add(s.to_kernel_bytes, static_cast<uint64_t>(n));
  }
  if (queued) {
    k.rx.Publish();
    k.KickKernel();
  }

  // req_q: control requests go to JS, or get the default answer.
  if (uint32_t n = k.req.Avail()) {
    for (uint32_t i = 0; i < n; i++) {
      Request r;
      if (!k.ReadRequest(k.req.Peek(i), &r)) {
        Add(s.bad_buffer, 1);
        continue;
      }
      Add(s.requests, 1);
      bool notify = r.flags & KNI_REQ_F_NOTIFY;
      // Without a JS handler the answer is given here, so that a busy JS
      // thread cannot make ip(8) time out.
      bool handled = (notify || k.js_handles.load(std::memory_order_relaxed)) && post_(l.iface, r);
      if (!handled && !notify) k.Respond(r.seq, default_result_);
    }
    k.req.Consume(n);
    work = true;
  }
  return work;
}

void DataPlane::Run() {
  std::vector<pollfd> fds;
  for (auto& l : links_)
    if (l.port->fd() >= 0) fds.push_back({l.port->fd(), POLLIN, 0});
  // When nothing moved the wait ends when a port has a frame or after idle_us;
  // asleep, when a port has a frame or the kernel signals the waker.
  RunPacketLoop(
      "kniv-dataplane", cpu_, std::move(fds), idle_us_, stop_, waker_,
      [this] {
        bool work = false;
        for (auto& l : links_) work |= Service(l);
        return work;
      },
      // Sleep only if every source of work wakes us: ports by their fds
      // (a generator has none), the kernel through the doorbell.
      [this] {
        for (auto& l : links_) {
          if (l.port->Pending()) return false;
          l.iface->SetUserSleeping(true);
        }
        // Pairs with the kernel's smp_mb() between publishing and reading user_sleeping.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        for (auto& l : links_)
          if (l.iface->Pending()) return false;
        for (auto& l : links_) Add(l.iface->stats.sleeps, 1);
        return true;
      },
      [this] {
        for (auto& l : links_) l.iface->SetUserSleeping(false);
      });
}

}  // namespace kniv
