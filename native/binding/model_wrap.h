// The JavaScript class NativeModel: one resnet::Model plus its executor. Each method unpacks its
// arguments, enqueues one job and returns the job's promise. No model logic lives here.
#pragma once

#include <napi.h>

#include <memory>

#include "buffer_pool.h"
#include "executor.h"
#include "model.h"

namespace resnet::binding {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // createModel(spec, device, seed): builds the network off the JavaScript thread and resolves
  // with the NativeModel once it exists.
  static Napi::Value Create(const Napi::CallbackInfo& info);

  explicit ModelWrap(const Napi::CallbackInfo& info);
  ~ModelWrap() override;

 private:
  // Jobs hold the slot, not the wrap: dispose() drops the wrap's reference, and the model is
  // freed as soon as no running job needs it.
  struct Slot {
    std::unique_ptr<Model> model;
  };

  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Features(const Napi::CallbackInfo& info);
  Napi::Value SetTraining(const Napi::CallbackInfo& info);
  Napi::Value SetInferenceEngine(const Napi::CallbackInfo& info);
  Napi::Value InferenceEngine(const Napi::CallbackInfo& info);
  Napi::Value SetExecution(const Napi::CallbackInfo& info);
  Napi::Value StateDict(const Napi::CallbackInfo& info);
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value ConfigureTraining(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value OptimizerState(const Napi::CallbackInfo& info);
  Napi::Value LoadOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value SyncBuffers(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value NumParameters(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);

  // Runs `work` on the model's executor with the model in hand.
  Napi::Promise Enqueue(Napi::Env env, std::function<Finish(Model&)> work);
  void ReportMemory(Napi::Env env, int64_t bytes);
  // Records where the model lives; inputs copied for a CUDA model go into pinned memory.
  void SetDevice(const std::string& device);

  std::unique_ptr<Executor> executor_;
  std::shared_ptr<BufferPool> input_pool_ = std::make_shared<BufferPool>();
  std::shared_ptr<Slot> slot_ = std::make_shared<Slot>();
  int64_t num_parameters_ = 0;
  int64_t reported_bytes_ = 0;
  std::string device_;
};

}  // namespace resnet::binding
