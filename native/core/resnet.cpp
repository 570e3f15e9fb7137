#include "resnet.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

#include <map>

namespace resnet {

namespace F = torch::nn::functional;

namespace {

torch::nn::Conv2d make_conv(const Layer& l) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(l.in_channels, l.out_channels, l.kernel)
                               .stride(l.stride)
                               .padding(l.padding)
                               .dilation(l.dilation)
                               .groups(l.groups)
                               .bias(false));
}

// "layer2.0.downsample.0" in block "layer2.0" -> "downsample.0".
std::string name_in_block(const std::string& name, const std::string& block) {
  return name.substr(block.size() + 1);
}

// x[:, :, ::stride, ::stride] with zero channels around it, up to the Add layer's out_channels
// (the paper's option A).
torch::Tensor zero_padded(const torch::Tensor& x, const Layer& add) {
  using torch::indexing::None;
  using torch::indexing::Slice;
  const int64_t stride = add.stride;
  torch::Tensor s = stride == 1 ? x : x.index({Slice(), Slice(), Slice(None, None, stride), Slice(None, None, stride)});
  const int64_t extra = add.out_channels - add.in_channels;
  return F::pad(s, F::PadFuncOptions({0, 0, 0, 0, add.pad_front, extra - add.pad_front}));
}

}  // namespace

BlockImpl::BlockImpl(const NetworkDescription& net, const BlockRange& block)
    : layers_(net.layers.begin() + static_cast<std::ptrdiff_t>(block.first),
              net.layers.begin() + static_cast<std::ptrdiff_t>(block.end)),
      convs_(layers_.size(), torch::nn::Conv2d{nullptr}),
      bns_(layers_.size(), torch::nn::BatchNorm2d{nullptr}) {
  // Constructed as torchvision's _make_layer does (the downsample before the block), so the
  // default initialisation LibTorch runs in each constructor draws in the same order; registered
  // in the description's order, which is torchvision's attribute order (the state dict's).
  auto is_downsample = [&](const Layer& l) { return name_in_block(l.name, block.name).find('.') != std::string::npos; };
  for (bool downsample_pass : {true, false}) {
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Layer& l = layers_[i];
      if (is_downsample(l) != downsample_pass) continue;
      if (l.kind == LayerKind::Conv) convs_[i] = make_conv(l);
      if (l.kind == LayerKind::BatchNorm) bns_[i] = torch::nn::BatchNorm2d(l.out_channels);
    }
  }
  std::map<std::string, torch::nn::Sequential> containers;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    if (l.kind != LayerKind::Conv && l.kind != LayerKind::BatchNorm) continue;
    const std::shared_ptr<torch::nn::Module> module =
        l.kind == LayerKind::Conv ? std::static_pointer_cast<torch::nn::Module>(convs_[i].ptr())
                                  : std::static_pointer_cast<torch::nn::Module>(bns_[i].ptr());
    const std::string name = name_in_block(l.name, block.name);
    const size_t dot = name.find('.');
    if (dot == std::string::npos) {
      register_module(name, module);
    } else {
      // "downsample.0": the n-th module of a Sequential named "downsample".
      const std::string parent = name.substr(0, dot);
      auto it = containers.find(parent);
      if (it == containers.end()) {
        it = containers.emplace(parent, register_module(parent, torch::nn::Sequential())).first;
      }
      if (name.substr(dot + 1) != std::to_string(it->second->size())) {
        throw Error(codes::kNative, "network description: " + l.name + " out of order");
      }
      if (l.kind == LayerKind::Conv) {
        it->second->push_back(convs_[i]);
      } else {
        it->second->push_back(bns_[i]);
      }
    }
    if (l.kind == LayerKind::BatchNorm && l.output == Value::Out) last_bn_ = bns_[i];
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor values[3] = {x, {}, {}};  // indexed by Value: x, out, identity
  auto at = [&](Value v) -> torch::Tensor& { return values[static_cast<int>(v)]; };
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    switch (l.kind) {
      case LayerKind::Conv:
        at(l.output) = convs_[i](at(l.input));
        break;
      case LayerKind::BatchNorm:
        at(l.output) = bns_[i](at(l.input));
        break;
      case LayerKind::ReLU:  // in place, as torchvision's ReLU(inplace=True)
        at(l.output) = F::relu(at(l.input), F::ReLUFuncOptions(true));
        break;
      case LayerKind::Add:
        at(l.output) += l.add == AddKind::ZeroPad ? zero_padded(at(l.input), l) : at(l.input);
        break;
      default:
        throw Error(codes::kNative, "network description: no module for " + l.name + " inside a block");
    }
  }
  return at(Value::X);
}

