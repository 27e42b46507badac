// Deflate for gzip layers: ISA-L's igzip when the build found it (several
// times zlib's speed), zlib always (the fallback, and gzip level 0).
//
// deflateChunk compresses one chunk of a parallel gzip stream (policy: which
// chunks, their order, header and trailer, lives in lib/archive/pgzip.ts): raw
// deflate primed with the previous chunk's tail as dictionary, ended by a sync
// flush (byte-aligned, not final) or, for the last chunk, by a final block; it
// also returns the chunk's CRC-32, which crc32Combine folds into the stream's.
// The output is a Buffer over a recycled block (OutputBlocks), or an exact-size
// copy when the chunk compressed well; the JS thread neither sizes nor allocates it.
// The gunzip engines inflate a gzip stream (every member of it) with trailers
// checked, for CodecStream.
#include "addon.h"
#include "codec.h"
#include "codec_libs.h"
#include <zlib.h>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace img {

namespace {

// ---- compression of one chunk

// Output blocks, recycled: a chunk is compressed straight into a block, the resolved Buffer owns
// it, and V8's finalizer hands it back here. A fresh block per chunk would fault its pages in (and
// trimming the pool threads' malloc arenas unmaps them again); copying out at the exact size
// costs as much on incompressible data, so only well-compressed chunks are copied (Run).
class OutputBlocks {
 public:
  static OutputBlocks& Get() {
    static OutputBlocks* blocks = new OutputBlocks();  // never destroyed: finalizers may run at exit
    return *blocks;
  }
  uint8_t* Take(size_t size) {
    {
      std::lock_guard<std::mutex> g(mu_);
      for (size_t i = 0; i < free_.size(); i++) {
        if (free_[i].size != size) continue;
        uint8_t* p = free_[i].data;
        free_[i] = free_.back();
        free_.pop_back();
        return p;
      }
    }
    return static_cast<uint8_t*>(std::malloc(size));
  }
  void Give(uint8_t* p, size_t size) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (free_.size() < kKeep) {
        free_.push_back({p, size});
        return;
      }
    }
    std::free(p);
  }

 private:
  static constexpr size_t kKeep = 16;  // about the chunks of two layers in flight at once
  struct Block {
    uint8_t* data;
    size_t size;
  };
  std::mutex mu_;
  std::vector<Block> free_;
};

class DeflateChunkJob : public CodecJob {
 public:
  DeflateChunkJob(bool isal, int level, const uint8_t* in, size_t inLen, const uint8_t* dict, size_t dictLen,
                  bool last)
      : isal_(isal), level_(level), in_(in), inLen_(inLen), dict_(dict), dictLen_(dictLen), last_(last) {}

  ~DeflateChunkJob() override {
    if (out_) OutputBlocks::Get().Give(out_, outLen_);
    std::free(exact_);
  }

  void Run() override {
    // Room for any chunk: incompressible data costs ISA-L and zlib a few bytes per stored
    // block, plus the block headers and the sync flush.
    outLen_ = inLen_ + (inLen_ >> 3) + 1024;
    out_ = OutputBlocks::Get().Take(outLen_);
    if (!out_) return Fail("out of memory for a compressed chunk", "ENOMEM");
    if (isal_) RunIsal();
    else RunZlib();
    // A chunk that compressed to about half or less is copied out at its size and the block goes
    // straight back, still in cache, for the next chunk: otherwise the block waits for V8 to
    // collect its Buffer while fresh ones fault their pages in, and V8 counts 2x or more the
    // memory the bytes need. Copying a barely compressed chunk costs more than that saves
    // (measured: +8% CPU on random data, -1.5% on a /usr tar).
    if (error.empty() && written_ > 0 && written_ <= outLen_ / 2) {
      exact_ = static_cast<uint8_t*>(std::malloc(written_));
      if (exact_) {
        std::memcpy(exact_, out_, written_);
        OutputBlocks::Get().Give(out_, outLen_);
        out_ = nullptr;
      }
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, 2);
    Napi::Value buf;
    if (written_ == 0) {
      buf = Napi::Buffer<uint8_t>::New(env, 0);
    } else if (exact_) {
      buf = Napi::Buffer<uint8_t>::New(env, exact_, written_, [](Napi::Env, uint8_t* p) { std::free(p); });
      exact_ = nullptr;
    } else {
      size_t size = outLen_;
      buf = Napi::Buffer<uint8_t>::New(env, out_, written_,
                                       [size](Napi::Env, uint8_t* p) { OutputBlocks::Get().Give(p, size); });
      out_ = nullptr;  // the Buffer owns it now
    }
    a.Set(0u, buf);
    a.Set(1u, Napi::Number::New(env, crc_));
    return a;
  }

