// ProcessGroup's private state: the c10d objects the data-parallel trainer hands to c10d's
// Reducer. Internal to native/core.
#pragma once

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/torch.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "distributed.h"

namespace resnet {

struct ProcessGroup::Impl {
  ProcessGroupOptions options;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> backend;
  // Where collectives' tensors live: the CPU for Gloo, this rank's GPU for NCCL.
  torch::Device device{torch::kCPU};

  // The heartbeat: a thread with its own store connection adds 1 to "heartbeat/<rank>" twice a
  // second, so that a failed collective can tell a dead peer from a slow one.
  std::thread heartbeat;
  std::mutex heartbeat_mutex;
  std::condition_variable heartbeat_wake;
  bool heartbeat_stop = false;  // guarded by heartbeat_mutex

  // Set by fail(): the first failure's message; every later collective repeats it at once.
  std::string failure;

  // The backend, or Error(kDistributed) when destroyed or failed before.
  c10d::ProcessGroup& live(const std::string& during);
  void stop_heartbeat();
};

}  // namespace resnet
