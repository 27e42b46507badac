// copyTree(src, dst, {threads}): a faithful copy of a directory tree, for
// snapshots. One walker creates directories (so a file's parent exists before
// its job is queued) and queues every other entry (a bounded queue: memory does not
// grow with the tree); a pool of threads copies them, since trees of many small
// files are bound by per-file syscalls.
// Directory metadata (owner, mode, xattrs, times) is applied last, deepest
// first, so adding children does not disturb it. Hard links are kept by
// (dev, ino); symlinks are never followed.
//
// With `linkFrom` (directories that store the source tree, newest first: the
// fs/ dirs of a committed snapshot) a regular file is hard-linked from the
// first of them that holds its path, instead of copied, when that inode is the
// one the source shows: same type, mode, owner, size, mtime (ns) and xattrs,
// and that directory is `linkable` (a file found first in another is copied).
// The caller vouches that those inodes are immutable (committed snapshots).
// With `into` the destination directory exists already (made by the caller,
// e.g. through an overlay mount for its opaque mark) and is filled; its own
// metadata is the caller's to set.
#include "copy.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace img {

namespace {

struct DirMeta {
  std::string src, dst;
  struct stat st;
};

struct LinkLater {
  std::string target, dst;  // dst becomes a hard link to target (an already copied path)
};

class TreeCopy {
 public:
  TreeCopy(std::string src, std::string dst, unsigned threads, std::vector<std::string> linkFrom, std::vector<bool> linkable, bool into)
      : src_(std::move(src)),
        dst_(std::move(dst)),
        threads_(threads),
        linkFrom_(std::move(linkFrom)),
        linkable_(std::move(linkable)),
        into_(into) {}

  void Run(SysError& fail) {
    struct stat st;
    if (::lstat(src_.c_str(), &st) < 0) return fail.Set(errno, "lstat", src_);
    if (!S_ISDIR(st.st_mode)) return fail.Set(ENOTDIR, "copyTree", src_);
    umask_ = ReadUmask();
    std::vector<std::thread> pool;
    for (unsigned i = 0; i < threads_; i++) pool.emplace_back([this] { Worker(); });
    Walk(src_, dst_, st, into_);
    {
      std::lock_guard<std::mutex> g(mu_);
      walking_ = false;
    }
    cv_.notify_all();
    Worker();  // the walker helps drain the queue
    for (auto& t : pool) t.join();
    if (!fail_.err) {
      for (auto& l : links_)
        if (::link(l.target.c_str(), l.dst.c_str()) < 0) Fail(errno, "link", l.dst);
    }
    if (!fail_.err) {
      for (auto it = dirs_.rbegin(); it != dirs_.rend() && !fail_.err; ++it) ApplyMeta(it->src, it->dst, it->st, -1);
    }
    fail = fail_;
  }