 private:
  void RunZlib() {
    z_stream z;
    std::memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level_, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return Fail("deflateInit2 failed");
    if (dictLen_ && deflateSetDictionary(&z, dict_, uInt(dictLen_)) != Z_OK) {
      deflateEnd(&z);
      return Fail("deflateSetDictionary failed");
    }
    z.next_in = const_cast<Bytef*>(in_);
    z.avail_in = uInt(inLen_);
    z.next_out = out_;
    z.avail_out = uInt(outLen_);
    int r = deflate(&z, last_ ? Z_FINISH : Z_SYNC_FLUSH);
    // A sync flush is complete only if it left room in the output.
    bool ok = last_ ? r == Z_STREAM_END : (r == Z_OK && z.avail_in == 0 && z.avail_out > 0);
    written_ = outLen_ - z.avail_out;
    deflateEnd(&z);
    if (!ok) return Fail("deflate did not finish the chunk", "ENOBUFS");
    crc_ = uint32_t(crc32(0, in_, uInt(inLen_)));
  }

#ifdef IMG_HAVE_ISAL
  void RunIsal() {
    const IsalApi* isal = Isal();
    if (!isal) return Fail("ISA-L (libisal.so.2) is not loaded", "ENOTSUP");
    // The stream (80 KiB, its history buffer included) and, per pool thread, the level's hash tables.
    // Level 1 gets the largest buffer ISA-L defines: more tokens per block means fewer Huffman
    // tables to build, about 5% faster on binaries for a 0.3% larger output.
    alignas(64) isal_zstream s;  // on the stack: as thread_local it ran ~8% slower (alignment, it seems)
    thread_local std::vector<uint8_t> levelBuf;
    static const uint32_t kLevelBuf[] = {ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_EXTRA_LARGE, ISAL_DEF_LVL2_DEFAULT,
                                         ISAL_DEF_LVL3_DEFAULT};
    if (levelBuf.size() < kLevelBuf[level_]) levelBuf.resize(kLevelBuf[level_]);
    isal->deflate_init(&s);
    s.level = uint32_t(level_);
    s.level_buf = levelBuf.data();
    s.level_buf_size = kLevelBuf[level_];
    s.gzip_flag = IGZIP_DEFLATE;
    if (dictLen_ && isal->deflate_set_dict(&s, const_cast<uint8_t*>(dict_), uint32_t(dictLen_)) != COMP_OK)
      return Fail("isal_deflate_set_dict failed");
    s.next_in = const_cast<uint8_t*>(in_);
    s.avail_in = uint32_t(inLen_);
    s.next_out = out_;
    s.avail_out = uint32_t(outLen_);
    s.end_of_stream = last_ ? 1 : 0;
    s.flush = last_ ? NO_FLUSH : SYNC_FLUSH;
    // Done: every byte read and the stream closed (last) or the sync flush written. One call
    // may stop short of that (it works through its internal buffer), so call until done or stuck.
    auto finished = [&] {
      return s.avail_in == 0 &&
             (last_ ? s.internal_state.state == ZSTATE_END : s.internal_state.state == ZSTATE_NEW_HDR);
    };
    int r;
    uint32_t before;
    do {
      before = s.avail_in + s.avail_out;
      r = isal->deflate(&s);
    } while (r == COMP_OK && !finished() && s.avail_out > 0 && s.avail_in + s.avail_out != before);
    bool ok = r == COMP_OK && finished();
    written_ = outLen_ - s.avail_out;
    if (!ok) return Fail("isal_deflate did not finish the chunk", "ENOBUFS");
    crc_ = isal->crc32_gzip_refl(0, in_, inLen_);
  }
#else
  void RunIsal() { Fail("built without ISA-L", "ENOTSUP"); }
#endif

