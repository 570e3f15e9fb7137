// The network as one ordered list of layers, derived once from a ResNetSpec the way torchvision's
// ResNet.__init__ and _make_layer lay it out. Everything that needs the topology is built from
// it: the LibTorch modules (resnet.cpp), the TorchScript engine (engine.cpp), the oneDNN engine
// (onednn_*.cpp) and the feature layout lib/ reads through the addon (describeNetwork,
// native/binding/network_wrap.cc). A new block variant is one edit here.
// Plain C++ (types.h only), so the binding can include it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "types.h"

namespace resnet {

enum class LayerKind { Conv, BatchNorm, ReLU, MaxPool, Add, AvgPool, Linear };

// The values a layer reads and writes. `X` is the running value (a block's input, then its
// output), `Out` a block's residual branch, `Identity` its projected shortcut.
enum class Value { X, Out, Identity };

// What an Add layer adds to `Out`: its input as is, or (ZeroPad, "option A") its input subsampled
// by `stride` with zero channels, pad_front before and the rest after, up to out_channels.
enum class AddKind { Plain, ZeroPad };

struct Layer {
  LayerKind kind = LayerKind::Conv;
  // Conv, BatchNorm and Linear: the state-dict prefix ("layer2.0.downsample.0"). The others:
  // torchvision's module path ("relu", "layer1.0.relu", "maxpool", "avgpool"; "layer1.0.add").
  std::string name;
  Value input = Value::X;
  Value output = Value::X;  // BatchNorm and in-place ReLU: the same as input
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  // Conv and MaxPool geometry (square kernels, symmetric padding); Add: the ZeroPad subsampling.
  int64_t kernel = 1, stride = 1, padding = 0, dilation = 1, groups = 1;
  AddKind add = AddKind::Plain;
  int64_t pad_front = 0;  // Add with ZeroPad: zero channels before the input's
};

// layers[first, end) of one residual block ("layer2.0").
struct BlockRange {
  std::string name;
  size_t first = 0, end = 0;
  int64_t in_channels = 0, out_channels = 0;
  int64_t stride = 1, dilation = 1;
};

// layers[first, end) of one feature stage: "stem", "layer1" ... "layerN", "pool" (the global
// average pool; the fc layer after it belongs to no stage). `stride`: input pixels per output
// position (the pool keeps the last stage's); `channels`: its output channels.
struct StageRange {
  std::string name;
  size_t first = 0, end = 0;
  int64_t stride = 1;
  int64_t channels = 0;
};

struct NetworkDescription {
  std::vector<Layer> layers;
  std::vector<BlockRange> blocks;
  std::vector<StageRange> stages;

  // The stage named `name`, or nullptr.
  const StageRange* stage(const std::string& name) const;
};

// Throws Error(kInvalidArgument) for a spec that describes no network (mismatched list lengths,
// non-positive sizes); combinations that torchvision's modules refuse (a dilated or grouped
// BasicBlock) are described, and refused by the modules (resnet.cpp).
NetworkDescription describe(const ResNetSpec& spec);

// Users' specs are validated once, in TypeScript (lib/options.ts), with the messages they see
// (torchvision's, where torchvision has one). Core only asserts the invariants it relies on, for a
// caller that skipped that layer: Error(kInvalidArgument) naming the invariant, no user wording.
void require_spec(bool holds, const char* invariant);

const char* layer_kind_name(LayerKind kind);  // "conv", "bn", "relu", "maxpool", "add", "avgpool", "fc"
const char* value_name(Value value);          // "x", "out", "identity"

}  // namespace resnet
