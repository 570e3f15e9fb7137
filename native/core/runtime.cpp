#include "runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <sched.h>

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
  threads_ = std::max(1, num_threads() / active);
  apply(threads_);
}

ComputeScope::~ComputeScope() { --g_active_jobs; }

int active_jobs() { return g_active_jobs.load(); }

bool cuda_compiled() {
#ifdef RESNET_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() { return cuda_compiled() && torch::cuda::is_available(); }

int cuda_device_count() { return cuda_compiled() ? static_cast<int>(torch::cuda::device_count()) : 0; }

void set_num_threads(int threads) { g_wanted_threads.store(threads); }

int num_threads() {
  const int wanted = g_wanted_threads.load();
  return wanted > 0 ? wanted : physical_cores();
}

std::string libtorch_version() { return TORCH_VERSION; }

std::string parallel_info() { return at::get_parallel_info(); }

}  // namespace resnet::runtime
