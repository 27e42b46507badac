// Registration hooks of the addon's concerns. One .cc file per concern.
#pragma once
#include <napi.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace img {

// Throws a JS Error whose .code is the errno name (e.g. "EPERM") and whose
// message names the syscall and the path, like Node's own fs errors.
inline Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall,
                              const std::string& path = "") {
  std::string msg = syscall + ": " + std::strerror(err);
  if (!path.empty()) msg += " '" + path + "'";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.Set("code", Napi::String::New(env, strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN"));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

void InitProbe(Napi::Env env, Napi::Object exports);

}  // namespace img
