// The oneDNN engine, per input shape and thread count: the network's description walked into a
// list of primitives. Each convolution picks its own weight layout (format `any`); ReLU and the
// residual add become post-ops (dst = relu(conv(src) + dst), with dst already holding the
// shortcut, so the identity shortcut is accumulated in place); activations live in a few buffers
// reused from block to block (a liveness walk); a single scratchpad serves every primitive.
#include "onednn_engine.h"

#ifdef RESNET_WITH_ONEDNN

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace resnet::onednn {

int Planner::new_value(Plan& plan, const memory::desc& desc, int slot) {
  plan.values.push_back(PlannedValue{desc, slot});
  if (slot >= 0) plan.slot_bytes[slot] = std::max(plan.slot_bytes[slot], desc.get_size());
  return static_cast<int>(plan.values.size()) - 1;
}

int Planner::acquire_slot(Plan& plan) {
  if (!free_slots_.empty()) {
    const int slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  plan.slot_bytes.push_back(0);
  return static_cast<int>(plan.slot_bytes.size()) - 1;
}

void Planner::release(const Plan& plan, int value) {
  const int slot = plan.values[value].slot;
  if (slot >= 0) free_slots_.push_back(slot);
}

dnnl::primitive_attr Planner::base_attr() const {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void Planner::add_step(Plan& plan, dnnl::primitive primitive, const memory::desc& scratchpad,
                       std::vector<std::pair<int, int>> values, std::vector<std::pair<int, memory>> fixed) {
  plan.scratchpad_bytes = std::max(plan.scratchpad_bytes, scratchpad.get_size());
  plan.steps.push_back(Step{std::move(primitive), std::move(values), std::move(fixed)});
}

// Reorders `value` into `wanted` when its layout differs; returns the value to read from (a new
// one, which the caller releases, when a reorder was needed; `value` itself stays live).
int Planner::as_layout(Plan& plan, int value, const memory::desc& wanted) {
  if (plan.values[value].desc == wanted) return value;
  const int out = new_value(plan, wanted, acquire_slot(plan));
  dnnl::reorder::primitive_desc pd(cpu_engine(), plan.values[value].desc, cpu_engine(), wanted, base_attr());
  add_step(plan, dnnl::reorder(pd), pd.scratchpad_desc(), {{DNNL_ARG_FROM, value}, {DNNL_ARG_TO, out}}, {});
  return out;
}

// out = [relu](conv(src) [+ accumulate]). With `accumulate`, the result overwrites that value's
// buffer (the residual add as a sum post-op). Releases nothing; returns the output value.
int Planner::conv(Plan& plan, int src, const std::string& name, bool relu, int accumulate) {
  step_ = name;
  FoldedConv& c = folded_.convs.at(name);
  const memory::dims in = plan.values[src].desc.dims();
  const int64_t k = c.kernel();
  const int64_t span = (k - 1) * c.dilation + 1;
  const int64_t oh = (in[2] + 2 * c.padding - span) / c.stride + 1;
  const int64_t ow = (in[3] + 2 * c.padding - span) / c.stride + 1;
  const memory::dims out_dims{in[0], c.out_channels(), oh, ow};

  const memory::desc weights_any(c.dims, options_.activations, tag::any);
  const memory::desc bias_desc({c.out_channels()}, dt::f32, tag::a);
  dnnl::primitive_attr attr = base_attr();
  dnnl::post_ops ops;
  if (accumulate >= 0) ops.append_sum(1.0f);
  if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  attr.set_post_ops(ops);
  // `preferred`: the blocked layout shared with the neighbours; otherwise each side `any`.
  auto make = [&](dnnl::algorithm algorithm, bool preferred) {
    const memory::desc src_desc(in, options_.activations, preferred ? layout_for(in[1]) : tag::any);
    const memory::desc dst_desc =
        accumulate >= 0 ? plan.values[accumulate].desc
                        : memory::desc(out_dims, options_.activations, preferred ? layout_for(c.out_channels()) : tag::any);
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm, src_desc, weights_any,
                                         bias_desc, dst_desc, {c.stride, c.stride},
                                         {c.dilation - 1, c.dilation - 1}, {c.padding, c.padding},
                                         {c.padding, c.padding});
    return dnnl::convolution_forward::primitive_desc(desc, attr, cpu_engine());
  };
  dnnl::convolution_forward::primitive_desc pd;
  const bool winograd_shape = k == 3 && c.stride == 1 && c.dilation == 1 && c.groups == 1;
  if (options_.winograd && winograd_shape) {
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

memory::format_tag Planner::layout_for(int64_t channels) const {
  return options_.blocked16 && channels % 16 == 0 ? tag::aBcd16b : tag::any;
}

int Planner::pool(Plan& plan, int src, const std::string& name, dnnl::algorithm algorithm, int64_t kernel_h,
                  int64_t kernel_w, int64_t stride, int64_t padding) {
  step_ = name;
  const memory::dims in = plan.values[src].desc.dims();
  const int64_t oh = (in[2] + 2 * padding - kernel_h) / stride + 1;
  const int64_t ow = (in[3] + 2 * padding - kernel_w) / stride + 1;
  dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm, plan.values[src].desc,
                                   memory::desc({in[0], in[1], oh, ow}, options_.activations, tag::any), {stride, stride},
                                   {kernel_h, kernel_w}, {padding, padding}, {padding, padding});
  dnnl::pooling_forward::primitive_desc pd(desc, base_attr(), cpu_engine());
  if (is_reference(pd)) ++plan.reference;
  const int out = new_value(plan, pd.dst_desc(), acquire_slot(plan));
  add_step(plan, dnnl::pooling_forward(pd), pd.scratchpad_desc(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, out}}, {});
  release(plan, src);
  return out;
}

// What the planner fuses into a convolution: the ReLU after it, and the Add into its value
// (as a sum post-op), looking past its BatchNorm (folded) and the layers of other values.
Planner::Fusion Planner::fusion_after(size_t conv, size_t end) const {
  const std::vector<Layer>& layers = net_.layers;
  const Value v = layers[conv].output;
  Fusion f;
  for (size_t j = conv + 1; j < end; ++j) {
    const Layer& n = layers[j];
    if (n.input != v && n.output != v) continue;  // the shortcut's layers
    if (n.kind == LayerKind::BatchNorm) continue;
    if (n.kind == LayerKind::Add && !f.add) {
      f.add = true;
      continue;
    }
    f.relu = n.kind == LayerKind::ReLU;
    break;
  }
  return f;
}

// The stem, each block and the head as the description lists them: convolutions with their
// BatchNorm folded and the ReLU / residual Add after them fused, poolings, fc.
void Planner::build(Plan& plan) {
  free_slots_.clear();
  const memory::dims& dims = plan.input_dims;
  const std::vector<Layer>& layers = net_.layers;
  if (dims[1] != layers.front().in_channels) {
    throw Error(codes::kShape, "inference engine: expected " + std::to_string(layers.front().in_channels) + " channels");
  }
  plan.input_value = new_value(plan, memory::desc(dims, dt::f32, plan.input_strides), kInputSlot);

  int x = plan.input_value;
  const StageRange& stem = *net_.stage("stem");
  for (size_t i = stem.first; i < stem.end; ++i) {
    const Layer& l = layers[i];
    if (l.kind == LayerKind::Conv) {
      const int out = conv(plan, x, l.name, fusion_after(i, stem.end).relu);
      release(plan, x);
      x = out;
    } else if (l.kind == LayerKind::MaxPool) {
      x = pool(plan, x, l.name, dnnl::algorithm::pooling_max, l.kernel, l.kernel, l.stride, l.padding);
    }
  }

  for (const BlockRange& b : net_.blocks) {
    const Layer* add = nullptr;
    const Layer* projection = nullptr;
    std::vector<size_t> branch;  // the residual branch's convolutions
    for (size_t i = b.first; i < b.end; ++i) {
      const Layer& l = layers[i];
      if (l.kind == LayerKind::Add) add = &l;
      if (l.kind == LayerKind::Conv && l.output == Value::Identity) projection = &l;
      if (l.kind == LayerKind::Conv && l.output == Value::Out) branch.push_back(i);
    }
    // The shortcut first, so that the branch's last convolution accumulates into it; the
    // identity shortcut accumulates in place into x's own buffer.
    int shortcut = x;
    if (add && add->input == Value::Identity) shortcut = conv(plan, x, projection->name, false);
    if (add && add->add == AddKind::ZeroPad) shortcut = conv(plan, x, shortcut_name(*add), false);
    int out = x;
    for (size_t k = 0; k < branch.size(); ++k) {
      const Fusion f = fusion_after(branch[k], b.end);
      if (f.add != (add != nullptr && k + 1 == branch.size())) {
        throw Error(codes::kNative, "inference engine: cannot fuse the residual add of " + b.name);
      }
      const int next = conv(plan, out, layers[branch[k]].name, f.relu, f.add ? shortcut : -1);
      if (k > 0 || shortcut != x || !add) release(plan, out);
      out = next;
    }
    x = out;
  }

  const memory::dims last = plan.values[x].desc.dims();
  const Layer& avgpool = layers[net_.stage("pool")->first];
  x = pool(plan, x, avgpool.name, dnnl::algorithm::pooling_avg_exclude_padding, last[2], last[3], 1, 0);

  // fc on the pooled [N, C, 1, 1] values, written straight into the caller's output [N, classes].
  step_ = layers.back().name;
  const int64_t classes = folded_.fc_weight.size(0), channels = folded_.fc_weight.size(1);
  const memory::desc weights_any({classes, channels, 1, 1}, options_.activations, tag::any);
  const memory::desc bias_desc({classes}, dt::f32, tag::a);
  const memory::desc dst_desc({last[0], classes}, dt::f32, tag::nc);
  dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_inference, plan.values[x].desc, weights_any,
                                         bias_desc, dst_desc);
  dnnl::inner_product_forward::primitive_desc pd(desc, base_attr(), cpu_engine());
  if (is_reference(pd)) ++plan.reference;
  const int pooled = as_layout(plan, x, pd.src_desc());
  if (!folded_.fc_packed || !(folded_.fc_packed->get_desc() == pd.weights_desc())) {
    memory plain(memory::desc({classes, channels, 1, 1}, dt::f32, tag::oihw), cpu_engine(), folded_.fc_weight.data_ptr());
    folded_.fc_packed = std::make_unique<memory>(pd.weights_desc(), cpu_engine());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(plain, *folded_.fc_packed).execute(stream, plain, *folded_.fc_packed);
    stream.wait();
  }
  plan.output_value = new_value(plan, dst_desc, kOutputSlot);
  memory bias(bias_desc, cpu_engine(), folded_.fc_bias.data_ptr());
  add_step(plan, dnnl::inner_product_forward(pd), pd.scratchpad_desc(),
           {{DNNL_ARG_SRC, pooled}, {DNNL_ARG_DST, plan.output_value}},
           {{DNNL_ARG_WEIGHTS, *folded_.fc_packed}, {DNNL_ARG_BIAS, bias}});
  plan.batch = last[0];
  plan.classes = classes;

  materialize(plan);
}

void Planner::materialize(Plan& plan) {
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
  for (const PlannedValue& v : plan.values) plan.memories.emplace_back(v.desc, cpu_engine(), static_cast<void*>(DNNL_MEMORY_NONE));
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

}  // namespace resnet::onednn

#endif  // RESNET_WITH_ONEDNN
