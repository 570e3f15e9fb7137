#include "engine.h"
#include "network.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/script.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace resnet {

namespace {

// "layer1.0.conv1.weight" -> "layer1_0_conv1_weight": a TorchScript attribute name.
std::string attr(const std::string& state_name) {
  std::string out = state_name;
  for (char& c : out) {
    if (c == '.') c = '_';
  }
  return out;
}

// Emits TorchScript for the network's description, layer for layer (the same list resnet.cpp
// builds its modules from). Values are the description's: x, out, identity.
class SourceWriter {
 public:
  explicit SourceWriter(const ResNetSpec& spec) : net_(describe(spec)) {}

  std::string write() {
    out_ << "def forward(self, x: Tensor) -> Tensor:\n";
    for (const Layer& l : net_.layers) layer(l);
    return out_.str();
  }

 private:
  void line(const std::string& code) { out_ << "    " << code << "\n"; }

  void layer(const Layer& l) {
    const std::string to = value_name(l.output);
    const std::string from = value_name(l.input);
    std::ostringstream s;
    switch (l.kind) {
      case LayerKind::Conv:
        s << to << " = torch.conv2d(" << from << ", self." << attr(l.name + ".weight") << ", None, [" << l.stride
          << ", " << l.stride << "], [" << l.padding << ", " << l.padding << "], [" << l.dilation << ", "
          << l.dilation << "], " << l.groups << ")";
        break;
      case LayerKind::BatchNorm: {
        const std::string n = "self." + attr(l.name);
        s << to << " = torch.batch_norm(" << from << ", " << n << "_weight, " << n << "_bias, " << n
          << "_running_mean, " << n << "_running_var, False, 0.1, 1e-05, False)";
        break;
      }
      case LayerKind::ReLU:
        s << to << " = torch.relu(" << from << ")";
        break;
      case LayerKind::MaxPool:
        s << to << " = torch.max_pool2d(" << from << ", [" << l.kernel << ", " << l.kernel << "], [" << l.stride
          << ", " << l.stride << "], [" << l.padding << ", " << l.padding << "], [1, 1], False)";
        break;
      case LayerKind::Add:
        if (l.add == AddKind::ZeroPad) {
          const int64_t extra = l.out_channels - l.in_channels;
          s << to << " = " << to << " + torch.constant_pad_nd(" << from << "[:, :, ::" << l.stride << ", ::"
            << l.stride << "], [0, 0, 0, 0, " << l.pad_front << ", " << extra - l.pad_front << "], 0.0)";
        } else {
          s << to << " = " << to << " + " << from;
        }
        break;
      case LayerKind::AvgPool:
        line(to + " = torch.adaptive_avg_pool2d(" + from + ", [1, 1])");
        s << to << " = torch.flatten(" << to << ", 1)";
        break;
      case LayerKind::Linear:
        s << "return torch.linear(" << from << ", self." << attr(l.name + ".weight") << ", self."
          << attr(l.name + ".bias") << ")";
        break;
    }
    line(s.str());
  }

  NetworkDescription net_;
  std::ostringstream out_;
};

class TorchScriptEngine final : public InferenceEngine {
 public:
  TorchScriptEngine(const ResNetSpec& spec, const NamedState& state) {
    torch::jit::Module module("__torch__.libtorch_resnet.InferenceResNet");
    for (const auto& [name, tensor] : state) {
      if (name.size() > 20 && name.compare(name.size() - 20, 20, ".num_batches_tracked") == 0) continue;
      module.register_attribute(attr(name), c10::TensorType::get(), tensor.detach().clone(), /*is_param=*/false);
    }
    module.define(torchscript_source(spec));
    // freeze() inlines the weights as constants and folds BatchNorm into the convolutions;
    // optimize_for_inference() then prepacks the convolutions for oneDNN (on LibTorch 1.13 the
    // ReLU / add that follow stay separate ops, as the profile in BENCHMARKS.md shows). (It
    // only freezes by itself modules that carry a `training` attribute, which this one does not.)
    torch::jit::Module frozen = torch::jit::freeze(module, c10::nullopt, /*optimize_numerics=*/true);
    module_ = torch::jit::optimize_for_inference(frozen);
    if (std::getenv("LIBTORCH_RESNET_PRINT_ENGINE") != nullptr) {
      std::cerr << *module_.get_method("forward").graph() << std::endl;
    }
  }

  at::Tensor forward(const at::Tensor& x) override { return module_.forward({x}).toTensor(); }

 private:
  torch::jit::Module module_;
};

}  // namespace

InferenceEngine::~InferenceEngine() = default;

std::string torchscript_source(const ResNetSpec& spec) { return SourceWriter(spec).write(); }

std::unique_ptr<InferenceEngine> make_torchscript_engine(const ResNetSpec& spec, const NamedState& state) {
  return std::make_unique<TorchScriptEngine>(spec, state);
}

}  // namespace resnet
