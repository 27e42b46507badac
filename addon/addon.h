// Registration hooks of the addon's concerns. One .cc file per concern.
#pragma once
#include <napi.h>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

namespace img {

// The errno name ("EPERM"); glibc >= 2.32 has strerrorname_np.
inline const char* ErrnoName(int err) {
  const char* n = strerrorname_np(err);
  return n ? n : "EUNKNOWN";
}

// Throws a JS Error whose .code is the errno name (e.g. "EPERM") and whose
// message names the syscall and the path, like Node's own fs errors.
inline Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall,
                              const std::string& path = "") {
  std::string msg = std::string(ErrnoName(err)) + ": " + syscall + ": " + std::strerror(err);
  if (!path.empty()) msg += " '" + path + "'";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

// An errno captured on a worker thread, turned into an ErrnoError on the JS thread.
struct SysError {
  int err = 0;
  std::string syscall;
  std::string path;
  void Set(int e, const std::string& s, const std::string& p = "") {
    if (err) return;  // keep the first failure
    err = e;
    syscall = s;
    path = p;
  }
};

// An AsyncWorker that settles a Promise: Execute() runs off the JS thread and
// records a failure in `fail`; Resolve() builds the value on the JS thread.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  SysError fail;
  virtual Napi::Value Result(Napi::Env env) = 0;
  void OnOK() override {
    Napi::Env env = Env();
    if (fail.err) {
      deferred_.Reject(ErrnoError(env, fail.err, fail.syscall, fail.path).Value());
    } else {
      deferred_.Resolve(Result(env));
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
};

// Runs `work` on a thread of its own, not on libuv's pool: a lock wait or a
// waitpid can block for minutes and four of them would starve every fs call
// of the process (and deadlock if the lock holder needs fs to finish). The
// result is settled on the JS thread through a thread-safe function.
template <typename R>
Napi::Promise RunDetached(Napi::Env env, std::function<R(SysError&)> work,
                          std::function<Napi::Value(Napi::Env, const R&)> wrap) {
  struct Job {
    Napi::Promise::Deferred deferred;
    std::function<R(SysError&)> work;
    std::function<Napi::Value(Napi::Env, const R&)> wrap;
    SysError fail;
    R result{};
  };
  auto* job = new Job{Napi::Promise::Deferred::New(env), std::move(work), std::move(wrap), {}, {}};
  Napi::Promise promise = job->deferred.Promise();
  auto noop = Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  auto tsfn = Napi::ThreadSafeFunction::New(env, noop, "img-blocking", 0, 1);
  std::thread([tsfn, job]() mutable {
    job->result = job->work(job->fail);
    tsfn.BlockingCall(job, [](Napi::Env env, Napi::Function, Job* j) {
      if (j->fail.err) j->deferred.Reject(ErrnoError(env, j->fail.err, j->fail.syscall, j->fail.path).Value());
      else j->deferred.Resolve(j->wrap(env, j->result));
      delete j;
    });
    tsfn.Release();
  }).detach();
  return promise;
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what);
std::string ArgPath(const Napi::CallbackInfo& info, size_t i, const char* what);  // string or Buffer
int ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what);

void InitProbe(Napi::Env env, Napi::Object exports);
void InitFlock(Napi::Env env, Napi::Object exports);
void InitFsOps(Napi::Env env, Napi::Object exports);
void InitCopyFile(Napi::Env env, Napi::Object exports);
void InitUserns(Napi::Env env, Napi::Object exports);
void InitMount(Napi::Env env, Napi::Object exports);
void InitCopyTree(Napi::Env env, Napi::Object exports);
void InitCodec(Napi::Env env, Napi::Object exports);
void InitStatDir(Napi::Env env, Napi::Object exports);
void InitLayerIo(Napi::Env env, Napi::Object exports);

}  // namespace img