ResNetImpl::ResNetImpl(const ResNetSpec& spec) : spec_(spec), net_(describe(spec)) {
  // torchvision's BasicBlock has no groups, width or dilation (lib/options.ts gives its messages).
  if (spec_.block == BlockKind::Basic) {
    require_spec(spec_.groups == 1 && spec_.width_per_group == 64, "a BasicBlock with groups 1 and width 64");
    for (const auto& block : net_.blocks) require_spec(block.dilation == 1, "a BasicBlock without dilation");
  }
  const StageRange& stem = *net_.stage("stem");
  for (size_t i = stem.first; i < stem.end; ++i) {
    const Layer& l = net_.layers[i];
    if (l.kind == LayerKind::Conv) conv1 = register_module(l.name, make_conv(l));
    if (l.kind == LayerKind::BatchNorm) bn1 = register_module(l.name, torch::nn::BatchNorm2d(l.out_channels));
    if (l.kind == LayerKind::MaxPool) {
      maxpool = register_module(
          l.name, torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(l.kernel).stride(l.stride).padding(l.padding)));
    }
  }
  for (const StageRange& stage : net_.stages) {
    if (stage.name == "stem" || stage.name == "pool") continue;
    torch::nn::Sequential layer;
    for (const BlockRange& block : net_.blocks) {
      if (block.first >= stage.first && block.end <= stage.end) layer->push_back(Block(net_, block));
    }
    stages_.push_back(register_module(stage.name, layer));
  }
  const Layer& head = net_.layers.back();
  fc = register_module(head.name, torch::nn::Linear(head.in_channels, head.out_channels));
  initialize();
}

void ResNetImpl::initialize() {
  torch::NoGradGuard no_grad;
  // torchvision: Kaiming normal (fan_out, ReLU) for every conv, BatchNorm weight 1 / bias 0;
  // the Linear head keeps its default init, which LibTorch shares with PyTorch.
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<torch::nn::BatchNorm2dImpl>()) {
      torch::nn::init::constant_(bn->weight, 1.0);
      torch::nn::init::constant_(bn->bias, 0.0);
    }
  }
  if (spec_.zero_init_residual) {
    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* block = module->as<BlockImpl>()) {
        if (block->last_bn()) torch::nn::init::constant_(block->last_bn()->weight, 0.0);
      }
    }
  }
}

torch::Tensor ResNetImpl::stem(torch::Tensor x) {
  x = F::relu(bn1(conv1(x)), F::ReLUFuncOptions(true));
  if (maxpool) x = maxpool(x);
  return x;
}

std::vector<std::pair<std::string, torch::Tensor>> ResNetImpl::features(
    torch::Tensor x, const std::vector<std::string>& names) {
  // Stage order as the description lists them: stem = 0, layer1..layerN = 1..N, pool = N + 1.
  auto depth_of = [this](const std::string& name) -> int64_t {
    for (size_t i = 0; i < net_.stages.size(); ++i) {
      if (net_.stages[i].name == name) return static_cast<int64_t>(i);
    }
    throw Error(codes::kInvalidArgument, "unknown feature map '" + name + "'");
  };
  int64_t deepest = 0;
  for (const auto& name : names) deepest = std::max(deepest, depth_of(name));
  std::map<int64_t, torch::Tensor> maps;
  x = stem(x);
  maps[0] = x;
  for (size_t i = 0; i < stages_.size() && static_cast<int64_t>(i) < deepest; ++i) {
    x = stages_[i]->forward(x);
    maps[static_cast<int64_t>(i) + 1] = x;
  }
  if (deepest == static_cast<int64_t>(stages_.size()) + 1) {
    maps[deepest] = torch::flatten(F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1)), 1);
  }
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& name : names) out.emplace_back(name, maps.at(depth_of(name)));
  return out;
}

torch::Tensor ResNetImpl::forward(torch::Tensor x) {
  x = stem(x);
  for (auto& stage : stages_) x = stage->forward(x);
  x = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1));
  return fc(torch::flatten(x, 1));
}

}  // namespace resnet
