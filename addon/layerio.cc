// A layer's bulk work off the JS thread: SHA-256 of its bytes (the blob digest, the
// diff_id) and the writes of its regular files (data, owner, mode, times, close), run in
// batches as jobs on the codec pool while the JS thread parses the next part of the tar.
//
// The JS side (lib/archive/offthread.ts) keeps one batch in flight per queue, so the
// operations of a queue run in the order they were given; a batch stops at the first
// failure and reports which operation failed and its errno (the caller names the entry).
//
// SHA-256: OpenSSL's, through the symbols Node exports (its official builds link OpenSSL
// statically and export its API for addons), else our own from FIPS 180-4.
#include "addon.h"
#include "codec.h"
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdint>
#include <cstring>
#include <vector>

namespace img {

namespace {

// ---- SHA-256, portable (FIPS 180-4 section 6.2)

constexpr uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

class PortableSha256 {
 public:
  PortableSha256() {
    static constexpr uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::memcpy(h_, H0, sizeof h_);
  }

  void Update(const uint8_t* p, size_t n) {
    bytes_ += n;
    if (fill_) {
      size_t take = std::min(n, sizeof buf_ - fill_);
      std::memcpy(buf_ + fill_, p, take);
      fill_ += take;
      p += take;
      n -= take;
      if (fill_ < sizeof buf_) return;
      Block(buf_);
      fill_ = 0;
    }
    for (; n >= 64; p += 64, n -= 64) Block(p);
    std::memcpy(buf_, p, n);
    fill_ = n;
  }

  // Padding: a 1 bit, zeros, then the message length in bits as 64-bit big-endian.
  void Final(uint8_t out[32]) {
    uint64_t bits = bytes_ * 8;
    uint8_t pad[72] = {0x80};
    size_t padLen = (fill_ < 56 ? 56 : 120) - fill_;
    for (int i = 0; i < 8; i++) pad[padLen + i] = uint8_t(bits >> (56 - 8 * i));
    Update(pad, padLen + 8);
    for (int i = 0; i < 8; i++) {
      out[4 * i] = uint8_t(h_[i] >> 24);
      out[4 * i + 1] = uint8_t(h_[i] >> 16);
      out[4 * i + 2] = uint8_t(h_[i] >> 8);
      out[4 * i + 3] = uint8_t(h_[i]);
    }
  }

 private:
  void Block(const uint8_t* p) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++) w[t] = uint32_t(p[4 * t]) << 24 | uint32_t(p[4 * t + 1]) << 16 | uint32_t(p[4 * t + 2]) << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
      uint32_t s0 = Rotr(w[t - 15], 7) ^ Rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      uint32_t s1 = Rotr(w[t - 2], 17) ^ Rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int t = 0; t < 64; t++) {
      uint32_t t1 = h + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + K256[t] + w[t];
      uint32_t t2 = (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e, h_[5] += f, h_[6] += g, h_[7] += h;
  }

  uint32_t h_[8];
  uint8_t buf_[64];
  size_t fill_ = 0;
  uint64_t bytes_ = 0;
};

// ---- OpenSSL's EVP digest API, when the process exports it (looked up once).
struct Evp {
  void* (*ctxNew)() = nullptr;
  void (*ctxFree)(void*) = nullptr;
  const void* (*sha256)() = nullptr;
  int (*init)(void*, const void*, void*) = nullptr;
  int (*update)(void*, const void*, size_t) = nullptr;
  int (*final)(void*, unsigned char*, unsigned int*) = nullptr;
  bool ok = false;
};

const Evp& OpenSsl() {
  static const Evp evp = [] {
    Evp e;
    if (getenv("IMG_SHA256_PORTABLE")) return e;  // tests hold both implementations to node:crypto
    e.ctxNew = reinterpret_cast<void* (*)()>(dlsym(RTLD_DEFAULT, "EVP_MD_CTX_new"));
    e.ctxFree = reinterpret_cast<void (*)(void*)>(dlsym(RTLD_DEFAULT, "EVP_MD_CTX_free"));
    e.sha256 = reinterpret_cast<const void* (*)()>(dlsym(RTLD_DEFAULT, "EVP_sha256"));
    e.init = reinterpret_cast<int (*)(void*, const void*, void*)>(dlsym(RTLD_DEFAULT, "EVP_DigestInit_ex"));
    e.update = reinterpret_cast<int (*)(void*, const void*, size_t)>(dlsym(RTLD_DEFAULT, "EVP_DigestUpdate"));
    e.final = reinterpret_cast<int (*)(void*, unsigned char*, unsigned int*)>(dlsym(RTLD_DEFAULT, "EVP_DigestFinal_ex"));
    e.ok = e.ctxNew && e.ctxFree && e.sha256 && e.init && e.update && e.final;
    return e;
  }();
  return evp;
}

// One running SHA-256: OpenSSL's when available, else the portable one.
class Sha256State {
 public:
  Sha256State() {
    const Evp& e = OpenSsl();
    if (!e.ok) return;
    ctx_ = e.ctxNew();
    if (ctx_ && e.init(ctx_, e.sha256(), nullptr) != 1) {
      e.ctxFree(ctx_);
      ctx_ = nullptr;
    }
  }
  ~Sha256State() {
    if (ctx_) OpenSsl().ctxFree(ctx_);
  }
  Sha256State(const Sha256State&) = delete;
  Sha256State& operator=(const Sha256State&) = delete;

