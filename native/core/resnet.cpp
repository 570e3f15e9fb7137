#include "resnet.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

#include <map>
#include <sstream>

namespace resnet {

namespace F = torch::nn::functional;

torch::nn::Conv2d conv3x3(int64_t in_planes, int64_t out_planes, int64_t stride, int64_t groups,
                          int64_t dilation) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in_planes, out_planes, 3)
                               .stride(stride)
                               .padding(dilation)
                               .groups(groups)
                               .bias(false)
                               .dilation(dilation));
}

torch::nn::Conv2d conv1x1(int64_t in_planes, int64_t out_planes, int64_t stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in_planes, out_planes, 1).stride(stride).bias(false));
}

torch::Tensor ResidualPath::add(torch::Tensor out, const torch::Tensor& x,
                                torch::nn::Sequential& downsample) const {
  switch (mode_) {
    case Shortcut::None:
      return out;
    case Shortcut::Projection:
      return out += downsample ? downsample->forward(x) : x;
    case Shortcut::ZeroPad: {
      if (stride_ == 1 && in_channels_ == out_channels_) return out += x;
      using torch::indexing::None;
      using torch::indexing::Slice;
      torch::Tensor s = stride_ == 1 ? x : x.index({Slice(), Slice(), Slice(None, None, stride_), Slice(None, None, stride_)});
      // Option A: the new channels are zeros, half before and half after the old ones.
      const int64_t extra = out_channels_ - in_channels_;
      const int64_t front = extra / 2;
      s = F::pad(s, F::PadFuncOptions({0, 0, 0, 0, front, extra - front}));
      return out += s;
    }
  }
  return out;
}

BasicBlockImpl::BasicBlockImpl(const BlockArgs& a) : residual_(a, a.planes * expansion) {
  // torchvision raises these (ValueError / NotImplementedError) with the same words.
  if (a.groups != 1 || a.base_width != 64) {
    throw Error(codes::kInvalidArgument, "BasicBlock only supports groups=1 and base_width=64");
  }
  if (a.dilation > 1) {
    throw Error(codes::kInvalidArgument, "Dilation > 1 not supported in BasicBlock");
  }
  conv1 = register_module("conv1", conv3x3(a.inplanes, a.planes, a.stride));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(a.planes));
  conv2 = register_module("conv2", conv3x3(a.planes, a.planes));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(a.planes));
  if (a.downsample) downsample = register_module("downsample", a.downsample);
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = F::relu(bn1(conv1(x)), F::ReLUFuncOptions(true));
  out = residual_.add(bn2(conv2(out)), x, downsample);
  return out.relu_();
}

BottleneckImpl::BottleneckImpl(const BlockArgs& a) : residual_(a, a.planes * expansion) {
  const int64_t width =
      static_cast<int64_t>(static_cast<double>(a.planes) * (static_cast<double>(a.base_width) / 64.0)) *
      a.groups;
  conv1 = register_module("conv1", conv1x1(a.inplanes, width));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(width));
  conv2 = register_module("conv2", conv3x3(width, width, a.stride, a.groups, a.dilation));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(width));
  conv3 = register_module("conv3", conv1x1(width, a.planes * expansion));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(a.planes * expansion));
  if (a.downsample) downsample = register_module("downsample", a.downsample);
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = F::relu(bn1(conv1(x)), F::ReLUFuncOptions(true));
  out = F::relu(bn2(conv2(out)), F::ReLUFuncOptions(true));
  out = residual_.add(bn3(conv3(out)), x, downsample);
  return out.relu_();
}

namespace {

void validate_spec(const ResNetSpec& spec) {
  if (spec.widths.empty() || spec.layers.size() != spec.widths.size()) {
    throw Error(codes::kInvalidArgument, "Expected as many entries in layers as in widths but received " +
                                             std::to_string(spec.layers.size()) + " and " +
                                             std::to_string(spec.widths.size()));
  }
  if (spec.replace_stride_with_dilation.size() != spec.widths.size() - 1) {
    std::ostringstream msg;
    msg << "replace_stride_with_dilation should be None or a 3-element tuple, got [";
    for (size_t i = 0; i < spec.replace_stride_with_dilation.size(); ++i) {
      msg << (i ? ", " : "") << (spec.replace_stride_with_dilation[i] ? "True" : "False");
    }
    msg << "]";
    throw Error(codes::kInvalidArgument, msg.str());
  }
  for (int64_t n : spec.layers) {
    if (n < 1) throw Error(codes::kInvalidArgument, "Expected at least 1 block per stage in layers");
  }
  for (int64_t w : spec.widths) {
    if (w < 1) throw Error(codes::kInvalidArgument, "Expected positive widths");
  }
  if (spec.num_classes < 1 || spec.in_channels < 1 || spec.groups < 1 || spec.width_per_group < 1) {
    throw Error(codes::kInvalidArgument,
                "Expected positive numClasses, inChannels, groups and widthPerGroup");
  }
}

}  // namespace

