// torchvision's ResNet, module for module, in LibTorch's C++ API, built from the network's
// description (network.h). Submodule names equal torchvision's state_dict keys (conv1, bn1,
// layer1.0.conv1, layer2.0.downsample.0, fc, ...), and they are registered in torchvision's order,
// so a torchvision checkpoint maps onto it one to one and the initialisation draws the same numbers.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include "network.h"
#include "types.h"

namespace resnet {

// One residual block (torchvision's BasicBlock or Bottleneck, whichever the description lays out):
// its convolutions and BatchNorms registered under their names in the block ("conv1", "bn1", ...,
// "downsample.0" inside a Sequential "downsample"), run in the description's order.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const NetworkDescription& net, const BlockRange& block);
  torch::Tensor forward(const torch::Tensor& x);
  // The BatchNorm that zero_init_residual zeroes: the last one of the residual branch.
  torch::nn::BatchNorm2d last_bn() const { return last_bn_; }

 private:
  std::vector<Layer> layers_;
  // Parallel to layers_: the module of each Conv and BatchNorm layer (empty elsewhere).
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::BatchNorm2d> bns_;
  torch::nn::BatchNorm2d last_bn_{nullptr};
};
TORCH_MODULE(Block);

// The generic network: stem, residual stages (four for ImageNet, three for the paper's CIFAR
// nets), global average pool, fully connected head.
class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(const ResNetSpec& spec);
  torch::Tensor forward(torch::Tensor x);
  // Intermediate maps by name: the description's stages, "stem" (after the stem, max pool
  // included), "layer1"..."layerN", "pool" (global average pool, [N, C]). Stops after the deepest
  // one asked for.
  std::vector<std::pair<std::string, torch::Tensor>> features(torch::Tensor x,
                                                              const std::vector<std::string>& names);

 private:
  torch::Tensor stem(torch::Tensor x);
  void initialize();

  ResNetSpec spec_;
  NetworkDescription net_;

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::MaxPool2d maxpool{nullptr};  // ImageNet stem only
  std::vector<torch::nn::Sequential> stages_;  // registered as layer1, layer2, ...
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet);

}  // namespace resnet