  void Update(const uint8_t* p, size_t n) {
    if (ctx_) OpenSsl().update(ctx_, p, n);
    else portable_.Update(p, n);
  }
  void Final(uint8_t out[32]) {
    unsigned int len = 32;
    if (ctx_) OpenSsl().final(ctx_, out, &len);
    else portable_.Final(out);
  }
  const char* Implementation() const { return ctx_ ? "openssl" : "portable"; }

 private:
  void* ctx_ = nullptr;
  PortableSha256 portable_;
};

// new Sha256(): update(buf) on the JS thread for small inputs; large ones go through
// runLayerOps batches; digest() → hex, once.
class Sha256 : public Napi::ObjectWrap<Sha256> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Sha256",
                       {InstanceMethod<&Sha256::Update>("update"), InstanceMethod<&Sha256::Digest>("digest"),
                        InstanceAccessor<&Sha256::Impl>("implementation")});
  }
  Sha256(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sha256>(info), state_(new Sha256State()) {}

  // For a batch on a pool thread; null once digested.
  Sha256State* state() { return state_.get(); }
  bool busy = false;

 private:
  void Check(Napi::Env env) {
    if (!state_) throw Napi::Error::New(env, "sha256: digest() was called already");
    if (busy) throw Napi::Error::New(env, "sha256: a batch using it is still running");
  }
  Napi::Value Update(const Napi::CallbackInfo& info) {
    Check(info.Env());
    if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(info.Env(), "update(data: Buffer)");
    auto b = info[0].As<Napi::Buffer<uint8_t>>();
    state_->Update(b.Data(), b.Length());
    return info.This();
  }
  Napi::Value Digest(const Napi::CallbackInfo& info) {
    Check(info.Env());
    uint8_t out[32];
    state_->Final(out);
    state_.reset();
    static const char* hex = "0123456789abcdef";
    std::string s(64, '0');
    for (int i = 0; i < 32; i++) {
      s[2 * i] = hex[out[i] >> 4];
      s[2 * i + 1] = hex[out[i] & 15];
    }
    return Napi::String::New(info.Env(), s);
  }
  Napi::Value Impl(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), state_ ? state_->Implementation() : "done");
  }
  std::unique_ptr<Sha256State> state_;
};

