// flock(2) on an fd. A blocking wait runs on a thread of its own so the event
// loop keeps going while another img process holds the lock.
#include "addon.h"
#include <sys/file.h>

namespace img {

// flock(fd, 'shared'|'exclusive'|'unlock', wait) → Promise<boolean>
static Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  std::string mode = ArgString(info, 1, "mode");
  bool wait = info.Length() > 2 && info[2].ToBoolean().Value();
  int op;
  if (mode == "shared") op = LOCK_SH;
  else if (mode == "exclusive") op = LOCK_EX;
  else if (mode == "unlock") op = LOCK_UN;
  else throw Napi::TypeError::New(env, "flock mode must be 'shared', 'exclusive' or 'unlock'");
  if (!wait || op == LOCK_UN) {
    // Non-blocking attempts and unlocks never wait: do them inline.
    auto d = Napi::Promise::Deferred::New(env);
    if (op != LOCK_UN) op |= LOCK_NB;
    if (::flock(fd, op) < 0) d.Reject(ErrnoError(env, errno, "flock").Value());
    else d.Resolve(Napi::Boolean::New(env, true));
    return d.Promise();
  }
  return RunDetached<bool>(
      env,
      [fd, op](SysError& fail) {
        int r;
        do r = ::flock(fd, op);
        while (r < 0 && errno == EINTR);
        if (r < 0) fail.Set(errno, "flock");
        return r == 0;
      },
      [](Napi::Env env, const bool& ok) { return Napi::Boolean::New(env, ok); });
}

void InitFlock(Napi::Env env, Napi::Object exports) {
  exports.Set("flock", Napi::Function::New(env, Flock));
}

}  // namespace img
