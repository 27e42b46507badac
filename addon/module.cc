// Entry point of the native addon: each concern registers its functions here.
// Functions are syscall-shaped; policy lives in TypeScript (lib/host).
#include <napi.h>
#include "addon.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  img::InitProbe(env, exports);
  return exports;
}

NODE_API_MODULE(img_addon, Init)
