#include "model_wrap.h"

#include "addon_data.h"
#include "convert.h"
#include "process_group_wrap.h"

namespace resnet::binding {

Napi::Function ModelWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeModel",
                     {
                         InstanceMethod<&ModelWrap::Forward>("forward"),
                         InstanceMethod<&ModelWrap::Features>("features"),
                         InstanceMethod<&ModelWrap::SetTraining>("setTraining"),
                         InstanceMethod<&ModelWrap::SetInferenceEngine>("setInferenceEngine"),
                         InstanceMethod<&ModelWrap::InferenceEngine>("inferenceEngine"),
                         InstanceMethod<&ModelWrap::SetExecution>("setExecution"),
                         InstanceMethod<&ModelWrap::StateDict>("stateDict"),
                         InstanceMethod<&ModelWrap::LoadStateDict>("loadStateDict"),
                         InstanceMethod<&ModelWrap::To>("to"),
                         InstanceMethod<&ModelWrap::ConfigureTraining>("configureTraining"),
                         InstanceMethod<&ModelWrap::TrainStep>("trainStep"),
                         InstanceMethod<&ModelWrap::OptimizerState>("optimizerState"),
                         InstanceMethod<&ModelWrap::LoadOptimizerState>("loadOptimizerState"),
                         InstanceMethod<&ModelWrap::Evaluate>("evaluate"),
                         InstanceMethod<&ModelWrap::SyncBuffers>("syncBuffers"),
                         InstanceMethod<&ModelWrap::Dispose>("dispose"),
                         InstanceMethod<&ModelWrap::NumParameters>("numParameters"),
                         InstanceAccessor<&ModelWrap::Device>("device"),
                         InstanceAccessor<&ModelWrap::Disposed>("disposed"),
                     });
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  executor_ = std::make_unique<Executor>(info.Env(), info.This().As<Napi::Object>(), "model");
}

ModelWrap::~ModelWrap() {
  // Reached when the object is collected or the environment shuts down; the executor joins its
  // (idle) thread. External memory is only adjusted from a live JavaScript call (dispose).
  executor_.reset();
}

Napi::Value ModelWrap::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ResNetSpec spec = SpecFromJs(env, info[0]);
  if (!info[1].IsString()) ThrowInvalid(env, "Expected a string for device");
  const std::string device = info[1].As<Napi::String>().Utf8Value();
  if (!info[2].IsNumber()) ThrowInvalid(env, "Expected a number for seed");
  const auto seed = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());

  Napi::Object object = AddonData::Get(env).model_constructor.New({});
  ModelWrap* self = ModelWrap::Unwrap(object);
  auto slot = self->slot_;
  // Only plain pointers cross to the executor thread: a Napi reference must be created and
  // deleted on the JavaScript thread. The wrap stays alive (pinned) while its job is pending.
  return self->executor_->Enqueue(env, [slot, spec, device, seed, self]() -> Finish {
    slot->model = std::make_unique<Model>(spec, device, seed);
    const int64_t params = slot->model->num_parameters();
    const int64_t bytes = slot->model->state_bytes();
    const std::string actual_device = slot->model->device();
    return [self, params, bytes, actual_device](Napi::Env env) -> Napi::Value {
      self->num_parameters_ = params;
      self->SetDevice(actual_device);
      self->ReportMemory(env, bytes);
      return self->Value();
    };
  });
}

Napi::Promise ModelWrap::Enqueue(Napi::Env env, std::function<Finish(Model&)> work) {
  auto slot = slot_;
  return executor_->Enqueue(env, [slot, work = std::move(work)]() -> Finish {
    if (!slot || !slot->model) throw Error(codes::kNative, "the model was not created");
    return work(*slot->model);
  });
}

void ModelWrap::SetDevice(const std::string& device) {
  device_ = device;
  input_pool_->set_pinned(device.rfind("cuda", 0) == 0);
}

void ModelWrap::ReportMemory(Napi::Env env, int64_t bytes) {
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes - reported_bytes_);
  reported_bytes_ = bytes;
}

Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  HostTensor input = TensorFromJs(info.Env(), info[0], "input", input_pool_.get());
  return Enqueue(info.Env(), [input](Model& model) -> Finish {
    HostTensor output = model.forward(input);
    return [output](Napi::Env env) -> Napi::Value { return TensorToJs(env, output); };
  });
}

