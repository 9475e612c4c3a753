// SPDX-License-Identifier: MIT
// The JS binding of a port relay: new PortRelay(a, b, { idleUs, cpu }),
// stats() (also after stop()), stop(). Port specs arrive validated by native/index.ts.
#include "relay_binding.h"

#include <memory>

#include "binding_util.h"
#include "relay.h"

namespace kniv {

namespace {

std::unique_ptr<Port> OpenPort(Napi::Env env, const Napi::Object& spec) {
  int err;
  const char* syscall;
  std::unique_ptr<Port> port = OpenPortSpec(spec, &err, &syscall);
  if (!port) throw SystemError(env, err, syscall);
  return port;
}

class RelayWrap : public Napi::ObjectWrap<RelayWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    exports.Set("PortRelay", DefineClass(env, "PortRelay",
                                         {InstanceMethod("stats", &RelayWrap::GetStats),
                                          InstanceMethod("stop", &RelayWrap::Stop)}));
  }

  explicit RelayWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RelayWrap>(info) {
    Napi::Env env = info.Env();
    // Both ports are open before the thread starts; a failure closes the first.
    std::unique_ptr<Port> a = OpenPort(env, info[0].As<Napi::Object>());
    std::unique_ptr<Port> b = OpenPort(env, info[1].As<Napi::Object>());
    Napi::Object opts = info[2].As<Napi::Object>();
    relay_ = std::make_unique<Relay>(std::move(a), std::move(b), opts.Get("idleUs").As<Napi::Number>().Uint32Value(),
                                     opts.Get("cpu").As<Napi::Number>().Int32Value());
  }

 private:
  Napi::Value GetStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto dir = [&](const RelayDirectionStats& s) {
      return CountersObject(env, {{"packets", s.packets},
                                  {"bytes", s.bytes},
                                  {"dropSend", s.drop_send},
                                  {"dropTooBig", s.drop_too_big},
                                  {"recvErrors", s.recv_errors}});
    };
    Napi::Object o = Napi::Object::New(env);
    o.Set("aToB", dir(relay_->a_to_b));
    o.Set("bToA", dir(relay_->b_to_a));
    return o;
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    relay_->Stop();
    return info.Env().Undefined();
  }

  std::unique_ptr<Relay> relay_;
};

}  // namespace

void InitRelayBinding(Napi::Env env, Napi::Object exports) { RelayWrap::Init(env, exports); }

}  // namespace kniv
