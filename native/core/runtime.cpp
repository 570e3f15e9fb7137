#include "runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <atomic>
#include <thread>

namespace resnet::runtime {

namespace {
std::atomic<int> g_wanted_threads{0};  // 0 = not set yet: use the machine's cores
thread_local int t_applied_threads = -1;
}  // namespace

bool cuda_compiled() {
#ifdef RESNET_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() { return cuda_compiled() && torch::cuda::is_available(); }

int cuda_device_count() { return cuda_compiled() ? static_cast<int>(torch::cuda::device_count()) : 0; }

void set_num_threads(int threads) {
  g_wanted_threads.store(threads);
  apply_thread_settings();
}

int num_threads() {
  const int wanted = g_wanted_threads.load();
  if (wanted > 0) return wanted;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores > 0 ? static_cast<int>(cores) : 1;
}

void apply_thread_settings() {
  const int wanted = num_threads();
  if (t_applied_threads != wanted) {
    at::set_num_threads(wanted);
    t_applied_threads = wanted;
  }
}

std::string libtorch_version() { return TORCH_VERSION; }

std::string parallel_info() { return at::get_parallel_info(); }

}  // namespace resnet::runtime
