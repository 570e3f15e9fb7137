// The CPU inference engine: the ResNet as a straight list of oneDNN primitives, built without
// LibTorch's operator dispatch or TorchScript interpreter in the way.
//
// Per network (once, from the weights):
//   every convolution gets BatchNorm folded in (w * gamma / sqrt(var + eps), beta - mean * ...).
// Per input shape and thread count (a "plan", cached):
//   each convolution picks its own weight layout (format `any`), weights are reordered into it
//   once; ReLU and the residual add become post-ops (dst = relu(conv(src) + dst), with dst already
//   holding the shortcut, so the identity shortcut is accumulated in place); activations live in a
//   few buffers reused from block to block; a single scratchpad serves every primitive. A forward
//   then allocates nothing but its output.
#include "engine.h"
#include "runtime.h"

#ifdef RESNET_WITH_ONEDNN

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <unistd.h>
#include <mutex>
#include <unordered_map>

namespace resnet {

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// True when oneDNN may use `isa` (and everything it implies) on this CPU; ONEDNN_MAX_CPU_ISA /
// DNNL_MAX_CPU_ISA lower what it may use, which is how the AVX2 paths are tested here.
bool has_isa(dnnl_cpu_isa_t isa) {
  return (static_cast<int>(dnnl::get_effective_cpu_isa()) & isa) == isa;
}

// True when oneDNN picked its reference implementation (correct, but far slower than its JIT
// kernels) for a primitive.
template <typename PrimitiveDesc>
bool is_reference(const PrimitiveDesc& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
}

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// One convolution with BatchNorm folded in: weights [O, I/groups, K, K] and bias [O], float32.
// The plain weights stay: oneDNN cannot reorder between every pair of packed layouts (Winograd's
// for one), so a plan that wants another layout packs again from them.
struct FoldedConv {
  at::Tensor weight;
  memory::dims dims;  // of the weights as oneDNN sees them (goihw for grouped convolutions)
  at::Tensor bias;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  // Weights already reordered into a layout some plan asked for (usually one entry).
  std::vector<std::pair<memory::desc, memory>> packed;
  static constexpr size_t kMaxPacked = 4;

  int64_t out_channels() const { return dims.size() == 5 ? dims[0] * dims[1] : dims[0]; }
  int64_t kernel() const { return dims.back(); }

  void set_weight(at::Tensor w) {
    weight = std::move(w);
    const int64_t o = weight.size(0), i = weight.size(1), k = weight.size(2);
    dims = groups == 1 ? memory::dims{o, i, k, k} : memory::dims{groups, o / groups, i, k, k};
  }

  const memory& weights_in(const memory::desc& wanted) {
    for (const auto& [desc, mem] : packed) {
      if (desc == wanted) return mem;
    }
    memory source(memory::desc(dims, dt::f32, dims.size() == 5 ? tag::goihw : tag::oihw), cpu_engine(),
                  weight.data_ptr());
    memory mem(wanted, cpu_engine());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(source, mem).execute(stream, source, mem);
    stream.wait();
    // Plans hold their own handles to the copies they use, so forgetting an old one here frees it
    // once no cached plan needs it: the cache stays bounded however many shapes come by.
    if (packed.size() >= kMaxPacked) packed.erase(packed.begin());
    packed.emplace_back(wanted, mem);
    return packed.back().second;
  }
};

// A value flowing between primitives during planning: its layout and the buffer slot it lives in
// (-1: the caller's input; -2: the caller's output).
struct Value {
  memory::desc desc;
  int slot;
};
constexpr int kInputSlot = -1;
constexpr int kOutputSlot = -2;

struct Step {
  dnnl::primitive primitive;
  // DNNL_ARG_* -> value index, and DNNL_ARG_* -> fixed memory (weights, bias).
  std::vector<std::pair<int, int>> values;
  std::vector<std::pair<int, memory>> fixed;
};

// Everything one input shape needs, ready to run.
struct Plan {
  memory::dims input_dims;
  memory::dims input_strides;
  int threads = 0;

  std::vector<Value> values;
  std::vector<Step> steps;
  std::vector<size_t> slot_bytes;
  size_t scratchpad_bytes = 0;
  int64_t batch = 0, classes = 0;
  int input_value = -1, output_value = -1;
  // For LIBTORCH_RESNET_PRINT_ENGINE: how many convolutions got Winograd, and how many primitives
  // fell back to oneDNN's (slow) reference code.
  int winograd = 0, reference = 0;

