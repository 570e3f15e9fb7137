// The oneDNN inference engine's parts, shared by its files. Internal to native/core, and only
// compiled with RESNET_WITH_ONEDNN (engine.h declares what the rest of core sees).
//   onednn_fold.cpp    per network: BatchNorm folded into each convolution; weights packed per layout
//   onednn_plan.cpp    per input shape and thread count: the primitives, their fusions, the buffers
//   onednn_arena.cpp   the activation memory every plan of an engine shares
//   onednn_engine.cpp  the engine: plan cache and forward; the runtime's oneDNN queries
#pragma once

#ifdef RESNET_WITH_ONEDNN

#include <ATen/core/Tensor.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine.h"
#include "network.h"

namespace resnet::onednn {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& cpu_engine();

// True when oneDNN may use `isa` (and everything it implies) on this CPU; ONEDNN_MAX_CPU_ISA /
// DNNL_MAX_CPU_ISA lower what it may use, which is how the AVX2 paths are tested here.
bool has_isa(dnnl_cpu_isa_t isa);

// True when oneDNN picked its reference implementation (correct, but far slower than its JIT
// kernels) for a primitive.
template <typename PrimitiveDesc>
bool is_reference(const PrimitiveDesc& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
}

// ---- fold (onednn_fold.cpp) ----

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
  void set_weight(at::Tensor w);
  // The weights in `wanted`'s layout, reordered the first time a plan asks for it.
  const memory& weights_in(const memory::desc& wanted);
};

// The network's weights as the planner reads them.
struct FoldedNetwork {
  // By the description's conv names; option A's zero-padding shortcut of block B as "B.shortcut".
  std::map<std::string, FoldedConv> convs;
  // Copies: the model's own fc tensors change in place when it trains.
  at::Tensor fc_weight, fc_bias;
  std::unique_ptr<memory> fc_packed;  // in the layout the last plan asked for
};

// Every conv layer with the bn layer after it folded in; every zero-padding add as a convolution.
FoldedNetwork fold_network(const NetworkDescription& net, const NamedState& state);

// The name the zero-padding convolution of an add layer ("layer2.0.add") is kept under.
std::string shortcut_name(const Layer& add);

// ---- plan (onednn_plan.cpp) ----

// A value flowing between primitives during planning: its layout and the buffer slot it lives in
// (-1: the caller's input; -2: the caller's output).
struct PlannedValue {
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

  std::vector<PlannedValue> values;
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

struct PlanOptions {
  bool winograd = true;
  dt activations = dt::f32;
  // Every activation in the 16-channel blocked layout (AVX-512: the one layout oneDNN's direct and
  // Winograd kernels share); otherwise each convolution picks its own.
  bool blocked16 = false;
};

// Fills `plan` (input dims, strides and threads set) from the description. Throws dnnl::error
// when oneDNN refuses a primitive; `step()` then names the layer.
class Planner {
 public:
  Planner(const NetworkDescription& net, FoldedNetwork& folded, const PlanOptions& options)
      : net_(net), folded_(folded), options_(options) {}
  void build(Plan& plan);
  const std::string& step() const { return step_; }

 private:
  struct Fusion {
    bool relu = false;
    bool add = false;
  };
  Fusion fusion_after(size_t conv, size_t end) const;
  int new_value(Plan& plan, const memory::desc& desc, int slot);
  int acquire_slot(Plan& plan);
  void release(const Plan& plan, int value);
  dnnl::primitive_attr base_attr() const;
  void add_step(Plan& plan, dnnl::primitive primitive, const memory::desc& scratchpad,
                std::vector<std::pair<int, int>> values, std::vector<std::pair<int, memory>> fixed);
  int as_layout(Plan& plan, int value, const memory::desc& wanted);
  int conv(Plan& plan, int src, const std::string& name, bool relu, int accumulate = -1);
  int pool(Plan& plan, int src, const std::string& name, dnnl::algorithm algorithm, int64_t kernel_h, int64_t kernel_w,
           int64_t stride, int64_t padding);
  void materialize(Plan& plan);
  memory::format_tag layout_for(int64_t channels) const;

  const NetworkDescription& net_;
  FoldedNetwork& folded_;
  PlanOptions options_;
  std::vector<int> free_slots_;
  std::string step_;  // the layer being planned, for errors
};

// ---- arena (onednn_arena.cpp) ----

// The activation buffers and scratchpad of every plan of one engine: allocated once and reused by
// every forward and every plan, so a forward touches the same pages each time (no page faults from
// fresh allocations), and a server whose batches vary in size keeps one arena the size of its
// largest batch, not one per size.
class Arena {
 public:
  // 0: half the physical memory.
  explicit Arena(uint64_t max_bytes);
  // Points the plan's memories into the arena, growing it first if the plan needs more. Throws
  // Error(kInvalidArgument) for a plan over the limit.
  void bind(Plan& plan);

 private:
  std::unique_ptr<void, decltype(&std::free)> memory_{nullptr, &std::free};
  size_t bytes_ = 0;
  uint64_t generation_ = 0;
  uint64_t max_bytes_;
};

}  // namespace resnet::onednn

#endif  // RESNET_WITH_ONEDNN
