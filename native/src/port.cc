// SPDX-License-Identifier: MIT
#include "port.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "kni_uapi.h"
#include "offload.h"

namespace kniv {

bool Port::SendFinished(const TxFrame& f) {
  const bool csum = f.vnet.flags & kVnetNeedsCsum;
  const bool gso = f.vnet.gso_type != kVnetGsoNone;
  if (!csum && !gso && f.iovcnt <= 1)
    return Send(f.iovcnt ? static_cast<const uint8_t*>(f.iov[0].iov_base) : nullptr, f.len) == 0;

  if (!gso && f.iovcnt == 1) {
    // The buffer is the data plane's until the batch is out: the checksum
    // can go into it in place, no copy.
    auto* p = static_cast<uint8_t*>(f.iov[0].iov_base);
    if (f.iov[0].iov_len != f.len || !CompleteChecksum(p, f.len, f.vnet.csum_start, f.vnet.csum_offset)) return false;
    return Send(p, f.len) == 0;
  }

  // Finishing a chained frame needs it in one piece.
  size_t total = 0;
  for (uint32_t i = 0; i < f.iovcnt; i++) total += f.iov[i].iov_len;
  if (total != f.len) return false;
  linear_.resize(f.len);
  size_t at = 0;
  for (uint32_t i = 0; i < f.iovcnt; i++) {
    std::memcpy(linear_.data() + at, f.iov[i].iov_base, f.iov[i].iov_len);
    at += f.iov[i].iov_len;
  }
  if (!gso) {
    if (!CompleteChecksum(linear_.data(), f.len, f.vnet.csum_start, f.vnet.csum_offset)) return false;
    return Send(linear_.data(), f.len) == 0;
  }
  // SegmentTcp computes every checksum itself, so NEEDS_CSUM needs no work
  // of its own here; other GSO types (UDP) are not cut in userspace.
  const uint8_t type = f.vnet.gso_type & ~kVnetGsoEcn;
  if (type != kVnetGsoTcp4 && type != kVnetGsoTcp6) return false;
  cut_.clear();
  cut_segs_.clear();
  if (!SegmentTcp(linear_.data(), f.len, f.vnet.gso_size, &cut_, &cut_segs_)) return false;
  // A segment refused is a hole TCP repairs; the ones after it are still
  // worth sending.
  bool all = true;
  for (const Segment& s : cut_segs_) all &= Send(cut_.data() + s.offset, s.len) == 0;
  return all;
}

namespace {

// An AF_PACKET port's receive buffer: about 100 super-frames of 64 KiB.
constexpr int kPortRcvBuf = 8 << 20;

class FdPort : public Port {
 public:
  explicit FdPort(int fd) : fd_(fd) {}
  ~FdPort() override { close(fd_); }
  int fd() const override { return fd_; }

 protected:
  int fd_;
};

class PacketPort : public FdPort {
 public:
  using FdPort::FdPort;
  long Recv(uint8_t* buf, size_t cap) override {
    uint32_t flags;
    return RecvFlags(buf, cap, &flags);
  }

