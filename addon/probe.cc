#include "addon.h"
#include <unistd.h>
namespace img {
static Napi::Value Getuid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), getuid());
}
void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("getuid", Napi::Function::New(env, Getuid));
}
}  // namespace img
