// SPDX-License-Identifier: MIT
// The JS binding of a port relay: new PortRelay(a, b, { idleUs, cpu }),
// stats() (also after stop()), stop(). Port specs arrive validated by native/index.ts.
#include "relay_binding.h"

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "port.h"
#include "relay.h"

namespace kniv {

namespace {

Napi::Error RelayError(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

std::unique_ptr<Port> OpenPortSpec(Napi::Env env, const Napi::Object& p) {
  std::string kind = p.Get("kind").As<Napi::String>().Utf8Value();
  int err = 0;
  std::unique_ptr<Port> port;
  if (kind == "packet") {
    port = OpenPacketPort(p.Get("ifname").As<Napi::String>().Utf8Value(), &err);
  } else if (kind == "tap") {
    port = OpenTapPort(p.Get("ifname").As<Napi::String>().Utf8Value(), &err);
  } else if (kind == "sink") {
    port = OpenSinkPort();
  } else {
    Napi::Buffer<uint8_t> f = p.Get("frame").As<Napi::Buffer<uint8_t>>();
    port = OpenGeneratorPort(std::vector<uint8_t>(f.Data(), f.Data() + f.Length()),
                             static_cast<uint64_t>(p.Get("count").As<Napi::Number>().Int64Value()),
                             static_cast<uint64_t>(p.Get("pps").As<Napi::Number>().Int64Value()));
  }
  if (!port) throw RelayError(env, err, kind == "tap" ? "ioctl" : "socket");
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
    std::unique_ptr<Port> a = OpenPortSpec(env, info[0].As<Napi::Object>());
    std::unique_ptr<Port> b = OpenPortSpec(env, info[1].As<Napi::Object>());
    Napi::Object opts = info[2].As<Napi::Object>();
    relay_ = std::make_unique<Relay>(std::move(a), std::move(b), opts.Get("idleUs").As<Napi::Number>().Uint32Value(),
                                     opts.Get("cpu").As<Napi::Number>().Int32Value());
  }

 private:
  Napi::Value GetStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto dir = [&](const RelayDirectionStats& s) {
      Napi::Object o = Napi::Object::New(env);
      auto set = [&](const char* k, const std::atomic<uint64_t>& v) {
        o.Set(k, Napi::Number::New(env, static_cast<double>(v.load(std::memory_order_relaxed))));
      };
      set("packets", s.packets);
      set("bytes", s.bytes);
      set("dropSend", s.drop_send);
      set("dropTooBig", s.drop_too_big);
      set("recvErrors", s.recv_errors);
      return o;
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
