// copyFile: one regular file's bytes, as cheaply as the filesystem allows.
#include "copy.h"
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace img {

static off_t CopyReadWrite(int in, int out, off_t done, SysError& fail, const std::string& path) {
  std::vector<char> buf(256 * 1024);
  for (;;) {
    ssize_t n = ::pread(in, buf.data(), buf.size(), done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { fail.Set(errno, "read", path); return -1; }
    if (n == 0) return done;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::pwrite(out, buf.data() + off, static_cast<size_t>(n - off), done + off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) { fail.Set(errno, "write", path); return -1; }
      off += w;
    }
    done += n;
  }
}

off_t CopyFd(int in, int out, off_t size, SysError& fail, const std::string& path, CopyHints* hints) {
  if (size > 0 && !(hints && hints->noClone.load(std::memory_order_relaxed))) {
    if (::ioctl(out, FICLONE, in) == 0) return size;
    // Not a reflink filesystem pair (ext4, tmpfs, across mounts): stop asking.
    if (hints && (errno == EOPNOTSUPP || errno == ENOTTY || errno == EXDEV || errno == EINVAL || errno == ENOSYS))
      hints->noClone.store(true, std::memory_order_relaxed);
  }
  off_t done = 0;
  if (hints && hints->noCopyRange.load(std::memory_order_relaxed)) return CopyReadWrite(in, out, 0, fail, path);
  for (;;) {
    if (size > 0 && done >= size) return done;
    loff_t ioff = done, ooff = done;
    // Ask for a large chunk; the kernel stops at EOF, so a growing file is copied fully too.
    ssize_t n = ::copy_file_range(in, &ioff, out, &ooff, 1 << 30, 0);
    if (n > 0) { done += n; continue; }
    if (n == 0) return done;
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP || errno == EPERM ||
        errno == ETXTBSY) {
      if (hints && done == 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP))
        hints->noCopyRange.store(true, std::memory_order_relaxed);
      return CopyReadWrite(in, out, done, fail, path);
    }
    fail.Set(errno, "copy_file_range", path);
    return -1;
  }
}

class CopyFileWorker : public PromiseWorker {
 public:
  CopyFileWorker(Napi::Env env, std::string src, std::string dst, mode_t mode)
      : PromiseWorker(env), src_(std::move(src)), dst_(std::move(dst)), mode_(mode) {}
  void Execute() override {
    int in = ::open(src_.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) { fail.Set(errno, "open", src_); return; }
    struct stat st;
    if (::fstat(in, &st) < 0) { fail.Set(errno, "fstat", src_); ::close(in); return; }
    if (!S_ISREG(st.st_mode)) { fail.Set(EINVAL, "copyFile (not a regular file)", src_); ::close(in); return; }
    int out = ::open(dst_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_ & 07777);
    if (out < 0) { fail.Set(errno, "open", dst_); ::close(in); return; }
    bytes_ = CopyFd(in, out, st.st_size, fail, dst_);
    // The mode asked for, not the mode the umask left; after the data, since
    // an unprivileged write clears set-id bits.
    if (!fail.err && ::fchmod(out, mode_ & 07777) < 0) fail.Set(errno, "fchmod", dst_);
    if (::close(out) < 0) fail.Set(errno, "close", dst_);
    ::close(in);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(bytes_)); }

 private:
  std::string src_, dst_;
  mode_t mode_;
  off_t bytes_ = 0;
};

// copyFile(src, dst, mode) → Promise<number of bytes>
static Napi::Value CopyFile(const Napi::CallbackInfo& info) {
  std::string src = ArgString(info, 0, "src");
  std::string dst = ArgString(info, 1, "dst");
  mode_t mode = static_cast<mode_t>(ArgInt(info, 2, "mode"));
  auto* w = new CopyFileWorker(info.Env(), std::move(src), std::move(dst), mode);
  auto p = w->Promise();
  w->Queue();
  return p;
}

void InitCopyFile(Napi::Env env, Napi::Object exports) {
  exports.Set("copyFile", Napi::Function::New(env, CopyFile));
}

}  // namespace img
