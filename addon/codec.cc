// The codec pool and CodecStream, the JS face of a StreamEngine.
//
// Pool: a fixed set of threads (default: the CPUs this process may run on),
// one FIFO queue shared by every stream of every environment. A finished job
// goes back to its environment through one thread-safe function per
// environment, ref'd only while that environment has jobs out: an idle pool
// never keeps the process alive, a busy one does.
//
// Node deletes a thread-safe function when its environment is torn down, even
// while other threads still hold it; so pool threads reach it only through the
// environment's Mailbox, under its lock, and the environment's cleanup hook
// empties the mailbox first. A job finishing after that is left to the process.
#include "addon.h"
#include "codec.h"
#include <sched.h>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace img {

namespace {

// Where pool threads deliver an environment's finished jobs; outlives the
// environment for as long as jobs of it are queued or running.
struct Mailbox {
  std::mutex mu;
  napi_threadsafe_function tsfn = nullptr;  // null once the environment is gone
};

// Per environment (main thread, each worker thread): lives on that JS thread.
struct EnvQueue {
  std::shared_ptr<Mailbox> box = std::make_shared<Mailbox>();
  napi_threadsafe_function tsfn = nullptr;
  size_t pending = 0;  // jobs submitted and not yet settled
};
thread_local EnvQueue* tlQueue = nullptr;

unsigned DefaultThreads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

}  // namespace

class CodecPool {
 public:
  static CodecPool& Get() {
    // Never destroyed: pool threads may still wait on its condition variable at exit.
    static CodecPool* pool = new CodecPool();
    return *pool;
  }

  unsigned Threads() {
    std::lock_guard<std::mutex> g(mu_);
    return target_;
  }

  void SetThreads(unsigned n) {
    std::lock_guard<std::mutex> g(mu_);
    target_ = n;
    while (running_ < target_ && started_) Spawn();
    cv_.notify_all();  // extra threads notice they are over the target and leave
  }

  void Submit(CodecJob* job, std::shared_ptr<Mailbox> box) {
    std::lock_guard<std::mutex> g(mu_);
    if (!started_) {
      started_ = true;
      while (running_ < target_) Spawn();
    }
    queue_.push_back({job, std::move(box)});
    cv_.notify_one();
  }

  // On the JS thread: settle the job's Promise and free it.
  static void Settle(napi_env env, CodecJob* job) {
    Napi::Env e(env);
    Napi::HandleScope scope(e);
    if (!job->error.empty()) {
      Napi::Error err = Napi::Error::New(e, job->error);
      err.Set("code", Napi::String::New(e, job->errorCode));
      napi_reject_deferred(env, job->deferred_, err.Value());
    } else {
      napi_value v;
      try {
        v = job->Result(e);
      } catch (const Napi::Error& err) {
        napi_reject_deferred(env, job->deferred_, err.Value());
        delete job;
        return;
      }
      napi_resolve_deferred(env, job->deferred_, v);
    }
    delete job;
  }

  static void SetDeferred(CodecJob* job, napi_deferred d) { job->deferred_ = d; }

 private:
  struct Item {
    CodecJob* job;
    std::shared_ptr<Mailbox> box;
  };

  CodecPool() : target_(DefaultThreads()) {}

  void Spawn() {
    running_++;
    std::thread([this] { Worker(); }).detach();
  }

  void Worker() {
    for (;;) {
      Item it;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [this] { return !queue_.empty() || running_ > target_; });
        if (running_ > target_) {
          running_--;
          return;
        }
        it = queue_.front();
        queue_.pop_front();
      }
      it.job->Run();
      // Without an environment, the job (and the JS references it holds) is left
      // to the process: those may only be released on their own JS thread.
      std::lock_guard<std::mutex> g(it.box->mu);
      if (it.box->tsfn) napi_call_threadsafe_function(it.box->tsfn, it.job, napi_tsfn_nonblocking);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  unsigned target_;
  unsigned running_ = 0;
  bool started_ = false;
};

unsigned CodecThreads() { return CodecPool::Get().Threads(); }

static void CallJs(napi_env env, napi_value, void*, void* data) {
  if (env == nullptr) return;  // teardown: see Worker()
  EnvQueue* q = tlQueue;
  if (q && --q->pending == 0) napi_unref_threadsafe_function(env, q->tsfn);
  CodecPool::Settle(env, static_cast<CodecJob*>(data));
}

static EnvQueue* QueueFor(Napi::Env env) {
  if (tlQueue) return tlQueue;
  auto* q = new EnvQueue();
  napi_value name = Napi::String::New(env, "img-codec");
  NAPI_THROW_IF_FAILED(env,
                       napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr,
                                                       CallJs, &q->tsfn),
                       nullptr);
  napi_unref_threadsafe_function(env, q->tsfn);
  q->box->tsfn = q->tsfn;
  // Runs before Node's own teardown of the function (hooks run last-registered first).
  env.AddCleanupHook([q]() {
    {
      std::lock_guard<std::mutex> g(q->box->mu);
      q->box->tsfn = nullptr;
    }
    if (tlQueue == q) tlQueue = nullptr;
    delete q;
  });
  return tlQueue = q;
}