// ---- runLayerOps(ops: Float64Array, bufs: Buffer[], hash: Sha256 | null)
//
// ops: records of OP_FIELDS numbers, [kind, ...]:
//   HASH   bufIndex                                   hash bufs[bufIndex] into `hash`
//   WRITE  fd, bufIndex, start, end, position         pwrite bufs[bufIndex][start, end) at position
//   FINISH fd, flags, uid, gid, mode, mtime, size     ftruncate to size (flags&TRUNCATE), fchown
//                                                     (flags&CHOWN), fchmod, futimens, close
// Resolves to null, or [opIndex, errno name, syscall] of the first failure; after a failure
// the batch only closes the FINISH records' fds (nothing else is written).
constexpr int OP_FIELDS = 8;
enum OpKind { OP_HASH = 1, OP_WRITE = 2, OP_FINISH = 3 };
enum FinishFlags { F_CHOWN = 1, F_TRUNCATE = 2 };

struct BufView {
  const uint8_t* data;
  size_t len;
};

class LayerOpsJob : public CodecJob {
 public:
  LayerOpsJob(std::vector<double> ops, std::vector<BufView> bufs, Sha256* hash)
      : ops_(std::move(ops)), bufs_(std::move(bufs)), hash_(hash), state_(hash ? hash->state() : nullptr) {}
  ~LayerOpsJob() override {
    if (hash_) hash_->busy = false;
  }

  void Run() override {
    size_t n = ops_.size() / OP_FIELDS;
    for (size_t i = 0; i < n; i++) {
      const double* r = &ops_[i * OP_FIELDS];
      int kind = int(r[0]);
      if (failed_ >= 0) {
        if (kind == OP_FINISH) ::close(int(r[1]));
        continue;
      }
      if (!RunOne(kind, r)) failed_ = long(i);
    }
  }

  Napi::Value Result(Napi::Env env) override {
    if (failed_ < 0) return env.Null();
    Napi::Array a = Napi::Array::New(env, 3);
    a.Set(0u, Napi::Number::New(env, double(failed_)));
    a.Set(1u, Napi::String::New(env, ErrnoName(errno_)));
    a.Set(2u, Napi::String::New(env, syscall_));
    return a;
  }

 private:
  bool Fail(const char* syscall) {
    errno_ = errno;
    syscall_ = syscall;
    return false;
  }

  bool RunOne(int kind, const double* r) {
    switch (kind) {
      case OP_HASH: {
        const BufView& b = bufs_[size_t(r[1])];
        state_->Update(b.data, b.len);
        return true;
      }
      case OP_WRITE: {
        int fd = int(r[1]);
        const BufView& b = bufs_[size_t(r[2])];
        size_t start = size_t(r[3]), end = size_t(r[4]);
        off_t pos = off_t(r[5]);
        while (start < end) {
          ssize_t w = ::pwrite(fd, b.data + start, end - start, pos);
          if (w < 0) {
            if (errno == EINTR) continue;
            return Fail("write");
          }
          start += size_t(w);
          pos += w;
        }
        return true;
      }
      case OP_FINISH: {
        int fd = int(r[1]);
        int flags = int(r[2]);
        bool ok = true;
        // chown before chmod: chown clears setuid/setgid.
        if ((flags & F_TRUNCATE) && ::ftruncate(fd, off_t(r[7])) < 0) ok = Fail("ftruncate");
        else if ((flags & F_CHOWN) && ::fchown(fd, uid_t(r[3]), gid_t(r[4])) < 0) ok = Fail("fchown");
        else if (::fchmod(fd, mode_t(r[5])) < 0) ok = Fail("fchmod");
        else {
          double mt = r[6];
          struct timespec ts[2];
          ts[0].tv_sec = time_t(mt);
          ts[0].tv_nsec = long((mt - double(ts[0].tv_sec)) * 1e9);
          if (ts[0].tv_nsec < 0) ts[0].tv_nsec = 0;
          if (ts[0].tv_nsec > 999999999) ts[0].tv_nsec = 999999999;
          ts[1] = ts[0];
          if (::futimens(fd, ts) < 0) ok = Fail("futimens");
        }
        if (::close(fd) < 0 && ok && errno != EINTR) ok = Fail("close");
        return ok;
      }
      default:
        errno = EINVAL;
        return Fail("runLayerOps");
    }
  }

