#include "runtime.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <sched.h>
#include <cstdlib>
#include <mutex>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace resnet::runtime {

namespace {
std::atomic<int> g_wanted_threads{0};  // 0 = not set yet: use the physical cores
std::atomic<int> g_active_jobs{0};
thread_local int t_applied_threads = -1;

void apply(int threads) {
  if (t_applied_threads != threads) {
    at::set_num_threads(threads);
    t_applied_threads = threads;
  }
}

int read_int(const std::string& path) {
  std::ifstream in(path);
  int value = -1;
  in >> value;
  return in ? value : -1;
}
}  // namespace

int physical_cores() {
  static const int cores = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
      const unsigned n = std::thread::hardware_concurrency();
      return n > 0 ? static_cast<int>(n) : 1;
    }
    std::set<std::pair<int, int>> seen;  // (package, core) of each CPU we may run on
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) continue;
      const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
      const int package = read_int(dir + "physical_package_id");
      const int core = read_int(dir + "core_id");
      if (package < 0 || core < 0) return std::max(1, CPU_COUNT(&set));  // no topology: count CPUs
      seen.emplace(package, core);
    }
    return std::max<int>(1, static_cast<int>(seen.size()));
  }();
  return cores;
}

ComputeScope::ComputeScope() {
  const int active = ++g_active_jobs;
  apply(std::max(1, num_threads() / active));
}

ComputeScope::~ComputeScope() { --g_active_jobs; }

bool cuda_compiled() {
#ifdef RESNET_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() { return cuda_compiled() && torch::cuda::is_available(); }

bool cpu_bfloat16_available() {
  static const bool available = [] {
    try {
      c10::InferenceMode guard;
      const auto options = at::TensorOptions().dtype(at::kBFloat16);
      at::conv2d(at::ones({1, 1, 4, 4}, options), at::ones({1, 1, 3, 3}, options));
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return available;
}

int cuda_device_count() { return cuda_compiled() ? static_cast<int>(torch::cuda::device_count()) : 0; }

void set_num_threads(int threads) { g_wanted_threads.store(threads); }

int num_threads() {
  const int wanted = g_wanted_threads.load();
  return wanted > 0 ? wanted : physical_cores();
}

namespace {
std::string g_allocator_tuning = "not applied";
std::once_flag g_allocator_once;
}  // namespace

void tune_allocator() {
  std::call_once(g_allocator_once, [] {
#if defined(__GLIBC__)
    const char* choice = std::getenv("LIBTORCH_RESNET_MALLOC");
    if (choice != nullptr && std::string(choice) == "default") {
      g_allocator_tuning = "glibc defaults (LIBTORCH_RESNET_MALLOC=default)";
      return;
    }
    for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX"}) {
      if (std::getenv(name) != nullptr) {
        g_allocator_tuning = std::string("the environment's (") + name + " is set)";
        return;
      }
    }
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if (tunables != nullptr && std::string(tunables).find("glibc.malloc.") != std::string::npos) {
      g_allocator_tuning = "the environment's (GLIBC_TUNABLES sets glibc.malloc)";
      return;
    }
    const bool ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 0x7fffffff) == 1 &&
                    mallopt(M_TOP_PAD, 256 << 20) == 1;
    g_allocator_tuning = ok ? "glibc: mmap threshold 32 MiB, trim threshold 2 GiB, top pad 256 MiB" : "glibc: mallopt failed";
#else
    g_allocator_tuning = "the C library's defaults (not glibc)";
#endif
  });
}

std::string allocator_tuning() { return g_allocator_tuning; }

std::string libtorch_version() { return TORCH_VERSION; }

std::string parallel_info() { return at::get_parallel_info(); }

}  // namespace resnet::runtime
