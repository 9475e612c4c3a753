// SPDX-License-Identifier: MIT
#include "dataplane.h"

#include <algorithm>
#include <cstring>

#include "packet_thread.h"

namespace kniv {

namespace {

constexpr uint32_t kBurst = 64;

// A field of a header the kernel wrote: read once, as it is then, so that a
// kernel rewriting it meanwhile cannot make a check and a use disagree.
template <typename T>
T Once(const T& field) {
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

// Every field of an rx_q buffer's header, the rest zero. Pool buffers come
// back from tx_q with what the kernel wrote there, and the kernel reads
// each field of what it gets on rx_q.
void PutRxHeader(uint8_t* buf, kni_buf h, uint32_t len, uint32_t next) {
  h.data_off = KNI_BUF_HDR_SIZE;
  h.data_len = len;
  h.next = next;
  std::memcpy(buf, &h, sizeof(h));
}

}  // namespace

DataPlane::DataPlane(std::vector<Link> links, Post post, unsigned idle_us, int cpu)
    : links_(std::move(links)), post_(std::move(post)), idle_us_(idle_us), cpu_(cpu) {
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

// free_q: frames the kernel delivered to the stack (or dropped) come back,
// each by its head, and every buffer of each goes back to the pool.
bool DataPlane::FreeChains(Interface& k) {
  const uint32_t n = k.free.Avail();
  if (n == 0) return false;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t b = k.free.Peek(i);
    // Only a head we queued, once: not a stray, a body buffer or a repeat.
    if (!k.valid(b) || k.owner[b] != Interface::kOwnRxHead) {
      Add(k.stats.bad_buffer, 1);
      continue;
    }
    // The chain as we built it (rx_next), not as the shared headers say now.
    for (uint32_t c = 0; c < KNI_BUF_MAX_CHAIN; c++) {
      const uint32_t next = k.rx_next[b];
      k.owner[b] = Interface::kOwnPool;
      k.pool.push_back(b);
      if (next == 0 || !k.valid(next - 1) || k.owner[next - 1] != Interface::kOwnRxBody) break;
      b = next - 1;
    }
  }
  k.free.Consume(n);
  return true;
}

// tx_q: frames the stack sent out of the interface go to the port, one
// batch per pass (sendmmsg on an AF_PACKET port). Every buffer taken off
// tx_q, of a good frame or a bad one, goes back to the pool once the batch
// is out.
bool DataPlane::ToPort(Link& l) {
  Interface& k = *l.iface;
  Stats& s = k.stats;
  const uint32_t n = std::min(k.tx.Avail(), kBurst);
  if (n == 0) return false;
  const uint32_t bsz = k.info().buf_size;
  TxFrame frames[kBurst];
  size_t first[kBurst];  // where each frame's pieces start in tx_iov_
  bool ok[kBurst];
  uint32_t nframes = 0;
  tx_iov_.clear();
  taken_.clear();
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t b = k.tx.Peek(i);
    // Only a buffer the kernel holds: not a stray, not one of ours, not one
    // already in this batch.
    if (!k.valid(b) || k.owner[b] != Interface::kOwnKernel) {
      Add(s.bad_buffer, 1);
      continue;
    }
    const auto* head = reinterpret_cast<const kni_buf*>(k.buf(b));
    const uint32_t flags = Once(head->flags), frame_len = Once(head->frame_len);
    TxFrame& f = frames[nframes];
    f = {};
    // Only what virtio lets a driver say on transmit: DATA_VALID is the
    // device's to set, so CSUM_VALID has nothing to become.
    if (flags & KNI_BUF_F_NEEDS_CSUM) {
      f.vnet.flags = kVnetNeedsCsum;
      f.vnet.csum_start = Once(head->csum_start);
      f.vnet.csum_offset = Once(head->csum_offset);
    }
    f.vnet.gso_type = Once(head->gso_type);
    f.vnet.gso_size = Once(head->gso_size);
    f.vnet.hdr_len = Once(head->hdr_len);
    first[nframes] = tx_iov_.size();

    // Walk the chain. Each step takes a buffer the kernel holds and marks it
    // taken, so a loop or a buffer named twice ends the walk: it is bounded
    // by buf_count whatever the kernel wrote, and every buffer it took goes
    // back to the pool exactly once. A bad header does not end the walk, so
    // that the buffers after it are not lost.
    bool bad = false;
    uint64_t total = 0;
    uint32_t count = 0;
    for (uint32_t cur = b;;) {
      k.owner[cur] = Interface::kOwnTaken;
      taken_.push_back(cur);
      count++;
      const auto* h = reinterpret_cast<const kni_buf*>(k.buf(cur));
      const uint32_t off = Once(h->data_off), len = Once(h->data_len), next = Once(h->next);
      if (off < KNI_BUF_HDR_SIZE || off > bsz || len > bsz - off) {
        bad = true;
      } else if (len) {
        tx_iov_.push_back({k.buf(cur) + off, len});
        total += len;
      }
      if (next == 0) break;
      cur = next - 1;
      if (!k.valid(cur) || k.owner[cur] != Interface::kOwnKernel) {
        bad = true;
        break;
      }
    }
    if (bad || count > KNI_BUF_MAX_CHAIN || total > KNI_FRAME_MAX || total != frame_len) {
      Add(s.bad_buffer, 1);
      tx_iov_.resize(first[nframes]);
      continue;
    }
    f.iovcnt = static_cast<uint32_t>(tx_iov_.size() - first[nframes]);
    f.len = total;
    nframes++;
  }
  // Pointers only now: tx_iov_ may have moved while it grew.
  for (uint32_t i = 0; i < nframes; i++) frames[i].iov = tx_iov_.data() + first[i];
  l.port->SendFrames(frames, nframes, ok);

