// SPDX-License-Identifier: MIT
// The JS binding: info(), Control (/dev/kni), Interface, DataPlane. Inputs
// arrive validated by native/index.ts; here they are only converted.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <napi.h>

#include "binding_util.h"
#include "dataplane.h"
#include "iface.h"
#include "kni_uapi.h"
#include "port.h"
#include "relay_binding.h"

namespace kniv {

namespace {

uint32_t U32(const Napi::Object& o, const char* key, uint32_t def = 0) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : def;
}

void Str(const Napi::Object& o, const char* key, char* dst, size_t size) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) return;
  std::string s = v.As<Napi::String>().Utf8Value();
  std::strncpy(dst, s.c_str(), size);  // an over-long name reaches the kernel unterminated: it refuses
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : KNI_DEVICE_PATH;
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw SystemError(env, errno, "open");
  ControlFd ctl(fd);
  kni_info ki{};
  ki.size = sizeof(ki);
  if (ctl.Ioctl(KNI_IOCTL_INFO, &ki) < 0) throw SystemError(env, errno, "ioctl");
  Napi::Object out = Napi::Object::New(env);
  out.Set("abiVersion", ki.abi_version);
  out.Set("kthreadMode", ki.kthread_mode == KNI_KTHREAD_MULTIPLE ? "multiple" : "single");
  out.Set("interfaces", ki.ifaces);
  out.Set("sharedMemoryBytes", Napi::Number::New(env, static_cast<double>(ki.shm_bytes)));
  out.Set("threads", ki.threads);
  out.Set("sockets", ki.sockets);
  return out;
}

// Writes sock_en = 1 for the named interface, which installs the KNI socket's
// descriptor in this process without O_CLOEXEC, and marks it close-on-exec at
// once so that no child node spawns inherits it by accident; a launcher hands
// it to qemu through a stdio slot (dup2 clears the flag in the child).
Napi::Value EnableSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string dir = "/sys/class/net/" + info[0].As<Napi::String>().Utf8Value() + "/";
  int en = open((dir + "sock_en").c_str(), O_WRONLY | O_CLOEXEC);
  if (en < 0) throw SystemError(env, errno, "open");
  ssize_t w = write(en, "1", 1);
  int err = errno;
  close(en);
  if (w < 0) throw SystemError(env, err, "write");

  char buf[32] = {};
  int rd = open((dir + "sock_fd").c_str(), O_RDONLY | O_CLOEXEC);
  if (rd < 0) throw SystemError(env, errno, "open");
  ssize_t n = read(rd, buf, sizeof(buf) - 1);
  err = errno;
  close(rd);
  if (n < 0) throw SystemError(env, err, "read");
  int fd = std::atoi(buf);
  struct stat st;
  // Another writer may have detached it meanwhile: only a socket of ours will do.
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) throw SystemError(env, ENOENT, "sock_fd");
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) throw SystemError(env, errno, "fcntl");
  return Napi::Number::New(env, fd);
}

