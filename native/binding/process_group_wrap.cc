#include "process_group_wrap.h"

#include "addon_data.h"
#include "convert.h"

namespace resnet::binding {

namespace {

int IntegerOption(Napi::Env env, Napi::Object o, const char* name) {
  Napi::Value value = o.Get(name);
  if (!value.IsNumber()) ThrowInvalid(env, std::string("Expected a number for ") + name);
  return value.As<Napi::Number>().Int32Value();
}

}  // namespace

Napi::Function ProcessGroupWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeProcessGroup",
                     {
                         InstanceMethod<&ProcessGroupWrap::AllReduceSum>("allReduceSum"),
                         InstanceMethod<&ProcessGroupWrap::Barrier>("barrier"),
                         InstanceMethod<&ProcessGroupWrap::Destroy>("destroy"),
                     });
}

ProcessGroupWrap::ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {
  executor_ = std::make_unique<Executor>(info.Env(), info.This().As<Napi::Object>(), "process-group");
}

ProcessGroupWrap::~ProcessGroupWrap() { executor_.reset(); }

Napi::Value ProcessGroupWrap::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowInvalid(env, "Expected process group options");
  Napi::Object o = info[0].As<Napi::Object>();
  ProcessGroupOptions options;
  options.backend = o.Get("backend").ToString().Utf8Value();
  options.master_addr = o.Get("masterAddr").ToString().Utf8Value();
  options.master_port = IntegerOption(env, o, "masterPort");
  options.rank = IntegerOption(env, o, "rank");
  options.world_size = IntegerOption(env, o, "worldSize");
  if (!o.Get("timeoutMs").IsNumber()) ThrowInvalid(env, "Expected a number for timeoutMs");
  options.timeout_ms = static_cast<int64_t>(o.Get("timeoutMs").As<Napi::Number>().DoubleValue());

  Napi::Object object = AddonData::Get(env).process_group_constructor.New({});
  ProcessGroupWrap* self = ProcessGroupWrap::Unwrap(object);
  auto slot = self->slot_;
  return self->executor_->Enqueue(env, [slot, options, self]() -> Finish {
    slot->group = std::make_shared<ProcessGroup>(options);
    return [self](Napi::Env) -> Napi::Value { return self->Value(); };
  });
}

std::shared_ptr<ProcessGroup> ProcessGroupWrap::FromJs(Napi::Env env, Napi::Value value) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(AddonData::Get(env).process_group_constructor.Value())) {
    ThrowInvalid(env, "Expected a process group from initProcessGroup()");
  }
  ProcessGroupWrap* self = ProcessGroupWrap::Unwrap(value.As<Napi::Object>());
  if (!self->slot_->group) ThrowInvalid(env, "Expected a process group that finished joining");
  return self->slot_->group;
}

Napi::Promise ProcessGroupWrap::Enqueue(Napi::Env env, std::function<Finish(ProcessGroup&)> work) {
  auto slot = slot_;
  return executor_->Enqueue(env, [slot, work = std::move(work)]() -> Finish {
    if (!slot->group) throw Error(codes::kDistributed, "the process group was not created");
    return work(*slot->group);
  });
}

Napi::Value ProcessGroupWrap::AllReduceSum(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    ThrowInvalid(info.Env(), "Expected a Float64Array to all-reduce");
  }
  Napi::Float64Array array = info[0].As<Napi::Float64Array>();
  std::vector<double> values(array.Data(), array.Data() + array.ElementLength());
  return Enqueue(info.Env(), [values](ProcessGroup& group) -> Finish {
    std::vector<double> sums = group.all_reduce_sum(values);
    return [sums](Napi::Env env) -> Napi::Value {
      Napi::Float64Array out = Napi::Float64Array::New(env, sums.size());
      std::copy(sums.begin(), sums.end(), out.Data());
      return out;
    };
  });
}

Napi::Value ProcessGroupWrap::Barrier(const Napi::CallbackInfo& info) {
  return Enqueue(info.Env(), [](ProcessGroup& group) -> Finish {
    group.barrier();
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

Napi::Value ProcessGroupWrap::Destroy(const Napi::CallbackInfo& info) {
  return Enqueue(info.Env(), [](ProcessGroup& group) -> Finish {
    group.destroy();
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

}  // namespace resnet::binding
