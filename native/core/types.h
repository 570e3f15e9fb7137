// Plain C++ types shared by native/core and native/binding.
// Deliberately free of LibTorch and N-API headers: the binding includes only plain core headers
// (this, model.h, runtime.h, distributed.h, network.h, jpeg_decode.h), so its translation units
// compile in seconds instead of half a minute.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace resnet {

class ProcessGroup;  // distributed.h

// Element types a state dict or an input can hold. Names match PyTorch's ("float32", "int64", ...).
enum class DType { Float32, Float64, Float16, BFloat16, Int64, Int32, Int16, Int8, UInt8, Bool };

const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);
// Returns false when `name` is not a known dtype name.
bool dtype_from_name(const std::string& name, DType* out);

// A contiguous CPU buffer with a dtype and a shape. `owner` keeps the memory alive (for tensors
// produced by LibTorch it holds the tensor itself), so a result can be handed to JavaScript
// without a copy: the ArrayBuffer's finalizer drops the owner.
struct HostTensor {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  void* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<void> owner;

  int64_t numel() const;
};

// Allocates an uninitialised contiguous host tensor (LibTorch's CPU allocator, 64-byte aligned).
HostTensor allocate_host(DType dtype, const std::vector<int64_t>& shape);

// `bytes` of page-locked host memory from LibTorch's pinned-memory allocator (which caches freed
// blocks), for inputs that go to a CUDA device: the copy out of JavaScript then lands in memory
// the GPU reads directly, instead of being copied a second time by pin_memory(). Needs a CUDA
// LibTorch and a GPU; throws otherwise.
std::shared_ptr<void> allocate_pinned(size_t bytes);

// memcpy split over LibTorch's intra-op threads (of the calling thread) for buffers of 8 MiB and
// more. For inputs going to a GPU, copied on the JavaScript thread: the copy's time is time the
// event loop stands still, and a GPU host has cores to spare for it (PyTorch's own pin_memory()
// copy is parallel too).
void copy_bytes_parallel(void* dst, const void* src, size_t bytes);

// The index of the first NaN or infinity among n floats, or -1 when all are finite. Parallel over
// the intra-op threads; reads the bits (exponent all ones), so it holds under -ffast-math too.
int64_t first_non_finite(const float* values, int64_t n);

using NamedTensors = std::vector<std::pair<std::string, HostTensor>>;

enum class BlockKind { Basic, Bottleneck };

// The network's first layers: torchvision's 7x7/2 conv + 3x3/2 max pool (ImageNet), or the
// paper's CIFAR stem, a single 3x3 conv (section 4.2).
enum class Stem { ImageNet, Cifar };

// How a block adds its input back when the shape changes (He et al. section 3.3):
//   Projection  1x1 conv + BatchNorm ("option B", torchvision's `downsample`)
//   ZeroPad     identity, subsampled by 2, with zero channels appended ("option A")
//   None        no shortcut at all: the "plain" networks of the degradation experiment
enum class Shortcut { Projection, ZeroPad, None };

// Everything that defines a ResNet. Every named architecture (resnet18 ... wide_resnet101_2, the
// CIFAR resnet20 ... resnet1202) is one value of this struct; the table lives in
// lib/architectures.ts.
struct ResNetSpec {
  BlockKind block = BlockKind::Basic;
  Stem stem = Stem::ImageNet;
  Shortcut shortcut = Shortcut::Projection;
  std::vector<int64_t> widths{64, 128, 256, 512};  // planes of each stage
  std::vector<int64_t> layers;  // blocks per stage
  int64_t num_classes = 1000;
  bool zero_init_residual = false;
  int64_t groups = 1;
  int64_t width_per_group = 64;
  std::vector<bool> replace_stride_with_dilation{false, false, false};
  int64_t in_channels = 3;
};