class InterfaceWrap : public Napi::ObjectWrap<InterfaceWrap> {
 public:
  static Napi::FunctionReference ctor;
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "Interface",
                                   {InstanceMethod("release", &InterfaceWrap::Release),
                                    InstanceMethod("openSocket", &InterfaceWrap::OpenSocket),
                                    InstanceMethod("stats", &InterfaceWrap::GetStats)});
    ctor = Napi::Persistent(f);
    exports.Set("Interface", f);
  }
  explicit InterfaceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<InterfaceWrap>(info) {}

  std::shared_ptr<Interface> iface;

 private:
  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (iface->busy.load()) throw SystemError(info.Env(), EBUSY, "release");
    int r = iface->Release();
    if (r < 0) throw SystemError(info.Env(), -r, "ioctl");
    return info.Env().Undefined();
  }
  Napi::Value OpenSocket(const Napi::CallbackInfo& info) {
    int fd = iface->OpenSocket(info[0].ToBoolean());
    if (fd < 0) throw SystemError(info.Env(), -fd, "ioctl");
    return Napi::Number::New(info.Env(), fd);
  }
  Napi::Value GetStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const Stats& s = iface->stats;
    return CountersObject(env, {{"toKernelPackets", s.to_kernel_packets},
                                {"toKernelBytes", s.to_kernel_bytes},
                                {"toPortPackets", s.to_port_packets},
                                {"toPortBytes", s.to_port_bytes},
                                {"toKernelGso", s.to_kernel_gso},
                                {"toPortGso", s.to_port_gso},
                                {"toPortCut", s.to_port_cut},
                                {"dropNoBuffer", s.drop_no_buffer},
                                {"dropRxFull", s.drop_rx_full},
                                {"dropTooBig", s.drop_too_big},
                                {"dropPortError", s.drop_port_error},
                                {"badBuffer", s.bad_buffer},
                                {"portErrors", s.port_errors},
                                {"requests", s.requests},
                                {"sleeps", s.sleeps},
                                {"kernelKicks", s.kernel_kicks}});
  }
};
Napi::FunctionReference InterfaceWrap::ctor;

class ControlWrap : public Napi::ObjectWrap<ControlWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    exports.Set("Control", DefineClass(env, "Control",
                                       {InstanceMethod("create", &ControlWrap::Create),
                                        InstanceMethod("close", &ControlWrap::Close)}));
  }
  explicit ControlWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ControlWrap>(info) {
    std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : KNI_DEVICE_PATH;
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) throw SystemError(info.Env(), errno, "open");
    ctl_ = std::make_shared<ControlFd>(fd);
  }

 private:
  Napi::Value Create(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ctl_) throw SystemError(env, EBADF, "create");
    Napi::Object o = info[0].As<Napi::Object>();
    kni_create req{};
    req.size = sizeof(req);
    Str(o, "name", req.name, sizeof(req.name));
    Napi::Value mac = o.Get("mac");
    if (mac.IsBuffer() && mac.As<Napi::Buffer<uint8_t>>().Length() == 6)
      std::memcpy(req.mac, mac.As<Napi::Buffer<uint8_t>>().Data(), 6);
    req.mtu = U32(o, "mtu");
    req.min_mtu = U32(o, "minMtu");
    req.max_mtu = U32(o, "maxMtu");
    req.fifo_entries = U32(o, "fifoEntries");
    req.buf_count = U32(o, "bufCount");
    req.buf_size = U32(o, "bufSize");
    req.cpu = U32(o, "cpu");
    req.flags = (o.Get("bind").ToBoolean() ? KNI_CREATE_F_BIND : 0) |
                (o.Get("offloads").ToBoolean() ? KNI_CREATE_F_OFFLOADS : 0);
    Str(o, "driverName", req.drv_name, sizeof(req.drv_name));
    Str(o, "driverVersion", req.drv_version, sizeof(req.drv_version));
    Str(o, "busInfo", req.bus_info, sizeof(req.bus_info));
    Str(o, "firmwareVersion", req.fw_version, sizeof(req.fw_version));

    int err = 0;
    const char* syscall = "";
    Interface* raw = Interface::Create(ctl_, &req, &err, &syscall);
    if (!raw) throw SystemError(env, err, syscall);
    Napi::Object js = InterfaceWrap::ctor.New({});
    InterfaceWrap::Unwrap(js)->iface.reset(raw);
    const kni_create& k = raw->info();
    js.Set("id", k.id);
    js.Set("name", std::string(k.name, strnlen(k.name, sizeof(k.name))));
    js.Set("ifindex", k.ifindex);
    js.Set("mac", Napi::Buffer<uint8_t>::Copy(env, k.mac, 6));
    js.Set("mtu", k.mtu);
    js.Set("minMtu", k.min_mtu);
    js.Set("maxMtu", k.max_mtu);
    js.Set("bufCount", k.buf_count);
    js.Set("bufSize", k.buf_size);
    js.Set("fifoEntries", k.fifo_entries);
    return js;
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (ctl_) ctl_->Close();
    ctl_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<ControlFd> ctl_;
};

