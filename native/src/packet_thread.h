// SPDX-License-Identifier: MIT
// What the packet threads (a data plane, a relay) share: their counters, and
// a loop that runs passes until stopped and sleeps on the ports when a pass
// moved nothing.
#pragma once

#include <poll.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <vector>

namespace kniv {

// Counters are written by one packet thread and read from JS at any time:
// relaxed is enough, nothing else is published through them.
inline void Add(std::atomic<uint64_t>& c, uint64_t n) { c.fetch_add(n, std::memory_order_relaxed); }

// Names the calling thread, pins it to `cpu` (-1: any), then calls pass()
// until `stop` is set. After a pass that returns false (nothing moved) it
// waits up to idle_us for one of `fds` to become readable; the timeout also
// bounds how late `stop` is seen.
template <typename Pass>
void RunPacketLoop(const char* name, int cpu, std::vector<pollfd> fds, unsigned idle_us, const std::atomic<bool>& stop,
                   Pass pass) {
  pthread_setname_np(pthread_self(), name);
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
  while (!stop.load(std::memory_order_relaxed)) {
    if (!pass()) {
      timespec ts{0, static_cast<long>(idle_us) * 1000};
      ppoll(fds.data(), fds.size(), &ts, nullptr);
    }
  }
}

}  // namespace kniv
