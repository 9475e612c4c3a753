// SPDX-License-Identifier: MIT
#include "iface.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace kniv {

Interface* Interface::Create(std::shared_ptr<ControlFd> ctl, kni_create* req, int* err, const char** syscall) {
  // Every interface of this addon rings doorbells, so an idle one costs no CPU.
  req->flags |= KNI_CREATE_F_DOORBELL;
  if (ctl->Ioctl(KNI_IOCTL_CREATE, req) < 0) {
    *err = errno;
    *syscall = "ioctl";
    return nullptr;
  }
  void* mem = mmap(nullptr, req->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, ctl->fd(),
                   static_cast<off_t>(req->mmap_offset));
  if (mem == MAP_FAILED) {
    *err = errno;
    *syscall = "mmap";
    kni_release rel{};
    rel.size = sizeof(rel);
    rel.id = req->id;
    ctl->Ioctl(KNI_IOCTL_RELEASE, &rel);
    return nullptr;
  }
  auto* i = new Interface();
  i->ctl_ = std::move(ctl);
  i->info_ = *req;
  i->region_ = static_cast<uint8_t*>(mem);
  uint8_t* r = i->region_;
  i->db_ = reinterpret_cast<kni_doorbell*>(r + req->doorbell_off);
  i->rx = Ring(r, req->rx_q_off, req->fifo_entries);
  i->tx = Ring(r, req->tx_q_off, req->fifo_entries);
  i->alloc = Ring(r, req->alloc_q_off, req->fifo_entries);
  i->free = Ring(r, req->free_q_off, req->fifo_entries);
  i->req = Ring(r, req->req_q_off, KNI_REQ_ENTRIES);
  i->pool.reserve(req->buf_count);
  for (uint32_t b = req->buf_count; b > 0; b--) i->pool.push_back(b - 1);
  i->owner.assign(req->buf_count, kOwnPool);
  i->rx_next.assign(req->buf_count, 0);
  return i;
}

Interface::~Interface() {
  if (!released_) Release();
  if (region_) munmap(region_, info_.mmap_size);
}

int Interface::Release() {
  if (released_) return 0;
  kni_release rel{};
  rel.size = sizeof(rel);
  rel.id = info_.id;
  released_ = true;
  // EBADF: the control descriptor was closed, which removed the interface.
  int err = ctl_->Ioctl(KNI_IOCTL_RELEASE, &rel) < 0 && errno != EBADF ? -errno : 0;
  // No data plane is attached (callers check busy), so nothing uses the
  // region any more: unmapping now lets the kernel free it at once.
  munmap(region_, info_.mmap_size);
  region_ = nullptr;
  return err;
}

bool Interface::ReadRequest(uint32_t seq, Request* out) {
  auto* slot = reinterpret_cast<kni_request*>(region_ + info_.req_slots_off) + (seq & (KNI_REQ_ENTRIES - 1));
  if (__atomic_load_n(&slot->seq, __ATOMIC_RELAXED) != seq) return false;
  out->seq = seq;
  out->type = slot->type;
  out->flags = slot->flags;
  out->value = slot->value;
  std::memcpy(out->mac, slot->mac, sizeof(out->mac));
  return true;
}

// The doorbell's kernel-side flag: after the caller's publish, a full fence
// (pairs with the kernel's smp_mb() between setting the flag and its last
// look at the FIFOs), then KNI_IOCTL_KICK if the flag is set.
void Interface::KickIfSet(const uint32_t* flag) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (__atomic_load_n(flag, __ATOMIC_RELAXED) == 0) return;
  kni_release rel{};
  rel.size = sizeof(rel);
  rel.id = info_.id;
  // Fails only once the interface is gone, when nobody needs waking.
  if (ctl_->Ioctl(KNI_IOCTL_KICK, &rel) == 0) stats.kernel_kicks.fetch_add(1, std::memory_order_relaxed);
}

void Interface::KickKernel() { KickIfSet(&db_->kernel_sleeping); }

void Interface::KickIfTxWait() { KickIfSet(&db_->kernel_tx_wait); }

int Interface::OpenSocket(bool cloexec) {
  if (released_) return -ENODEV;
  kni_socket s{};
  s.size = sizeof(s);
  s.id = info_.id;
  s.flags = cloexec ? KNI_SOCKET_F_CLOEXEC : 0;
  int fd = ctl_->Ioctl(KNI_IOCTL_SOCKET, &s);
  return fd < 0 ? -errno : fd;
}

int Interface::SetNotify(int fd) {
  if (released_) return -ENODEV;
  kni_notify n{};
  n.size = sizeof(n);
  n.id = info_.id;
  n.fd = fd;
  return ctl_->Ioctl(KNI_IOCTL_NOTIFY, &n) < 0 && errno != EBADF ? -errno : 0;
}

}  // namespace kniv
