// SPDX-License-Identifier: MIT
#pragma once

#include <napi.h>

namespace kniv {

// info(path?: string): { abiVersion, kthreadMode } from KNI_IOCTL_INFO.
Napi::Value KniInfo(const Napi::CallbackInfo& info);

}  // namespace kniv
