// SPDX-License-Identifier: MIT
#include <napi.h>

#include <cstring>
#include <string>

#include "errors.h"
#include "kni_control.h"
#include "kni_uapi.h"

namespace kniv {

Napi::Error SystemError(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

}  // namespace kniv

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, KNI_ABI_VERSION));
  exports.Set("info", Napi::Function::New(env, kniv::KniInfo, "info"));
  return exports;
}

NODE_API_MODULE(kniv, InitAddon)
