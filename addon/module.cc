// Entry point of the native addon: each concern registers its functions here.
// Functions are syscall-shaped; policy lives in TypeScript (lib/host).
#include <napi.h>
#include "addon.h"

namespace img {
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}
// A path argument: a string (UTF-8) or a Buffer holding the name's raw bytes, for
// file names that are not UTF-8 (lib/util/bytenames.ts).
std::string ArgPath(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() > i && info[i].IsBuffer()) {
    auto buf = info[i].As<Napi::Buffer<char>>();
    std::string p(buf.Data(), buf.Length());
    if (p.find('\0') != std::string::npos)
      throw Napi::TypeError::New(info.Env(), std::string(what) + " must not contain NUL bytes");
    return p;
  }
  return ArgString(info, i, what);
}
int ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}
}  // namespace img

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  img::InitProbe(env, exports);
  img::InitFlock(env, exports);
  img::InitFsOps(env, exports);
  img::InitCopyFile(env, exports);
  img::InitUserns(env, exports);
  img::InitMount(env, exports);
  img::InitCopyTree(env, exports);
  img::InitCodec(env, exports);
  img::InitStatDir(env, exports);
  img::InitLayerIo(env, exports);
  return exports;
}

NODE_API_MODULE(img_addon, Init)
