// SPDX-License-Identifier: MIT
#pragma once

#include <napi.h>

namespace kniv {

// A JS Error shaped like Node's system errors: message "syscall: strerror",
// with `errno` (positive, as the kernel returns it) and `syscall`. The TS
// wrapper adds `code` from os.constants.errno.
Napi::Error SystemError(Napi::Env env, int err, const char* syscall);

}  // namespace kniv
