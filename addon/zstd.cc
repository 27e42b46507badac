// zstd through libzstd, when the build found it (else lib/archive falls back to
// the `zstd` program). Compression always runs zstd's multi-threaded mode, with
// at least one worker: its output is the same for any number of workers and any
// way the input is cut into calls (checked by test/archive/codecs.test.ts), so a
// layer's digest depends on its bytes and level only, never on this machine's
// core count. Single-threaded mode (0 workers) would frame the data differently.
#include "addon.h"
#include "codec.h"
#include "codec_libs.h"

namespace img {

#ifdef IMG_HAVE_ZSTD
namespace {

class ZstdCompress : public StreamEngine {
 public:
  ZstdCompress(const ZstdApi* z, int level, int workers) : z_(z), c_(z->createCCtx()) {
    if (!c_) return;
    Check(z_->CCtx_setParameter(c_, ZSTD_c_compressionLevel, level));
    Check(z_->CCtx_setParameter(c_, ZSTD_c_checksumFlag, 1));  // as the zstd program writes
    Check(z_->CCtx_setParameter(c_, ZSTD_c_nbWorkers, workers < 1 ? 1 : workers));
  }
  ~ZstdCompress() override { z_->freeCCtx(c_); }

  bool Step(const uint8_t* in, size_t inLen, uint8_t* out, size_t outLen, bool end, size_t& read, size_t& written,
            std::string& err) override {
    if (!c_ || !setupErr_.empty()) {
      err = c_ ? setupErr_ : "out of memory";
      return false;
    }
    ZSTD_inBuffer ib{in, inLen, 0};
    ZSTD_outBuffer ob{out, outLen, 0};
    bool done = false;
    do {
      size_t r = z_->compressStream2(c_, &ob, &ib, end ? ZSTD_e_end : ZSTD_e_continue);
      if (z_->isError(r)) {
        err = z_->getErrorName(r);
        break;
      }
      if (end && r == 0) {
        done = true;
        break;
      }
      if (!end && ib.pos == ib.size) break;  // taken (the workers may still be compressing it)
    } while (ob.pos < ob.size);
    read = ib.pos;
    written = ob.pos;
    return done;
  }

 private:
  void Check(size_t r) {
    if (z_->isError(r) && setupErr_.empty()) setupErr_ = z_->getErrorName(r);
  }
  const ZstdApi* z_;
  ZSTD_CCtx* c_;
  std::string setupErr_;
};

class ZstdDecompress : public StreamEngine {
 public:
  explicit ZstdDecompress(const ZstdApi* z) : z_(z), d_(z->createDCtx()) {}
  ~ZstdDecompress() override { z_->freeDCtx(d_); }

  // Frames follow each other (a concatenation of zstd streams is one stream);
  // the window limit stays libzstd's default (128 MiB), so memory stays bounded.
  bool Step(const uint8_t* in, size_t inLen, uint8_t* out, size_t outLen, bool end, size_t& read, size_t& written,
            std::string& err) override {
    if (!d_) {
      err = "out of memory";
      return false;
    }
    ZSTD_inBuffer ib{in, inLen, 0};
    ZSTD_outBuffer ob{out, outLen, 0};
    while (ob.pos < ob.size) {
      size_t inBefore = ib.pos, outBefore = ob.pos;
      size_t r = z_->decompressStream(d_, &ob, &ib);
      if (z_->isError(r)) {
        err = z_->getErrorName(r);
        break;
      }
      if (ib.pos == inBefore && ob.pos == outBefore) break;  // needs more input
      // r is 0 exactly when a frame has ended and all of it is out
      started_ = true;
      frameOpen_ = r != 0;
    }
    read = ib.pos;
    written = ob.pos;
    if (!err.empty()) return false;
    bool complete = started_ && !frameOpen_ && ib.pos == ib.size;
    if (end && ob.pos < ob.size && !complete) err = started_ ? "the zstd stream is truncated" : "empty zstd stream";
    return end && complete;
  }

 private:
  const ZstdApi* z_;
  ZSTD_DCtx* d_;
  bool started_ = false;
  bool frameOpen_ = false;  // inside a frame: more of it must follow
};

}  // namespace

std::unique_ptr<StreamEngine> MakeZstdEngine(bool compress, int level, int workers) {
  const ZstdApi* z = Zstd();
  if (!z) return nullptr;
  if (compress) return std::make_unique<ZstdCompress>(z, level, workers);
  return std::make_unique<ZstdDecompress>(z);
}

void InitZstd(Napi::Env env, Napi::Object exports) {
  if (const ZstdApi* z = Zstd())
    exports.Get("codecVersions").As<Napi::Object>().Set("zstd", Napi::String::New(env, z->versionString()));
}

#else

std::unique_ptr<StreamEngine> MakeZstdEngine(bool, int, int) { return nullptr; }
void InitZstd(Napi::Env, Napi::Object) {}

#endif

}  // namespace img
