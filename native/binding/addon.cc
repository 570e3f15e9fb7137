// Module entry point: the NativeModel class and the process-wide runtime functions.
#include <napi.h>

#include "addon_data.h"
#include "convert.h"
#include "distributed.h"
#include "image_wrap.h"
#include "model_wrap.h"
#include "network_wrap.h"
#include "process_group_wrap.h"
#include "runtime.h"
#include "types.h"

namespace resnet::binding {

namespace {

Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), runtime::cuda_available());
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), runtime::cuda_device_count());
}

Napi::Value CudaCompiled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), runtime::cuda_compiled());
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) ThrowInvalid(info.Env(), "Expected a number for threads");
  const int threads = info[0].As<Napi::Number>().Int32Value();
  if (threads < 1) ThrowInvalid(info.Env(), "Expected a positive number for threads");
  runtime::set_num_threads(threads);
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), runtime::num_threads());
}

Napi::Value CpuBfloat16Available(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), runtime::cpu_bfloat16_available());
}

Napi::Value OnednnEngineCompiled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), runtime::onednn_engine_compiled());
}

Napi::Value LibtorchVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), runtime::libtorch_version());
}

Napi::Value ParallelInfo(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), runtime::parallel_info());
}

// The process group backends this build has ("gloo", "nccl").
Napi::Value DistributedBackends(const Napi::CallbackInfo& info) {
  Napi::Array out = Napi::Array::New(info.Env());
  for (const char* name : {"gloo", "nccl"}) {
    if (distributed_backend_compiled(name)) out.Set(out.Length(), name);
  }
  return out;
}

}  // namespace

Napi::Value AllocatorTuning(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), runtime::allocator_tuning());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  runtime::tune_allocator();
  auto* data = new AddonData();
  data->model_constructor = Napi::Persistent(ModelWrap::Define(env));
  data->process_group_constructor = Napi::Persistent(ProcessGroupWrap::Define(env));
  env.SetInstanceData<AddonData>(data);  // deleted with the environment

  exports.Set("createModel", Napi::Function::New<ModelWrap::Create>(env, "createModel"));
  exports.Set("cudaAvailable", Napi::Function::New<CudaAvailable>(env, "cudaAvailable"));
  exports.Set("cudaDeviceCount", Napi::Function::New<CudaDeviceCount>(env, "cudaDeviceCount"));
  exports.Set("cudaCompiled", Napi::Function::New<CudaCompiled>(env, "cudaCompiled"));
  exports.Set("setNumThreads", Napi::Function::New<SetNumThreads>(env, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New<GetNumThreads>(env, "getNumThreads"));
  exports.Set("libtorchVersion", Napi::Function::New<LibtorchVersion>(env, "libtorchVersion"));
  exports.Set("cpuBfloat16Available", Napi::Function::New<CpuBfloat16Available>(env, "cpuBfloat16Available"));
  exports.Set("onednnEngineCompiled", Napi::Function::New<OnednnEngineCompiled>(env, "onednnEngineCompiled"));
  exports.Set("allocatorTuning", Napi::Function::New<AllocatorTuning>(env, "allocatorTuning"));
  exports.Set("createProcessGroup", Napi::Function::New<ProcessGroupWrap::Create>(env, "createProcessGroup"));
  exports.Set("distributedBackends", Napi::Function::New<DistributedBackends>(env, "distributedBackends"));
  exports.Set("parallelInfo", Napi::Function::New<ParallelInfo>(env, "parallelInfo"));
  RegisterImageFunctions(env, exports);
  RegisterNetworkFunctions(env, exports);
  return exports;
}

}  // namespace resnet::binding

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return resnet::binding::Init(env, exports);
}

NODE_API_MODULE(libtorch_resnet, InitAddon)