  // Materialized after planning. The buffers live in the engine's arena, shared by all plans
  // (one forward at a time): each slot and the scratchpad at an offset in it.
  std::vector<size_t> slot_offsets;
  size_t scratchpad_offset = 0;
  size_t arena_bytes = 0;
  uint64_t bound_to = 0;  // the arena generation the memories point into (0: none yet)
  memory scratchpad;
  std::vector<memory> memories;  // one per value; input/output handles are set per call
  std::vector<std::unordered_map<int, memory>> args;
};

class OneDnnEngine final : public InferenceEngine {
 public:
  OneDnnEngine(const ResNetSpec& spec, const NamedState& state, const OneDnnOptions& options)
      : spec_(spec),
        winograd_(options.winograd && !options.bfloat16),
        act_(options.bfloat16 ? dt::bf16 : dt::f32),
        max_arena_bytes_(options.max_activation_bytes > 0 ? options.max_activation_bytes : half_physical_memory()) {
    // With AVX-512, every activation is kept in the 16-channel blocked layout: the only one that
    // oneDNN's direct and Winograd kernels share, so no reorders are needed between them. Otherwise
    // each convolution picks its own layout (format `any`; the direct kernels agree on one).
    blocked16_ = has_isa(dnnl_cpu_isa_avx512_core);
    std::map<std::string, at::Tensor> by_name;
    for (const auto& [name, tensor] : state) by_name[name] = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
    auto get = [&](const std::string& name) -> const at::Tensor& {
      auto it = by_name.find(name);
      if (it == by_name.end()) throw Error(codes::kNative, "inference engine: missing tensor " + name);
      return it->second;
    };
    auto fold = [&](const std::string& conv, const std::string& bn, int64_t stride, int64_t padding,
                    int64_t dilation, int64_t groups) {
      const at::Tensor scale = get(bn + ".weight") / at::sqrt(get(bn + ".running_var") + 1e-5);
      FoldedConv folded;
      folded.stride = stride;
      folded.padding = padding;
      folded.dilation = dilation;
      folded.groups = groups;
      folded.set_weight((get(conv + ".weight") * scale.reshape({-1, 1, 1, 1})).contiguous());
      folded.bias = (get(bn + ".bias") - get(bn + ".running_mean") * scale).contiguous();
      convs_[conv] = std::move(folded);
    };

    if (spec.stem == Stem::ImageNet) {
      fold("conv1", "bn1", 2, 3, 1, 1);
    } else {
      fold("conv1", "bn1", 1, 1, 1, 1);
    }
    for_each_block(spec, [&](const BlockLayout& b) {
      const std::string& p = b.prefix;
      if (spec.block == BlockKind::Basic) {
        fold(p + ".conv1", p + ".bn1", b.stride, b.dilation, b.dilation, 1);
        fold(p + ".conv2", p + ".bn2", 1, b.dilation, b.dilation, 1);
      } else {
        fold(p + ".conv1", p + ".bn1", 1, 0, 1, 1);
        fold(p + ".conv2", p + ".bn2", b.stride, b.dilation, b.dilation, spec.groups);
        fold(p + ".conv3", p + ".bn3", 1, 0, 1, 1);
      }
      if (b.changes_shape && spec.shortcut == Shortcut::Projection) {
        fold(p + ".downsample.0", p + ".downsample.1", b.stride, 0, 1, 1);
      }
      if (b.changes_shape && spec.shortcut == Shortcut::ZeroPad) {
        // Option A's shortcut x[:, :, ::s, ::s] padded with zero channels, as a 1x1 convolution
        // with stride s whose weights are 1 on the shifted diagonal and 0 elsewhere: exact, since
        // every output is 1 * x plus zeros, and it lands in oneDNN's layout like any other value.
        const int64_t extra = b.out_channels - b.inplanes;
        FoldedConv pad;
        at::Tensor weight = at::zeros({b.out_channels, b.inplanes, 1, 1}, at::kFloat);
        auto w = weight.accessor<float, 4>();
        for (int64_t c = 0; c < b.inplanes; ++c) w[c + extra / 2][c][0][0] = 1.0f;
        pad.stride = b.stride;
        pad.set_weight(weight);
        pad.bias = at::zeros({b.out_channels}, at::kFloat);
        convs_[p + ".shortcut"] = std::move(pad);
      }
    });
    // Copies: the model's own fc tensors change in place when it trains.
    fc_weight_ = get("fc.weight").clone();
    fc_bias_ = get("fc.bias").clone();
  }

