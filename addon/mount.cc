// mount(2) and umount2(2), as they are. Policy (which mounts, where) lives in lib/snapshot.
#include "addon.h"
#include <sys/mount.h>

namespace img {

// mount(source, target, fstype, flags, data)
static Napi::Value Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source = ArgString(info, 0, "source");
  std::string target = ArgString(info, 1, "target");
  std::string fstype = ArgString(info, 2, "fstype");
  if (info.Length() < 4 || !info[3].IsNumber()) throw Napi::TypeError::New(env, "flags must be a number");
  unsigned long flags = static_cast<unsigned long>(info[3].As<Napi::Number>().Int64Value());
  std::string data = info.Length() > 4 && info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "";
  // Empty strings mean "none" (a bind or remount passes no fstype or data).
  if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(),
              flags, data.empty() ? nullptr : data.c_str()) < 0)
    throw ErrnoError(env, errno, "mount", target);
  return env.Undefined();
}

// umount(target, flags) — flags as umount2 (MNT_DETACH = 2).
static Napi::Value Umount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string target = ArgString(info, 0, "target");
  int flags = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  if (::umount2(target.c_str(), flags) < 0) throw ErrnoError(env, errno, "umount2", target);
  return env.Undefined();
}

void InitMount(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, Mount));
  exports.Set("umount", Napi::Function::New(env, Umount));
}

}  // namespace img