struct PostedRequest {
  uint32_t iface_id;
  Request r;
};

class DataPlaneWrap : public Napi::ObjectWrap<DataPlaneWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    exports.Set("DataPlane", DefineClass(env, "DataPlane", {InstanceMethod("stop", &DataPlaneWrap::Stop)}));
  }

  // new DataPlane(links, onNotify | undefined, { idleUs, cpu })
  explicit DataPlaneWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DataPlaneWrap>(info) {
    Napi::Env env = info.Env();
    Napi::Array arr = info[0].As<Napi::Array>();
    Napi::Object opts = info[2].As<Napi::Object>();
    std::vector<Link> links;
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Object l = arr.Get(i).As<Napi::Object>();
      auto iface = InterfaceWrap::Unwrap(l.Get("iface").As<Napi::Object>())->iface;
      if (iface->released()) Fail(links, env, ENODEV, "dataplane");
      bool expected = false;
      if (!iface->busy.compare_exchange_strong(expected, true)) Fail(links, env, EBUSY, "dataplane");
      int err;
      const char* syscall;
      std::unique_ptr<Port> port = OpenPortSpec(l.Get("port").As<Napi::Object>(), &err, &syscall);
      if (!port) {
        iface->busy.store(false);
        Fail(links, env, err, syscall);
      }
      links.push_back({std::move(iface), std::move(port)});
    }

    bool handles = info[1].IsFunction();
    if (handles) tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "kniv-notify", 0, 1);
    DataPlane::Post post = [this, handles](const std::shared_ptr<Interface>& k, const Request& r) {
      if (!handles) return false;
      auto* pr = new PostedRequest{k->info().id, r};
      napi_status st = tsfn_.NonBlockingCall(pr, [](Napi::Env env, Napi::Function cb, PostedRequest* p) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("seq", p->r.seq);
        o.Set("type", p->r.type);
        o.Set("value", p->r.value);
        o.Set("mac", Napi::Buffer<uint8_t>::Copy(env, p->r.mac, 6));
        uint32_t id = p->iface_id;
        delete p;
        cb.Call({Napi::Number::New(env, id), o});
      });
      if (st != napi_ok) delete pr;
      return st == napi_ok;
    };
    dp_ = std::make_unique<DataPlane>(std::move(links), std::move(post), opts.Get("idleUs").As<Napi::Number>().Uint32Value(),
                                      opts.Get("cpu").As<Napi::Number>().Int32Value());
  }

  ~DataPlaneWrap() override { Shutdown(); }

 private:
  [[noreturn]] static void Fail(std::vector<Link>& links, Napi::Env env, int err, const char* syscall) {
    for (auto& l : links) l.iface->busy.store(false);
    throw SystemError(env, err, syscall);
  }
  void Shutdown() {
    if (dp_) {
      dp_->Stop();
      dp_.reset();
      if (tsfn_) tsfn_.Release();
    }
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  std::unique_ptr<DataPlane> dp_;
  Napi::ThreadSafeFunction tsfn_;
};

}  // namespace

}  // namespace kniv

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, KNI_ABI_VERSION));
  exports.Set("info", Napi::Function::New(env, kniv::Info, "info"));
  exports.Set("enableSocket", Napi::Function::New(env, kniv::EnableSocket, "enableSocket"));
  kniv::InterfaceWrap::Init(env, exports);
  kniv::ControlWrap::Init(env, exports);
  kniv::DataPlaneWrap::Init(env, exports);
  kniv::InitRelayBinding(env, exports);
  return exports;
}

NODE_API_MODULE(kniv, InitAddon)