  uint64_t sent = 0, bytes = 0, gso = 0;
  for (uint32_t i = 0; i < nframes; i++) {
    if (!ok[i]) continue;
    sent++;
    bytes += frames[i].len;
    gso += frames[i].vnet.gso_type != kVnetGsoNone;
  }
  Add(s.to_port_packets, sent);
  Add(s.to_port_bytes, bytes);
  // A port without virtio-net headers got a GSO frame as the segments cut here.
  Add(l.port->TakesVnet() ? s.to_port_gso : s.to_port_cut, gso);
  Add(s.drop_port_error, nframes - sent);
  for (uint32_t b : taken_) {
    k.owner[b] = Interface::kOwnPool;
    k.pool.push_back(b);
  }
  k.tx.Consume(n);
  return true;
}

// Port -> rx_q, for a port without virtio-net headers: whole, finished
// frames, each in one buffer.
bool DataPlane::FromPort(Link& l, uint32_t* queued) {
  Interface& k = *l.iface;
  Stats& s = k.stats;
  const uint32_t cap = k.info().buf_size - KNI_BUF_HDR_SIZE;
  uint8_t scratch[2048];
  bool work = false;
  for (uint32_t i = 0; i < kBurst; i++) {
    bool room = k.rx.Space() > *queued;
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
    const uint32_t b = k.pool.back();
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
    kni_buf h{};
    h.flags = flags;
    h.frame_len = static_cast<uint32_t>(n);
    PutRxHeader(k.buf(b), h, static_cast<uint32_t>(n), 0);
    k.rx_next[b] = 0;
    k.owner[b] = Interface::kOwnRxHead;
    k.pool.pop_back();
    k.rx.Put(b);
    ++*queued;
    Add(s.to_kernel_packets, 1);
    Add(s.to_kernel_bytes, static_cast<uint64_t>(n));
  }
  return work;
}

// Port -> rx_q, for a port with virtio-net headers: each frame is received
// straight into a chain of pool buffers (the one copy), super-frames and
// partial checksums as they are; the kernel finishes what its consumer
// cannot take.
bool DataPlane::FromPortVnet(Link& l, uint32_t* queued) {
  Interface& k = *l.iface;
  Stats& s = k.stats;
  const uint32_t cap = k.info().buf_size - KNI_BUF_HDR_SIZE;
  // Enough buffers for the largest frame; fewer when the pool has fewer.
  const uint32_t want = std::min<uint32_t>((KNI_FRAME_MAX + cap - 1) / cap, KNI_BUF_MAX_CHAIN);
  bool work = false;
  for (uint32_t i = 0; i < kBurst; i++) {
    VnetHdr v{};
    const uint32_t post = static_cast<uint32_t>(std::min<size_t>(want, k.pool.size()));
    if (post == 0 || k.rx.Space() <= *queued) {
      if (l.port->Holds()) break;
      // Still take the frame, so that a drop is counted rather than left to
      // overflow the port silently; its length is all that is needed.
      uint8_t scratch[64];
      iovec one = {scratch, sizeof(scratch)};
      long n = l.port->RecvVnet(&one, 1, &v);
      if (n <= 0) break;
      Add(post == 0 ? s.drop_no_buffer : s.drop_rx_full, 1);
      work = true;
      continue;
    }
    // Post the buffers on top of the pool, in pool order; those the frame
    // does not reach stay in the pool, untouched.
    const size_t top = k.pool.size();
    rx_iov_.resize(post);
    for (uint32_t j = 0; j < post; j++) rx_iov_[j] = {k.buf(k.pool[top - 1 - j]) + KNI_BUF_HDR_SIZE, cap};
    long n = l.port->RecvVnet(rx_iov_.data(), static_cast<int>(post), &v);
    if (n == 0) break;
    work = true;
    if (n < 0) {
      Add(s.port_errors, 1);
      break;
    }
    const uint64_t len = static_cast<uint64_t>(n);
    if (len > KNI_FRAME_MAX || len > uint64_t{want} * cap) {
      Add(s.drop_too_big, 1);
      continue;
    }
    if (len > uint64_t{post} * cap) {
      Add(s.drop_no_buffer, 1);  // it would have fitted the buffers the pool lacked
      continue;
    }

    kni_buf h{};
    h.frame_len = static_cast<uint32_t>(len);
    if (v.gso_type != kVnetGsoNone) {
      // The kernel takes TCP super-frames only (UDP GSO cannot be cut on
      // its side either); for anything else the frame is too big.
      const uint8_t type = v.gso_type & ~kVnetGsoEcn;
      if (type != kVnetGsoTcp4 && type != kVnetGsoTcp6) {
        Add(s.drop_too_big, 1);
        continue;
      }
      // GSO comes with NEEDS_CSUM in the ABI, as from GRO. A super-frame
      // the NIC merged itself (LRO) is only DATA_VALID, its checksum the
      // first segment's: make it partial so that every segment gets its own.
      if (!(v.flags & kVnetNeedsCsum)) {
        uint8_t* data = k.buf(k.pool[top - 1]) + KNI_BUF_HDR_SIZE;
        if (!SeedTcpChecksum(data, std::min<uint64_t>(len, cap), len, &v.csum_start, &v.csum_offset)) {
          Add(s.drop_too_big, 1);
          continue;
        }
        v.flags = kVnetNeedsCsum;
      }
      h.gso_type = v.gso_type;
      h.gso_size = v.gso_size;
      h.hdr_len = v.hdr_len;
    }
    if (v.flags & kVnetNeedsCsum) {
      h.flags |= KNI_BUF_F_NEEDS_CSUM;
      h.csum_start = v.csum_start;
      h.csum_offset = v.csum_offset;
    }
    if (v.flags & kVnetDataValid) h.flags |= KNI_BUF_F_CSUM_VALID;

    const uint32_t used = static_cast<uint32_t>((len + cap - 1) / cap);
    for (uint32_t j = 0; j < used; j++) {
      const uint32_t b = k.pool[top - 1 - j];
      const bool last = j + 1 == used;
      const uint32_t next = last ? 0 : k.pool[top - 2 - j] + 1;
      PutRxHeader(k.buf(b), j == 0 ? h : kni_buf{}, last ? static_cast<uint32_t>(len - uint64_t{j} * cap) : cap, next);
      k.rx_next[b] = next;
      k.owner[b] = j == 0 ? Interface::kOwnRxHead : Interface::kOwnRxBody;
    }
    k.rx.Put(k.pool[top - 1]);
    k.pool.resize(top - used);
    ++*queued;
    Add(s.to_kernel_packets, 1);
    Add(s.to_kernel_bytes, len);
    Add(s.to_kernel_gso, h.gso_type != KNI_GSO_NONE);
  }
  return work;
}

// One pass over one link; true if it moved anything.
bool DataPlane::Service(Link& l) {
  Interface& k = *l.iface;
  Stats& s = k.stats;
  bool work = FreeChains(k);
  work |= ToPort(l);
  bool made_room = work;

  // alloc_q: keep the kernel supplied with empty buffers, but leave half the
  // pool for frames coming from the port.
  if (uint32_t space = k.alloc.Space()) {
    uint32_t give = std::min<uint32_t>(space, k.pool.size() > k.info().buf_count / 2
                                                  ? k.pool.size() - k.info().buf_count / 2 : 0);
    for (uint32_t i = 0; i < give; i++) {
      k.owner[k.pool.back()] = Interface::kOwnKernel;
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
  work |= l.port->TakesVnet() ? FromPortVnet(l, &queued) : FromPort(l, &queued);
  if (queued) {
    k.rx.Publish();
    k.KickKernel();
  }

  // req_q: control notifications (changes already applied) go to JS. Each
  // slot is read before its entry is consumed: the kernel reuses a slot
  // only once the entry 16 back is gone.
  if (uint32_t n = k.req.Avail()) {
    for (uint32_t i = 0; i < n; i++) {
      Request r;
      if (!k.ReadRequest(k.req.Peek(i), &r)) {
        Add(s.bad_buffer, 1);
        continue;
      }
      Add(s.requests, 1);
      post_(l.iface, r);
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
      // Wait announced only if every source of work wakes us: ports by
      // their fds (a generator has none), the kernel through the doorbell.
      // Every idle wait is announced, so the kernel signals a frame on tx_q
      // at once; `sleeps` counts the long ones.
      [this](bool deep) {
        for (auto& l : links_) {
          if (l.port->Pending()) return false;
          l.iface->SetUserSleeping(true);
        }
        // Pairs with the kernel's smp_mb() between publishing and reading user_sleeping.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        for (auto& l : links_)
          if (l.iface->Pending()) return false;
        if (deep)
          for (auto& l : links_) Add(l.iface->stats.sleeps, 1);
        return true;
      },
      [this] {
        for (auto& l : links_) l.iface->SetUserSleeping(false);
      });
}

}  // namespace kniv