  const char* kind() const override { return "onednn"; }

  at::Tensor forward(const at::Tensor& input) override {
    if (input.dim() != 4 || input.scalar_type() != at::kFloat || !input.device().is_cpu()) {
      throw Error(codes::kNative, "inference engine: expected a float32 CPU tensor [N, C, H, W]");
    }
    Plan& plan = plan_for(input);
    bind_arena(plan);
    at::Tensor output = at::empty({plan.batch, plan.classes}, at::kFloat);
    plan.memories[plan.input_value].set_data_handle(input.data_ptr());
    plan.memories[plan.output_value].set_data_handle(output.data_ptr());
    for (size_t i = 0; i < plan.steps.size(); ++i) plan.steps[i].primitive.execute(stream_, plan.args[i]);
    stream_.wait();
    return output;
  }

 private:
  // ---- planning ----

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
    try {
      build(*plan);
    } catch (const dnnl::error& e) {
      throw Error(codes::kNative, "inference engine: oneDNN could not plan " + step_ + " for input [" +
                                      std::to_string(dims[0]) + ", " + std::to_string(dims[1]) + ", " +
                                      std::to_string(dims[2]) + ", " + std::to_string(dims[3]) + "] (" + e.what() +
                                      "); setInferenceEngine('torchscript') avoids it");
    }
    if (plans_.size() >= kMaxPlans) plans_.pop_back();
    plans_.insert(plans_.begin(), std::move(plan));
    return *plans_.front();
  }

  int new_value(Plan& plan, const memory::desc& desc, int slot) {
    plan.values.push_back(Value{desc, slot});
    if (slot >= 0) plan.slot_bytes[slot] = std::max(plan.slot_bytes[slot], desc.get_size());
    return static_cast<int>(plan.values.size()) - 1;
  }

  int acquire_slot(Plan& plan) {
    if (!free_slots_.empty()) {
      const int slot = free_slots_.back();
      free_slots_.pop_back();
      return slot;
    }
    plan.slot_bytes.push_back(0);
    return static_cast<int>(plan.slot_bytes.size()) - 1;
  }
  void release(const Plan& plan, int value) {
    const int slot = plan.values[value].slot;
    if (slot >= 0) free_slots_.push_back(slot);
  }

  dnnl::primitive_attr base_attr() const {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  }

  void add_step(Plan& plan, dnnl::primitive primitive, const memory::desc& scratchpad,
                std::vector<std::pair<int, int>> values, std::vector<std::pair<int, memory>> fixed) {
    plan.scratchpad_bytes = std::max(plan.scratchpad_bytes, scratchpad.get_size());
    plan.steps.push_back(Step{std::move(primitive), std::move(values), std::move(fixed)});
  }

  // Reorders `value` into `wanted` when its layout differs; returns the value to read from (a new
  // one, which the caller releases, when a reorder was needed; `value` itself stays live).
  int as_layout(Plan& plan, int value, const memory::desc& wanted) {
    if (plan.values[value].desc == wanted) return value;
    const int out = new_value(plan, wanted, acquire_slot(plan));
    dnnl::reorder::primitive_desc pd(cpu_engine(), plan.values[value].desc, cpu_engine(), wanted, base_attr());
    add_step(plan, dnnl::reorder(pd), pd.scratchpad_desc(), {{DNNL_ARG_FROM, value}, {DNNL_ARG_TO, out}}, {});
    return out;
  }

