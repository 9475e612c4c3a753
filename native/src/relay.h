// SPDX-License-Identifier: MIT
// A port relay: a thread that joins two ports directly, with no KNI
// interface between them. Frames read from one are sent on the other, both
// ways. It is the baseline the benchmarks set KNI against (generator <-> TAP:
// the same frames through a TAP device instead of the KNI FIFOs), and like a
// data plane thread it never touches JS.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "packet_thread.h"
#include "port.h"

namespace kniv {

// Counters of one direction, written by the relay thread, read from JS at any time.
struct RelayDirectionStats {
  std::atomic<uint64_t> packets{0}, bytes{0};  // read from the source and sent
  std::atomic<uint64_t> drop_send{0};          // the destination refused the frame
  std::atomic<uint64_t> drop_too_big{0};       // longer than the relay's buffer
  std::atomic<uint64_t> recv_errors{0};        // the source failed a read
};

class Relay {
 public:
  Relay(std::unique_ptr<Port> a, std::unique_ptr<Port> b, unsigned idle_us, int cpu);
  ~Relay();
  void Stop();

  RelayDirectionStats a_to_b, b_to_a;

 private:
  void Run();
  // Up to one burst from src to dst; true if it moved (or dropped) anything.
  bool Forward(Port& src, Port& dst, RelayDirectionStats& s);

  std::unique_ptr<Port> a_, b_;
  unsigned idle_us_;
  int cpu_;
  std::vector<uint8_t> buf_;
  std::atomic<bool> stop_{false};
  Waker waker_;
  std::thread thread_;
};

}  // namespace kniv
