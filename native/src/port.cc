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

#include <cerrno>
#include <chrono>
#include <cstring>

namespace kniv {

namespace {

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
    ssize_t n = recv(fd_, buf, cap, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    return n;
  }
  int Send(const uint8_t* buf, size_t len) override {
    return send(fd_, buf, len, MSG_DONTWAIT) < 0 ? -errno : 0;
  }
};

class TapPort : public FdPort {
 public:
  using FdPort::FdPort;
  long Recv(uint8_t* buf, size_t cap) override {
    // A TAP read never returns more than the frame; a frame larger than cap
    // is cut, so ask for one byte more to notice.
    ssize_t n = read(fd_, buf, cap);
    if (n < 0) return errno == EAGAIN ? 0 : -errno;
    return n;
  }
  int Send(const uint8_t* buf, size_t len) override {
    return write(fd_, buf, len) < 0 ? -errno : 0;
  }
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
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) < 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) {
    *err = errno;
    return nullptr;
  }
  return port;
}

std::unique_ptr<Port> OpenTapPort(const std::string& ifname, int* err) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return nullptr;
  }
  auto port = std::make_unique<TapPort>(fd);
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
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