  // out = [relu](conv(src) [+ accumulate]). With `accumulate`, the result overwrites that value's
  // buffer (the residual add as a sum post-op). Releases nothing; returns the output value.
  int conv(Plan& plan, int src, const std::string& name, bool relu, int accumulate = -1) {
    step_ = name;
    FoldedConv& c = convs_.at(name);
    const memory::dims in = plan.values[src].desc.dims();
    const int64_t k = c.kernel();
    const int64_t span = (k - 1) * c.dilation + 1;
    const int64_t oh = (in[2] + 2 * c.padding - span) / c.stride + 1;
    const int64_t ow = (in[3] + 2 * c.padding - span) / c.stride + 1;
    const memory::dims out_dims{in[0], c.out_channels(), oh, ow};

    const memory::desc weights_any(c.dims, act_, tag::any);
    const memory::desc bias_desc({c.out_channels()}, dt::f32, tag::a);
    dnnl::primitive_attr attr = base_attr();
    dnnl::post_ops ops;
    if (accumulate >= 0) ops.append_sum(1.0f);
    if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
    // `preferred`: the blocked layout shared with the neighbours; otherwise each side `any`.
    auto make = [&](dnnl::algorithm algorithm, bool preferred) {
      const memory::desc src_desc(in, act_, preferred ? layout_for(in[1]) : tag::any);
      const memory::desc dst_desc =
          accumulate >= 0 ? plan.values[accumulate].desc
                          : memory::desc(out_dims, act_, preferred ? layout_for(c.out_channels()) : tag::any);
      dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm, src_desc, weights_any,
                                           bias_desc, dst_desc, {c.stride, c.stride},
                                           {c.dilation - 1, c.dilation - 1}, {c.padding, c.padding},
                                           {c.padding, c.padding});
      return dnnl::convolution_forward::primitive_desc(desc, attr, cpu_engine());
    };
    dnnl::convolution_forward::primitive_desc pd;
    const bool winograd_shape = k == 3 && c.stride == 1 && c.dilation == 1 && c.groups == 1;
    if (winograd_ && winograd_shape) {
      try {
        pd = make(dnnl::algorithm::convolution_winograd, true);
      } catch (const dnnl::error&) {
        // No Winograd kernel for this shape, post-op or CPU: the direct algorithm below.
      }
    }
    if (!pd) pd = make(dnnl::algorithm::convolution_direct, true);
    // The blocked layout can rule out every optimized kernel (ResNeXt's grouped convolutions with
    // 4 or 8 channels per group): oneDNN then falls back to its reference code, hundreds of times
    // slower. Letting the convolution pick its own layouts, at the price of a reorder or two, finds
    // the fast kernel.
    if (is_reference(pd)) {
      dnnl::convolution_forward::primitive_desc free = make(dnnl::algorithm::convolution_direct, false);
      if (!is_reference(free)) pd = free;
    }

