// probe(): what this host lets an unprivileged builder do, for diagnostics
// and for choosing a snapshotter.
#include "addon.h"
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fstream>

namespace img {

static Napi::Value Getuid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), getuid());
}

// Tries unshare(CLONE_NEWUSER) in a forked child, which only _exits with the
// errno: never run JS (or anything not async-signal-safe) in a forked child.
static int TryUserns() {
  pid_t pid = ::fork();
  if (pid < 0) return errno;
  if (pid == 0) ::_exit(::unshare(CLONE_NEWUSER) < 0 ? (errno & 0xff) : 0);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return errno;
  return WIFEXITED(st) ? WEXITSTATUS(st) : ECHILD;
}

static Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  struct utsname u;
  out.Set("kernel", Napi::String::New(env, ::uname(&u) == 0 ? u.release : ""));
  out.Set("uid", Napi::Number::New(env, ::getuid()));
  out.Set("gid", Napi::Number::New(env, ::getgid()));
  int err = TryUserns();
  out.Set("userns", Napi::Boolean::New(env, err == 0));
  if (err) out.Set("usernsError", Napi::String::New(env, ErrnoName(err)));
  bool overlay = false;
  std::ifstream fsl("/proc/filesystems");
  for (std::string line; std::getline(fsl, line);) {
    auto tab = line.rfind('\t');
    if ((tab == std::string::npos ? line : line.substr(tab + 1)) == "overlay") overlay = true;
  }
  out.Set("overlayfs", Napi::Boolean::New(env, overlay));
  int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  out.Set("fuse", Napi::Boolean::New(env, fd >= 0));
  if (fd >= 0) ::close(fd);
  return out;
}

// direntType(dir, name): the d_type readdir(3) reports for `name` in `dir`
// (DT_UNKNOWN = 0 on filesystems without it, e.g. XFS made with ftype=0,
// which overlayfs refuses), or -1 when no such entry. Node's readdir hides
// DT_UNKNOWN behind an lstat, so diagnostics ask here.
static Napi::Value DirentType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) throw Napi::TypeError::New(env, "direntType(dir, name)");
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw ErrnoError(env, errno, "opendir", dir);
  int type = -1;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (name == e->d_name) {
      type = e->d_type;
      break;
    }
  }
  int err = errno;
  ::closedir(d);
  if (type == -1 && err) throw ErrnoError(env, err, "readdir", dir);
  return Napi::Number::New(env, type);
}

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("direntType", Napi::Function::New(env, DirentType));
  exports.Set("getuid", Napi::Function::New(env, Getuid));
  exports.Set("probe", Napi::Function::New(env, Probe));
}
}  // namespace img
