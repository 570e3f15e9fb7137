// torchvision's ResNet, module for module, in LibTorch's C++ API.
// Submodule names equal torchvision's state_dict keys (conv1, bn1, layer1.0.conv1,
// layer2.0.downsample.0, fc, ...), so a torchvision checkpoint maps onto it one to one.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include "types.h"

namespace resnet {

// 3x3 convolution with padding equal to the dilation (torchvision's conv3x3).
torch::nn::Conv2d conv3x3(int64_t in_planes, int64_t out_planes, int64_t stride = 1,
                          int64_t groups = 1, int64_t dilation = 1);
// 1x1 convolution (torchvision's conv1x1).
torch::nn::Conv2d conv1x1(int64_t in_planes, int64_t out_planes, int64_t stride = 1);

// What a residual stage passes to each block it builds.
struct BlockArgs {
  int64_t inplanes;
  int64_t planes;
  int64_t stride = 1;
  torch::nn::Sequential downsample{nullptr};
  int64_t groups = 1;
  int64_t base_width = 64;
  int64_t dilation = 1;
  Shortcut shortcut = Shortcut::Projection;
};

// How each block adds its input back; shared by BasicBlock and Bottleneck.
class ResidualPath {
 public:
  ResidualPath() = default;
  ResidualPath(const BlockArgs& args, int64_t out_channels)
      : mode_(args.shortcut), stride_(args.stride), in_channels_(args.inplanes), out_channels_(out_channels) {}
  // out + shortcut(x), or out alone for a plain network.
  torch::Tensor add(torch::Tensor out, const torch::Tensor& x, torch::nn::Sequential& downsample) const;

 private:
  Shortcut mode_ = Shortcut::Projection;
  int64_t stride_ = 1;
  int64_t in_channels_ = 0;
  int64_t out_channels_ = 0;
};

// Two 3x3 convolutions (ResNet-18/34). expansion = 1.
class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t expansion = 1;
  explicit BasicBlockImpl(const BlockArgs& args);
  torch::Tensor forward(const torch::Tensor& x);
  // The BatchNorm that zero_init_residual zeroes: the block's last one.
  torch::nn::BatchNorm2d last_bn() const { return bn2; }

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
  ResidualPath residual_;
};
TORCH_MODULE(BasicBlock);

// 1x1 reduce, 3x3 (grouped, carrying the stride: "ResNet V1.5"), 1x1 expand. expansion = 4.
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  explicit BottleneckImpl(const BlockArgs& args);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::BatchNorm2d last_bn() const { return bn3; }

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
  ResidualPath residual_;
};
TORCH_MODULE(Bottleneck);

// The generic network: stem, residual stages (four for ImageNet, three for the paper's CIFAR
// nets), global average pool, fully connected head.
class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(const ResNetSpec& spec);
  torch::Tensor forward(torch::Tensor x);
  // Intermediate maps by name: "stem" (after the stem, max pool included), "layer1"..."layerN",
  // "pool" (global average pool, [N, C]). Stops after the deepest one asked for.
  std::vector<std::pair<std::string, torch::Tensor>> features(torch::Tensor x,
                                                              const std::vector<std::string>& names);
  const ResNetSpec& spec() const { return spec_; }

 private:
  torch::nn::Sequential make_layer(int64_t planes, int64_t blocks, int64_t stride, bool dilate);
  void initialize();

  ResNetSpec spec_;
  int64_t inplanes_ = 64;
  int64_t dilation_ = 1;

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::MaxPool2d maxpool{nullptr};  // ImageNet stem only
  std::vector<torch::nn::Sequential> stages_;  // registered as layer1, layer2, ...
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet);

}  // namespace resnet
