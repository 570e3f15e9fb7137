// One dedicated thread per model that runs its jobs one at a time, in call order, and settles
// each job's promise back on the JavaScript thread through a ThreadSafeFunction.
//
// Why not libuv's thread pool (Napi::AsyncWorker): it has 4 threads shared with fs and dns, and a
// forward pass can hold one for seconds. Why one thread per model: training steps mutate weights
// and BatchNorm statistics, so a model's jobs must be serial anyway.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace resnet::binding {

// Builds the promise's value on the JavaScript thread from what the job produced.
using Finish = std::function<Napi::Value(Napi::Env)>;
// Runs on the executor thread. May throw; the exception rejects the promise.
using Work = std::function<Finish()>;

class Executor {
 public:
  // `owner` is the JavaScript object the jobs belong to: it is kept alive (strongly referenced)
  // while any job is pending, so a model cannot be collected under a running job.
  Executor(Napi::Env env, Napi::Object owner, const std::string& name);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // JavaScript thread only. Returns the job's promise; after Close() it is already rejected.
  Napi::Promise Enqueue(Napi::Env env, Work work);

  // JavaScript thread only. The job in flight (if any) runs to completion and settles; queued jobs
  // are rejected with codes::kDisposed (ERR_RESNET_DISPOSED); later Enqueue() calls reject too.
  void Close(Napi::Env env);
  bool closed() const { return closed_; }

 private:
  struct Job {
    Work work;
    Napi::Promise::Deferred deferred;
  };
  struct Completion;

  void Run();
  // Stops the thread (after its job in flight) and joins it. Idempotent.
  void StopAndJoin();
  // Runs when the environment shuts down, before the ThreadSafeFunction is torn down (cleanup
  // hooks run in reverse order of registration): the thread must have released it by then.
  static void OnEnvironmentCleanup(void* self);
  void JobStarted(Napi::Env env);
  void JobSettled(Napi::Env env);
  static void Settle(Napi::Env env, Napi::Function, std::nullptr_t*, Completion* completion);

  using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, Completion, &Executor::Settle>;

  Tsfn tsfn_;
  Napi::ObjectReference owner_;
  std::string name_;
  napi_env env_;
  int pending_ = 0;        // JavaScript thread only
  bool closed_ = false;    // JavaScript thread only
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;  // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

// Rejection helpers shared by the binding: an Error with a stable `code` property.
Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message);

}  // namespace resnet::binding
