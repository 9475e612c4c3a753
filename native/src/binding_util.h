// SPDX-License-Identifier: MIT
// What the JS bindings share: errors shaped like Node's system errors, port
// specs (validated by native/index.ts) turned into ports, and counters read
// into plain JS objects.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>

#include "port.h"

namespace kniv {

// An Error with errno and syscall set, its message "syscall: strerror(err)".
Napi::Error SystemError(Napi::Env env, int err, const char* syscall);

// Opens the port a spec { kind, ifname | frame, count, pps } names. On
// failure returns null with *err the errno and *syscall the failing call.
std::unique_ptr<Port> OpenPortSpec(const Napi::Object& spec, int* err, const char** syscall);

struct Counter {
  const char* key;
  const std::atomic<uint64_t>& value;
};

// { key: value, ... } from counters another thread writes (relaxed reads).
Napi::Object CountersObject(Napi::Env env, std::initializer_list<Counter> counters);

}  // namespace kniv
