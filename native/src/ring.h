// SPDX-License-Identifier: MIT
// Userspace side of a struct kni_fifo (module/kni_uapi.h): free-running u32
// counters, acquire/release pairing with the kernel's smp_load_acquire /
// smp_store_release. Like the kernel, we keep our own counter privately and
// never trust the peer's beyond the ring size.
#pragma once

#include <cstdint>

#include "kni_uapi.h"

namespace kniv {

class Ring {
 public:
  Ring() = default;
  Ring(uint8_t* region, uint32_t offset, uint32_t entries)
      : f_(reinterpret_cast<kni_fifo*>(region + offset)), mask_(entries - 1) {}

  // Consumer side. Entries we may read; 0 also when the peer's counter is impossible.
  uint32_t Avail() {
    uint32_t n = __atomic_load_n(&f_->write, __ATOMIC_ACQUIRE) - pos_;
    return n > mask_ + 1 ? (corrupt_++, 0) : n;
  }
  uint32_t Peek(uint32_t i) const { return __atomic_load_n(&f_->ring[(pos_ + i) & mask_], __ATOMIC_RELAXED); }
  void Consume(uint32_t n) {
    pos_ += n;
    __atomic_store_n(&f_->read, pos_, __ATOMIC_RELEASE);
  }

  // Producer side.
  uint32_t Space() {
    uint32_t used = pos_ - __atomic_load_n(&f_->read, __ATOMIC_ACQUIRE);
    return used > mask_ + 1 ? (corrupt_++, 0) : mask_ + 1 - used;
  }
  void Put(uint32_t v) { __atomic_store_n(&f_->ring[pos_++ & mask_], v, __ATOMIC_RELAXED); }
  void Publish() { __atomic_store_n(&f_->write, pos_, __ATOMIC_RELEASE); }

  // Start from what the region says (a fresh region is all zero).
  void SyncConsumer() { pos_ = __atomic_load_n(&f_->read, __ATOMIC_RELAXED); }
  void SyncProducer() { pos_ = __atomic_load_n(&f_->write, __ATOMIC_RELAXED); }

  uint64_t corrupt() const { return corrupt_; }

 private:
  kni_fifo* f_ = nullptr;
  uint32_t mask_ = 0;
  uint32_t pos_ = 0;
  uint64_t corrupt_ = 0;
};

}  // namespace kniv