  uint64_t files() const { return files_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t linked() const { return linked_; }

 private:
  struct Job {
    std::string src, dst;
    unsigned char type;  // d_type from readdir (DT_UNKNOWN resolved by the walker)
  };

  // The process umask without changing it (umask(2) would race other threads).
  static int ReadUmask() {
    FILE* f = ::fopen("/proc/self/status", "re");
    if (!f) return -1;
    char line[256];
    int mask = -1;
    while (::fgets(line, sizeof line, f))
      if (std::strncmp(line, "Umask:", 6) == 0) mask = static_cast<int>(std::strtol(line + 6, nullptr, 8));
    ::fclose(f);
    return mask;
  }

  void Fail(int err, const char* syscall, const std::string& path) {
    std::lock_guard<std::mutex> g(failMu_);
    fail_.Set(err, syscall, path);
    failed_.store(true, std::memory_order_relaxed);
  }
  bool Failed() const { return failed_.load(std::memory_order_relaxed); }

  void Walk(const std::string& src, const std::string& dst, const struct stat& st, bool exists = false) {
    if (Failed()) return;
    // Owner-writable while we fill it; the real mode is applied at the end.
    if (exists) {  // `into`: the caller's directory, whose metadata the caller owns
      struct stat dst_st;
      if (::lstat(dst.c_str(), &dst_st) < 0) return Fail(errno, "lstat", dst);
      if (!S_ISDIR(dst_st.st_mode)) return Fail(ENOTDIR, "copyTree", dst);
    } else if (::mkdir(dst.c_str(), 0700) < 0) {
      return Fail(errno, "mkdir", dst);
    } else {
      dirs_.push_back({src, dst, st});
    }
    DIR* d = ::opendir(src.c_str());
    if (!d) return Fail(errno, "opendir", src);
    std::vector<std::pair<std::string, std::string>> subdirs;
    for (;;) {
      errno = 0;  // readdir signals errors only through errno
      struct dirent* e = ::readdir(d);
      if (!e) {
        if (errno) Fail(errno, "readdir", src);
        break;
      }
      const char* n = e->d_name;
      if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
      std::string s = src + "/" + n, t = dst + "/" + n;
      if (e->d_type == DT_DIR) subdirs.emplace_back(std::move(s), std::move(t));
      else if (e->d_type != DT_UNKNOWN) Enqueue({std::move(s), std::move(t), e->d_type});
      else {
        struct stat cst;
        if (::lstat(s.c_str(), &cst) < 0) { Fail(errno, "lstat", s); break; }
        if (S_ISDIR(cst.st_mode)) subdirs.emplace_back(std::move(s), std::move(t));
        else Enqueue({std::move(s), std::move(t), S_ISREG(cst.st_mode) ? DT_REG : DT_UNKNOWN});
      }
    }
    ::closedir(d);
    for (auto& [s, t] : subdirs) {
      struct stat cst;
      if (::lstat(s.c_str(), &cst) < 0) return Fail(errno, "lstat", s);
      Walk(s, t, cst);
      if (Failed()) return;
    }
  }

  // The queue is bounded: the walker lists names far faster than they are copied, and a
  // queue of a whole wide tree (two paths per entry) grew memory with the entry count.
  // Past kMaxQueued waiting jobs the walker copies the entry itself (no waiting, so no
  // deadlock with a pool of zero threads).
  static constexpr size_t kMaxQueued = 4096;
  void Enqueue(Job&& j) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (queue_.size() < kMaxQueued) {
        queue_.push_back(std::move(j));
        cv_.notify_one();
        return;
      }
    }
    if (!Failed()) CopyEntry(j, &hints_);
  }

  void Worker() {
    CopyHints* hints = &hints_;
    for (;;) {
      Job j;
      {
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait(g, [this] { return !queue_.empty() || !walking_; });
        if (queue_.empty()) return;
        j = std::move(queue_.front());
        queue_.pop_front();
      }
      if (!Failed()) CopyEntry(j, hints);
    }
  }