  void Fail(const char* msg, const char* code = "EINVAL") {
    error = msg;
    errorCode = code;
  }

  bool isal_;
  int level_;
  const uint8_t* in_;
  size_t inLen_;
  const uint8_t* dict_;
  size_t dictLen_;
  bool last_;
  uint8_t* out_ = nullptr;
  uint8_t* exact_ = nullptr;  // the output copied out at its size, when that is much smaller
  size_t outLen_ = 0;
  size_t written_ = 0;
  uint32_t crc_ = 0;
};

// deflateChunk(codec, level, input, dict|null, last) → Promise<[output, crc32]>
Napi::Value DeflateChunk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string codec = ArgString(info, 0, "codec");
  int level = ArgInt(info, 1, "level");
  if (info.Length() < 5 || !info[2].IsBuffer() || !(info[3].IsBuffer() || info[3].IsNull()))
    throw Napi::TypeError::New(env, "deflateChunk(codec, level, input: Buffer, dict: Buffer|null, last)");
  bool isal = codec == "isal";
  if (isal) {
#ifdef IMG_HAVE_ISAL
    bool have = Isal() != nullptr;
#else
    bool have = false;
#endif
    if (!have) {
      Napi::Error e = Napi::Error::New(env, "no ISA-L here (codec 'isal'): see codecVersions");
      e.Set("code", Napi::String::New(env, "ENOTSUP"));
      throw e;
    }
    if (level < 0 || level > 3) throw Napi::RangeError::New(env, "isal level must be 0..3");
  } else if (codec == "zlib") {
    if (level < 0 || level > 9) throw Napi::RangeError::New(env, "zlib level must be 0..9");
  } else {
    throw Napi::TypeError::New(env, "codec must be 'isal' or 'zlib'");
  }
  auto in = info[2].As<Napi::Buffer<uint8_t>>();
  const uint8_t* dict = nullptr;
  size_t dictLen = 0;
  if (info[3].IsBuffer()) {
    auto d = info[3].As<Napi::Buffer<uint8_t>>();
    dictLen = std::min<size_t>(d.Length(), 32768);  // deflate's window
    dict = d.Data() + (d.Length() - dictLen);
  }
  if (in.Length() > 0x70000000) throw Napi::RangeError::New(env, "chunk too large");
  auto* job =
      new DeflateChunkJob(isal, level, in.Data(), in.Length(), dict, dictLen, info[4].ToBoolean().Value());
  job->Pin(in);
  if (info[3].IsBuffer()) job->Pin(info[3].As<Napi::Object>());
  return SubmitCodecJob(env, job);
}

// crc32Combine(crcA, crcB, lengthB) → CRC-32 of A followed by B
Napi::Value Crc32Combine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "crc32Combine(crcA, crcB, lengthB)");
  uint32_t a = info[0].As<Napi::Number>().Uint32Value();
  uint32_t b = info[1].As<Napi::Number>().Uint32Value();
  int64_t len = info[2].As<Napi::Number>().Int64Value();
  return Napi::Number::New(env, uint32_t(crc32_combine64(a, b, len)));
}

// ---- streaming gunzip: every member of a gzip stream, trailers checked

// Another member may follow one that ended; anything else after a member is an error
// (as in Go's compress/gzip, which containerd uses), not trailing garbage to skip.
bool NextMemberStarts(const uint8_t* p, size_t n, std::string& err) {
  if (p[0] == 0x1f && (n < 2 || p[1] == 0x8b)) return true;
  err = "unexpected data after the end of a gzip member";
  return false;
}

