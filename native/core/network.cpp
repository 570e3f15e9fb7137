#include "network.h"

#include <string>

namespace resnet {

namespace {

void validate_spec(const ResNetSpec& spec) {
  require_spec(!spec.widths.empty() && spec.layers.size() == spec.widths.size(), "one entry in layers per width");
  require_spec(spec.replace_stride_with_dilation.size() == spec.widths.size() - 1,
               "one replace_stride_with_dilation flag per stage after the first");
  for (int64_t n : spec.layers) require_spec(n >= 1, "at least one block per stage");
  for (int64_t w : spec.widths) require_spec(w >= 1, "positive widths");
  require_spec(spec.num_classes >= 1 && spec.in_channels >= 1 && spec.groups >= 1 && spec.width_per_group >= 1,
               "positive num_classes, in_channels, groups and width_per_group");
}

class Writer {
 public:
  std::vector<Layer>& layers;

  void conv(const std::string& name, Value in, Value out, int64_t in_channels, int64_t out_channels, int64_t kernel,
            int64_t stride, int64_t padding, int64_t dilation, int64_t groups) {
    Layer l = make(LayerKind::Conv, name, in, out, in_channels, out_channels);
    l.kernel = kernel;
    l.stride = stride;
    l.padding = padding;
    l.dilation = dilation;
    l.groups = groups;
    layers.push_back(l);
  }
  // torchvision's conv3x3: padding equal to the dilation.
  void conv3x3(const std::string& name, Value in, Value out, int64_t in_channels, int64_t out_channels,
               int64_t stride = 1, int64_t groups = 1, int64_t dilation = 1) {
    conv(name, in, out, in_channels, out_channels, 3, stride, dilation, dilation, groups);
  }
  void conv1x1(const std::string& name, Value in, Value out, int64_t in_channels, int64_t out_channels,
               int64_t stride = 1) {
    conv(name, in, out, in_channels, out_channels, 1, stride, 0, 1, 1);
  }
  void bn(const std::string& name, Value v, int64_t channels) {
    layers.push_back(make(LayerKind::BatchNorm, name, v, v, channels, channels));
  }
  void relu(const std::string& name, Value in, Value out, int64_t channels) {
    layers.push_back(make(LayerKind::ReLU, name, in, out, channels, channels));
  }
  Layer make(LayerKind kind, const std::string& name, Value in, Value out, int64_t in_channels,
             int64_t out_channels) const {
    Layer l;
    l.kind = kind;
    l.name = name;
    l.input = in;
    l.output = out;
    l.in_channels = in_channels;
    l.out_channels = out_channels;
    return l;
  }
};

}  // namespace

void require_spec(bool holds, const char* invariant) {
  if (!holds) throw Error(codes::kInvalidArgument, std::string("Invalid network spec: expected ") + invariant);
}

const StageRange* NetworkDescription::stage(const std::string& name) const {
  for (const auto& s : stages) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

NetworkDescription describe(const ResNetSpec& spec) {
  validate_spec(spec);
  NetworkDescription net;
  Writer w{net.layers};
  const int64_t expansion = spec.block == BlockKind::Basic ? 1 : 4;

  // Stem: torchvision's 7x7/2 conv and 3x3/2 max pool, or the paper's CIFAR 3x3 conv.
  const int64_t stem_channels = spec.widths[0];
  int64_t stride = 1;
  if (spec.stem == Stem::ImageNet) {
    w.conv("conv1", Value::X, Value::X, spec.in_channels, stem_channels, 7, 2, 3, 1, 1);
    stride = 2;
  } else {
    w.conv3x3("conv1", Value::X, Value::X, spec.in_channels, stem_channels);
  }
  w.bn("bn1", Value::X, stem_channels);
  w.relu("relu", Value::X, Value::X, stem_channels);
  if (spec.stem == Stem::ImageNet) {
    Layer pool = w.make(LayerKind::MaxPool, "maxpool", Value::X, Value::X, stem_channels, stem_channels);
    pool.kernel = 3;
    pool.stride = 2;
    pool.padding = 1;
    net.layers.push_back(pool);
    stride *= 2;
  }
  net.stages.push_back(StageRange{"stem", 0, net.layers.size(), stride, stem_channels});

  // Residual stages, as _make_layer: the first block of a stage carries its stride (or, with
  // replace_stride_with_dilation, keeps the previous dilation while the later blocks get the new one).
  int64_t inplanes = stem_channels;
  int64_t dilation = 1;
  for (size_t s = 0; s < spec.widths.size(); ++s) {
    const int64_t planes = spec.widths[s];
    const int64_t out_channels = planes * expansion;
    int64_t stage_stride = s == 0 ? 1 : 2;
    const int64_t previous_dilation = dilation;
    if (s > 0 && spec.replace_stride_with_dilation[s - 1]) {
      dilation *= stage_stride;
      stage_stride = 1;
    }
    const std::string stage_name = "layer" + std::to_string(s + 1);
    const size_t stage_first = net.layers.size();
    for (int64_t b = 0; b < spec.layers[s]; ++b) {
      BlockRange block;
      block.name = stage_name + "." + std::to_string(b);
      block.first = net.layers.size();
      block.in_channels = inplanes;
      block.out_channels = out_channels;
      block.stride = b == 0 ? stage_stride : 1;
      block.dilation = b == 0 ? previous_dilation : dilation;
      const std::string& p = block.name;
      const int64_t st = block.stride, d = block.dilation;
      if (spec.block == BlockKind::Basic) {
        // Two 3x3 convolutions (ResNet-18/34).
        w.conv3x3(p + ".conv1", Value::X, Value::Out, inplanes, planes, st, 1, d);
        w.bn(p + ".bn1", Value::Out, planes);
        w.relu(p + ".relu", Value::Out, Value::Out, planes);
        w.conv3x3(p + ".conv2", Value::Out, Value::Out, planes, planes, 1, 1, d);
        w.bn(p + ".bn2", Value::Out, planes);
      } else {
        // 1x1 reduce, 3x3 (grouped, carrying the stride: "ResNet V1.5"), 1x1 expand.
        const int64_t width =
            static_cast<int64_t>(static_cast<double>(planes) * (static_cast<double>(spec.width_per_group) / 64.0)) *
            spec.groups;
        w.conv1x1(p + ".conv1", Value::X, Value::Out, inplanes, width);
        w.bn(p + ".bn1", Value::Out, width);
        w.relu(p + ".relu", Value::Out, Value::Out, width);
        w.conv3x3(p + ".conv2", Value::Out, Value::Out, width, width, st, spec.groups, d);
        w.bn(p + ".bn2", Value::Out, width);
        w.relu(p + ".relu", Value::Out, Value::Out, width);
        w.conv1x1(p + ".conv3", Value::Out, Value::Out, width, out_channels);
        w.bn(p + ".bn3", Value::Out, out_channels);
      }
      // The shortcut (He et al. section 3.3): torchvision computes it after the branch.
      const bool changes_shape = st != 1 || inplanes != out_channels;
      Layer add = w.make(LayerKind::Add, p + ".add", Value::X, Value::Out, inplanes, out_channels);
      switch (spec.shortcut) {
        case Shortcut::Projection:
          if (changes_shape) {
            w.conv1x1(p + ".downsample.0", Value::X, Value::Identity, inplanes, out_channels, st);
            w.bn(p + ".downsample.1", Value::Identity, out_channels);
            add.input = Value::Identity;
            add.in_channels = out_channels;
          }
          net.layers.push_back(add);
          break;
        case Shortcut::ZeroPad:
          if (changes_shape) {
            add.add = AddKind::ZeroPad;
            add.stride = st;
            add.pad_front = (out_channels - inplanes) / 2;
          }
          net.layers.push_back(add);
          break;
        case Shortcut::None:
          break;
      }
      w.relu(p + ".relu", Value::Out, Value::X, out_channels);
      block.end = net.layers.size();
      net.blocks.push_back(block);
      inplanes = out_channels;
      stride *= st;
    }
    net.stages.push_back(StageRange{stage_name, stage_first, net.layers.size(), stride, out_channels});
  }

  // Head: global average pool to [N, C], then the fully connected layer.
  const size_t pool_first = net.layers.size();
  net.layers.push_back(w.make(LayerKind::AvgPool, "avgpool", Value::X, Value::X, inplanes, inplanes));
  net.stages.push_back(StageRange{"pool", pool_first, net.layers.size(), stride, inplanes});
  net.layers.push_back(w.make(LayerKind::Linear, "fc", Value::X, Value::X, inplanes, spec.num_classes));
  return net;
}

const char* layer_kind_name(LayerKind kind) {
  switch (kind) {
    case LayerKind::Conv: return "conv";
    case LayerKind::BatchNorm: return "bn";
    case LayerKind::ReLU: return "relu";
    case LayerKind::MaxPool: return "maxpool";
    case LayerKind::Add: return "add";
    case LayerKind::AvgPool: return "avgpool";
    case LayerKind::Linear: return "fc";
  }
  return "?";
}

const char* value_name(Value value) {
  switch (value) {
    case Value::X: return "x";
    case Value::Out: return "out";
    case Value::Identity: return "identity";
  }
  return "?";
}

}  // namespace resnet
