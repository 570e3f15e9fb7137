#include "model.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>

#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>

#include "autocast.h"
#include "model_impl.h"
#include "runtime.h"
#include "torch_convert.h"
#include "trainer.h"

namespace resnet {

namespace {

// Seeding and building must not interleave with another model being built on another executor
// thread: LibTorch's default CPU generator is process-wide.
std::mutex g_init_mutex;

torch::Device parse_device(const std::string& device) {
  torch::Device parsed(torch::kCPU);
  try {
    parsed = torch::Device(device);
  } catch (const std::exception&) {
    throw Error(codes::kInvalidArgument,
                "Expected 'cpu', 'cuda' or 'cuda:N' for device but received '" + device + "'");
  }
  if (parsed.is_cuda()) {
    if (!runtime::cuda_compiled()) {
      throw Error(codes::kDevice,
                  "CUDA was requested (device '" + device + "') but libtorch-resnet was built "
                  "against a CPU-only LibTorch (" + runtime::libtorch_version() + "). To use a GPU, "
                  "point LIBTORCH at an unpacked CUDA build of LibTorch (or install a CUDA build of "
                  "PyTorch) and rebuild: LIBTORCH=/path/to/libtorch npm rebuild libtorch-resnet");
    }
    const int count = runtime::cuda_device_count();
    const int index = parsed.has_index() ? parsed.index() : 0;
    if (index >= count) {
      throw Error(codes::kDevice, "CUDA device " + std::to_string(index) + " was requested (device '" +
                                      device + "') but " + std::to_string(count) +
                                      " CUDA device(s) are visible");
    }
    if (!parsed.has_index()) parsed = torch::Device(torch::kCUDA, 0);
  }
  return parsed;
}

std::string device_string(const torch::Device& device) { return device.str(); }

// Parameters then buffers of each module, children after, depth first: PyTorch's state_dict order.
void collect_state(const torch::nn::Module& module, const std::string& prefix,
                   std::vector<std::pair<std::string, at::Tensor>>& out) {
  for (const auto& item : module.named_parameters(/*recurse=*/false)) {
    out.emplace_back(prefix + item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/false)) {
    out.emplace_back(prefix + item.key(), item.value());
  }
  for (const auto& child : module.named_children()) {
    collect_state(*child.value(), prefix + child.key() + ".", out);
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// PyTorch's list of keys, cut after kShownKeys: weights of another architecture would otherwise
// name every one of hundreds of keys (8,300 characters for resnet50's file into a resnet18).
constexpr size_t kShownKeys = 10;

std::string quoted_list(const std::vector<std::string>& keys) {
  std::ostringstream out;
  for (size_t i = 0; i < keys.size() && i < kShownKeys; ++i) out << (i ? ", " : "") << '"' << keys[i] << '"';
  if (keys.size() > kShownKeys) out << ", ... (" << kShownKeys << " of " << keys.size() << " shown)";
  return out.str();
}

void require_cpu_bfloat16() {
  if (!runtime::cpu_bfloat16_available()) {
    throw Error(codes::kDevice,
                "bfloat16 convolutions are not available on this CPU: LibTorch's oneDNN refused one (is ONEDNN_MAX_CPU_ISA "
                "set below the CPU's own instruction set?); use precision 'float32'");
  }
}

}  // namespace

Model::Impl::Impl() = default;
Model::Impl::~Impl() = default;

std::vector<std::pair<std::string, at::Tensor>> Model::Impl::state() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  collect_state(*net, "", out);
  return out;
}

at::Tensor Model::Impl::images_on_device(const HostTensor& input) const {
  if (input.dtype != DType::Float32) {
    // The same code as lib/ gives this mistake: a wrong dtype is an invalid argument, not a shape.
    throw Error(codes::kInvalidArgument, std::string("Expected float32 input but received ") + dtype_name(input.dtype));
  }
  if (input.shape.size() != 4 || input.shape[1] != spec.in_channels || input.shape[0] < 1 || input.shape[2] < 1 ||
      input.shape[3] < 1) {
    std::ostringstream msg;
    msg << "Expected input of shape [N, " << spec.in_channels << ", H, W] with N, H, W >= 1 but received [";
    for (size_t i = 0; i < input.shape.size(); ++i) msg << (i ? ", " : "") << input.shape[i];
    msg << "]";
    throw Error(codes::kShape, msg.str());
  }
  // A NaN or an infinity must not come out as plausible logits: the fused engines (ReLU as max(0, x),
  // folded BatchNorm) turn some of them into finite numbers. Refused up front, for every path.
  const int64_t bad = first_non_finite(static_cast<const float*>(input.data), input.numel());
  if (bad >= 0) {
    uint32_t bits;
    std::memcpy(&bits, static_cast<const float*>(input.data) + bad, sizeof bits);
    const char* kind = (bits & 0x007fffffu) != 0 ? "NaN" : (bits >> 31) ? "-Infinity" : "Infinity";
    const int64_t plane = input.shape[2] * input.shape[3];
    std::ostringstream msg;
    msg << "Expected finite input values but received " << kind
        << " at [" << bad / (input.shape[1] * plane) << ", " << (bad / plane) % input.shape[1] << ", "
        << (bad % plane) / input.shape[3] << ", " << bad % input.shape[3] << "]";
    throw Error(codes::kInvalidArgument, msg.str());
  }
  at::Tensor host = view_host(input);
  at::Tensor x = device.is_cuda() ? host.pin_memory().to(device, /*non_blocking=*/true) : host.to(device);
  return channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

at::Tensor Model::Impl::labels_on_device(const HostTensor& labels, int64_t batch) const {
  if (labels.dtype != DType::Int64 || labels.shape.size() != 1 || labels.shape[0] != batch) {
    throw Error(codes::kShape, "Expected int64 labels of shape [" + std::to_string(batch) + "]");
  }
  at::Tensor y = view_host(labels);
  if (batch > 0 && (y.min().item<int64_t>() < 0 || y.max().item<int64_t>() >= spec.num_classes)) {
    throw Error(codes::kShape, "Expected labels in [0, " + std::to_string(spec.num_classes) + ")");
  }
  return y.to(device);
}

Model::Model(const ResNetSpec& spec, const std::string& device, uint64_t seed)
    : impl_(std::make_unique<Impl>()) {
  impl_->spec = spec;
  impl_->device = parse_device(device);
  {
    std::lock_guard<std::mutex> lock(g_init_mutex);
    torch::manual_seed(seed);
    impl_->net = ResNet(spec);
  }
  impl_->net->eval();  // torchvision models are usually used for inference first; train() is explicit
  impl_->net->to(impl_->device);
  // Fixed input shapes are the common case: let cuDNN pick the fastest algorithm per shape.
  if (impl_->device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
}

Model::~Model() = default;


HostTensor Model::forward(const HostTensor& input) {
  at::Tensor x = impl_->images_on_device(input);
  std::unique_ptr<AutocastScope> autocast;
  if (impl_->precision != Precision::Float32) {
    autocast = std::make_unique<AutocastScope>(impl_->device.type(), impl_->precision == Precision::BFloat16 ? at::kBFloat16 : at::kHalf);
  }
  if (impl_->net->is_training()) {
    torch::NoGradGuard no_grad;  // running statistics still update, as in PyTorch's train() forward
    return to_host(impl_->net->forward(x).to(at::kFloat));
  }
  c10::InferenceMode inference;
  const EngineChoice kind = impl_->engine_kind();
  if (kind != EngineChoice::None) {
    if (!impl_->engine) {
      impl_->engine = kind == EngineChoice::OneDnn ? make_onednn_engine(impl_->spec, impl_->state(), impl_->onednn_options_for_precision())
                                                   : make_torchscript_engine(impl_->spec, impl_->state());
    }
    try {
      return to_host(impl_->engine->forward(x));
    } catch (const Error& e) {
      // 'auto' promises the best engine that works: if oneDNN cannot plan this model, say so once
      // and carry on with the next one. An explicit 'onednn' keeps the error.
      // A batch refused by the memory bound is the caller's to split, not a reason to switch engines.
      if (kind != EngineChoice::OneDnn || impl_->engine_choice != EngineChoice::Auto || e.code() == codes::kInvalidArgument) throw;
      std::cerr << "libtorch-resnet: " << e.what() << "; falling back from the oneDNN engine" << std::endl;
      impl_->onednn_failed = true;
      impl_->engine.reset();
      return forward(input);
    }
  }
  return to_host(impl_->net->forward(x).to(at::kFloat));
}

NamedTensors Model::features(const HostTensor& input, const std::vector<std::string>& names) {
  at::Tensor x = impl_->images_on_device(input);
  std::vector<std::pair<std::string, at::Tensor>> maps;
  if (impl_->net->is_training()) {
    torch::NoGradGuard no_grad;
    maps = impl_->net->features(x, names);
  } else {
    c10::InferenceMode inference;
    maps = impl_->net->features(x, names);
  }
  NamedTensors out;
  for (const auto& [name, map] : maps) out.emplace_back(name, to_host(map));
  return out;
}

void Model::set_training(bool training) {
  impl_->net->train(training);
  impl_->engine.reset();
}

void Model::set_execution(Precision precision, bool channels_last) {
  if (precision == Precision::Float16 && !impl_->device.is_cuda()) {
    throw Error(codes::kDevice, "float16 autocast needs a CUDA device (LibTorch's CPU autocast supports bfloat16): use precision 'bfloat16' on the CPU");
  }
  if (precision == Precision::BFloat16 && !impl_->device.is_cuda()) require_cpu_bfloat16();
  // c10d's Reducer lays its gradient buckets out like the parameters it was built with.
  if (impl_->trainer && impl_->trainer->distributed() && channels_last != impl_->channels_last) {
    throw Error(codes::kInvalidArgument, "Expected the memory format set before data-parallel training was configured: set it, then create the trainer");
  }
  impl_->precision = precision;
  impl_->channels_last = channels_last;
  torch::NoGradGuard no_grad;
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  for (auto& p : impl_->net->parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(format));
  }
  impl_->weights_changed();
}

void Model::set_inference_engine(EngineChoice choice, const OneDnnOptions& onednn) {
  if (choice == EngineChoice::OneDnn && !runtime::onednn_engine_compiled()) {
    throw Error(codes::kDevice, "the 'onednn' inference engine is not in this build (oneDNN's headers were not found when the addon was compiled): use 'torchscript' or 'auto'");
  }
  if (choice == EngineChoice::OneDnn && !impl_->device.is_cpu()) {
    throw Error(codes::kDevice, "the 'onednn' inference engine runs on the CPU, but the model is on " + impl_->device.str() + ": use 'torchscript' or 'auto'");
  }
  impl_->engine_choice = choice;
  impl_->onednn_options = onednn;
  impl_->onednn_failed = false;
  impl_->engine.reset();
}

std::string Model::inference_engine() const {
  switch (impl_->engine_kind()) {
    case EngineChoice::OneDnn: return "onednn";
    case EngineChoice::TorchScript: return "torchscript";
    default: return "none";
  }
}

OneDnnOptions Model::Impl::onednn_options_for_precision() const {
  OneDnnOptions options = onednn_options;
  options.bfloat16 = precision == Precision::BFloat16;
  return options;
}

EngineChoice Model::Impl::engine_kind() const {
  if (engine_choice == EngineChoice::None || precision == Precision::Float16) return EngineChoice::None;
  // 'onednn' where it cannot run (the model moved to a GPU since) behaves as 'auto'.
  const bool onednn_fits = runtime::onednn_engine_compiled() && device.is_cpu() && !onednn_failed;
  // bfloat16 on the CPU: the oneDNN engine in bfloat16, or else autocast on the plain modules.
  if (precision == Precision::BFloat16) {
    const bool bf16_fits = onednn_fits && runtime::onednn_bfloat16_native();
    return bf16_fits && engine_choice != EngineChoice::TorchScript ? EngineChoice::OneDnn : EngineChoice::None;
  }
  if (engine_choice != EngineChoice::TorchScript && onednn_fits) return EngineChoice::OneDnn;
  return channels_last ? EngineChoice::None : EngineChoice::TorchScript;
}
bool Model::training() const { return impl_->net->is_training(); }

NamedTensors Model::state_dict() const {
  NamedTensors out;
  for (const auto& [name, tensor] : impl_->state()) {
    // A copy: the caller must not alias live weights that later training steps would change.
    out.emplace_back(name, to_host(tensor.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true)));
  }
  return out;
}

LoadResult Model::load_state_dict(const NamedTensors& tensors, bool strict,
                                  const std::vector<std::string>& exclude) {
  auto excluded = [&exclude](const std::string& key) {
    for (const auto& prefix : exclude) {
      if (key == prefix || (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0 &&
                            key[prefix.size()] == '.')) {
        return true;
      }
    }
    return false;
  };
  std::map<std::string, const HostTensor*> given;
  for (const auto& [name, host] : tensors) {
    if (!excluded(name)) given[name] = &host;
  }

  LoadResult result;
  std::vector<std::string> errors;  // mismatches first, then (strict) missing/unexpected put before them
  std::vector<std::pair<at::Tensor, const HostTensor*>> copies;
  std::vector<at::Tensor> reset_counters;
  std::map<std::string, bool> known;

  for (const auto& [name, target] : impl_->state()) {
    known[name] = true;
    if (excluded(name)) continue;
    auto it = given.find(name);
    if (it == given.end()) {
      // PyTorch fills a BatchNorm's missing num_batches_tracked with 0 for checkpoints written
      // before the buffer existed (torchvision's IMAGENET1K_V1 files), without calling it missing.
      if (ends_with(name, ".num_batches_tracked")) {
        reset_counters.push_back(target);
      } else {
        result.missing_keys.push_back(name);
      }
      continue;
    }
    const HostTensor& source = *it->second;
    if (!target.sizes().equals(source.shape)) {
      errors.push_back("size mismatch for " + name + ": copying a param with shape " +
                       format_shape(source.shape) + " from checkpoint, the shape in current model is " +
                       format_shape(target.sizes()) + ".");
      continue;
    }
    const bool target_float = at::isFloatingType(target.scalar_type());
    const c10::ScalarType source_type = to_scalar_type(source.dtype);
    const bool compatible = target_float ? at::isFloatingType(source_type)
                                         : at::isIntegralType(source_type, /*includeBool=*/false);
    if (!compatible) {
      errors.push_back("dtype mismatch for " + name + ": copying a param with dtype " +
                       dtype_name(source.dtype) + " from checkpoint, the dtype in current model is " +
                       dtype_name(from_scalar_type(target.scalar_type())) + ".");
      continue;
    }
    copies.emplace_back(target, &source);
  }
  for (const auto& [name, host] : tensors) {
    if (!known.count(name) && !excluded(name)) result.unexpected_keys.push_back(name);
  }

  const size_t mismatches = errors.size();
  if (strict) {
    if (!result.unexpected_keys.empty()) {
      errors.insert(errors.begin(),
                    "Unexpected key(s) in state_dict: " + quoted_list(result.unexpected_keys) + ". ");
    }
    if (!result.missing_keys.empty()) {
      errors.insert(errors.begin(),
                    "Missing key(s) in state_dict: " + quoted_list(result.missing_keys) + ". ");
    }
  }
  if (!errors.empty()) {
    std::string message = "Error(s) in loading state_dict for ResNet:";
    const size_t listed = errors.size() - mismatches;  // the missing/unexpected lines come first
    for (size_t i = 0; i < errors.size() && i < listed + kShownKeys; ++i) message += "\n\t" + errors[i];
    if (mismatches > kShownKeys) message += "\n\t... and " + std::to_string(mismatches - kShownKeys) + " more size or dtype mismatches.";
    if (errors.size() > 3 || result.missing_keys.size() + result.unexpected_keys.size() > kShownKeys) {
      message += "\n\tIn all: " + std::to_string(result.missing_keys.size()) + " missing, " + std::to_string(result.unexpected_keys.size()) +
                 " unexpected and " + std::to_string(mismatches) + " mismatched of the model's " + std::to_string(known.size()) +
                 " keys (the file has " + std::to_string(tensors.size()) + "): is it for another architecture or number of classes?";
    }
    throw Error(codes::kWeights, message);
  }

  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.copy_(view_host(*source));
  for (auto& counter : reset_counters) counter.zero_();
  impl_->weights_changed();
  return result;
}

int64_t Model::num_parameters() const {
  int64_t total = 0;
  for (const auto& p : impl_->net->parameters()) total += p.numel();
  return total;
}

int64_t Model::state_bytes() const {
  int64_t total = 0;
  for (const auto& [name, tensor] : impl_->state()) total += static_cast<int64_t>(tensor.nbytes());
  return total;
}

std::string Model::device() const { return device_string(impl_->device); }

void Model::to(const std::string& device) {
  const torch::Device target = parse_device(device);
  // c10d's Reducer holds gradient buckets on the device it was built for.
  if (impl_->trainer && impl_->trainer->distributed() && target != impl_->device) {
    throw Error(codes::kInvalidArgument, "Expected the model on its device before data-parallel training was configured: move it, then create the trainer");
  }
  if (impl_->precision == Precision::Float16 && !target.is_cuda()) {
    throw Error(codes::kDevice, "float16 autocast needs a CUDA device: set precision 'bfloat16' or 'float32' before moving to " + device);
  }
  if (impl_->precision == Precision::BFloat16 && !target.is_cuda()) require_cpu_bfloat16();
  if (target.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
  impl_->net->to(target);
  impl_->device = target;
  impl_->weights_changed();
  if (impl_->trainer) impl_->trainer->to(target);
}

void Model::configure_training(const TrainOptions& options) {
  impl_->trainer = std::make_unique<Trainer>(*impl_, options);
}

StepResult Model::train_step(const HostTensor& images, const HostTensor& labels, double lr, bool accumulate) {
  if (!impl_->trainer) throw Error(codes::kInvalidArgument, "configure_training() must come before train_step()");
  return impl_->trainer->step(images, labels, lr, accumulate);
}

void Model::sync_buffers() {
  if (impl_->trainer) impl_->trainer->sync_buffers();
}

NamedTensors Model::optimizer_state() const {
  if (!impl_->trainer) return {};
  NamedTensors out;
  for (const auto& [name, tensor] : impl_->trainer->state()) out.emplace_back(name, to_host(tensor.to(at::kCPU, false, true)));
  return out;
}

void Model::load_optimizer_state(const NamedTensors& state) {
  if (!impl_->trainer) throw Error(codes::kInvalidArgument, "configure_training() must come before load_optimizer_state()");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, host] : state) tensors.emplace_back(name, view_host(host).clone());
  impl_->trainer->load_state(tensors);
}

EvalResult Model::evaluate(const HostTensor& images, const HostTensor& labels, bool flip_average) {
  return evaluate_batch(*impl_, images, labels, flip_average);
}

}  // namespace resnet
