#include "executor.h"

#include <exception>
#include <optional>

#include "runtime.h"
#include "types.h"

namespace resnet::binding {

// What the executor thread hands to the JavaScript thread for one finished job.
struct Executor::Completion {
  Executor* executor;
  Napi::Promise::Deferred deferred;
  Finish finish;           // set on success
  std::string error_code;  // set on failure
  std::string error_message;
};

Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

Executor::Executor(Napi::Env env, Napi::Object owner, const std::string& name)
    : owner_(Napi::Weak(owner)), name_(name), env_(env) {
  tsfn_ = Tsfn::New(env, "libtorch-resnet:" + name_, /*maxQueueSize=*/0, /*initialThreadCount=*/1);
  tsfn_.Unref(env);  // an idle model must not keep the process alive
  thread_ = std::thread([this] { Run(); });
  napi_add_env_cleanup_hook(env_, &Executor::OnEnvironmentCleanup, this);
}

Executor::~Executor() {
  napi_remove_env_cleanup_hook(env_, &Executor::OnEnvironmentCleanup, this);
  StopAndJoin();
}

void Executor::OnEnvironmentCleanup(void* self) { static_cast<Executor*>(self)->StopAndJoin(); }

void Executor::StopAndJoin() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Napi::Promise Executor::Enqueue(Napi::Env env, Work work) {
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  if (closed_) {
    deferred.Reject(MakeError(env, resnet::codes::kDisposed, "The model has been disposed").Value());
    return deferred.Promise();
  }
  JobStarted(env);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(Job{std::move(work), deferred});
  }
  wake_.notify_one();
  return deferred.Promise();
}

void Executor::Close(Napi::Env env) {
  if (closed_) return;
  closed_ = true;
  std::deque<Job> abandoned;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    abandoned.swap(queue_);
  }
  wake_.notify_all();
  for (auto& job : abandoned) {
    job.deferred.Reject(
        MakeError(env, resnet::codes::kDisposed, "The model was disposed before this call could run").Value());
    JobSettled(env);
  }
}

void Executor::JobStarted(Napi::Env env) {
  if (pending_++ == 0) {
    tsfn_.Ref(env);
    owner_.Ref();
  }
}

void Executor::JobSettled(Napi::Env env) {
  if (--pending_ == 0) {
    tsfn_.Unref(env);
    owner_.Unref();
  }
}

void Executor::Run() {
  for (;;) {
    std::optional<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, nothing left to run
      job.emplace(std::move(queue_.front()));
      queue_.pop_front();
    }
    auto* completion = new Completion{this, job->deferred, nullptr, "", ""};
    try {
      runtime::ComputeScope compute;  // this job's share of the intra-op threads
      completion->finish = job->work();
    } catch (const resnet::Error& e) {
      completion->error_code = e.code();
      completion->error_message = e.what();
    } catch (const std::exception& e) {
      completion->error_code = codes::kNative;
      completion->error_message = e.what();
    } catch (...) {
      completion->error_code = codes::kNative;
      completion->error_message = "unknown native exception";
    }
    if (tsfn_.BlockingCall(completion) != napi_ok) {
      delete completion;  // the environment is shutting down; nobody is left to tell
    }
  }
  tsfn_.Release();
}

void Executor::Settle(Napi::Env env, Napi::Function, std::nullptr_t*, Completion* completion) {
  std::unique_ptr<Completion> done(completion);
  if (env == nullptr) return;  // environment torn down before the job could be settled
  Napi::HandleScope scope(env);
  if (done->finish) {
    try {
      done->deferred.Resolve(done->finish(env));
    } catch (const Napi::Error& e) {
      done->deferred.Reject(e.Value());
    } catch (const std::exception& e) {
      done->deferred.Reject(MakeError(env, codes::kNative, e.what()).Value());
    }
  } else {
    done->deferred.Reject(MakeError(env, done->error_code, done->error_message).Value());
  }
  done->executor->JobSettled(env);
}

}  // namespace resnet::binding