Napi::Promise SubmitCodecJob(Napi::Env env, CodecJob* job) {
  std::unique_ptr<CodecJob> owned(job);
  EnvQueue* q = QueueFor(env);
  napi_deferred d;
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &d, &promise), Napi::Promise());
  CodecPool::SetDeferred(job, d);
  if (q->pending++ == 0) napi_ref_threadsafe_function(env, q->tsfn);
  CodecPool::Get().Submit(owned.release(), q->box);
  return Napi::Promise(env, promise);
}

// ---- CodecStream: new CodecStream(kind, level?, workers?); run(input, output, end)

namespace {

class CodecStream : public Napi::ObjectWrap<CodecStream> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CodecStream",
                       {InstanceMethod<&CodecStream::Run>("run"), InstanceMethod<&CodecStream::Close>("close")});
  }

  CodecStream(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CodecStream>(info) {
    Napi::Env env = info.Env();
    std::string kind = ArgString(info, 0, "kind");
    int level = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    int workers = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
    if (kind == "gunzip-isal") engine_ = MakeGunzipEngine("isal");
    else if (kind == "gunzip-zlib") engine_ = MakeGunzipEngine("zlib");
    else if (kind == "zstd-compress") engine_ = MakeZstdEngine(true, level, workers);
    else if (kind == "zstd-decompress") engine_ = MakeZstdEngine(false, 0, 0);
    else throw Napi::TypeError::New(env, "unknown codec stream kind '" + kind + "'");
    if (!engine_) {
      Napi::Error e = Napi::Error::New(env, "this build of the addon has no '" + kind + "' codec");
      e.Set("code", Napi::String::New(env, "ENOTSUP"));
      throw e;
    }
  }

  StreamEngine* engine() { return engine_.get(); }
  bool busy = false;

 private:
  class StepJob : public CodecJob {
   public:
    StepJob(CodecStream* s, const uint8_t* in, size_t inLen, uint8_t* out, size_t outLen, bool end)
        : s_(s), in_(in), inLen_(inLen), out_(out), outLen_(outLen), end_(end) {}
    void Run() override { done_ = s_->engine()->Step(in_, inLen_, out_, outLen_, end_, read_, written_, error); }
    Napi::Value Result(Napi::Env env) override {
      Napi::Array a = Napi::Array::New(env, 3);
      a.Set(0u, Napi::Number::New(env, double(read_)));
      a.Set(1u, Napi::Number::New(env, double(written_)));
      a.Set(2u, Napi::Boolean::New(env, done_));
      return a;
    }
    ~StepJob() override {
      s_->busy = false;
      if (s_->closing_) s_->engine_.reset();
    }

   private:
    CodecStream* s_;
    const uint8_t* in_;
    size_t inLen_;
    uint8_t* out_;
    size_t outLen_;
    bool end_;
    size_t read_ = 0, written_ = 0;
    bool done_ = false;
  };

  // run(input: Buffer, output: Buffer, end: boolean) → Promise<[read, written, done]>
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsBuffer())
      throw Napi::TypeError::New(env, "run(input: Buffer, output: Buffer, end: boolean)");
    if (!engine_) throw Napi::Error::New(env, "codec stream is closed");
    if (busy) throw Napi::Error::New(env, "codec stream is busy: await the previous run()");
    auto in = info[0].As<Napi::Buffer<uint8_t>>();
    auto out = info[1].As<Napi::Buffer<uint8_t>>();
    auto* job = new StepJob(this, in.Data(), in.Length(), out.Data(), out.Length(), info[2].ToBoolean().Value());
    job->Pin(in);
    job->Pin(out);
    job->Pin(Value());  // this stream: its engine is in use until the job settles
    busy = true;
    return SubmitCodecJob(env, job);
  }

  // Frees the codec's memory now (a run in progress finishes first).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (busy) closing_ = true;
    else engine_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<StreamEngine> engine_;
  bool closing_ = false;
};

}  // namespace

static Napi::Value SetCodecThreads(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    int n = ArgInt(info, 0, "threads");
    if (n < 1 || n > 1024) throw Napi::RangeError::New(info.Env(), "threads must be 1..1024");
    CodecPool::Get().SetThreads(unsigned(n));
  }
  return Napi::Number::New(info.Env(), CodecPool::Get().Threads());
}

void InitCodec(Napi::Env env, Napi::Object exports) {
  exports.Set("codecThreads", Napi::Function::New(env, SetCodecThreads));
  exports.Set("CodecStream", CodecStream::Define(env));
  InitDeflate(env, exports);
  InitZstd(env, exports);
}

}  // namespace img
