// A c10d process group for data-parallel training: rendezvous through c10d's TCPStore (rank 0
// hosts it, as torchrun's env:// does), collectives through ProcessGroupGloo (CPU) or
// ProcessGroupNCCL (CUDA builds). What this file adds to c10d is failure handling a user can act
// on: rendezvous errors that say which rank is missing or duplicated, a timeout well below Gloo's
// 30 minutes, and, when a collective fails, the rank that was lost (each rank keeps a heartbeat
// counter in the store; the one that stopped counting is named).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "types.h"

namespace resnet {

struct ProcessGroupOptions {
  std::string backend = "gloo";  // "gloo" or "nccl"
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  // Rendezvous, every collective and the wait for a lost peer are bounded by this.
  int64_t timeout_ms = 60000;
};

// Whether this build can create process groups of `backend` ("gloo", "nccl").
bool distributed_backend_compiled(const std::string& backend);

class ProcessGroup {
 public:
  // Blocks until every rank has joined (or throws Error(kDistributed) saying which did not).
  explicit ProcessGroup(const ProcessGroupOptions& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int world_size() const;
  const ProcessGroupOptions& options() const;

  // Element-wise sum over the ranks (every rank gets the result), in float64.
  std::vector<double> all_reduce_sum(const std::vector<double>& values);
  void barrier();
  // Releases the backend and the store; later collectives throw. Idempotent.
  void destroy();

  // Turns an exception thrown by a collective into Error(kDistributed) naming the lost rank(s)
  // when the heartbeats show one ("lost rank N"), with `during` saying what was running.
  [[noreturn]] void fail(const std::exception& error, const std::string& during);

  struct Impl;
  Impl& impl();

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet
