// SPDX-License-Identifier: MIT
// Control calls on /dev/kni. open + one ioctl on a character device take
// microseconds and never block on I/O, so they run synchronously.
#include "kni_control.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"
#include "kni_uapi.h"

namespace kniv {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Napi::Value KniInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = KNI_DEVICE_PATH;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
    path = info[0].As<Napi::String>().Utf8Value();
  }

  Fd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) throw SystemError(env, errno, "open");

  struct kni_info ki;
  std::memset(&ki, 0, sizeof(ki));
  ki.size = sizeof(ki);
  if (ioctl(fd.get(), KNI_IOCTL_INFO, &ki) < 0) throw SystemError(env, errno, "ioctl");

  Napi::Object out = Napi::Object::New(env);
  out.Set("abiVersion", Napi::Number::New(env, ki.abi_version));
  out.Set("kthreadMode",
          Napi::String::New(env, ki.kthread_mode == KNI_KTHREAD_MULTIPLE ? "multiple" : "single"));
  return out;
}

}  // namespace kniv
