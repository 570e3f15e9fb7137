// Model's private state, shared by the translation units that implement Model (model.cpp for
// inference and state dicts, trainer.cpp for training). Internal to native/core.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine.h"
#include "model.h"
#include "resnet.h"

namespace resnet {

class Trainer;

struct Model::Impl {
  ResNetSpec spec;
  ResNet net{nullptr};
  torch::Device device{torch::kCPU};
  std::unique_ptr<Trainer> trainer;
  // Eval-mode forward's optimized graph; built on first use, dropped by weights_changed() (and
  // when the mode, device or execution settings change): it holds folded copies of the weights.
  std::unique_ptr<InferenceEngine> engine;
  EngineChoice engine_choice = EngineChoice::Auto;
  OneDnnOptions onednn_options;
  // Set when 'auto' found that oneDNN cannot plan this model; cleared by set_inference_engine.
  bool onednn_failed = false;
  Precision precision = Precision::Float32;
  bool channels_last = false;

  // The engine eval forwards use (float32; bfloat16 on the CPU through oneDNN where the CPU runs
  // bfloat16 natively), or None: float16 and the other autocast cases run the modules. oneDNN's
  // engine reads any input layout; the TorchScript one was frozen for contiguous inputs.
  EngineChoice engine_kind() const;
  // The user's oneDNN options plus bfloat16 when the model's precision is bfloat16.
  OneDnnOptions onednn_options_for_precision() const;

  Impl();
  ~Impl();

  // Every change to parameters or buffers (a load, a training step, a broadcast) goes through
  // here, so no engine runs on stale folded weights.
  void weights_changed() { engine.reset(); }

  // Parameters and buffers in PyTorch's state_dict order.
  std::vector<std::pair<std::string, at::Tensor>> state() const;
  // Checks a host tensor that must hold images [N, in_channels, H, W] (float32).
  // (pinned and copied asynchronously for CUDA; channels_last when the model uses it)
  at::Tensor images_on_device(const HostTensor& images) const;
  // Checks a host tensor of int64 class indices [N] matching `batch`.
  at::Tensor labels_on_device(const HostTensor& labels, int64_t batch) const;
};

}  // namespace resnet
