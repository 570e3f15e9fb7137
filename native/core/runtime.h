// Process-wide LibTorch facts and settings: CUDA availability, intra-op threads, version.
#pragma once

#include <string>

namespace resnet::runtime {

// True when this addon was compiled against a LibTorch with CUDA (torch_cuda linked).
bool cuda_compiled();
bool cuda_available();
int cuda_device_count();

// Intra-op threads wanted for LibTorch's parallel kernels. LibTorch's OpenMP backend keeps the
// count per calling thread, so every executor thread calls apply_thread_settings() before a job.
void set_num_threads(int threads);
int num_threads();
void apply_thread_settings();

std::string libtorch_version();
// LibTorch's own description of its parallel backends (at::get_parallel_info()).
std::string parallel_info();

}  // namespace resnet::runtime
