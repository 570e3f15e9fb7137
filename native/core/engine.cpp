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
    for_each_block(spec_, [this](const BlockLayout& b) { block(b); });
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

  void block(const BlockLayout& b) {
    const std::string& p = b.prefix;
    const int64_t stride = b.stride;
    const int64_t dilation = b.dilation;
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
    const bool changes = b.changes_shape;
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
          const int64_t extra = b.out_channels - b.inplanes;
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
  const char* kind() const override { return "torchscript"; }

 private:
  torch::jit::Module module_;
};

}  // namespace

InferenceEngine::~InferenceEngine() = default;

std::string torchscript_source(const ResNetSpec& spec) { return SourceWriter(spec).write(); }

std::unique_ptr<InferenceEngine> make_torchscript_engine(const ResNetSpec& spec, const NamedState& state) {
  return std::make_unique<TorchScriptEngine>(spec, state);
}

void for_each_block(const ResNetSpec& spec, const std::function<void(const BlockLayout&)>& visit) {
  const int64_t expansion = spec.block == BlockKind::Basic ? 1 : 4;
  int64_t inplanes = spec.widths[0];
  int64_t dilation = 1;
  for (size_t s = 0; s < spec.widths.size(); ++s) {
    const int64_t planes = spec.widths[s];
    int64_t stride = s == 0 ? 1 : 2;
    const int64_t previous_dilation = dilation;
    if (s > 0 && spec.replace_stride_with_dilation[s - 1]) {
      dilation *= stride;
      stride = 1;
    }
    for (int64_t b = 0; b < spec.layers[s]; ++b) {
      BlockLayout layout;
      layout.prefix = "layer" + std::to_string(s + 1) + "." + std::to_string(b);
      layout.inplanes = inplanes;
      layout.planes = planes;
      layout.out_channels = planes * expansion;
      layout.stride = b == 0 ? stride : 1;
      layout.dilation = b == 0 ? previous_dilation : dilation;
      layout.changes_shape = layout.stride != 1 || inplanes != layout.out_channels;
      visit(layout);
      inplanes = layout.out_channels;
    }
  }
}

}  // namespace resnet