class ZlibGunzip : public StreamEngine {
 public:
  ZlibGunzip() {
    std::memset(&z_, 0, sizeof z_);
    ok_ = inflateInit2(&z_, 16 + 15) == Z_OK;
  }
  ~ZlibGunzip() override {
    if (ok_) inflateEnd(&z_);
  }
  bool Step(const uint8_t* in, size_t inLen, uint8_t* out, size_t outLen, bool end, size_t& read, size_t& written,
            std::string& err) override {
    if (!ok_) {
      err = "inflateInit2 failed";
      return false;
    }
    z_.next_in = const_cast<Bytef*>(in);
    z_.avail_in = uInt(inLen);
    z_.next_out = out;
    z_.avail_out = uInt(outLen);
    while (z_.avail_out > 0) {
      if (memberDone_) {
        if (z_.avail_in == 0) break;
        if (!NextMemberStarts(z_.next_in, z_.avail_in, err)) break;
        inflateReset(&z_);
        memberDone_ = false;
      }
      int r = inflate(&z_, Z_NO_FLUSH);
      if (r == Z_STREAM_END) {
        memberDone_ = true;
        started_ = true;
        continue;
      }
      if (r == Z_BUF_ERROR) break;  // no progress possible: needs input
      if (r != Z_OK) {
        err = z_.msg ? z_.msg : "inflate failed";
        break;
      }
      started_ = true;
      if (z_.avail_in == 0 && z_.avail_out > 0) break;  // all input used, all output out
    }
    read = inLen - z_.avail_in;
    written = outLen - z_.avail_out;
    if (!err.empty()) return false;
    if (end && z_.avail_out > 0 && !memberDone_) err = started_ ? "the gzip stream is truncated" : "empty gzip stream";
    return end && memberDone_ && z_.avail_in == 0;
  }

 private:
  z_stream z_;
  bool ok_ = false;
  bool memberDone_ = false;
  bool started_ = false;
};

#ifdef IMG_HAVE_ISAL
// A gzip member header (RFC 1952), read a byte at a time so it may arrive in any pieces.
// ISA-L parses headers itself, but 2.30 gets the header CRC (FHCRC) wrong when the header
// is split across calls; so img reads the header and ISA-L inflates the body and checks the
// trailer (ISAL_GZIP_NO_HDR_VER).
class GzipHeader {
 public:
  enum Result { kNeedMore, kComplete, kInvalid };

  // Consumes header bytes from p/n; kComplete leaves p at the first byte of the deflate data.
  Result Feed(const uint8_t*& p, uint32_t& n, std::string& err) {
    while (field_ != kDone) {
      if (n == 0) return kNeedMore;
      uint8_t b = *p++;
      n--;
      if (field_ != kHcrc) crc_ = uint32_t(crc32(crc_, &b, 1));
      switch (field_) {
        case kMagic1:
        case kMagic2:
          if (b != (field_ == kMagic1 ? 0x1f : 0x8b)) return Bad(err, "not gzip data (no gzip magic)");
          field_ = field_ == kMagic1 ? kMagic2 : kMethod;
          break;
        case kMethod:
          if (b != 8) return Bad(err, "unsupported gzip compression method");
          field_ = kFlags;
          break;
        case kFlags:
          if (b & 0xe0) return Bad(err, "invalid gzip header (reserved flags set)");
          flags_ = b;
          field_ = kFixed;
          left_ = 6;  // MTIME, XFL, OS
          break;
        case kFixed:
          if (--left_ == 0) Next(kFixed);
          break;
        case kExtraLen:
          left_ |= uint32_t(b) << (8 * got_);
          if (++got_ == 2) {
            if (left_) field_ = kExtra;
            else Next(kExtra);
          }
          break;
        case kExtra:
          if (--left_ == 0) Next(kExtra);
          break;
        case kName:
        case kComment:
          if (b == 0) Next(field_);
          break;
        case kHcrc:
          hcrc_ |= uint32_t(b) << (8 * got_);
          if (++got_ == 2) {
            if (hcrc_ != (crc_ & 0xffff)) return Bad(err, "incorrect gzip header CRC");
            field_ = kDone;
          }
          break;
        case kDone:
          break;
      }
    }
    return kComplete;
  }

 private:
  enum Field { kMagic1, kMagic2, kMethod, kFlags, kFixed, kExtraLen, kExtra, kName, kComment, kHcrc, kDone };

  // The field after `done`: the next optional one the flags announce.
  void Next(Field done) {
    got_ = 0;
    left_ = 0;
    if (done < kExtraLen && (flags_ & 0x04)) field_ = kExtraLen;
    else if (done < kName && (flags_ & 0x08)) field_ = kName;
    else if (done < kComment && (flags_ & 0x10)) field_ = kComment;
    else if (done < kHcrc && (flags_ & 0x02)) field_ = kHcrc;
    else field_ = kDone;
  }