  // Returns true when this entry is a further name of an inode already being
  // copied: it is linked once all copies are done.
  bool DeferHardlink(const Job& j, const struct stat& st) {
    if (st.st_nlink < 2) return false;
    std::lock_guard<std::mutex> g(linkMu_);
    auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    auto it = inodes_.find(key);
    if (it == inodes_.end()) {
      inodes_.emplace(key, j.dst);
      return false;
    }
    links_.push_back({it->second, j.dst});
    files_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void CopyEntry(const Job& j, CopyHints* hints) {
    struct stat st;
    int in = -1;
    // A file to link needs no open: lstat it, and link the stored inode when it matches.
    bool registered = false;  // DeferHardlink has seen it
    if (j.type == DT_REG && !linkFrom_.empty() && !noLink_.load(std::memory_order_relaxed)) {
      if (::lstat(j.src.c_str(), &st) < 0) return Fail(errno, "lstat", j.src);
      if (S_ISREG(st.st_mode)) {
        if (DeferHardlink(j, st)) return;
        registered = true;
        if (LinkStored(j, st)) {
          linked_.fetch_add(1, std::memory_order_relaxed);
          files_.fetch_add(1, std::memory_order_relaxed);
          return;
        }
      }
    }
    if (j.type == DT_REG) {
      // Regular files: open + fstat, no separate lstat. O_NONBLOCK and
      // O_NOFOLLOW guard against the name having become a fifo or a link.
      int fl = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
      in = ::open(j.src.c_str(), fl | O_NOATIME);
      if (in < 0 && errno == EPERM) in = ::open(j.src.c_str(), fl);  // O_NOATIME needs ownership
      if (in < 0) return Fail(errno, "open", j.src);
      if (::fstat(in, &st) < 0) { Fail(errno, "fstat", j.src); ::close(in); return; }
      if (!S_ISREG(st.st_mode)) { ::close(in); in = -1; }
    } else if (::lstat(j.src.c_str(), &st) < 0) {
      return Fail(errno, "lstat", j.src);
    }
    if (S_ISREG(st.st_mode) && in < 0) {
      int fl = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
      in = ::open(j.src.c_str(), fl);
      if (in < 0) return Fail(errno, "open", j.src);
    }
    if (!registered && DeferHardlink(j, st)) {
      if (in >= 0) ::close(in);
      return;
    }
    if (S_ISREG(st.st_mode)) {
      // Created with its final permission bits: when the umask keeps them all
      // and no set-id bit is involved, the fchmod is skipped (one syscall of ~9).
      mode_t perm = st.st_mode & 0777;
      int out = ::open(j.dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, perm);
      if (out < 0) { Fail(errno, "open", j.dst); ::close(in); return; }
      SysError e;
      off_t n = CopyFd(in, out, st.st_size, e, j.dst, hints);
      if (n < 0) Fail(e.err, e.syscall.c_str(), e.path);
      else bytes_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      bool modeDone = umask_ >= 0 && (st.st_mode & 07000) == 0 && (perm & ~static_cast<mode_t>(umask_)) == perm;
      if (n >= 0) ApplyMeta(j.src, j.dst, st, out, in, modeDone);
      ::close(out);
      ::close(in);
    } else if (S_ISLNK(st.st_mode)) {
      std::vector<char> buf(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1);
      ssize_t n = ::readlink(j.src.c_str(), buf.data(), buf.size());
      if (n < 0) return Fail(errno, "readlink", j.src);
      if (static_cast<size_t>(n) >= buf.size()) return Fail(ENAMETOOLONG, "readlink", j.src);
      buf[static_cast<size_t>(n)] = 0;
      if (::symlink(buf.data(), j.dst.c_str()) < 0) return Fail(errno, "symlink", j.dst);
      ApplyMeta(j.src, j.dst, st, -1);
    } else {
      // Character/block devices, fifos and sockets are all made by mknod.
      if (::mknod(j.dst.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) < 0) return Fail(errno, "mknod", j.dst);
      ApplyMeta(j.src, j.dst, st, -1);
    }
    files_.fetch_add(1, std::memory_order_relaxed);
  }

  // Hard-links j.dst to the stored inode of j.src (see the header); false: copy it.
  bool LinkStored(const Job& j, const struct stat& st) {
    const std::string rel = j.src.substr(src_.size());  // "/a/b"
    for (const auto& dir : linkFrom_) {
      std::string p = dir + rel;
      struct stat lst;
      if (::lstat(p.c_str(), &lst) < 0) {
        if (errno == ENOENT || errno == ENOTDIR) continue;  // not in this layer
        return false;
      }
      // The first layer holding the path is the one the source shows (a whiteout or
      // another kind of entry there, or a layer not to link from: copy).
      if (!linkable_[&dir - linkFrom_.data()] || !S_ISREG(lst.st_mode) || lst.st_mode != st.st_mode || lst.st_uid != st.st_uid || lst.st_gid != st.st_gid ||
          lst.st_size != st.st_size || lst.st_mtim.tv_sec != st.st_mtim.tv_sec || lst.st_mtim.tv_nsec != st.st_mtim.tv_nsec)
        return false;
      if (!SameXattrs(p, j.src)) return false;
      if (::link(p.c_str(), j.dst.c_str()) == 0) return true;
      // Another filesystem or mount: stop trying; too many links or refused: copy this one.
      if (errno == EXDEV) noLink_.store(true, std::memory_order_relaxed);
      else if (errno != EMLINK && errno != EPERM && errno != EACCES) Fail(errno, "link", j.dst);
      return false;
    }
    return false;
  }

  // Whether the stored file has exactly the xattrs the source shows (an overlay's
  // private ones, hidden in the merged view, make them differ: copy then).
  static bool SameXattrs(const std::string& stored, const std::string& src) {
    std::vector<std::pair<std::string, std::string>> a, b;
    return ReadXattrs(stored.c_str(), a) && ReadXattrs(src.c_str(), b) && a == b;
  }

  static bool ReadXattrs(const char* path, std::vector<std::pair<std::string, std::string>>& out) {
    std::vector<char> names(1024);
    ssize_t n;
    for (;;) {
      n = ::llistxattr(path, names.data(), names.size());
      if (n >= 0) break;
      if (errno == ENOTSUP) return true;
      if (errno != ERANGE) return false;
      ssize_t want = ::llistxattr(path, nullptr, 0);
      if (want < 0) return false;
      names.resize(static_cast<size_t>(want) + 1);
    }
    for (ssize_t i = 0; i < n;) {
      const char* name = names.data() + i;
      i += static_cast<ssize_t>(std::strlen(name)) + 1;
      ssize_t want = ::lgetxattr(path, name, nullptr, 0);
      if (want < 0) return false;
      std::string val(static_cast<size_t>(want), '\0');
      ssize_t v = ::lgetxattr(path, name, val.data(), val.size());
      if (v < 0) return false;
      val.resize(static_cast<size_t>(v));
      out.emplace_back(name, std::move(val));
    }
    std::sort(out.begin(), out.end());
    return true;
  }

  // Owner, then mode (chown clears set-id bits), then xattrs (chown also
  // clears security.capability), then times. fd >= 0 is an open regular file.
  void ApplyMeta(const std::string& src, const std::string& dst, const struct stat& st, int fd, int srcfd = -1,
                 bool modeDone = false) {
    bool link = S_ISLNK(st.st_mode);
    int r = fd >= 0 ? ::fchown(fd, st.st_uid, st.st_gid) : ::lchown(dst.c_str(), st.st_uid, st.st_gid);
    if (r < 0) return Fail(errno, "lchown", dst);
    if (!link && !modeDone) {
      r = fd >= 0 ? ::fchmod(fd, st.st_mode & 07777) : ::chmod(dst.c_str(), st.st_mode & 07777);
      if (r < 0) return Fail(errno, "chmod", dst);
    }
    CopyXattrs(src, dst, fd, srcfd);
    if (Failed()) return;
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    r = fd >= 0 ? ::futimens(fd, ts) : ::utimensat(AT_FDCWD, dst.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    if (r < 0) Fail(errno, "utimensat", dst);
  }

  void CopyXattrs(const std::string& src, const std::string& dst, int fd, int srcfd) {
    auto list = [&](char* buf, size_t size) {
      return srcfd >= 0 ? ::flistxattr(srcfd, buf, size) : ::llistxattr(src.c_str(), buf, size);
    };
    auto get = [&](const char* name, char* buf, size_t size) {
      return srcfd >= 0 ? ::fgetxattr(srcfd, name, buf, size) : ::lgetxattr(src.c_str(), name, buf, size);
    };
    char small[4096];
    std::vector<char> big;
    char* names = small;
    ssize_t n = list(small, sizeof small);
    while (n < 0 && errno == ERANGE) {
      n = list(nullptr, 0);
      if (n < 0) break;
      big.resize(static_cast<size_t>(n) + 1);
      names = big.data();
      n = list(big.data(), big.size());
    }
    if (n < 0) {
      if (errno == ENOTSUP) return;
      return Fail(errno, "llistxattr", src);
    }
    std::vector<char> val(1024);
    for (ssize_t i = 0; i < n;) {
      const char* name = names + i;
      i += static_cast<ssize_t>(std::strlen(name)) + 1;
      ssize_t v;
      for (;;) {
        v = get(name, val.data(), val.size());
        if (v >= 0 || errno != ERANGE) break;
        ssize_t want = get(name, nullptr, 0);
        if (want < 0) break;
        val.resize(static_cast<size_t>(want) + 1);
      }
      if (v < 0) {
        if (errno == ENODATA) continue;  // removed meanwhile
        return Fail(errno, "lgetxattr", src);
      }
      int r = fd >= 0 ? ::fsetxattr(fd, name, val.data(), static_cast<size_t>(v), 0)
                      : ::lsetxattr(dst.c_str(), name, val.data(), static_cast<size_t>(v), 0);
      if (r < 0 && errno != ENOTSUP) return Fail(errno, "lsetxattr", dst + " (" + name + ")");
    }
  }

  std::string src_, dst_;
  unsigned threads_;
  std::vector<std::string> linkFrom_;
  std::vector<bool> linkable_;  // per linkFrom_ dir: false = a file found there is copied
  bool into_;
  std::atomic<bool> noLink_{false};
  std::atomic<uint64_t> linked_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool walking_ = true;
  std::mutex failMu_;
  SysError fail_;
  std::atomic<bool> failed_{false};
  std::mutex linkMu_;
  std::map<std::pair<uint64_t, uint64_t>, std::string> inodes_;
  std::vector<LinkLater> links_;
  std::vector<DirMeta> dirs_;
  CopyHints hints_;
  int umask_ = -1;
  std::atomic<uint64_t> files_{0}, bytes_{0};
};

class CopyTreeWorker : public PromiseWorker {
 public:
  CopyTreeWorker(Napi::Env env, std::string src, std::string dst, unsigned threads, std::vector<std::string> linkFrom,
                 std::vector<bool> linkable, bool into)
      : PromiseWorker(env), copy_(std::move(src), std::move(dst), threads, std::move(linkFrom), std::move(linkable), into) {}
  void Execute() override { copy_.Run(fail); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("files", Napi::Number::New(env, static_cast<double>(copy_.files())));
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(copy_.bytes())));
    o.Set("linked", Napi::Number::New(env, static_cast<double>(copy_.linked())));
    return o;
  }

