// Small synchronous filesystem syscalls: mknod and the l*xattr family.
// Paths are strings or Buffers of raw bytes (names that are not UTF-8).
// They are quick metadata operations, so they run inline on the JS thread.
#include "addon.h"
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <vector>

namespace img {

// mknod(path, mode, dev): mode carries the S_IF* type bits; dev is st_rdev's encoding.
static Napi::Value Mknod(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgPath(info, 0, "path");
  mode_t mode = static_cast<mode_t>(ArgInt(info, 1, "mode"));
  if (info.Length() < 3 || !info[2].IsNumber()) throw Napi::TypeError::New(env, "dev must be a number");
  dev_t dev = static_cast<dev_t>(info[2].As<Napi::Number>().Int64Value());
  if (::mknod(path.c_str(), mode, dev) < 0) throw ErrnoError(env, errno, "mknod", path);
  return env.Undefined();
}

static Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgPath(info, 0, "path");
  std::string name = ArgString(info, 1, "name");
  if (info.Length() < 3 || !info[2].IsBuffer()) throw Napi::TypeError::New(env, "value must be a Buffer");
  auto buf = info[2].As<Napi::Buffer<uint8_t>>();
  if (::lsetxattr(path.c_str(), name.c_str(), buf.Data(), buf.Length(), 0) < 0)
    throw ErrnoError(env, errno, "lsetxattr", path);
  return env.Undefined();
}

// Reads one attribute; the size can change between the probe and the read, so retry on ERANGE.
static Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgPath(info, 0, "path");
  std::string name = ArgString(info, 1, "name");
  std::vector<char> buf(256);
  for (;;) {
    ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    if (n >= 0) return Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(n));
    if (errno == ENODATA) return env.Null();
    if (errno != ERANGE) throw ErrnoError(env, errno, "lgetxattr", path);
    n = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (n < 0) throw ErrnoError(env, errno, "lgetxattr", path);
    buf.resize(static_cast<size_t>(n) + 1);
  }
}

static Napi::Value Llistxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgPath(info, 0, "path");
  std::vector<char> buf(1024);
  ssize_t n;
  for (;;) {
    n = ::llistxattr(path.c_str(), buf.data(), buf.size());
    if (n >= 0) break;
    if (errno != ERANGE) throw ErrnoError(env, errno, "llistxattr", path);
    n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) throw ErrnoError(env, errno, "llistxattr", path);
    buf.resize(static_cast<size_t>(n) + 1);
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t idx = 0;
  for (ssize_t i = 0; i < n;) {
    std::string name(buf.data() + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    if (!name.empty()) out.Set(idx++, Napi::String::New(env, name));
  }
  return out;
}

static Napi::Value Lremovexattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgPath(info, 0, "path");
  std::string name = ArgString(info, 1, "name");
  if (::lremovexattr(path.c_str(), name.c_str()) < 0) throw ErrnoError(env, errno, "lremovexattr", path);
  return env.Undefined();
}

void InitFsOps(Napi::Env env, Napi::Object exports) {
  exports.Set("mknod", Napi::Function::New(env, Mknod));
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr));
  exports.Set("llistxattr", Napi::Function::New(env, Llistxattr));
  exports.Set("lremovexattr", Napi::Function::New(env, Lremovexattr));
}

}  // namespace img
