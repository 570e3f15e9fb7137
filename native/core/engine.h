// The inference engine: the network rebuilt as a TorchScript graph from the current weights, then
// frozen and optimized by LibTorch's own optimize_for_inference passes (BatchNorm folded into the
// convolutions, convolution weights prepacked for oneDNN, tensors kept in oneDNN's blocked layout
// between layers; ReLU and residual adds remain separate oneDNN ops, see BENCHMARKS.md's profile). Used by eval-mode
// forward(); Model drops it whenever the weights or the mode change. Internal to native/core.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "types.h"

namespace resnet {

class InferenceEngine {
 public:
  // `state`: the model's parameters and buffers by state_dict name.
  InferenceEngine(const ResNetSpec& spec, const std::vector<std::pair<std::string, at::Tensor>>& state);
  ~InferenceEngine();
  at::Tensor forward(const at::Tensor& x);

  // The TorchScript source the engine compiles (exposed for tests and curiosity).
  static std::string source(const ResNetSpec& spec);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet
