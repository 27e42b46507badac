// cloneUserns / releaseChild / waitpid: start a child in new user + mount
// (+ pid) namespaces that waits for its id maps before exec'ing.
//
// Protocol: the child unshare()s, reports 0 or errno on the ready pipe and
// blocks on the sync pipe; cloneUserns returns once the report arrived, so a
// disabled userns surfaces as an ErrnoError from cloneUserns itself. The
// caller writes the maps (newuidmap/newgidmap) and calls releaseChild(ok).
// Between fork and execve the child only makes async-signal-safe syscalls:
// every string and array is prepared before fork.
#include "addon.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace img {

static std::vector<std::string> StringArray(const Napi::Object& opts, const char* key) {
  Napi::Env env = opts.Env();
  Napi::Value v = opts.Get(key);
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(key) + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) throw Napi::TypeError::New(env, std::string(key) + " must be an array of strings");
    out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

static std::vector<char*> CArray(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// A program's argv and environment taken from two JS arrays of strings, kept
// alive with the NULL-terminated char* arrays execve/posix_spawn want.
struct ProgramArgs {
  std::vector<std::string> argv, envv;
  std::vector<char*> cargv, cenv;
  ProgramArgs(Napi::Env env, Napi::Value argvArray, Napi::Value envArray) {
    Napi::Object holder = Napi::Object::New(env);
    holder.Set("argv", argvArray);
    holder.Set("env", envArray);
    argv = StringArray(holder, "argv");
    envv = StringArray(holder, "env");
    cargv = CArray(argv);
    cenv = CArray(envv);
  }
  ProgramArgs(const ProgramArgs&) = delete;  // cargv/cenv point into argv/envv
};

// Async-signal-safe helpers for the child.
static void WriteAll(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    c += w;
    n -= static_cast<size_t>(w);
  }
}
static void Die(const char* what, int err) {
  // "img: <what> failed: errno N\n", built without stdio.
  char buf[160];
  size_t n = 0;
  auto put = [&](const char* s) { while (*s && n < sizeof buf - 1) buf[n++] = *s++; };
  put("img: namespace child: ");
  put(what);
  put(" failed: ");
  put(ErrnoName(err));  // strerrorname_np returns a static string: no allocation
  put("\n");
  WriteAll(2, buf, n);
  ::_exit(127);
}

static volatile pid_t g_forward_to = 0;
static void ForwardSignal(int sig) {
  if (g_forward_to > 0) ::kill(g_forward_to, sig);
}

static Napi::Value CloneUserns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "cloneUserns needs an options object");
  Napi::Object opts = info[0].As<Napi::Object>();
  std::vector<std::string> argv = StringArray(opts, "argv");
  std::vector<std::string> envv = StringArray(opts, "env");
  if (argv.empty()) throw Napi::TypeError::New(env, "argv must not be empty");
  Napi::Value cwdv = opts.Get("cwd");
  if (!cwdv.IsString()) throw Napi::TypeError::New(env, "cwd must be a string");
  std::string cwd = cwdv.As<Napi::String>().Utf8Value();
  bool pidns = opts.Get("pidns").ToBoolean().Value();
  std::vector<char*> cargv = CArray(argv);
  std::vector<char*> cenv = CArray(envv);
  int flags = CLONE_NEWUSER | CLONE_NEWNS | (pidns ? CLONE_NEWPID : 0);

  int ready[2], sync[2];
  if (::pipe2(ready, O_CLOEXEC) < 0) throw ErrnoError(env, errno, "pipe2");
  if (::pipe2(sync, O_CLOEXEC) < 0) {
    int e = errno;
    ::close(ready[0]);
    ::close(ready[1]);
    throw ErrnoError(env, e, "pipe2");
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {ready[0], ready[1], sync[0], sync[1]}) ::close(fd);
    throw ErrnoError(env, e, "fork");
  }
  if (pid == 0) {
    // Child. Reset what Node changed in this process: libuv ignores SIGPIPE
    // and threads may have blocked signals; dispositions survive execve.
    ::close(ready[0]);
    ::close(sync[1]);
    // If img dies (even by SIGKILL) the namespace child goes with it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < NSIG; s++) {
      if (s == SIGKILL || s == SIGSTOP) continue;
      ::signal(s, SIG_DFL);
    }
    int err = ::unshare(flags) < 0 ? errno : 0;
    WriteAll(ready[1], &err, sizeof err);
    ::close(ready[1]);
    if (err) ::_exit(1);
    char ok = 0;
    ssize_t n;
    do n = ::read(sync[0], &ok, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || ok != 1) ::_exit(1);  // the parent failed to map ids, or died
    ::close(sync[0]);
    if (pidns) {
      // unshare(CLONE_NEWPID) applies to children: fork the namespace's pid 1,
      // stay as a small reaper that forwards signals and its exit status.
      pid_t inner = ::fork();
      if (inner < 0) Die("fork", errno);
      if (inner > 0) {
        g_forward_to = inner;
        for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::signal(s, ForwardSignal);
        int st;
        while (::waitpid(inner, &st, 0) < 0)
          if (errno != EINTR) ::_exit(127);
        if (WIFSIGNALED(st)) ::_exit(128 + WTERMSIG(st));
        ::_exit(WEXITSTATUS(st));
      }
      // pid 1 of the new namespace dies with its reaper, as the reaper dies with img.
      // (getppid() is 0 here, the reaper lives outside this namespace, so no
      // re-check; the reaper cannot exit before waitpid returns anyway.)
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    }
    // Mounts made from here on must not propagate back to the host.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) Die("mount --make-rprivate /", errno);
    // Node marks its stdio close-on-exec; the namespaced command shares our terminal/pipes.
    for (int fd = 0; fd <= 2; fd++) {
      int fl = ::fcntl(fd, F_GETFD);
      if (fl >= 0 && (fl & FD_CLOEXEC)) ::fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    if (::chdir(cwd.c_str()) < 0) Die("chdir", errno);
    ::execve(cargv[0], cargv.data(), cenv.data());
    Die("execve", errno);
  }
  ::close(ready[1]);
  ::close(sync[0]);
  int err = -1;
  ssize_t n;
  do n = ::read(ready[0], &err, sizeof err);
  while (n < 0 && errno == EINTR);
  ::close(ready[0]);
  if (n != sizeof err || err != 0) {
    ::close(sync[1]);
    int st;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    throw ErrnoError(env, n == sizeof err ? err : ECHILD, "unshare(CLONE_NEWUSER)");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, pid));
  out.Set("syncFd", Napi::Number::New(env, sync[1]));
  return out;
}

// releaseChild(syncFd, ok): let the child go on (ok) or make it exit 1.
static Napi::Value ReleaseChild(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "syncFd");
  char ok = (info.Length() > 1 && info[1].ToBoolean().Value()) ? 1 : 0;
  ssize_t n;
  do n = ::write(fd, &ok, 1);
  while (n < 0 && errno == EINTR);
  int e = errno;
  ::close(fd);
  if (n != 1) throw ErrnoError(env, e, "write(syncFd)");
  return env.Undefined();
}

// waitpid(pid) → Promise<exit code | 128+signal>, on a thread of its own.
static Napi::Value Waitpid(const Napi::CallbackInfo& info) {
  pid_t pid = ArgInt(info, 0, "pid");
  return RunDetached<int>(
      info.Env(),
      [pid](SysError& fail) {
        int st = 0;
        while (::waitpid(pid, &st, 0) < 0) {
          if (errno == EINTR) continue;
          fail.Set(errno, "waitpid");
          return -1;
        }
        return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
      },
      [](Napi::Env env, const int& code) { return Napi::Number::New(env, code); });
}

// execve(path, argv, env): replaces this process (Node) with another program,
// e.g. img-launch when img was started without it. Node leaves stdio
// close-on-exec, SIGPIPE ignored and signals possibly blocked: the program gets
// them as a fresh process would. Returns only by throwing.
static Napi::Value Execve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsObject() || !info[2].IsObject())
    throw Napi::TypeError::New(env, "execve(path, argv, env) needs a string and two arrays of strings");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  ProgramArgs program(env, info[1], info[2]);
  for (int fd = 0; fd <= 2; fd++) {
    int fl = ::fcntl(fd, F_GETFD);
    if (fl >= 0 && (fl & FD_CLOEXEC)) ::fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
  }
  sigset_t none, old;
  sigemptyset(&none);
  ::pthread_sigmask(SIG_SETMASK, &none, &old);
  struct sigaction dfl = {}, oldPipe;
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, &oldPipe);
  ::execve(path.c_str(), program.cargv.data(), program.cenv.data());
  int e = errno;
  ::sigaction(SIGPIPE, &oldPipe, nullptr);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  throw ErrnoError(env, e, "execve", path);
}

// spawn(path, argv, env, fds) → pid. fds are the child's stdin, stdout and stderr
// (-1: /dev/null). glibc's posix_spawn starts the child with clone(CLONE_VM |
// CLONE_VFORK), so it costs the same whatever this process's size, where libuv's
// fork() copies Node's page tables and makes every page copy-on-write: 10-40 ms for
// an 80 MB img on a busy host, on the main thread, per RUN step. Signals start
// unblocked and at their defaults (Node ignores SIGPIPE). Wait with waitpid().
static Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsObject() || !info[2].IsObject() || !info[3].IsArray())
    throw Napi::TypeError::New(env, "spawn(path, argv, env, fds) needs a string, two arrays of strings and three fds");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  ProgramArgs program(env, info[1], info[2]);
  Napi::Array fds = info[3].As<Napi::Array>();
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  for (int i = 0; i < 3; i++) {
    int fd = i < static_cast<int>(fds.Length()) ? fds.Get(i).As<Napi::Number>().Int32Value() : -1;
    if (fd >= 0) ::posix_spawn_file_actions_adddup2(&actions, fd, i);
    else ::posix_spawn_file_actions_addopen(&actions, i, "/dev/null", O_RDWR, 0);
  }
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int err = ::posix_spawn(&pid, path.c_str(), &actions, &attr, program.cargv.data(), program.cenv.data());
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (err != 0) throw ErrnoError(env, err, "posix_spawn", path);
  return Napi::Number::New(env, pid);
}

// pipe() → [readFd, writeFd], both close-on-exec (spawn's dup2 clears it for the child's copy).
static Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) throw ErrnoError(env, errno, "pipe2");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, p[0]));
  out.Set(1u, Napi::Number::New(env, p[1]));
  return out;
}

void InitUserns(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, Spawn));
  exports.Set("pipe", Napi::Function::New(env, Pipe));
  exports.Set("execve", Napi::Function::New(env, Execve));
  exports.Set("cloneUserns", Napi::Function::New(env, CloneUserns));
  exports.Set("releaseChild", Napi::Function::New(env, ReleaseChild));
  exports.Set("waitpid", Napi::Function::New(env, Waitpid));
}

}  // namespace img