  long RecvFlags(uint8_t* buf, size_t cap, uint32_t* flags) override {
    *flags = 0;
    if (next_ < segs_.size()) return Next(buf, cap, flags);

    // The frame lands in buf; only a super-frame spills over.
    VnetHdr h{};
    iovec iov[3] = {{&h, sizeof(h)}, {buf, cap}, {spill_.data(), spill_.size()}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 3;
    ssize_t n = recvmsg(fd_, &m, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    if (static_cast<size_t>(n) < sizeof(h)) return -EPROTO;
    size_t len = static_cast<size_t>(n) - sizeof(h);

    if (h.gso_type == kVnetGsoNone) {
      if (len > cap) return static_cast<long>(len);
      if (h.flags & kVnetNeedsCsum) {
        if (!CompleteChecksum(buf, len, h.csum_start, h.csum_offset)) return -EPROTO;
        *flags = KNI_BUF_F_CSUM_VALID;  // computed here, from the sender's own data
      } else if (h.flags & kVnetDataValid) {
        *flags = KNI_BUF_F_CSUM_VALID;  // verified by the receiving NIC
      }
      return static_cast<long>(len);
    }

    // A super-frame: gather it, cut it, hand out its segments one by one.
    if (len > cap + spill_.size()) return static_cast<long>(len);
    whole_.assign(buf, buf + (len < cap ? len : cap));
    if (len > cap) whole_.insert(whole_.end(), spill_.data(), spill_.data() + (len - cap));
    segs_.clear();
    out_.clear();
    next_ = 0;
    const uint8_t gso = h.gso_type & ~kVnetGsoEcn;
    const bool tcp = gso == kVnetGsoTcp4 || gso == kVnetGsoTcp6;
    // Anything else (UDP GSO) cannot be cut here: too big for a buffer.
    if (!tcp || !SegmentTcp(whole_.data(), whole_.size(), h.gso_size, &out_, &segs_)) return static_cast<long>(len);
    return Next(buf, cap, flags);
  }

  int Send(const uint8_t* buf, size_t len) override {
    // The socket expects a header on what it sends, too: an empty one.
    VnetHdr h{};
    iovec iov[2] = {{&h, sizeof(h)}, {const_cast<uint8_t*>(buf), len}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    return sendmsg(fd_, &m, MSG_DONTWAIT) < 0 ? -errno : 0;
  }

  bool TakesVnet() const override { return true; }

  long RecvVnet(const iovec* iov, int iovcnt, VnetHdr* h) override {
    // One copy, socket to KNI buffers: [header, their data areas...].
    rx_iov_.resize(static_cast<size_t>(iovcnt) + 1);
    rx_iov_[0] = {h, sizeof(*h)};
    std::copy(iov, iov + iovcnt, rx_iov_.begin() + 1);
    msghdr m{};
    m.msg_iov = rx_iov_.data();
    m.msg_iovlen = rx_iov_.size();
    // MSG_TRUNC: the frame's whole length even when it did not fit.
    ssize_t n = recvmsg(fd_, &m, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    if (static_cast<size_t>(n) < sizeof(*h)) return -EPROTO;
    return static_cast<long>(static_cast<size_t>(n) - sizeof(*h));
  }

  void SendFrames(const TxFrame* f, size_t n, bool* ok) override {
    // Each frame behind its own header, as the stack left it: the socket's
    // kernel checks the header, completes checksums and cuts super-frames
    // (or has the NIC do it), so a 64 KiB frame is one message here.
    constexpr size_t kBatch = 64;
    mmsghdr msgs[kBatch];
    size_t done = 0;
    while (done < n) {
      const size_t k = std::min(n - done, kBatch);
      tx_iov_.clear();
      for (size_t i = 0; i < k; i++) {
        const TxFrame& t = f[done + i];
        tx_iov_.push_back({const_cast<VnetHdr*>(&t.vnet), sizeof(t.vnet)});
        tx_iov_.insert(tx_iov_.end(), t.iov, t.iov + t.iovcnt);
      }
      // Pointers only now: the vector may have moved while it grew.
      for (size_t i = 0, at = 0; i < k; i++) {
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = tx_iov_.data() + at;
        msgs[i].msg_hdr.msg_iovlen = 1 + f[done + i].iovcnt;
        at += msgs[i].msg_hdr.msg_iovlen;
      }
      int r = sendmmsg(fd_, msgs, static_cast<unsigned>(k), MSG_DONTWAIT);
      // The first frame failed: it is a drop; the others get their own try.
      if (r <= 0) {
        ok[done++] = false;
        continue;
      }
      for (int i = 0; i < r; i++) ok[done++] = true;
    }
  }

 private:
  long Next(uint8_t* buf, size_t cap, uint32_t* flags) {
    const Segment& s = segs_[next_++];
    if (s.len > cap) return static_cast<long>(s.len);
    std::memcpy(buf, out_.data() + s.offset, s.len);
    *flags = KNI_BUF_F_CSUM_VALID;
    return static_cast<long>(s.len);
  }

  std::vector<uint8_t> spill_ = std::vector<uint8_t>(65536 + 256);
  std::vector<uint8_t> whole_, out_;
  std::vector<Segment> segs_;
  size_t next_ = 0;
  std::vector<iovec> rx_iov_, tx_iov_;
};

class TapPort : public FdPort {
 public:
  TapPort(int fd, bool vnet) : FdPort(fd), vnet_(vnet) {}
  long Recv(uint8_t* buf, size_t cap) override {
    if (vnet_) return RecvFinished(buf, cap);
    // A TAP read never returns more than the frame; a frame larger than cap
    // is cut, so ask for one byte more to notice.
    ssize_t n = read(fd_, buf, cap);
    if (n < 0) return errno == EAGAIN ? 0 : -errno;
    return n;
  }
  int Send(const uint8_t* buf, size_t len) override {
    if (!vnet_) return write(fd_, buf, len) < 0 ? -errno : 0;
    VnetHdr h{};
    iovec iov[2] = {{&h, sizeof(h)}, {const_cast<uint8_t*>(buf), len}};
    return writev(fd_, iov, 2) < 0 ? -errno : 0;
  }

  bool TakesVnet() const override { return vnet_; }

  long RecvVnet(const iovec* iov, int iovcnt, VnetHdr* h) override {
    rx_iov_.resize(static_cast<size_t>(iovcnt) + 1);
    rx_iov_[0] = {h, sizeof(*h)};
    std::copy(iov, iov + iovcnt, rx_iov_.begin() + 1);
    ssize_t n = readv(fd_, rx_iov_.data(), static_cast<int>(rx_iov_.size()));
    if (n < 0) return errno == EAGAIN ? 0 : -errno;
    if (static_cast<size_t>(n) < sizeof(*h)) return -EPROTO;
    return static_cast<long>(static_cast<size_t>(n) - sizeof(*h));
  }

  void SendFrames(const TxFrame* f, size_t n, bool* ok) override {
    if (!vnet_) return Port::SendFrames(f, n, ok);
    // tun takes the header's offloads as they are: one writev per frame.
    for (size_t i = 0; i < n; i++) {
      tx_iov_.assign(1, {const_cast<VnetHdr*>(&f[i].vnet), sizeof(f[i].vnet)});
      tx_iov_.insert(tx_iov_.end(), f[i].iov, f[i].iov + f[i].iovcnt);
      ok[i] = writev(fd_, tx_iov_.data(), static_cast<int>(tx_iov_.size())) >= 0;
    }
  }

 private:
  // Recv() on a TAP with headers: a frame the stack left partial (checksum
  // owed) is completed; a super-frame cannot be cut into one buffer, so it
  // reports its length (the caller drops it as too big).
  long RecvFinished(uint8_t* buf, size_t cap) {
    VnetHdr h{};
    iovec iov{buf, cap};
    long n = RecvVnet(&iov, 1, &h);
    if (n <= 0 || static_cast<size_t>(n) > cap) return n;
    if (h.gso_type != kVnetGsoNone) return static_cast<long>(cap) + 1;
    if ((h.flags & kVnetNeedsCsum) && !CompleteChecksum(buf, static_cast<size_t>(n), h.csum_start, h.csum_offset))
      return -EPROTO;
    return n;
  }

  bool vnet_;
  std::vector<iovec> rx_iov_, tx_iov_;
};

class GeneratorPort : public Port {
 public:
  GeneratorPort(std::vector<uint8_t> frame, uint64_t count, uint64_t pps)
      : frame_(std::move(frame)), count_(count), pps_(pps), start_(std::chrono::steady_clock::now()) {}

  long Recv(uint8_t* buf, size_t cap) override {
    if (count_ != 0 && sent_ >= count_) return 0;
    if (pps_ != 0) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count();
      if (sent_ >= static_cast<uint64_t>(ns) / 1000000000.0 * pps_ + 1) return 0;
    }
    sent_++;
    std::memcpy(buf, frame_.data(), frame_.size() < cap ? frame_.size() : cap);
    return static_cast<long>(frame_.size());
  }
  int Send(const uint8_t*, size_t) override { return 0; }  // the sink: counted by the caller
  bool Holds() const override { return true; }
  bool Pending() const override { return count_ == 0 || sent_ < count_; }

 private:
  std::vector<uint8_t> frame_;
  uint64_t count_, pps_, sent_ = 0;
  std::chrono::steady_clock::time_point start_;
};

class SinkPort : public Port {
 public:
  long Recv(uint8_t*, size_t) override { return 0; }
  int Send(const uint8_t*, size_t) override { return 0; }  // counted by the caller
};

}  // namespace

std::unique_ptr<Port> OpenPacketPort(const std::string& ifname, int* err) {
  unsigned int ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) {
    *err = errno;
    return nullptr;
  }
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) {
    *err = errno;
    return nullptr;
  }
  auto port = std::make_unique<PacketPort>(fd);
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(ifindex);
  packet_mreq mr{};
  mr.mr_ifindex = static_cast<int>(ifindex);
  mr.mr_type = PACKET_MR_PROMISC;
  int one = 1;
  // Room for a burst of super-frames: each is 64 KiB, and the default
  // receive buffer (about 200 KiB) holds three, so a peer's TSO stream
  // overflowed it while the data plane was busy. A TAP queues 1000 frames
  // of any size. Without CAP_NET_ADMIN the limit is net.core.rmem_max.
  int rcvbuf = kPortRcvBuf;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) < 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) {
    *err = errno;
    return nullptr;
  }
  return port;
}

std::unique_ptr<Port> OpenTapPort(const std::string& ifname, bool vnet, int* err) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return nullptr;
  }
  auto port = std::make_unique<TapPort>(fd, vnet);
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    *err = errno;
    return nullptr;
  }
  // With headers the device offers checksum and TSO offloads to its stack,
  // as a vhost-net guest with them would: the stack hands over super-frames.
  int hdr = sizeof(VnetHdr);
  if (vnet && (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
               ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) < 0)) {
    *err = errno;
    return nullptr;
  }
  return port;
}

std::unique_ptr<Port> OpenGeneratorPort(std::vector<uint8_t> frame, uint64_t count, uint64_t pps) {
  return std::make_unique<GeneratorPort>(std::move(frame), count, pps);
}

std::unique_ptr<Port> OpenSinkPort() { return std::make_unique<SinkPort>(); }

}  // namespace kniv