  Result Bad(std::string& err, const char* why) {
    err = why;
    return kInvalid;
  }

  Field field_ = kMagic1;
  uint8_t flags_ = 0;
  uint32_t left_ = 0, got_ = 0, hcrc_ = 0, crc_ = 0;
};

class IsalGunzip : public StreamEngine {
 public:
  explicit IsalGunzip(const IsalApi* isal) : isal_(isal) { isal_->inflate_init(&s_); }

  bool Step(const uint8_t* in, size_t inLen, uint8_t* out, size_t outLen, bool end, size_t& read, size_t& written,
            std::string& err) override {
    const uint8_t* p = in;
    uint32_t n = uint32_t(inLen);
    s_.next_out = out;
    s_.avail_out = uint32_t(outLen);
    while (s_.avail_out > 0) {
      if (phase_ == kBetween) {  // a member ended: another may follow
        if (n == 0) break;
        if (!NextMemberStarts(p, n, err)) break;
        header_ = GzipHeader();
        phase_ = kHeader;
      }
      if (phase_ == kHeader) {
        if (n == 0) break;
        started_ = true;
        GzipHeader::Result h = header_.Feed(p, n, err);
        if (h != GzipHeader::kComplete) break;  // invalid (err set), or needs more input
        isal_->inflate_reset(&s_);
        s_.crc_flag = ISAL_GZIP_NO_HDR_VER;  // raw deflate, then the trailer checked
        phase_ = kBody;
      }
      s_.next_in = const_cast<uint8_t*>(p);
      s_.avail_in = n;
      uint32_t outBefore = s_.avail_out;
      int r = isal_->inflate(&s_);
      bool progress = s_.avail_in != n || s_.avail_out != outBefore;
      p = s_.next_in;
      n = s_.avail_in;
      if (r != ISAL_DECOMP_OK) {
        err = Describe(r);
        break;
      }
      if (s_.block_state == ISAL_BLOCK_FINISH) {
        phase_ = kBetween;
        continue;
      }
      // Called again even with the input used up: decoded bytes it holds back flush then.
      if (!progress) break;
    }
    read = size_t(p - in);
    written = outLen - s_.avail_out;
    if (!err.empty()) return false;
    bool finished = phase_ == kBetween;
    if (end && s_.avail_out > 0 && !finished) err = started_ ? "the gzip stream is truncated" : "empty gzip stream";
    return end && finished && n == 0;
  }

 private:
  static const char* Describe(int r) {
    switch (r) {
      case ISAL_INVALID_BLOCK: return "invalid deflate block";
      case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
      case ISAL_INVALID_LOOKBACK: return "invalid deflate distance too far back";
      case ISAL_INCORRECT_CHECKSUM: return "incorrect gzip trailer (CRC-32 or length does not match the data)";
      default: return "inflate failed";
    }
  }
  enum Phase { kHeader, kBody, kBetween };
  const IsalApi* isal_;
  inflate_state s_;
  GzipHeader header_;
  Phase phase_ = kHeader;
  bool started_ = false;
};
#endif

Napi::Object Versions(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("zlib", Napi::String::New(env, zlibVersion()));
#ifdef IMG_HAVE_ISAL
  if (Isal()) o.Set("isal", Napi::String::New(env, std::to_string(ISAL_MAJOR_VERSION) + "." + std::to_string(ISAL_MINOR_VERSION) +
                                           "." + std::to_string(ISAL_PATCH_VERSION)));
#endif
  return o;
}

}  // namespace

std::unique_ptr<StreamEngine> MakeGunzipEngine(const std::string& codec) {
#ifdef IMG_HAVE_ISAL
  if (codec == "isal") return Isal() ? std::make_unique<IsalGunzip>(Isal()) : nullptr;
#endif
  if (codec == "zlib") return std::make_unique<ZlibGunzip>();
  return nullptr;
}

void InitDeflate(Napi::Env env, Napi::Object exports) {
  exports.Set("deflateChunk", Napi::Function::New(env, DeflateChunk));
  exports.Set("crc32Combine", Napi::Function::New(env, Crc32Combine));
  exports.Set("codecVersions", Versions(env));
}

}  // namespace img