 private:
  TreeCopy copy_;
};

}  // namespace

// copyTree(src, dst, {threads, linkFrom, into}) → Promise<{files, bytes, linked}>; files
// counts every non-directory entry, bytes the regular-file bytes copied, linked the
// files hard-linked from linkFrom instead.
static Napi::Value CopyTree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string src = ArgPath(info, 0, "src");
  std::string dst = ArgPath(info, 1, "dst");
  unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  std::vector<std::string> linkFrom;
  std::vector<bool> linkable;
  bool into = false;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object opts = info[2].As<Napi::Object>();
    Napi::Value t = opts.Get("threads");
    if (t.IsNumber() && t.As<Napi::Number>().Int32Value() > 0) threads = t.As<Napi::Number>().Uint32Value();
    Napi::Value l = opts.Get("linkFrom");
    if (l.IsArray()) {
      Napi::Array dirs = l.As<Napi::Array>();
      for (uint32_t i = 0; i < dirs.Length(); i++) {
        Napi::Value d = dirs.Get(i);
        if (d.IsBuffer()) linkFrom.emplace_back(d.As<Napi::Buffer<char>>().Data(), d.As<Napi::Buffer<char>>().Length());
        else if (d.IsString()) linkFrom.push_back(d.As<Napi::String>().Utf8Value());
        else throw Napi::TypeError::New(env, "copyTree: linkFrom must hold paths (string or Buffer)");
      }
    }
    Napi::Value k = opts.Get("linkable");
    for (uint32_t i = 0; i < linkFrom.size(); i++)
      linkable.push_back(!k.IsArray() || k.As<Napi::Array>().Get(i).ToBoolean().Value());
    into = opts.Get("into").ToBoolean().Value();
  }
  // The walker drains the queue too, so the pool is one thread short of `threads`.
  auto* w = new CopyTreeWorker(env, std::move(src), std::move(dst), threads > 1 ? threads - 1 : 0, std::move(linkFrom),
                              std::move(linkable), into);
  auto p = w->Promise();
  w->Queue();
  return p;
}

void InitCopyTree(Napi::Env env, Napi::Object exports) {
  exports.Set("copyTree", Napi::Function::New(env, CopyTree));
  exports.Set("copyTreeLinks", Napi::Boolean::New(env, true));  // copyTree takes linkFrom and into
}

}  // namespace img
