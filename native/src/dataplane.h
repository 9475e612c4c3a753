// SPDX-License-Identifier: MIT
// A data plane thread: forwards between one or more KNI interfaces and their
// ports. It never touches JS; control requests reach JS through a callback
// that the binding runs on the JS thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "iface.h"
#include "packet_thread.h"
#include "port.h"

namespace kniv {

struct Link {
  std::shared_ptr<Interface> iface;
  std::unique_ptr<Port> port;
};

class DataPlane {
 public:
  // post(iface, request) hands a request to JS; it returns false when nobody
  // handles requests, and the data plane then answers with default_result.
  using Post = std::function<bool(const std::shared_ptr<Interface>&, const Request&)>;

  DataPlane(std::vector<Link> links, Post post, int32_t default_result, unsigned idle_us, int cpu);
  ~DataPlane();
  void Stop();

 private:
  void Run();
  bool Service(Link& l);

  std::vector<Link> links_;
  Post post_;
  int32_t default_result_;
  unsigned idle_us_;
  int cpu_;
  std::atomic<bool> stop_{false};
  Waker waker_;
  std::thread thread_;
};

}  // namespace kniv
