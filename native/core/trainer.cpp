#include "trainer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>

#include <algorithm>
#include <cmath>

#include "autocast.h"
#include "torch_convert.h"

namespace resnet {

namespace F = torch::nn::functional;

namespace {

bool starts_with_prefix(const std::string& name, const std::string& prefix) {
  return name == prefix || (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
                            name[prefix.size()] == '.');
}

// Sets train mode for the step, keeping frozen BatchNorm layers in eval mode; restores the
// previous mode afterwards so a later forward() behaves as the user left it.
class TrainModeScope {
 public:
  TrainModeScope(ResNet& net, bool freeze_batchnorm) : net_(net), was_training_(net->is_training()) {
    net_->train(true);
    if (freeze_batchnorm) {
      for (auto& module : net_->modules(false)) {
        if (auto* bn = module->as<torch::nn::BatchNorm2dImpl>()) bn->eval();
      }
    }
  }
  ~TrainModeScope() { net_->train(was_training_); }

 private:
  ResNet& net_;
  bool was_training_;
};

}  // namespace

Trainer::Trainer(Model::Impl& model, const TrainOptions& options) : model_(model), options_(options) {
  // Parameters of BatchNorm layers: excluded from weight decay when asked (with every bias).
  std::map<const void*, bool> is_norm;
  for (auto& module : model_.net->modules(false)) {
    if (auto* bn = module->as<torch::nn::BatchNorm2dImpl>()) {
      is_norm[bn->weight.unsafeGetTensorImpl()] = true;
      is_norm[bn->bias.unsafeGetTensorImpl()] = true;
    }
  }
  for (const auto& item : model_.net->named_parameters(/*recurse=*/true)) {
    at::Tensor tensor = item.value();
    bool frozen = false;
    for (const auto& prefix : options_.frozen_prefixes) frozen = frozen || starts_with_prefix(item.key(), prefix);
    tensor.set_requires_grad(!frozen);
    if (frozen) continue;
    const bool bias = item.key().size() >= 5 && item.key().compare(item.key().size() - 5, 5, ".bias") == 0;
    const bool exempt = options_.optimizer.exclude_norm_and_bias_from_weight_decay && (bias || is_norm.count(tensor.unsafeGetTensorImpl()));
    params_.push_back(Param{item.key(), tensor, exempt ? 0.0 : options_.optimizer.weight_decay});
  }
  if (!options_.class_weights.empty()) {
    if (static_cast<int64_t>(options_.class_weights.size()) != model_.spec.num_classes) {
      throw Error(codes::kInvalidArgument, "Expected " + std::to_string(model_.spec.num_classes) +
                                               " class weights but received " +
                                               std::to_string(options_.class_weights.size()));
    }
    class_weights_ = at::tensor(options_.class_weights).to(model_.device);
  }
  if (options_.process_group) {
    std::vector<std::pair<std::string, at::Tensor>> trainable;
    for (const auto& p : params_) trainable.emplace_back(p.name, p.tensor);
    ddp_ = std::make_unique<DataParallel>(options_.process_group, model_.net, trainable, options_.broadcast_buffers,
                                          options_.bucket_cap_bytes);
    model_.weights_changed();  // rank 0's weights replaced these
  }
}

Trainer::~Trainer() = default;

void Trainer::sync_buffers() {
  if (ddp_) {
    ddp_->sync_buffers();
    model_.weights_changed();
  }
}

at::Tensor Trainer::loss_of(const at::Tensor& logits, const at::Tensor& labels, bool sum) const {
  auto opts = F::CrossEntropyFuncOptions().label_smoothing(options_.label_smoothing);
  if (class_weights_.defined()) opts.weight(class_weights_);
  if (sum) opts.reduction(torch::kSum);
  return F::cross_entropy(logits, labels, opts);
}

StepResult Trainer::step(const HostTensor& images, const HostTensor& labels, double lr, bool accumulate) {
  at::Tensor x = model_.images_on_device(images);
  at::Tensor y = model_.labels_on_device(labels, x.size(0));
  model_.weights_changed();  // they are about to
  TrainModeScope mode(model_.net, options_.freeze_batchnorm);

  if (!accumulating_) {
    for (auto& p : params_) p.tensor.mutable_grad().reset();  // zero_grad(set_to_none=True)
  }
  accumulating_ = accumulate;
  const bool sync = !accumulate;
  if (ddp_) ddp_->before_forward(sync);
  at::Tensor logits;
  at::Tensor loss;
  {
    std::unique_ptr<AutocastScope> autocast;
    if (model_.precision != Precision::Float32) {
      autocast = std::make_unique<AutocastScope>(model_.device.type(), model_.precision == Precision::BFloat16 ? at::kBFloat16 : at::kHalf);
    }
    logits = model_.net->forward(x);
    loss = loss_of(logits.to(at::kFloat), y, false);
  }
  if (ddp_) ddp_->after_forward(sync);
  const bool scaled = model_.precision == Precision::Float16;
  try {
    (scaled ? loss * loss_scale_ : loss).backward();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // The Reducer's all-reduces run inside a synchronised backward and are waited for at its
    // end: a lost peer surfaces here.
    if (!(ddp_ && sync)) throw;
    ddp_->group().fail(e, "a training step's gradient all-reduce");
  }

  StepResult result;
  if (accumulate) {
    result.loss = loss.item<double>();
    result.correct = logits.argmax(1).eq(y).sum().item<int64_t>();
    result.count = x.size(0);
    return result;
  }
  if (scaled && !unscale_and_check(loss_scale_)) {
    // Overflow: skip this step, as GradScaler does, with a smaller scale next time.
    loss_scale_ *= 0.5;
    good_steps_ = 0;
    result.loss = loss.item<double>();
    result.correct = logits.argmax(1).eq(y).sum().item<int64_t>();
    result.count = x.size(0);
    return result;
  }
  if (scaled && ++good_steps_ == 2000) {
    loss_scale_ *= 2;
    good_steps_ = 0;
  }
  if (options_.clip_grad_norm > 0) {
    std::vector<at::Tensor> with_grad;
    for (auto& p : params_) {
      if (p.tensor.grad().defined()) with_grad.push_back(p.tensor);
    }
    result.grad_norm = torch::nn::utils::clip_grad_norm_(with_grad, options_.clip_grad_norm);
  }
  {
    torch::NoGradGuard no_grad;
    if (options_.optimizer.kind == OptimizerOptions::Kind::SGD) {
      sgd_step(lr);
    } else {
      for (auto& p : params_) adamw_update(p, lr);
    }
  }
  result.loss = loss.item<double>();
  result.correct = logits.argmax(1).eq(y).sum().item<int64_t>();
  result.count = x.size(0);
  return result;
}

bool Trainer::unscale_and_check(double scale) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (auto& p : params_) {
    if (p.tensor.grad().defined()) grads.push_back(p.tensor.mutable_grad());
  }
  if (grads.empty()) return true;
  // As GradScaler._unscale_grads_: 1/scale computed in double and held in float32; one fused
  // kernel multiplies every gradient by it and raises a flag on any inf/NaN, and one sync reads
  // the flag. (A check per parameter cost a device sync each: 161 per resnet50 step.)
  const auto options = at::TensorOptions().dtype(at::kFloat).device(model_.device);
  at::Tensor found_inf = at::zeros({1}, options);
  at::Tensor inv_scale = at::full({1}, static_cast<float>(1.0 / scale), options);
  at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale);
  return found_inf.item<float>() == 0.0f;
}

