// One training step as PyTorch does it: forward in train mode, cross-entropy, backward, optimizer
// step. The optimizers are written out (not torch::optim) so that their arithmetic follows
// torch.optim.SGD / torch.optim.AdamW of PyTorch 1.13 step for step, and so that their state is
// plain named tensors a checkpoint can hold. Internal to native/core.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data_parallel.h"
#include "model_impl.h"

namespace resnet {

class Trainer {
 public:
  Trainer(Model::Impl& model, const TrainOptions& options);
  ~Trainer();
  // With `accumulate`, forward and backward only: the gradients add up (without a data-parallel
  // all-reduce: DDP's no_sync()) until the next step without it, which adds its own, averages
  // across ranks and updates the weights.
  StepResult step(const HostTensor& images, const HostTensor& labels, double lr, bool accumulate = false);
  bool distributed() const { return ddp_ != nullptr; }
  // Data-parallel only: rank 0's buffers to every rank before an evaluation (collective).
  void sync_buffers();
  // "<param>.momentum_buffer" (SGD), "<param>.exp_avg" / ".exp_avg_sq" / ".step" (AdamW).
  std::vector<std::pair<std::string, at::Tensor>> state() const;
  void load_state(const std::vector<std::pair<std::string, at::Tensor>>& state);
  void to(const torch::Device& device);

 private:
  struct Param {
    std::string name;
    at::Tensor tensor;
    double weight_decay;
  };
  // torch.optim.AdamW's single-tensor path (amsgrad=False), one parameter.
  void adamw_update(Param& p, double lr);
  // SGD over every parameter with a gradient, as torch.optim.SGD's multi-tensor path (foreach=True,
  // PyTorch's default on CUDA): the same arithmetic as the single-tensor one, element for element,
  // in a few fused launches per weight-decay group instead of three or four kernels per parameter.
  void sgd_step(double lr);
  at::Tensor loss_of(const at::Tensor& logits, const at::Tensor& labels, bool sum) const;

  // float16 training: dynamic loss scaling as torch.cuda.amp.GradScaler's defaults (initial
  // 2^16, halve on inf/NaN gradients and skip the step, double after 2000 good steps).
  bool unscale_and_check(double scale);

  Model::Impl& model_;
  TrainOptions options_;
  double loss_scale_ = 65536.0;
  int64_t good_steps_ = 0;
  at::Tensor class_weights_;
  std::unique_ptr<DataParallel> ddp_;
  bool accumulating_ = false;  // gradients of accumulate steps are waiting for the next step
  std::vector<Param> params_;                 // trainable, in state_dict order
  std::map<std::string, at::Tensor> state_;  // optimizer state by "<param>.<slot>"
};

EvalResult evaluate_batch(Model::Impl& model, const HostTensor& images, const HostTensor& labels, bool flip_average);

}  // namespace resnet
