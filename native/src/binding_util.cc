// SPDX-License-Identifier: MIT
#include "binding_util.h"

#include <cstring>
#include <string>
#include <vector>

namespace kniv {

Napi::Error SystemError(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

std::unique_ptr<Port> OpenPortSpec(const Napi::Object& p, int* err, const char** syscall) {
  std::string kind = p.Get("kind").As<Napi::String>().Utf8Value();
  *err = 0;
  *syscall = kind == "tap" ? "ioctl" : "socket";
  if (kind == "packet") return OpenPacketPort(p.Get("ifname").As<Napi::String>().Utf8Value(), err);
  if (kind == "tap") {
    Napi::Value v = p.Get("vnetHdr");
    return OpenTapPort(p.Get("ifname").As<Napi::String>().Utf8Value(), v.IsBoolean() && v.As<Napi::Boolean>().Value(), err);
  }
  if (kind == "sink") return OpenSinkPort();
  Napi::Buffer<uint8_t> f = p.Get("frame").As<Napi::Buffer<uint8_t>>();
  return OpenGeneratorPort(std::vector<uint8_t>(f.Data(), f.Data() + f.Length()),
                           static_cast<uint64_t>(p.Get("count").As<Napi::Number>().Int64Value()),
                           static_cast<uint64_t>(p.Get("pps").As<Napi::Number>().Int64Value()));
}

Napi::Object CountersObject(Napi::Env env, std::initializer_list<Counter> counters) {
  Napi::Object o = Napi::Object::New(env);
  for (const Counter& c : counters)
    o.Set(c.key, Napi::Number::New(env, static_cast<double>(c.value.load(std::memory_order_relaxed))));
  return o;
}

}  // namespace kniv
