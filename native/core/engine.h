// The inference engines behind eval-mode forward(). Model builds one lazily from the current
// weights and drops it whenever the weights, the mode or the device change. Internal to native/core.
// Both are built from the network's description (network.h), as the modules are.
//
//  - OneDnnEngine (onednn_*.cpp, CPU): the network as a list of oneDNN primitives.
//    BatchNorm is folded into the convolutions, weights are reordered once into the layout each
//    convolution wants, ReLU and the residual add run as post-ops of the convolution before them,
//    activations stay in oneDNN's blocked layout in buffers planned once per input shape.
//  - TorchScriptEngine (engine.cpp, any device): the network as TorchScript, frozen and run
//    through LibTorch's optimize_for_inference (BatchNorm folded, oneDNN prepacking on the CPU;
//    ReLU and add stay separate ops).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "types.h"

namespace resnet {

using NamedState = std::vector<std::pair<std::string, at::Tensor>>;

class InferenceEngine {
 public:
  virtual ~InferenceEngine();
  // x: float32 images [N, C, H, W] on the engine's device (any strides). Returns logits [N, classes].
  virtual at::Tensor forward(const at::Tensor& x) = 0;
};

// `state`: the model's parameters and buffers by state_dict name.
std::unique_ptr<InferenceEngine> make_torchscript_engine(const ResNetSpec& spec, const NamedState& state);
// Throws Error(kDevice) when the addon was built without oneDNN (runtime::onednn_engine_compiled()).
std::unique_ptr<InferenceEngine> make_onednn_engine(const ResNetSpec& spec, const NamedState& state,
                                                    const OneDnnOptions& options);

// The TorchScript source the TorchScript engine compiles.
std::string torchscript_source(const ResNetSpec& spec);

}  // namespace resnet
