#include "engine.h"

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

// Emits TorchScript for the same network resnet.cpp builds, layer for layer.
class SourceWriter {
 public:
  explicit SourceWriter(const ResNetSpec& spec) : spec_(spec) {}

  std::string write() {
    out_ << "def forward(self, x: Tensor) -> Tensor:\n";
    if (spec_.stem == Stem::ImageNet) {
      conv("x", "x", "conv1", 2, 3, 1, 1);
    } else {
      conv("x", "x", "conv1", 1, 1, 1, 1);
    }
    bn("x", "x", "bn1");
    line("x = torch.relu(x)");
    if (spec_.stem == Stem::ImageNet) line("x = torch.max_pool2d(x, [3, 3], [2, 2], [1, 1], [1, 1], False)");
    int64_t inplanes = spec_.widths[0];
    int64_t dilation = 1;
    const int64_t expansion = spec_.block == BlockKind::Basic ? 1 : 4;
    for (size_t s = 0; s < spec_.widths.size(); ++s) {
      const int64_t planes = spec_.widths[s];
      int64_t stride = s == 0 ? 1 : 2;
      const int64_t previous_dilation = dilation;
      if (s > 0 && spec_.replace_stride_with_dilation[s - 1]) {
        dilation *= stride;
        stride = 1;
      }
      for (int64_t b = 0; b < spec_.layers[s]; ++b) {
        const std::string prefix = "layer" + std::to_string(s + 1) + "." + std::to_string(b);
        block(prefix, inplanes, planes, b == 0 ? stride : 1, b == 0 ? previous_dilation : dilation);
        inplanes = planes * expansion;
      }
    }
    line("x = torch.adaptive_avg_pool2d(x, [1, 1])");
    line("x = torch.flatten(x, 1)");
    line("return torch.linear(x, self.fc_weight, self.fc_bias)");
    return out_.str();
  }

 private:
  void line(const std::string& code) { out_ << "    " << code << "\n"; }

  void conv(const std::string& to, const std::string& from, const std::string& name, int64_t stride,
            int64_t padding, int64_t dilation, int64_t groups) {
    std::ostringstream s;
    s << to << " = torch.conv2d(" << from << ", self." << attr(name + ".weight") << ", None, [" << stride << ", "
      << stride << "], [" << padding << ", " << padding << "], [" << dilation << ", " << dilation << "], " << groups
      << ")";
    line(s.str());
  }

  void bn(const std::string& to, const std::string& from, const std::string& name) {
    const std::string n = attr(name);
    line(to + " = torch.batch_norm(" + from + ", self." + n + "_weight, self." + n + "_bias, self." + n +
         "_running_mean, self." + n + "_running_var, False, 0.1, 1e-05, False)");
  }

  void block(const std::string& p, int64_t inplanes, int64_t planes, int64_t stride, int64_t dilation) {
    const int64_t expansion = spec_.block == BlockKind::Basic ? 1 : 4;
    const int64_t out_channels = planes * expansion;
    if (spec_.block == BlockKind::Basic) {
      conv("out", "x", p + ".conv1", stride, dilation, dilation, 1);
      bn("out", "out", p + ".bn1");
      line("out = torch.relu(out)");
      conv("out", "out", p + ".conv2", 1, dilation, dilation, 1);
      bn("out", "out", p + ".bn2");
    } else {
      conv("out", "x", p + ".conv1", 1, 0, 1, 1);
      bn("out", "out", p + ".bn1");
      line("out = torch.relu(out)");
      conv("out", "out", p + ".conv2", stride, dilation, dilation, spec_.groups);
      bn("out", "out", p + ".bn2");
      line("out = torch.relu(out)");
      conv("out", "out", p + ".conv3", 1, 0, 1, 1);
      bn("out", "out", p + ".bn3");
    }
    const bool changes = stride != 1 || inplanes != out_channels;
    switch (spec_.shortcut) {
      case Shortcut::None:
        line("x = torch.relu(out)");
        return;
      case Shortcut::Projection:
        if (changes) {
          conv("identity", "x", p + ".downsample.0", stride, 0, 1, 1);
          bn("identity", "identity", p + ".downsample.1");
          line("x = torch.relu(out + identity)");
        } else {
          line("x = torch.relu(out + x)");
        }
        return;
      case Shortcut::ZeroPad:
        if (changes) {
          const int64_t extra = out_channels - inplanes;
          std::ostringstream s;
          s << "x = torch.relu(out + torch.constant_pad_nd(x[:, :, ::" << stride << ", ::" << stride
            << "], [0, 0, 0, 0, " << extra / 2 << ", " << extra - extra / 2 << "], 0.0))";
          line(s.str());
        } else {
          line("x = torch.relu(out + x)");
        }
        return;
    }
  }

  const ResNetSpec& spec_;
  std::ostringstream out_;
};

}  // namespace

struct InferenceEngine::Impl {
  torch::jit::Module module;
};

std::string InferenceEngine::source(const ResNetSpec& spec) { return SourceWriter(spec).write(); }

InferenceEngine::InferenceEngine(const ResNetSpec& spec,
                                 const std::vector<std::pair<std::string, at::Tensor>>& state)
    : impl_(std::make_unique<Impl>()) {
  torch::jit::Module module("__torch__.libtorch_resnet.InferenceResNet");
  for (const auto& [name, tensor] : state) {
    if (name.size() > 20 && name.compare(name.size() - 20, 20, ".num_batches_tracked") == 0) continue;
    module.register_attribute(attr(name), c10::TensorType::get(), tensor.detach().clone(), /*is_param=*/false);
  }
  module.define(source(spec));
  // freeze() inlines the weights as constants and folds BatchNorm into the convolutions;
  // optimize_for_inference() then prepacks the convolutions for oneDNN (on LibTorch 1.13 the
  // ReLU / add that follow stay separate ops, as the profile in BENCHMARKS.md shows). (It
  // only freezes by itself modules that carry a `training` attribute, which this one does not.)
  torch::jit::Module frozen = torch::jit::freeze(module, c10::nullopt, /*optimize_numerics=*/true);
  impl_->module = torch::jit::optimize_for_inference(frozen);
  if (std::getenv("LIBTORCH_RESNET_PRINT_ENGINE") != nullptr) {
    std::cerr << *impl_->module.get_method("forward").graph() << std::endl;
  }
}

InferenceEngine::~InferenceEngine() = default;

at::Tensor InferenceEngine::forward(const at::Tensor& x) {
  return impl_->module.forward({x}).toTensor();
}

}  // namespace resnet
