// The JavaScript class NativeProcessGroup: one resnet::ProcessGroup plus its executor, so that the
// rendezvous and the collectives (which block until every rank arrives) never block the event
// loop. Trainers reach the group through FromJs(), on their own model's executor.
#pragma once

#include <napi.h>

#include <memory>

#include "distributed.h"
#include "executor.h"

namespace resnet::binding {

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // createProcessGroup({ backend, masterAddr, masterPort, rank, worldSize, timeoutMs }): resolves
  // with the NativeProcessGroup once every rank has joined.
  static Napi::Value Create(const Napi::CallbackInfo& info);
  // The group behind a NativeProcessGroup value; throws a JavaScript error for anything else.
  static std::shared_ptr<ProcessGroup> FromJs(Napi::Env env, Napi::Value value);

  explicit ProcessGroupWrap(const Napi::CallbackInfo& info);
  ~ProcessGroupWrap() override;

 private:
  struct Slot {
    std::shared_ptr<ProcessGroup> group;
  };

  Napi::Value AllReduceSum(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  Napi::Promise Enqueue(Napi::Env env, std::function<Finish(ProcessGroup&)> work);

  std::unique_ptr<Executor> executor_;
  std::shared_ptr<Slot> slot_ = std::make_shared<Slot>();
};

}  // namespace resnet::binding
