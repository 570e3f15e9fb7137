// The CPU inference engine: the ResNet as a straight list of oneDNN primitives, built without
// LibTorch's operator dispatch or TorchScript interpreter in the way, from the network's
// description (network.h). Its parts (onednn_engine.h): BatchNorm folded into the convolutions
// once per network (onednn_fold.cpp); a plan per input shape and thread count, cached
// (onednn_plan.cpp); the activation arena the plans share (onednn_arena.cpp). A forward then
// allocates nothing but its output. This file: the engine itself and the runtime's oneDNN queries.
#include "engine.h"
#include "runtime.h"

#ifdef RESNET_WITH_ONEDNN

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "onednn_engine.h"

namespace resnet {

namespace onednn {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

bool has_isa(dnnl_cpu_isa_t isa) { return (static_cast<int>(dnnl::get_effective_cpu_isa()) & isa) == isa; }

namespace {

class OneDnnEngine final : public InferenceEngine {
 public:
  OneDnnEngine(const ResNetSpec& spec, const NamedState& state, const OneDnnOptions& options)
      : net_(describe(spec)), folded_(fold_network(net_, state)), arena_(options.max_activation_bytes) {
    options_.winograd = options.winograd && !options.bfloat16;
    // Activations and weights: float32, or bfloat16 (precision 'bfloat16': the convolutions
    // accumulate in float32 and round their outputs to bfloat16, as autocast does).
    options_.activations = options.bfloat16 ? dt::bf16 : dt::f32;
    // With AVX-512, every activation is kept in the 16-channel blocked layout: the only one that
    // oneDNN's direct and Winograd kernels share, so no reorders are needed between them. Otherwise
    // each convolution picks its own layout (format `any`; the direct kernels agree on one).
    options_.blocked16 = has_isa(dnnl_cpu_isa_avx512_core);
  }

  at::Tensor forward(const at::Tensor& input) override {
    if (input.dim() != 4 || input.scalar_type() != at::kFloat || !input.device().is_cpu()) {
      throw Error(codes::kNative, "inference engine: expected a float32 CPU tensor [N, C, H, W]");
    }
    Plan& plan = plan_for(input);
    arena_.bind(plan);
    at::Tensor output = at::empty({plan.batch, plan.classes}, at::kFloat);
    plan.memories[plan.input_value].set_data_handle(input.data_ptr());
    plan.memories[plan.output_value].set_data_handle(output.data_ptr());
    for (size_t i = 0; i < plan.steps.size(); ++i) plan.steps[i].primitive.execute(stream_, plan.args[i]);
    stream_.wait();
    return output;
  }

 private:
  Plan& plan_for(const at::Tensor& input) {
    const memory::dims dims(input.sizes().begin(), input.sizes().end());
    const memory::dims strides(input.strides().begin(), input.strides().end());
    const int threads = at::get_num_threads();  // oneDNN sizes its kernels' work split by this
    for (auto it = plans_.begin(); it != plans_.end(); ++it) {
      if ((*it)->input_dims == dims && (*it)->input_strides == strides && (*it)->threads == threads) {
        std::rotate(plans_.begin(), it, it + 1);  // most recently used first
        return *plans_.front();
      }
    }
    auto plan = std::make_unique<Plan>();
    plan->input_dims = dims;
    plan->input_strides = strides;
    plan->threads = threads;
    Planner planner(net_, folded_, options_);
    try {
      planner.build(*plan);
    } catch (const dnnl::error& e) {
      throw Error(codes::kNative, "inference engine: oneDNN could not plan " + planner.step() + " for input [" +
                                      std::to_string(dims[0]) + ", " + std::to_string(dims[1]) + ", " +
                                      std::to_string(dims[2]) + ", " + std::to_string(dims[3]) + "] (" + e.what() +
                                      "); setInferenceEngine('torchscript') avoids it");
    }
    if (plans_.size() >= kMaxPlans) plans_.pop_back();
    plans_.insert(plans_.begin(), std::move(plan));
    return *plans_.front();
  }

  // Plans are small (primitives and descriptors; the buffers are the shared arena): enough for
  // every batch size a serving batcher produces.
  static constexpr size_t kMaxPlans = 16;

  NetworkDescription net_;
  FoldedNetwork folded_;
  PlanOptions options_;
  Arena arena_;
  std::vector<std::unique_ptr<Plan>> plans_;
  dnnl::stream stream_{cpu_engine()};
};

}  // namespace

}  // namespace onednn

namespace runtime {
bool onednn_engine_compiled() { return true; }
// Native bfloat16 dot products (AVX512-BF16): elsewhere oneDNN would emulate them, slower than
// float32, so bfloat16 models there run autocast on the modules instead.
bool onednn_bfloat16_native() { return onednn::has_isa(dnnl_cpu_isa_avx512_core_bf16); }
}  // namespace runtime

std::unique_ptr<InferenceEngine> make_onednn_engine(const ResNetSpec& spec, const NamedState& state,
                                                    const OneDnnOptions& options) {
  return std::make_unique<onednn::OneDnnEngine>(spec, state, options);
}

}  // namespace resnet

#else  // built without oneDNN's headers

namespace resnet {

namespace runtime {
bool onednn_engine_compiled() { return false; }
bool onednn_bfloat16_native() { return false; }
}  // namespace runtime

std::unique_ptr<InferenceEngine> make_onednn_engine(const ResNetSpec&, const NamedState&, const OneDnnOptions&) {
  throw Error(codes::kDevice, "this build of libtorch-resnet has no oneDNN engine (oneDNN's headers were not found at build time): use the 'torchscript' engine");
}

}  // namespace resnet

#endif