    if (std::string(pd.impl_info_str()).find("wino") != std::string::npos) ++plan.winograd;
    if (is_reference(pd)) ++plan.reference;
    const int read = as_layout(plan, src, pd.src_desc());
    const int out = accumulate >= 0 ? new_value(plan, pd.dst_desc(), plan.values[accumulate].slot)
                                    : new_value(plan, pd.dst_desc(), acquire_slot(plan));
    memory bias(bias_desc, cpu_engine(), c.bias.data_ptr());
    add_step(plan, dnnl::convolution_forward(pd), pd.scratchpad_desc(), {{DNNL_ARG_SRC, read}, {DNNL_ARG_DST, out}},
             {{DNNL_ARG_WEIGHTS, c.weights_in(pd.weights_desc())}, {DNNL_ARG_BIAS, bias}});
    if (read != src) release(plan, read);
    return out;
  }

  memory::format_tag layout_for(int64_t channels) const {
    return blocked16_ && channels % 16 == 0 ? tag::aBcd16b : tag::any;
  }

  int pool(Plan& plan, int src, dnnl::algorithm algorithm, int64_t kernel_h, int64_t kernel_w, int64_t stride,
           int64_t padding) {
    step_ = algorithm == dnnl::algorithm::pooling_max ? "maxpool" : "avgpool";
    const memory::dims in = plan.values[src].desc.dims();
    const int64_t oh = (in[2] + 2 * padding - kernel_h) / stride + 1;
    const int64_t ow = (in[3] + 2 * padding - kernel_w) / stride + 1;
    dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm, plan.values[src].desc,
                                     memory::desc({in[0], in[1], oh, ow}, act_, tag::any), {stride, stride},
                                     {kernel_h, kernel_w}, {padding, padding}, {padding, padding});
    dnnl::pooling_forward::primitive_desc pd(desc, base_attr(), cpu_engine());
    if (is_reference(pd)) ++plan.reference;
    const int out = new_value(plan, pd.dst_desc(), acquire_slot(plan));
    add_step(plan, dnnl::pooling_forward(pd), pd.scratchpad_desc(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, out}}, {});
    release(plan, src);
    return out;
  }

  void build(Plan& plan) {
    free_slots_.clear();
    const memory::dims& dims = plan.input_dims;
    if (dims[1] != spec_.in_channels) {
      throw Error(codes::kShape, "inference engine: expected " + std::to_string(spec_.in_channels) + " channels");
    }
    plan.input_value = new_value(plan, memory::desc(dims, dt::f32, plan.input_strides), kInputSlot);

    int x = conv(plan, plan.input_value, "conv1", /*relu=*/true);
    if (spec_.stem == Stem::ImageNet) x = pool(plan, x, dnnl::algorithm::pooling_max, 3, 3, 2, 1);

    for_each_block(spec_, [&](const BlockLayout& b) {
      const std::string& p = b.prefix;
      int shortcut = x;  // identity: accumulate into x's own buffer
      if (b.changes_shape && spec_.shortcut == Shortcut::Projection) shortcut = conv(plan, x, p + ".downsample.0", false);
      if (b.changes_shape && spec_.shortcut == Shortcut::ZeroPad) shortcut = conv(plan, x, p + ".shortcut", false);
      const bool residual = spec_.shortcut != Shortcut::None;
      int out;
      if (spec_.block == BlockKind::Basic) {
        const int a = conv(plan, x, p + ".conv1", true);
        if (shortcut != x || !residual) release(plan, x);
        out = conv(plan, a, p + ".conv2", true, residual ? shortcut : -1);
        release(plan, a);
      } else {
        const int a = conv(plan, x, p + ".conv1", true);
        if (shortcut != x || !residual) release(plan, x);
        const int m = conv(plan, a, p + ".conv2", true);
        release(plan, a);
        out = conv(plan, m, p + ".conv3", true, residual ? shortcut : -1);
        release(plan, m);
      }
      x = out;
    });

    const memory::dims last = plan.values[x].desc.dims();
    x = pool(plan, x, dnnl::algorithm::pooling_avg_exclude_padding, last[2], last[3], 1, 0);

    // fc on the pooled [N, C, 1, 1] values, written straight into the caller's output [N, classes].
    step_ = "fc";
    const int64_t classes = fc_weight_.size(0), channels = fc_weight_.size(1);
    const memory::desc weights_any({classes, channels, 1, 1}, act_, tag::any);
    const memory::desc bias_desc({classes}, dt::f32, tag::a);
    const memory::desc dst_desc({last[0], classes}, dt::f32, tag::nc);
    dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_inference, plan.values[x].desc, weights_any,
                                           bias_desc, dst_desc);
    dnnl::inner_product_forward::primitive_desc pd(desc, base_attr(), cpu_engine());
    if (is_reference(pd)) ++plan.reference;
    const int pooled = as_layout(plan, x, pd.src_desc());
    if (!fc_packed_ || !(fc_packed_->get_desc() == pd.weights_desc())) {
      memory plain(memory::desc({classes, channels, 1, 1}, dt::f32, tag::oihw), cpu_engine(), fc_weight_.data_ptr());
      fc_packed_ = std::make_unique<memory>(pd.weights_desc(), cpu_engine());
      dnnl::stream stream(cpu_engine());
      dnnl::reorder(plain, *fc_packed_).execute(stream, plain, *fc_packed_);
      stream.wait();
    }
    plan.output_value = new_value(plan, dst_desc, kOutputSlot);
    memory bias(bias_desc, cpu_engine(), fc_bias_.data_ptr());
    add_step(plan, dnnl::inner_product_forward(pd), pd.scratchpad_desc(),
             {{DNNL_ARG_SRC, pooled}, {DNNL_ARG_DST, plan.output_value}},
             {{DNNL_ARG_WEIGHTS, *fc_packed_}, {DNNL_ARG_BIAS, bias}});
    plan.batch = last[0];
    plan.classes = classes;

    materialize(plan);
  }

  void materialize(Plan& plan) {
    // Offsets 64-byte aligned, as oneDNN's vector kernels prefer.
    auto place = [&](size_t bytes) {
      const size_t offset = plan.arena_bytes;
      plan.arena_bytes += std::max<size_t>(64, (bytes + 63) / 64 * 64);
      return offset;
    };
    for (size_t bytes : plan.slot_bytes) plan.slot_offsets.push_back(place(bytes));
    plan.scratchpad_offset = place(plan.scratchpad_bytes);
    plan.scratchpad = memory(memory::desc({static_cast<int64_t>(plan.scratchpad_bytes)}, dt::u8, tag::a), cpu_engine(),
                             static_cast<void*>(DNNL_MEMORY_NONE));
    for (const Value& v : plan.values) plan.memories.emplace_back(v.desc, cpu_engine(), static_cast<void*>(DNNL_MEMORY_NONE));
    for (const Step& step : plan.steps) {
      std::unordered_map<int, memory> args;
      for (const auto& [arg, value] : step.values) args.emplace(arg, plan.memories[value]);
      for (const auto& [arg, mem] : step.fixed) args.emplace(arg, mem);
      args.emplace(DNNL_ARG_SCRATCHPAD, plan.scratchpad);
      plan.args.push_back(std::move(args));
    }
    if (std::getenv("LIBTORCH_RESNET_PRINT_ENGINE") != nullptr) {
      size_t total = 0;
      for (size_t bytes : plan.slot_bytes) total += bytes;
      std::cerr << "onednn engine: input " << plan.input_dims[0] << "x" << plan.input_dims[1] << "x" << plan.input_dims[2]
                << "x" << plan.input_dims[3] << ", " << plan.threads << " threads, " << plan.steps.size()
                << " primitives (" << plan.winograd << " Winograd convolutions, " << plan.reference
                << " reference kernels), " << plan.slot_bytes.size() << " activation buffers (" << total / 1024
                << " KiB), scratchpad " << plan.scratchpad_bytes / 1024 << " KiB" << std::endl;
    }
  }

  // Points the plan's memories into the arena, growing the arena first if the plan needs more.
  // The arena is allocated once and reused by every forward and every plan, so a forward touches
  // the same pages each time (no page faults from fresh allocations), and a server whose batches
  // vary in size keeps one arena the size of its largest batch, not one per size.
  void bind_arena(Plan& plan) {
    if (plan.arena_bytes > max_arena_bytes_) {
      // Refused, not attempted: a batch this size would take the machine's memory (and 'auto'
      // must not answer it by falling back to an engine that allocates even more).
      std::ostringstream msg;
      msg << "Expected a batch whose activations fit in the inference engine's limit of " << (max_arena_bytes_ >> 20)
          << " MiB (maxActivationBytes) but a batch of " << plan.batch << " needs " << (plan.arena_bytes >> 20)
          << " MiB; split it into smaller batches";
      throw Error(codes::kInvalidArgument, msg.str());
    }
    if (plan.arena_bytes > arena_bytes_) {
      void* p = std::aligned_alloc(64, plan.arena_bytes);
      if (p == nullptr) throw Error(codes::kNative, "inference engine: out of memory for activations");
      arena_.reset(p);
      arena_bytes_ = plan.arena_bytes;
      ++arena_generation_;
    }
    if (plan.bound_to == arena_generation_) return;
    auto* base = static_cast<uint8_t*>(arena_.get());
    for (size_t i = 0; i < plan.values.size(); ++i) {
      const int slot = plan.values[i].slot;
      if (slot >= 0) plan.memories[i].set_data_handle(base + plan.slot_offsets[slot]);
    }
    plan.scratchpad.set_data_handle(base + plan.scratchpad_offset);
    plan.bound_to = arena_generation_;
  }

  // Plans are small (primitives and descriptors; the buffers are the shared arena): enough for
  // every batch size a serving batcher produces.
  static constexpr size_t kMaxPlans = 16;
  std::unique_ptr<void, decltype(&std::free)> arena_{nullptr, &std::free};
  size_t arena_bytes_ = 0;
  uint64_t arena_generation_ = 0;

  ResNetSpec spec_;
  bool winograd_;
  uint64_t max_arena_bytes_;

  static uint64_t half_physical_memory() {
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 2 : uint64_t{8} << 30;
  }
  // Activations and weights: float32, or bfloat16 (precision 'bfloat16': the convolutions
  // accumulate in float32 and round their outputs to bfloat16, as autocast does).
  dt act_;
  bool blocked16_ = false;
  std::map<std::string, FoldedConv> convs_;
  at::Tensor fc_weight_, fc_bias_;
  std::unique_ptr<memory> fc_packed_;
  std::vector<std::unique_ptr<Plan>> plans_;
  std::vector<int> free_slots_;  // planning only
  std::string step_;             // planning only: the layer being planned, for errors
  dnnl::stream stream_{cpu_engine()};
};

}  // namespace

namespace runtime {
bool onednn_engine_compiled() { return true; }
// Native bfloat16 dot products (AVX512-BF16): elsewhere oneDNN would emulate them, slower than
// float32, so bfloat16 models there run autocast on the modules instead.
bool onednn_bfloat16_native() { return has_isa(dnnl_cpu_isa_avx512_core_bf16); }
}  // namespace runtime

std::unique_ptr<InferenceEngine> make_onednn_engine(const ResNetSpec& spec, const NamedState& state,
                                                    const OneDnnOptions& options) {
  return std::make_unique<OneDnnEngine>(spec, state, options);
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