// Which inference engine eval-mode forward() uses (engine.h): Auto picks oneDNN on the CPU when
// the addon was built with it, TorchScript otherwise; None runs the plain modules.
enum class EngineChoice { None, Auto, OneDnn, TorchScript };
struct OneDnnOptions {
  // 3x3 stride-1 convolutions by Winograd's algorithm where oneDNN has a kernel for them
  // (AVX-512 CPUs): fewer multiplications, results within ~1e-6 relative of the direct algorithm.
  bool winograd = true;
  // Set by Model from precision 'bfloat16' (not user-facing): bfloat16 weights and activations.
  bool bfloat16 = false;
  // Largest activation arena a forward may plan, in bytes; a bigger batch is refused (an
  // InvalidArgument error that says to split it) rather than allocated. 0: half the physical memory.
  uint64_t max_activation_bytes = 0;
};

// Arithmetic of forward passes and training steps: float32, or autocast to a 16-bit type
// (float16 trains with dynamic loss scaling, as torch.cuda.amp.GradScaler).
enum class Precision { Float32, BFloat16, Float16 };

// Optimizers exactly as torch.optim.SGD and torch.optim.AdamW (PyTorch 1.13) compute them.
struct OptimizerOptions {
  enum class Kind { SGD, AdamW };
  Kind kind = Kind::SGD;
  double momentum = 0;  // SGD
  double dampening = 0;
  bool nesterov = false;
  double beta1 = 0.9;  // AdamW
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  // BatchNorm weights and biases and every bias get no weight decay (torchvision's
  // norm_weight_decay=0 / bias_weight_decay=0).
  bool exclude_norm_and_bias_from_weight_decay = false;
};

struct TrainOptions {
  OptimizerOptions optimizer;
  double label_smoothing = 0;
  std::vector<float> class_weights;  // empty: all 1
  double clip_grad_norm = 0;         // 0: no clipping
  // Parameters whose names start with one of these ("layer1" covers "layer1.0.conv1.weight")
  // get no gradient and are never updated.
  std::vector<std::string> frozen_prefixes;
  // BatchNorm layers stay in eval mode (running statistics, no updates) during training.
  bool freeze_batchnorm = false;
  // Data-parallel training (DistributedDataParallel's defaults) over this group when set.
  std::shared_ptr<ProcessGroup> process_group;
  // DDP's broadcast_buffers: rank 0's buffers (BatchNorm statistics) overwrite the others'
  // before each synchronised forward.
  bool broadcast_buffers = true;
  int64_t bucket_cap_bytes = 25 * 1024 * 1024;  // DDP's bucket_cap_mb = 25
};

struct StepResult {
  double loss = 0;       // mean cross-entropy of the batch
  int64_t correct = 0;   // top-1 hits
  int64_t count = 0;     // batch size
  double grad_norm = 0;  // total gradient norm before clipping (0 when not clipping)
};

struct EvalResult {
  double loss_sum = 0;  // summed (not mean) cross-entropy, so batches can be added up
  int64_t top1 = 0;
  int64_t top5 = 0;
  int64_t count = 0;
};

struct LoadResult {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
};

// An error with a stable code; the binding turns it into a rejected promise whose `code` the
// TypeScript layer maps onto its ResNetError classes.
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Stable error codes: the one list on the C++ side. lib/errors.ts maps each to its error class, and
// test/error-codes.test.ts checks that the two lists agree and that no other code is written.
namespace codes {
inline constexpr const char* kInvalidArgument = "ERR_RESNET_INVALID_ARGUMENT";
inline constexpr const char* kShape = "ERR_RESNET_SHAPE";
inline constexpr const char* kWeights = "ERR_RESNET_WEIGHTS";
inline constexpr const char* kDevice = "ERR_RESNET_DEVICE";
inline constexpr const char* kNative = "ERR_RESNET_NATIVE";
// A call queued on a model that was disposed before it could run (native/binding/executor.cc).
inline constexpr const char* kDisposed = "ERR_RESNET_DISPOSED";
// Rendezvous or a collective failed: a rank was lost, timed out, or the job is misconfigured.
inline constexpr const char* kDistributed = "ERR_RESNET_DISTRIBUTED";
}  // namespace codes

}  // namespace resnet
