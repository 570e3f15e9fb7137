// Process-wide LibTorch facts and settings: CUDA availability, intra-op threads, version.
#pragma once

#include <string>

namespace resnet::runtime {

// True when this addon was compiled against a LibTorch with CUDA (torch_cuda linked).
bool cuda_compiled();
// True when the oneDNN inference engine was compiled in (onednn_engine.cpp).
bool onednn_engine_compiled();
// True when that engine can run bfloat16 natively on this CPU (AVX512-BF16 or better).
bool onednn_bfloat16_native();
bool cuda_available();
// True when LibTorch can run a bfloat16 convolution on this CPU (probed once with a tiny one).
// LibTorch 1.13 sends bfloat16 convolutions to oneDNN whenever the CPU reports AVX-512, and oneDNN
// refuses them when its ISA is capped below that (ONEDNN_MAX_CPU_ISA=AVX2): precision 'bfloat16'
// on the CPU is then refused up front with a DeviceError instead of failing in every forward.
bool cpu_bfloat16_available();
int cuda_device_count();

// Intra-op threads wanted for LibTorch's parallel kernels, process-wide. Default: the physical
// cores this process may run on (hyper-threads share a core's vector units, so they add little to
// convolutions and only add contention).
void set_num_threads(int threads);
int num_threads();
int physical_cores();

// Held by each executor thread while it runs a job. LibTorch's OpenMP backend keeps its thread
// count per calling thread, so the scope sets it for this thread, and divides the wanted count
// among the jobs running at that moment: two models busy at once each get half the threads
// instead of each starting a full team and oversubscribing the cores.
class ComputeScope {
 public:
  ComputeScope();
  ~ComputeScope();
  ComputeScope(const ComputeScope&) = delete;
  ComputeScope& operator=(const ComputeScope&) = delete;
};

// Tunes glibc's malloc for LibTorch's allocation pattern, once per process: blocks up to 32 MiB
// come from the heap instead of fresh mmap()s, freed memory is kept (trim threshold 2 GiB, top pad
// 256 MiB), so a training step or a plain-module forward reuses the pages of the previous one
// instead of faulting in new zeroed ones (measured: resnet18 training steps +15-23%, BENCHMARKS.md).
// Skipped when the user set any MALLOC_*_ tunable, glibc.malloc.* in GLIBC_TUNABLES or
// LIBTORCH_RESNET_MALLOC=default, and on
// other C libraries. allocator_tuning() says what it did.
void tune_allocator();
std::string allocator_tuning();

std::string libtorch_version();
// LibTorch's own description of its parallel backends (at::get_parallel_info()).
std::string parallel_info();

}  // namespace resnet::runtime
