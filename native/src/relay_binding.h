// SPDX-License-Identifier: MIT
#pragma once

#include <napi.h>

namespace kniv {

// Adds the PortRelay class to the addon's exports.
void InitRelayBinding(Napi::Env env, Napi::Object exports);

}  // namespace kniv
