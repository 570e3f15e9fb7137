// The oneDNN engine, per network: BatchNorm folded into every convolution (float32, as
// torch.nn.utils.fusion does), option A's zero-padding shortcut written as a convolution, and each
// convolution's weights reordered once into every layout a plan asks for.
#include "onednn_engine.h"

#ifdef RESNET_WITH_ONEDNN

#include <ATen/ATen.h>

#include <functional>

namespace resnet::onednn {

void FoldedConv::set_weight(at::Tensor w) {
  weight = std::move(w);
  const int64_t o = weight.size(0), i = weight.size(1), k = weight.size(2);
  dims = groups == 1 ? memory::dims{o, i, k, k} : memory::dims{groups, o / groups, i, k, k};
}

const memory& FoldedConv::weights_in(const memory::desc& wanted) {
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

namespace {

using TensorByName = std::function<const at::Tensor&(const std::string&)>;

// w * gamma / sqrt(var + eps), beta - mean * gamma / sqrt(var + eps).
FoldedConv fold(const Layer& conv, const Layer& bn, const TensorByName& get) {
  const at::Tensor scale = get(bn.name + ".weight") / at::sqrt(get(bn.name + ".running_var") + 1e-5);
  FoldedConv folded;
  folded.stride = conv.stride;
  folded.padding = conv.padding;
  folded.dilation = conv.dilation;
  folded.groups = conv.groups;
  folded.set_weight((get(conv.name + ".weight") * scale.reshape({-1, 1, 1, 1})).contiguous());
  folded.bias = (get(bn.name + ".bias") - get(bn.name + ".running_mean") * scale).contiguous();
  return folded;
}

// Option A's shortcut x[:, :, ::s, ::s] padded with zero channels, as a 1x1 convolution with
// stride s whose weights are 1 on the shifted diagonal and 0 elsewhere: exact, since every output
// is 1 * x plus zeros, and it lands in oneDNN's layout like any other value.
FoldedConv zero_pad_conv(const Layer& add) {
  FoldedConv pad;
  at::Tensor weight = at::zeros({add.out_channels, add.in_channels, 1, 1}, at::kFloat);
  auto w = weight.accessor<float, 4>();
  for (int64_t c = 0; c < add.in_channels; ++c) w[c + add.pad_front][c][0][0] = 1.0f;
  pad.stride = add.stride;
  pad.set_weight(weight);
  pad.bias = at::zeros({add.out_channels}, at::kFloat);
  return pad;
}

}  // namespace

std::string shortcut_name(const Layer& add) { return add.name.substr(0, add.name.rfind('.')) + ".shortcut"; }

FoldedNetwork fold_network(const NetworkDescription& net, const NamedState& state) {
  std::map<std::string, at::Tensor> by_name;
  for (const auto& [name, tensor] : state) by_name[name] = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
  auto get = [&](const std::string& name) -> const at::Tensor& {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw Error(codes::kNative, "inference engine: missing tensor " + name);
    return it->second;
  };
  FoldedNetwork folded;
  const std::vector<Layer>& layers = net.layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    if (l.kind == LayerKind::Conv) {
      if (i + 1 >= layers.size() || layers[i + 1].kind != LayerKind::BatchNorm || layers[i + 1].input != l.output) {
        throw Error(codes::kNative, "inference engine: no BatchNorm after " + l.name);
      }
      folded.convs[l.name] = fold(l, layers[i + 1], get);
    } else if (l.kind == LayerKind::Add && l.add == AddKind::ZeroPad) {
      folded.convs[shortcut_name(l)] = zero_pad_conv(l);
    } else if (l.kind == LayerKind::Linear) {
      folded.fc_weight = get(l.name + ".weight").clone();
      folded.fc_bias = get(l.name + ".bias").clone();
    }
  }
  return folded;
}

}  // namespace resnet::onednn

#endif  // RESNET_WITH_ONEDNN