ResNetImpl::ResNetImpl(const ResNetSpec& spec) : spec_(spec) {
  validate_spec(spec_);
  inplanes_ = spec_.widths[0];
  if (spec_.stem == Stem::ImageNet) {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(spec_.in_channels, inplanes_, 7)
                                                           .stride(2)
                                                           .padding(3)
                                                           .bias(false)));
    maxpool = register_module(
        "maxpool", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));
  } else {
    conv1 = register_module("conv1", conv3x3(spec_.in_channels, inplanes_));
  }
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(inplanes_));
  for (size_t i = 0; i < spec_.widths.size(); ++i) {
    const int64_t stride = i == 0 ? 1 : 2;
    const bool dilate = i == 0 ? false : static_cast<bool>(spec_.replace_stride_with_dilation[i - 1]);
    stages_.push_back(register_module("layer" + std::to_string(i + 1),
                                      make_layer(spec_.widths[i], spec_.layers[i], stride, dilate)));
  }
  const int64_t expansion =
      spec_.block == BlockKind::Basic ? BasicBlockImpl::expansion : BottleneckImpl::expansion;
  fc = register_module("fc", torch::nn::Linear(spec_.widths.back() * expansion, spec_.num_classes));
  initialize();
}

torch::nn::Sequential ResNetImpl::make_layer(int64_t planes, int64_t blocks, int64_t stride,
                                             bool dilate) {
  const int64_t expansion =
      spec_.block == BlockKind::Basic ? BasicBlockImpl::expansion : BottleneckImpl::expansion;
  const int64_t previous_dilation = dilation_;
  if (dilate) {
    dilation_ *= stride;
    stride = 1;
  }
  torch::nn::Sequential downsample{nullptr};
  if (spec_.shortcut == Shortcut::Projection && (stride != 1 || inplanes_ != planes * expansion)) {
    downsample = torch::nn::Sequential(conv1x1(inplanes_, planes * expansion, stride),
                                       torch::nn::BatchNorm2d(planes * expansion));
  }
  torch::nn::Sequential layer;
  auto add_block = [&](const BlockArgs& args) {
    if (spec_.block == BlockKind::Basic) {
      layer->push_back(BasicBlock(args));
    } else {
      layer->push_back(Bottleneck(args));
    }
  };
  add_block(BlockArgs{inplanes_, planes, stride, downsample, spec_.groups, spec_.width_per_group,
                      previous_dilation, spec_.shortcut});
  inplanes_ = planes * expansion;
  for (int64_t i = 1; i < blocks; ++i) {
    add_block(BlockArgs{inplanes_, planes, 1, nullptr, spec_.groups, spec_.width_per_group,
                        dilation_, spec_.shortcut});
  }
  return layer;
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
      if (auto* block = module->as<BottleneckImpl>()) {
        torch::nn::init::constant_(block->last_bn()->weight, 0.0);
      } else if (auto* block = module->as<BasicBlockImpl>()) {
        torch::nn::init::constant_(block->last_bn()->weight, 0.0);
      }
    }
  }
}

std::vector<std::pair<std::string, torch::Tensor>> ResNetImpl::features(
    torch::Tensor x, const std::vector<std::string>& names) {
  // Stage order: stem = 0, layer1..layerN = 1..N, pool = N + 1.
  auto depth_of = [this](const std::string& name) -> int64_t {
    if (name == "stem") return 0;
    if (name == "pool") return static_cast<int64_t>(stages_.size()) + 1;
    for (size_t i = 0; i < stages_.size(); ++i) {
      if (name == "layer" + std::to_string(i + 1)) return static_cast<int64_t>(i) + 1;
    }
    throw Error(codes::kInvalidArgument, "unknown feature map '" + name + "'");
  };
  int64_t deepest = 0;
  for (const auto& name : names) deepest = std::max(deepest, depth_of(name));
  std::map<int64_t, torch::Tensor> maps;
  x = F::relu(bn1(conv1(x)), F::ReLUFuncOptions(true));
  if (maxpool) x = maxpool(x);
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
  x = F::relu(bn1(conv1(x)), F::ReLUFuncOptions(true));
  if (maxpool) x = maxpool(x);
  for (auto& stage : stages_) x = stage->forward(x);
  x = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1));
  return fc(torch::flatten(x, 1));
}

}  // namespace resnet