void Trainer::sgd_step(double lr) {
  const OptimizerOptions& o = options_.optimizer;
  // Parameters grouped by their weight decay (0 for the excluded norm and bias tensors), as
  // PyTorch's param groups would hold them; each group is one multi-tensor update.
  std::vector<std::pair<double, std::vector<Param*>>> groups;
  for (auto& p : params_) {
    if (!p.tensor.grad().defined()) continue;
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == p.weight_decay; });
    if (it == groups.end()) {
      groups.push_back({p.weight_decay, {}});
      it = groups.end() - 1;
    }
    it->second.push_back(&p);
  }
  for (auto& [weight_decay, members] : groups) {
    std::vector<at::Tensor> params, grads;
    for (Param* p : members) {
      params.push_back(p->tensor);
      grads.push_back(p->tensor.grad());
    }
    std::vector<at::Tensor> d_p = weight_decay != 0 ? at::_foreach_add(grads, params, weight_decay) : grads;
    if (o.momentum != 0) {
      std::vector<at::Tensor> bufs;
      bool all_present = true;
      for (Param* p : members) all_present = all_present && state_.count(p->name + ".momentum_buffer") > 0;
      if (all_present) {
        for (Param* p : members) bufs.push_back(state_[p->name + ".momentum_buffer"]);
        at::_foreach_mul_(bufs, o.momentum);
        at::_foreach_add_(bufs, d_p, 1 - o.dampening);
      } else {
        // First step (or a partly restored state): a missing buffer starts as the gradient itself.
        for (size_t i = 0; i < members.size(); ++i) {
          const std::string key = members[i]->name + ".momentum_buffer";
          auto it = state_.find(key);
          if (it == state_.end()) {
            at::Tensor buf = d_p[i].clone().detach();
            state_[key] = buf;
            bufs.push_back(buf);
          } else {
            it->second.mul_(o.momentum).add_(d_p[i], 1 - o.dampening);
            bufs.push_back(it->second);
          }
        }
      }
      d_p = o.nesterov ? at::_foreach_add(d_p, bufs, o.momentum) : bufs;
    }
    at::_foreach_add_(params, d_p, -lr);
  }
}

