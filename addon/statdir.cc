// statDir(dir): one directory's entries, sorted, each with the stat fields the
// context checksum keys on (lib/solver/checksum.ts) and a symlink's target —
// read on a libuv pool thread. One N-API call per directory instead of a
// promise per entry: the cached scan of a context is bound by these round trips
// (and on NFS by the stats' latency, which stays off the JS thread).
//
// Names are sorted as JavaScript sorts strings (UTF-16 code units), the walk
// order the checksum has always used. A name that is not valid UTF-8 comes back
// decoded with U+FFFD (as Node's readdir would) and its raw bytes in `raw`, so
// the caller can report it or skip it. An entry gone between readdir and statx
// (or readlink) has mode 0: the caller drops it, as if readdir had not seen it.
// statDir(dir, side) also reads the small file `side` (the caller's record about
// this directory) on the same trip: `side` is its bytes, or null when it is absent.
#include "addon.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace img {
namespace {

struct Entry {
  std::u16string key;  // the name as UTF-16: the sort key and the JS string
  std::string name;    // raw bytes
  bool utf8 = true;
  uint32_t mode = 0;  // 0: vanished
  uint64_t size = 0;
  uint64_t ino = 0;
  int64_t mtimeSec = 0;
  uint32_t mtimeNsec = 0;
  std::string target;  // symlinks
};

// UTF-8 → UTF-16 with U+FFFD for each invalid sequence; returns whether it was valid.
bool DecodeUtf8(const std::string& s, std::u16string& out) {
  bool valid = true;
  out.clear();
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    if (c < 0x80) {
      out.push_back(static_cast<char16_t>(c));
      i++;
      continue;
    }
    int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    uint32_t cp = len == 4 ? c & 0x07 : len == 3 ? c & 0x0f : c & 0x1f;
    bool ok = len > 0 && c <= 0xf4 && i + len <= n;
    for (int k = 1; ok && k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) ok = false;
      else cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    if (ok && ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (!ok) {
      valid = false;
      out.push_back(0xfffd);
      i++;
      continue;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xd800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xdc00 + (cp & 0x3ff)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
    i += len;
  }
  return valid;
}

constexpr unsigned kStatxMask = STATX_TYPE | STATX_MODE | STATX_INO | STATX_SIZE | STATX_MTIME;

class StatDirWorker : public PromiseWorker {
 public:
  StatDirWorker(Napi::Env env, std::string dir, std::string side) : PromiseWorker(env), dir_(std::move(dir)), side_(std::move(side)) {}

 protected:
  void Execute() override {
    if (!side_.empty() && !ReadSide()) return;
    int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail.Set(errno, "opendir", dir_);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      fail.Set(errno, "fdopendir", dir_);
      ::close(fd);
      return;
    }
    errno = 0;
    while (struct dirent* de = ::readdir(d)) {
      const char* n = de->d_name;
      if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
      entries_.emplace_back();
      entries_.back().name = n;
    }
    if (errno) {
      fail.Set(errno, "readdir", dir_);
      ::closedir(d);
      return;
    }
    for (Entry& e : entries_) {
      e.utf8 = DecodeUtf8(e.name, e.key);
      if (!Stat(fd, e)) break;
    }
    ::closedir(d);
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
  }

  Napi::Value Result(Napi::Env env) override {
    size_t n = entries_.size();
    Napi::Array names = Napi::Array::New(env, n);
    // Per entry: mode, size, mtime seconds, mtime nanoseconds, inode high and low 32 bits
    // (inodes past 2^53 stay exact).
    Napi::Float64Array stats = Napi::Float64Array::New(env, n * 6);
    Napi::Object targets = Napi::Object::New(env);
    Napi::Object raw = Napi::Object::New(env);
    for (size_t i = 0; i < n; i++) {
      const Entry& e = entries_[i];
      names.Set(i, Napi::String::New(env, e.key));
      double* s = stats.Data() + i * 6;
      s[0] = e.mode;
      s[1] = static_cast<double>(e.size);
      s[2] = static_cast<double>(e.mtimeSec);
      s[3] = e.mtimeNsec;
      s[4] = static_cast<double>(e.ino >> 32);
      s[5] = static_cast<double>(e.ino & 0xffffffffu);
      if (S_ISLNK(e.mode)) targets.Set(i, Napi::String::New(env, e.target));
      if (!e.utf8) raw.Set(i, Napi::Buffer<char>::Copy(env, e.name.data(), e.name.size()));
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("names", names);
    out.Set("stats", stats);
    out.Set("targets", targets);
    out.Set("raw", raw);
    if (!side_.empty()) out.Set("side", haveSide_ ? Napi::Buffer<char>::Copy(env, sideData_.data(), sideData_.size()).As<Napi::Value>() : env.Null());
    return out;
  }

 private:
  // False after recording a failure.
  bool Stat(int dirfd, Entry& e) {
    struct statx st;
    if (::statx(dirfd, e.name.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, kStatxMask, &st) != 0) {
      if (errno == ENOENT) return true;  // gone since readdir: mode stays 0
      fail.Set(errno, "statx", dir_ + "/" + e.name);
      return false;
    }
    if (S_ISLNK(st.stx_mode)) {
      std::vector<char> buf(st.stx_size > 0 ? st.stx_size + 1 : 256);
      for (;;) {
        ssize_t len = ::readlinkat(dirfd, e.name.c_str(), buf.data(), buf.size());
        if (len < 0) {
          if (errno == ENOENT || errno == EINVAL) return true;  // gone, or replaced by a non-link
          fail.Set(errno, "readlink", dir_ + "/" + e.name);
          return false;
        }
        if (static_cast<size_t>(len) < buf.size()) {
          e.target.assign(buf.data(), len);
          break;
        }
        buf.resize(buf.size() * 2);  // the link grew since the statx
      }
    }
    e.mode = st.stx_mode;
    e.size = st.stx_size;
    e.ino = st.stx_ino;
    e.mtimeSec = st.stx_mtime.tv_sec;
    e.mtimeNsec = st.stx_mtime.tv_nsec;
    return true;
  }

  // False after recording a failure; an absent file is not one.
  bool ReadSide() {
    int fd = ::open(side_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return true;
      fail.Set(errno, "open", side_);
      return false;
    }
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        fail.Set(errno, "read", side_);
        ::close(fd);
        return false;
      }
      if (n == 0) break;
      sideData_.append(buf, n);
    }
    ::close(fd);
    haveSide_ = true;
    return true;
  }

  std::string dir_;
  std::string side_;
  std::vector<Entry> entries_;
  bool haveSide_ = false;
  std::string sideData_;
};

Napi::Value StatDir(const Napi::CallbackInfo& info) {
  std::string side = info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull() ? ArgPath(info, 1, "side") : "";
  auto* w = new StatDirWorker(info.Env(), ArgPath(info, 0, "dir"), std::move(side));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitStatDir(Napi::Env env, Napi::Object exports) {
  exports.Set("statDir", Napi::Function::New(env, StatDir));
}

}  // namespace img
