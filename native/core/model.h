// A ResNet instance and every operation the binding needs on it, in plain C++ types.
// LibTorch stays behind the pimpl so that its callers (native/binding) do not pay for its headers.
// A Model is not thread-safe: the binding runs one job at a time on it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "types.h"

namespace resnet {

class Model {
 public:
  // Builds the network on the CPU (so that a seed gives the same weights on every device), then
  // moves it to `device` ("cpu", "cuda", "cuda:N"). Throws resnet::Error.
  Model(const ResNetSpec& spec, const std::string& device, uint64_t seed);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // input: float32 [N, in_channels, H, W] on the host. Returns float32 [N, num_classes].
  // Eval mode runs under InferenceMode; train mode uses batch statistics and updates the
  // BatchNorm running statistics, exactly as torchvision's model.train() forward does.
  HostTensor forward(const HostTensor& input);

  // Intermediate feature maps ("stem", "layer1".., "pool"), in the order asked for, on the host.
  NamedTensors features(const HostTensor& input, const std::vector<std::string>& names);

  void set_training(bool training);
  bool training() const;
  // Eval-mode forward through an inference engine (default: Auto) or the plain modules (None).
  // OneDnn throws Error(kDevice) where it cannot run (not built in, or not on the CPU).
  void set_inference_engine(EngineChoice choice, const OneDnnOptions& onednn = {});
  // The engine eval-mode forward() uses under the current settings: "onednn", "torchscript" or
  // "none" (plain modules).
  std::string inference_engine() const;
  // Autocast precision and memory layout for forwards and training steps. Throws a DeviceError
  // for float16 on the CPU (LibTorch's CPU autocast supports bfloat16 only).
  void set_execution(Precision precision, bool channels_last);

  // Parameters and buffers in torchvision's state_dict order and names, copied to the host.
  NamedTensors state_dict() const;
  // Checks every key, shape and dtype first and only then copies, so a failed load leaves the
  // model untouched. Error messages use PyTorch's wording. Keys under an `exclude` prefix
  // ("fc" covers "fc.weight") are left alone on both sides: not loaded, not missing, not
  // unexpected (fine-tuning from a checkpoint with another head).
  LoadResult load_state_dict(const NamedTensors& tensors, bool strict,
                             const std::vector<std::string>& exclude = {});

  int64_t num_parameters() const;
  // Bytes held by parameters and buffers (reported to V8 as external memory).
  int64_t state_bytes() const;

  std::string device() const;
  void to(const std::string& device);

  // Training. configure_training() starts a fresh optimizer (its state is empty); train_step()
  // runs forward in train mode, cross-entropy, backward and one optimizer step at `lr`, then
  // leaves the model in the mode it found it in.
  void configure_training(const TrainOptions& options);
  // With `accumulate`: forward and backward only, gradients kept for the next step (no_sync).
  StepResult train_step(const HostTensor& images, const HostTensor& labels, double lr, bool accumulate = false);
  // Data-parallel training (TrainOptions::process_group): rank 0's buffers to every rank, as
  // DDP does before an evaluation forward. Collective; a no-op otherwise.
  void sync_buffers();
  // Optimizer state by parameter name ("fc.weight.momentum_buffer", "fc.weight.exp_avg", ...).
  NamedTensors optimizer_state() const;
  void load_optimizer_state(const NamedTensors& state);
  // Loss and top-1/top-5 hits of a batch in eval mode, without gradients. With flip_average, the
  // class probabilities are the mean of the images' and their mirror images' softmax (test-time
  // augmentation matching a horizontal-flip training recipe); the loss is that mean's NLL.
  EvalResult evaluate(const HostTensor& images, const HostTensor& labels, bool flip_average = false);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet
