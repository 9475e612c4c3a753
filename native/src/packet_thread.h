// SPDX-License-Identifier: MIT
// What the packet threads (a data plane, a relay) share: their counters, and
// a loop that runs passes until stopped, waits a little on the ports when a
// pass moved nothing, and sleeps until woken once it has been idle a while.
#pragma once

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <vector>

namespace kniv {

// Counters are written by one packet thread and read from JS at any time:
// relaxed is enough, nothing else is published through them.
inline void Add(std::atomic<uint64_t>& c, uint64_t n) { c.fetch_add(n, std::memory_order_relaxed); }

// Idle passes in a row (each waiting up to idle_us) before a loop may sleep.
constexpr unsigned kIdlePasses = 32;
// Asleep, a loop still looks around this often: a bound, not a clock.
constexpr long kSleepNs = 1000L * 1000 * 1000;

// An eventfd that ends a loop's sleep: Stop() writes it, and a data plane
// registers it with the kernel (KNI_IOCTL_NOTIFY) for its interfaces.
class Waker {
 public:
  Waker() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Waker() {
    if (fd_ >= 0) close(fd_);
  }
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;
  int fd() const { return fd_; }
  void Wake() {
    uint64_t one = 1;
    if (write(fd_, &one, sizeof(one)) < 0) {
      // EAGAIN: the counter is already non-zero, which is all a wake needs.
    }
  }
  void Drain() {
    uint64_t n;
    if (read(fd_, &n, sizeof(n)) < 0) {
      // EAGAIN: nothing was signalled.
    }
  }

 private:
  int fd_;
};

// Names the calling thread, pins it to `cpu` (-1: any), then calls pass()
// until `stop` is set. After a pass that returns false (nothing moved) it
// asks prepare_sleep(deep) whether every source of work can wake it (and
// announces the wait to them: the kernel then signals the waker instead of
// leaving a frame to wait out the timer). If so it waits on `fds` and the
// waker, up to idle_us, or with no short timeout once kIdlePasses idle passes
// came in a row (deep); then it calls end_sleep(). If not (a generator that
// no fd announces), it waits up to idle_us on the fds alone. Whoever sets
// `stop` wakes the waker.
template <typename Pass, typename PrepareSleep, typename EndSleep>
void RunPacketLoop(const char* name, int cpu, std::vector<pollfd> fds, unsigned idle_us, const std::atomic<bool>& stop,
                   Waker& waker, Pass pass, PrepareSleep prepare_sleep, EndSleep end_sleep) {
  pthread_setname_np(pthread_self(), name);
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
  fds.push_back({waker.fd(), POLLIN, 0});
  unsigned idle = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    if (pass()) {
      idle = 0;
      continue;
    }
    const bool deep = ++idle >= kIdlePasses;
    if (deep) idle = 0;
    const bool announced = prepare_sleep(deep);
    if (!announced) end_sleep();
    long ns = announced && deep ? kSleepNs : static_cast<long>(idle_us) * 1000;
    timespec ts{ns / 1000000000L, ns % 1000000000L};
    // A signal that comes late (after end_sleep) would keep the waker
    // readable and turn every short wait into a spin: drain it whenever it fired.
    if (ppoll(fds.data(), fds.size(), &ts, nullptr) > 0 && (fds.back().revents & POLLIN)) waker.Drain();
    if (announced) end_sleep();
  }
}

}  // namespace kniv