  std::vector<double> ops_;
  std::vector<BufView> bufs_;
  Sha256* hash_;
  Sha256State* state_;
  long failed_ = -1;
  int errno_ = 0;
  const char* syscall_ = "";
};

Napi::Value RunLayerOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsArray())
    throw Napi::TypeError::New(env, "runLayerOps(ops: Float64Array, bufs: Buffer[], hash: Sha256 | null)");
  auto ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float64_array) throw Napi::TypeError::New(env, "ops must be a Float64Array");
  auto opsArr = ta.As<Napi::Float64Array>();
  if (opsArr.ElementLength() % OP_FIELDS) throw Napi::RangeError::New(env, "ops: records of 8 numbers");
  std::vector<double> ops(opsArr.Data(), opsArr.Data() + opsArr.ElementLength());
  auto arr = info[1].As<Napi::Array>();
  std::vector<BufView> bufs;
  bufs.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr[i];
    if (!v.IsBuffer()) throw Napi::TypeError::New(env, "bufs must hold Buffers");
    auto b = v.As<Napi::Buffer<uint8_t>>();
    bufs.push_back({b.Data(), b.Length()});
  }
  Sha256* hash = nullptr;
  if (info.Length() > 2 && info[2].IsObject()) {
    hash = Napi::ObjectWrap<Sha256>::Unwrap(info[2].As<Napi::Object>());
    if (!hash || !hash->state()) throw Napi::TypeError::New(env, "hash must be a Sha256 not digested yet");
    if (hash->busy) throw Napi::Error::New(env, "sha256: another batch using it is still running");
  }
  // Check the records against the buffers here, where a mistake can still throw.
  for (size_t i = 0; i < ops.size(); i += OP_FIELDS) {
    int kind = int(ops[i]);
    size_t bi = kind == OP_HASH ? size_t(ops[i + 1]) : kind == OP_WRITE ? size_t(ops[i + 2]) : 0;
    if (kind == OP_HASH && !hash) throw Napi::TypeError::New(env, "a HASH record needs a Sha256");
    if ((kind == OP_HASH || kind == OP_WRITE) && bi >= bufs.size()) throw Napi::RangeError::New(env, "buffer index out of range");
    if (kind == OP_WRITE && (ops[i + 3] > ops[i + 4] || size_t(ops[i + 4]) > bufs[bi].len))
      throw Napi::RangeError::New(env, "write range out of its buffer");
    if (kind != OP_HASH && kind != OP_WRITE && kind != OP_FINISH) throw Napi::RangeError::New(env, "unknown record kind");
  }
  auto* job = new LayerOpsJob(std::move(ops), std::move(bufs), hash);
  job->Pin(arr);  // the Buffers stay alive (and in place) until the job settles
  if (hash) {
    job->Pin(info[2].As<Napi::Object>());
    hash->busy = true;
  }
  return SubmitCodecJob(env, job);
}

// setTopDirFlag(dir): sets FS_TOPDIR_FL (chattr +T) on a directory, so that ext4 places each
// directory made in it in a block group of its own choosing (Orlov's spread) rather than
// next to its parent. Throws the errno (ENOTTY, EOPNOTSUPP: the filesystem has no such flag).
Napi::Value SetTopDirFlag(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgPath(info, 0, "dir");
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw ErrnoError(env, errno, "open", path);
  int flags = 0;
  const char* failed = nullptr;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) failed = "ioctl(FS_IOC_GETFLAGS)";
  else if (!(flags & FS_TOPDIR_FL)) {
    flags |= FS_TOPDIR_FL;
    if (::ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) failed = "ioctl(FS_IOC_SETFLAGS)";
  }
  int err = errno;
  ::close(fd);
  if (failed) throw ErrnoError(env, err, failed, path);
  return env.Undefined();
}

}  // namespace

void InitLayerIo(Napi::Env env, Napi::Object exports) {
  exports.Set("Sha256", Sha256::Define(env));
  exports.Set("runLayerOps", Napi::Function::New(env, RunLayerOps));
  exports.Set("setTopDirFlag", Napi::Function::New(env, SetTopDirFlag));
}

}  // namespace img