void Trainer::adamw_update(Param& p, double lr) {
  if (!p.tensor.grad().defined()) return;
  at::Tensor param = p.tensor;
  at::Tensor grad = param.grad();
  const OptimizerOptions& o = options_.optimizer;
  // torch.optim.AdamW (_single_tensor_adamw, amsgrad=False).
  at::Tensor& step_t = state_[p.name + ".step"];
  at::Tensor& exp_avg = state_[p.name + ".exp_avg"];
  at::Tensor& exp_avg_sq = state_[p.name + ".exp_avg_sq"];
  if (!step_t.defined()) {
    step_t = at::zeros({}, at::TensorOptions().dtype(at::kFloat));
    exp_avg = at::zeros_like(param, at::MemoryFormat::Preserve);
    exp_avg_sq = at::zeros_like(param, at::MemoryFormat::Preserve);
  }
  step_t.add_(1);
  param.mul_(1 - lr * p.weight_decay);
  exp_avg.mul_(o.beta1).add_(grad, 1 - o.beta1);
  exp_avg_sq.mul_(o.beta2).addcmul_(grad, grad, 1 - o.beta2);
  const double step = step_t.item<double>();
  const double bias_correction1 = 1 - std::pow(o.beta1, step);
  const double bias_correction2 = 1 - std::pow(o.beta2, step);
  const double step_size = lr / bias_correction1;
  at::Tensor denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(o.eps);
  param.addcdiv_(exp_avg, denom, -step_size);
}

std::vector<std::pair<std::string, at::Tensor>> Trainer::state() const {
  return {state_.begin(), state_.end()};
}

void Trainer::load_state(const std::vector<std::pair<std::string, at::Tensor>>& state) {
  std::map<std::string, at::Tensor> next;
  for (const auto& [name, tensor] : state) {
    const size_t dot = name.rfind('.');
    const std::string param = dot == std::string::npos ? "" : name.substr(0, dot);
    const Param* owner = nullptr;
    for (const auto& p : params_) {
      if (p.name == param) owner = &p;
    }
    if (owner == nullptr) throw Error(codes::kWeights, "optimizer state for unknown or frozen parameter '" + name + "'");
    const bool is_step = name.size() > 5 && name.compare(name.size() - 5, 5, ".step") == 0;
    if (!is_step && !owner->tensor.sizes().equals(tensor.sizes())) {
      throw Error(codes::kWeights, "size mismatch for optimizer state " + name + ": " + format_shape(tensor.sizes()) +
                                       " vs " + format_shape(owner->tensor.sizes()));
    }
    next[name] = is_step ? tensor.to(at::kFloat) : tensor.to(owner->tensor.options());
  }
  state_ = std::move(next);
}

void Trainer::to(const torch::Device& device) {
  for (auto& [name, tensor] : state_) {
    if (!(name.size() > 5 && name.compare(name.size() - 5, 5, ".step") == 0)) tensor = tensor.to(device);
  }
  if (class_weights_.defined()) class_weights_ = class_weights_.to(device);
}

EvalResult evaluate_batch(Model::Impl& model, const HostTensor& images, const HostTensor& labels, bool flip_average) {
  at::Tensor x = model.images_on_device(images);
  at::Tensor y = model.labels_on_device(labels, x.size(0));
  const bool was_training = model.net->is_training();
  model.net->eval();
  EvalResult result;
  {
    c10::InferenceMode inference;
    at::Tensor logits = model.net->forward(x);
    if (flip_average) {
      // log of the mean of the two views' probabilities: cross_entropy of these "logits" is the
      // NLL of the averaged prediction, and their ranking is the averaged probabilities'.
      const at::Tensor mirrored = model.net->forward(x.flip({3}));
      logits = at::logsumexp(at::stack({logits.log_softmax(1), mirrored.log_softmax(1)}), 0) - std::log(2.0);
    }
    result.loss_sum = F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().reduction(torch::kSum)).item<double>();
    const int64_t k = std::min<int64_t>(5, logits.size(1));
    at::Tensor top = std::get<1>(logits.topk(k, 1));
    at::Tensor hits = top.eq(y.unsqueeze(1));
    result.top1 = hits.narrow(1, 0, 1).sum().item<int64_t>();
    result.top5 = hits.sum().item<int64_t>();
    result.count = x.size(0);
  }
  model.net->train(was_training);
  return result;
}

}  // namespace resnet