Napi::Value ModelWrap::Features(const Napi::CallbackInfo& info) {
  HostTensor input = TensorFromJs(info.Env(), info[0], "input", input_pool_.get());
  if (!info[1].IsArray()) ThrowInvalid(info.Env(), "Expected an array of feature map names");
  std::vector<std::string> names;
  Napi::Array array = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) names.push_back(array.Get(i).ToString().Utf8Value());
  return Enqueue(info.Env(), [input, names](Model& model) -> Finish {
    NamedTensors maps = model.features(input, names);
    return [maps](Napi::Env env) -> Napi::Value { return NamedTensorsToJs(env, maps); };
  });
}

Napi::Value ModelWrap::SetTraining(const Napi::CallbackInfo& info) {
  const bool training = info[0].ToBoolean().Value();
  return Enqueue(info.Env(), [training](Model& model) -> Finish {
    model.set_training(training);
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

Napi::Value ModelWrap::SetInferenceEngine(const Napi::CallbackInfo& info) {
  const EngineChoice choice = ParseEnum<EngineChoice>(info.Env(), "the inference engine", info[0].ToString().Utf8Value(),
                                                     {{"auto", EngineChoice::Auto}, {"onednn", EngineChoice::OneDnn},
                                                      {"torchscript", EngineChoice::TorchScript}, {"none", EngineChoice::None}});
  OneDnnOptions onednn;
  if (info.Length() > 1 && info[1].IsObject()) {
    const Napi::Value winograd = info[1].As<Napi::Object>().Get("winograd");
    if (!winograd.IsUndefined() && !winograd.IsBoolean()) ThrowInvalid(info.Env(), "Expected a boolean for winograd");
    if (winograd.IsBoolean()) onednn.winograd = winograd.As<Napi::Boolean>().Value();
    const Napi::Value limit = info[1].As<Napi::Object>().Get("maxActivationBytes");
    if (limit.IsNumber()) onednn.max_activation_bytes = static_cast<uint64_t>(limit.As<Napi::Number>().DoubleValue());
  }
  return Enqueue(info.Env(), [choice, onednn](Model& model) -> Finish {
    model.set_inference_engine(choice, onednn);
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

Napi::Value ModelWrap::InferenceEngine(const Napi::CallbackInfo& info) {
  return Enqueue(info.Env(), [](Model& model) -> Finish {
    std::string kind = model.inference_engine();
    return [kind](Napi::Env env) -> Napi::Value { return Napi::String::New(env, kind); };
  });
}

Napi::Value ModelWrap::SetExecution(const Napi::CallbackInfo& info) {
  const Precision precision = ParseEnum<Precision>(info.Env(), "precision", info[0].ToString().Utf8Value(),
                                                  {{"float32", Precision::Float32}, {"bfloat16", Precision::BFloat16}, {"float16", Precision::Float16}});
  const bool channels_last = info[1].ToBoolean().Value();
  return Enqueue(info.Env(), [precision, channels_last](Model& model) -> Finish {
    model.set_execution(precision, channels_last);
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

Napi::Value ModelWrap::StateDict(const Napi::CallbackInfo& info) {
  return Enqueue(info.Env(), [](Model& model) -> Finish {
    NamedTensors state = model.state_dict();
    return [state](Napi::Env env) -> Napi::Value { return NamedTensorsToJs(env, state); };
  });
}

Napi::Value ModelWrap::LoadStateDict(const Napi::CallbackInfo& info) {
  NamedTensors tensors = NamedTensorsFromJs(info.Env(), info[0]);
  const bool strict = info[1].ToBoolean().Value();
  std::vector<std::string> exclude;
  if (info[2].IsArray()) {
    Napi::Array array = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) exclude.push_back(array.Get(i).ToString().Utf8Value());
  }
  return Enqueue(info.Env(), [tensors, strict, exclude](Model& model) -> Finish {
    LoadResult result = model.load_state_dict(tensors, strict, exclude);
    return [result](Napi::Env env) -> Napi::Value {
      auto to_array = [&env](const std::vector<std::string>& keys) {
        Napi::Array array = Napi::Array::New(env, keys.size());
        for (size_t i = 0; i < keys.size(); ++i) array.Set(static_cast<uint32_t>(i), keys[i]);
        return array;
      };
      Napi::Object out = Napi::Object::New(env);
      out.Set("missingKeys", to_array(result.missing_keys));
      out.Set("unexpectedKeys", to_array(result.unexpected_keys));
      return out;
    };
  });
}

Napi::Value ModelWrap::To(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) ThrowInvalid(info.Env(), "Expected a string for device");
  const std::string device = info[0].As<Napi::String>().Utf8Value();
  return Enqueue(info.Env(), [this, device](Model& model) -> Finish {
    model.to(device);
    const std::string actual = model.device();
    return [this, actual](Napi::Env env) -> Napi::Value {
      SetDevice(actual);
      return Napi::String::New(env, actual);
    };
  });
}

Napi::Value ModelWrap::ConfigureTraining(const Napi::CallbackInfo& info) {
  TrainOptions options = TrainOptionsFromJs(info.Env(), info[0]);
  if (info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Value group = o.Get("processGroup");
    if (!group.IsUndefined()) {
      options.process_group = ProcessGroupWrap::FromJs(info.Env(), group);
      options.broadcast_buffers = o.Get("broadcastBuffers").ToBoolean().Value();
      Napi::Value cap = o.Get("bucketCapBytes");
      if (cap.IsNumber()) options.bucket_cap_bytes = static_cast<int64_t>(cap.As<Napi::Number>().DoubleValue());
    }
  }
  return Enqueue(info.Env(), [options](Model& model) -> Finish {
    model.configure_training(options);
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

Napi::Value ModelWrap::TrainStep(const Napi::CallbackInfo& info) {
  HostTensor images = TensorFromJs(info.Env(), info[0], "images", input_pool_.get());
  HostTensor labels = TensorFromJs(info.Env(), info[1], "labels", input_pool_.get());
  if (!info[2].IsNumber()) ThrowInvalid(info.Env(), "Expected a number for lr");
  const double lr = info[2].As<Napi::Number>().DoubleValue();
  const bool accumulate = info[3].ToBoolean().Value();
  return Enqueue(info.Env(), [images, labels, lr, accumulate](Model& model) -> Finish {
    const StepResult r = model.train_step(images, labels, lr, accumulate);
    return [r](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("loss", r.loss);
      out.Set("correct", static_cast<double>(r.correct));
      out.Set("count", static_cast<double>(r.count));
      out.Set("gradNorm", r.grad_norm);
      return out;
    };
  });
}

Napi::Value ModelWrap::OptimizerState(const Napi::CallbackInfo& info) {
  return Enqueue(info.Env(), [](Model& model) -> Finish {
    NamedTensors state = model.optimizer_state();
    return [state](Napi::Env env) -> Napi::Value { return NamedTensorsToJs(env, state); };
  });
}

Napi::Value ModelWrap::LoadOptimizerState(const Napi::CallbackInfo& info) {
  NamedTensors state = NamedTensorsFromJs(info.Env(), info[0]);
  return Enqueue(info.Env(), [state](Model& model) -> Finish {
    model.load_optimizer_state(state);
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

Napi::Value ModelWrap::Evaluate(const Napi::CallbackInfo& info) {
  HostTensor images = TensorFromJs(info.Env(), info[0], "images", input_pool_.get());
  HostTensor labels = TensorFromJs(info.Env(), info[1], "labels", input_pool_.get());
  if (!info[2].IsUndefined() && !info[2].IsBoolean()) ThrowInvalid(info.Env(), "Expected a boolean for flipAverage");
  const bool flip_average = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  return Enqueue(info.Env(), [images, labels, flip_average](Model& model) -> Finish {
    const EvalResult r = model.evaluate(images, labels, flip_average);
    return [r](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("lossSum", r.loss_sum);
      out.Set("top1", static_cast<double>(r.top1));
      out.Set("top5", static_cast<double>(r.top5));
      out.Set("count", static_cast<double>(r.count));
      return out;
    };
  });
}

Napi::Value ModelWrap::SyncBuffers(const Napi::CallbackInfo& info) {
  return Enqueue(info.Env(), [](Model& model) -> Finish {
    model.sync_buffers();
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (executor_->closed()) return env.Undefined();
  executor_->Close(env);
  slot_.reset();  // freed now if idle, else as soon as the job in flight lets go of it
  ReportMemory(env, 0);
  return env.Undefined();
}

Napi::Value ModelWrap::NumParameters(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(num_parameters_));
}

Napi::Value ModelWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), device_);
}

Napi::Value ModelWrap::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), executor_->closed());
}

}  // namespace resnet::binding
