// SPDX-License-Identifier: MIT
// One KNI interface as its data plane sees it: the mapped region, its rings,
// and the buffer pool. Buffers are allocated and freed here, in userspace
// only; the kernel only ever names them by index.
#pragma once

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kni_uapi.h"
#include "ring.h"

namespace kniv {

// Counters, written by the data plane thread, read from JS at any time.
struct Stats {
  std::atomic<uint64_t> to_kernel_packets{0}, to_kernel_bytes{0};  // port -> rx_q
  std::atomic<uint64_t> to_port_packets{0}, to_port_bytes{0};      // tx_q -> port
  std::atomic<uint64_t> to_kernel_gso{0};    // of to_kernel_packets: GSO super-frames
  std::atomic<uint64_t> to_port_gso{0};      // of to_port_packets: GSO frames the port took whole
  std::atomic<uint64_t> to_port_cut{0};      // of to_port_packets: GSO frames cut here for the port
  std::atomic<uint64_t> drop_no_buffer{0};   // port frame, pool empty (or too short for it)
  std::atomic<uint64_t> drop_rx_full{0};     // port frame, rx_q full
  std::atomic<uint64_t> drop_too_big{0};     // port frame too big (a buffer; with vnet: a frame), or GSO the kernel cannot take
  std::atomic<uint64_t> drop_port_error{0};  // kernel frame the port refused
  std::atomic<uint64_t> bad_buffer{0};       // invalid index or header from the kernel side
  std::atomic<uint64_t> port_errors{0};      // receive errors on the port
  std::atomic<uint64_t> requests{0};         // control requests seen on req_q
  std::atomic<uint64_t> sleeps{0};           // times the data plane slept until woken
  std::atomic<uint64_t> kernel_kicks{0};     // KNI_IOCTL_KICKs: the kernel thread was asleep
};

// The /dev/kni descriptor. Close() closes it at once (the kernel then removes
// every interface it created); interfaces share this object, so after that
// their ioctls get EBADF here and can never reach a reused descriptor number.
class ControlFd {
 public:
  explicit ControlFd(int fd) : fd_(fd) {}
  ~ControlFd() { Close(); }
  ControlFd(const ControlFd&) = delete;
  ControlFd& operator=(const ControlFd&) = delete;

  // ioctl(2) while open; -1 with errno = EBADF after Close().
  int Ioctl(unsigned long request, void* arg) {
    std::lock_guard<std::mutex> lock(mu_);
    if (fd_ < 0) {
      errno = EBADF;
      return -1;
    }
    return ioctl(fd_, request, arg);
  }
  int fd() const { return fd_; }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  std::mutex mu_;
  int fd_;
};

struct Request {
  uint32_t seq, type, flags, value;
  uint8_t mac[6];
};

class Interface {
 public:
  // KNI_IOCTL_CREATE on ctl_fd, then mmap of the region. On failure returns
  // nullptr with *err = errno and *syscall set.
  static Interface* Create(std::shared_ptr<ControlFd> ctl, kni_create* req, int* err, const char** syscall);
  ~Interface();

  // KNI_IOCTL_RELEASE and unmap the region; only with no data plane attached. -errno or 0.
  int Release();
  // The eventfd the kernel signals while user_sleeping is set (-1: none). -errno or 0.
  int SetNotify(int fd);
  // KNI_IOCTL_SOCKET: the interface's KNI socket as a new descriptor of this
  // process, close-on-exec if asked. The descriptor, or -errno.
  int OpenSocket(bool cloexec);

  const kni_create& info() const { return info_; }
  bool released() const { return released_; }

  // --- data plane thread only, while it holds `busy` ---
  uint8_t* buf(uint32_t index) { return region_ + info_.bufs_off + static_cast<size_t>(index) * info_.buf_size; }
  bool valid(uint32_t index) const { return index < info_.buf_count; }
  Ring rx, tx, alloc, free, req;
  std::vector<uint32_t> pool;  // free buffer indices
  // Who holds each buffer, as this side knows it. The kernel may only name
  // buffers it holds (tx_q: given on alloc_q; free_q: a head queued on
  // rx_q), so a duplicate, a loop or a stray index in what it writes is
  // refused instead of putting a buffer in the pool twice.
  enum Owner : uint8_t {
    kOwnPool,    // in pool
    kOwnKernel,  // given on alloc_q, not back on tx_q yet
    kOwnRxHead,  // head of a frame on rx_q
    kOwnRxBody,  // further buffer of a frame on rx_q
    kOwnTaken,   // read off tx_q, going back to the pool after this pass
  };
  std::vector<uint8_t> owner;
  // next (1 + index, 0: the last) of every buffer of the frames queued on
  // rx_q, as queued: free_q chains are walked with this, which only the data
  // plane writes, never with the shared headers.
  std::vector<uint32_t> rx_next;
  bool ReadRequest(uint32_t seq, Request* out);
  // After publishing rx_q: ring the kernel's doorbell if its
  // thread sleeps (struct kni_doorbell). Any thread.
  void KickKernel();
  // After consuming tx_q and giving alloc_q buffers: ring the doorbell if a
  // KNI socket writer waits for that room (kernel_tx_wait). Any thread.
  void KickIfTxWait();

 private:
  void KickIfSet(const uint32_t* flag);

 public:
  // Doorbell, user side: announce or end a sleep. After announcing, the
  // caller fences and looks at Pending() once more before it sleeps.
  void SetUserSleeping(bool on) { __atomic_store_n(&db_->user_sleeping, on ? 1u : 0u, __ATOMIC_RELAXED); }
  // Work on the FIFOs this side consumes (free_q, tx_q, req_q).
  bool Pending() { return free.Avail() || tx.Avail() || req.Avail(); }

  std::atomic<bool> busy{false};         // a data plane is attached
  Stats stats;

 private:
  Interface() = default;
  std::shared_ptr<ControlFd> ctl_;
  kni_create info_{};
  uint8_t* region_ = nullptr;
  kni_doorbell* db_ = nullptr;
  bool released_ = false;
};

}  // namespace kniv
