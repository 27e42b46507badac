// Compression work off the JS thread. CPU-bound codec jobs run on a pool of
// their own (not libuv's: four busy compress jobs there would hold up every fs
// call of the process, including the reads that feed the compressor). A job
// settles a Promise on the JS thread of the environment that submitted it.
#pragma once
#include <napi.h>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace img {

// One unit of codec work. Run() executes on a pool thread and must not touch
// N-API; on failure it sets `error` (and `errorCode`). Result() builds the
// resolved value on the JS thread. Buffers a job reads or writes are kept
// alive by references the job holds (see Pin).
class CodecJob {
 public:
  virtual ~CodecJob() = default;
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

  // Keeps a JS object (a Buffer the job reads or writes, the stream it steps)
  // alive until the job is settled. Buffer memory never moves, so Run() may use
  // the pointers taken on the JS thread.
  void Pin(Napi::Object o) { pins_.push_back(Napi::Persistent(o)); }

  std::string error;
  const char* errorCode = "EBADMSG";  // errno-shaped: the data is not what its format says

 private:
  friend class CodecPool;
  std::vector<Napi::ObjectReference> pins_;
  napi_deferred deferred_ = nullptr;
};

// Queues `job` (ownership passes) and returns the Promise it settles.
Napi::Promise SubmitCodecJob(Napi::Env env, CodecJob* job);

// One direction of one codec, stateful across calls (a streaming inflate or a
// zstd stream). Step consumes `in` and fills `out`; it returns when the input is
// used up (and, with `end`, the stream is complete) or `out` is full. With `end`
// and a stream that cannot complete, it fails: the input was truncated.
class StreamEngine {
 public:
  virtual ~StreamEngine() = default;
  // Returns true when, with `end`, the stream is complete. Failure: `err` set.
  virtual bool Step(const uint8_t* in, size_t inLen, uint8_t* out, size_t outLen, bool end, size_t& read,
                    size_t& written, std::string& err) = 0;
};

// Engines by kind, from deflate.cc and zstd.cc; nullptr when this build lacks the codec.
std::unique_ptr<StreamEngine> MakeGunzipEngine(const std::string& codec);
std::unique_ptr<StreamEngine> MakeZstdEngine(bool compress, int level, int workers);

// Threads the pool runs (sched_getaffinity's count unless set from JS).
unsigned CodecThreads();

void InitDeflate(Napi::Env env, Napi::Object exports);
void InitZstd(Napi::Env env, Napi::Object exports);

}  // namespace img
