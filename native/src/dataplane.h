// SPDX-License-Identifier: MIT
// A data plane thread: forwards between one or more KNI interfaces and their
// ports. It never touches JS; control requests reach JS through a callback
// that the binding runs on the JS thread.
#pragma once

#include <sys/uio.h>

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
  // post(iface, notification) hands a control notification (a change the
  // kernel already applied) to JS; false when nobody listens.
  using Post = std::function<bool(const std::shared_ptr<Interface>&, const Request&)>;

  DataPlane(std::vector<Link> links, Post post, unsigned idle_us, int cpu);
  ~DataPlane();
  void Stop();

 private:
  void Run();
  // One pass over one link, and its parts; each says whether it moved anything.
  bool Service(Link& l);
  bool FreeChains(Interface& k);
  bool ToPort(Link& l);
  bool FromPort(Link& l, uint32_t* queued);
  bool FromPortVnet(Link& l, uint32_t* queued);

  std::vector<Link> links_;
  Post post_;
  unsigned idle_us_;
  int cpu_;
  std::atomic<bool> stop_{false};
  Waker waker_;
  // Scratch space of the passes, kept so that they do not allocate: the
  // pieces of a tx_q batch and the buffers it took, the buffers posted to a
  // port's receive.
  std::vector<iovec> tx_iov_, rx_iov_;
  std::vector<uint32_t> taken_;
  std::thread thread_;
};

}  // namespace kniv
