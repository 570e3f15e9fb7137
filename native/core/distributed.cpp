#include "distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#ifdef RESNET_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef RESNET_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <sstream>

#include "distributed_impl.h"

namespace resnet {

namespace {

const std::string kPrefix = "libtorch-resnet/";
constexpr auto kHeartbeatInterval = std::chrono::milliseconds(500);
// How long a failed collective watches the heartbeats: four beats missed is a lost rank.
constexpr auto kHeartbeatWatch = std::chrono::milliseconds(2000);

std::string brief(const std::exception& e) {
  // c10::Error's what() carries a C++ backtrace that means nothing to a user of this package.
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

std::string seconds(int64_t ms) {
  std::ostringstream out;
  out << static_cast<double>(ms) / 1000.0 << " s";
  return out.str();
}

std::string join_ranks(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size(); ++i) out += (i ? ", " : "") + std::to_string(ranks[i]);
  return out;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

c10::intrusive_ptr<c10d::TCPStore> connect_store(const ProcessGroupOptions& o, bool server, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(o.master_port);
  store_options.isServer = server;
  store_options.numWorkers = c10::nullopt;
  store_options.waitWorkers = false;  // joining is checked below, with errors that name ranks
  store_options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(o.master_addr, store_options);
}

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string string_of(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

}  // namespace

bool distributed_backend_compiled(const std::string& backend) {
#ifdef RESNET_WITH_GLOO
  if (backend == "gloo") return true;
#endif
#ifdef RESNET_WITH_NCCL
  if (backend == "nccl") return true;
#endif
  return false;
}

c10d::ProcessGroup& ProcessGroup::Impl::live(const std::string& during) {
  if (!failure.empty()) throw Error(codes::kDistributed, "The process group failed earlier, so " + during + " cannot run: " + failure);
  if (!backend) throw Error(codes::kDistributed, "The process group was destroyed; " + during + " needs a live one");
  return *backend;
}

void ProcessGroup::Impl::stop_heartbeat() {
  {
    std::lock_guard<std::mutex> lock(heartbeat_mutex);
    heartbeat_stop = true;
  }
  heartbeat_wake.notify_all();
  if (heartbeat.joinable()) heartbeat.join();
}

ProcessGroup::ProcessGroup(const ProcessGroupOptions& o) : impl_(std::make_unique<Impl>()) {
  if (o.world_size < 1) throw Error(codes::kInvalidArgument, "Expected a world size of at least 1 but received " + std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size) {
    throw Error(codes::kInvalidArgument, "Expected a rank in 0.." + std::to_string(o.world_size - 1) + " (world size " +
                                             std::to_string(o.world_size) + ") but received " + std::to_string(o.rank));
  }
  if (o.master_port < 1 || o.master_port > 65535) throw Error(codes::kInvalidArgument, "Expected a master port in 1..65535 but received " + std::to_string(o.master_port));
  if (!distributed_backend_compiled(o.backend)) {
    throw Error(codes::kDevice, "Expected a backend this build has: the '" + o.backend + "' backend is not in this LibTorch build" +
                                    (o.backend == "nccl" ? " (NCCL needs a CUDA LibTorch)" : " (its c10d Gloo headers were not found at build time)"));
  }
  impl_->options = o;
  const auto timeout = std::chrono::milliseconds(o.timeout_ms);
  const std::string where = o.master_addr + ":" + std::to_string(o.master_port);
  const std::string me = "rank " + std::to_string(o.rank);

  c10::intrusive_ptr<c10d::TCPStore> store;
  try {
    store = connect_store(o, o.rank == 0, timeout);
  } catch (const std::exception& e) {
    if (o.rank == 0) {
      throw Error(codes::kDistributed, "rank 0 could not start the rendezvous store on port " + std::to_string(o.master_port) +
                                           " (is the port in use by another job?): " + brief(e));
    }
    throw Error(codes::kDistributed, me + " could not reach the master at " + where + " within " + seconds(o.timeout_ms) +
                                         " (is rank 0 running, and are MASTER_ADDR and MASTER_PORT right?): " + brief(e));
  }
  impl_->store = store;

  // Joining: each rank counts itself in; a count of 2 is a second process with the same rank.
  try {
    if (store->add(kPrefix + "rank/" + std::to_string(o.rank), 1) > 1) {
      throw Error(codes::kDistributed, "Two processes joined as rank " + std::to_string(o.rank) +
                                           ": each rank of the job needs its own RANK in 0.." + std::to_string(o.world_size - 1));
    }
    if (o.rank == 0) {
      store->set(kPrefix + "world_size", bytes_of(std::to_string(o.world_size)));
    } else {
      const std::string theirs = string_of(store->get(kPrefix + "world_size"));
      if (theirs != std::to_string(o.world_size)) {
        throw Error(codes::kDistributed, me + " was started with world size " + std::to_string(o.world_size) + " but rank 0 with " + theirs);
      }
    }
    std::vector<std::string> keys;
    for (int r = 0; r < o.world_size; ++r) keys.push_back(kPrefix + "rank/" + std::to_string(r));
    try {
      store->wait(keys, timeout);
    } catch (const std::exception&) {
      std::vector<int> missing;
      for (int r = 0; r < o.world_size; ++r) {
        if (!store->check({keys[r]})) missing.push_back(r);
      }
      throw Error(codes::kDistributed, "rank(s) " + join_ranks(missing) + " did not join within " + seconds(o.timeout_ms) +
                                           " (world size " + std::to_string(o.world_size) + ", master " + where + ")");
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(codes::kDistributed, me + " lost the rendezvous store at " + where + " while joining: " + brief(e));
  }

  auto prefixed = c10::make_intrusive<c10d::PrefixStore>(kPrefix + o.backend + "/", store);
  try {
    if (o.backend == "gloo") {
#ifdef RESNET_WITH_GLOO
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
      // As torch.distributed: GLOO_SOCKET_IFNAME picks the network interfaces; otherwise the
      // address this machine's hostname resolves to. A job whose master is a loopback address
      // runs on one machine, where loopback always works (a container's hostname may not).
      const char* interfaces = std::getenv("GLOO_SOCKET_IFNAME");
      if (interfaces != nullptr && *interfaces != '\0') {
        std::stringstream list(interfaces);
        for (std::string name; std::getline(list, name, ',');) {
          if (!name.empty()) gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
        }
      } else if (is_loopback(o.master_addr)) {
        gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      impl_->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, o.rank, o.world_size, gloo_options);
#endif
    } else {
#ifdef RESNET_WITH_NCCL
      // One GPU per local rank, as torchrun lays them out (LOCAL_RANK, else the global rank).
      const char* local = std::getenv("LOCAL_RANK");
      const int device_index = local != nullptr ? std::atoi(local) : o.rank;
      impl_->device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device_index));
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout;
      impl_->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, o.rank, o.world_size, nccl_options);
#endif
    }
  } catch (const std::exception& e) {
    throw Error(codes::kDistributed, me + " could not connect the " + o.backend + " backend to every rank within " + seconds(o.timeout_ms) + ": " + brief(e));
  }

  // The heartbeat's own connection: TCPStore serialises its calls, and a beat must not wait
  // behind a long store call of the main thread.
  auto beat_store = connect_store(o, false, std::chrono::milliseconds(5000));
  const std::string beat_key = kPrefix + "heartbeat/" + std::to_string(o.rank);
  beat_store->add(beat_key, 1);
  Impl* impl = impl_.get();
  impl_->heartbeat = std::thread([impl, beat_store, beat_key]() {
    std::unique_lock<std::mutex> lock(impl->heartbeat_mutex);
    while (!impl->heartbeat_wake.wait_for(lock, kHeartbeatInterval, [impl] { return impl->heartbeat_stop; })) {
      try {
        beat_store->add(beat_key, 1);
      } catch (const std::exception&) {
        return;  // the store is gone (rank 0 ended): nothing left to tell
      }
    }
  });
}

ProcessGroup::~ProcessGroup() { destroy(); }

int ProcessGroup::rank() const { return impl_->options.rank; }
int ProcessGroup::world_size() const { return impl_->options.world_size; }
const ProcessGroupOptions& ProcessGroup::options() const { return impl_->options; }
ProcessGroup::Impl& ProcessGroup::impl() { return *impl_; }

std::vector<double> ProcessGroup::all_reduce_sum(const std::vector<double>& values) {
  c10d::ProcessGroup& backend = impl_->live("all_reduce");
  std::vector<at::Tensor> tensors{at::tensor(values, at::TensorOptions().dtype(at::kDouble)).to(impl_->device)};
  try {
    backend.allreduce(tensors)->wait();
  } catch (const std::exception& e) {
    fail(e, "an all-reduce");
  }
  at::Tensor out = tensors[0].cpu();
  return {out.data_ptr<double>(), out.data_ptr<double>() + out.numel()};
}

void ProcessGroup::barrier() {
  c10d::ProcessGroup& backend = impl_->live("barrier");
  try {
    backend.barrier()->wait();
  } catch (const std::exception& e) {
    fail(e, "a barrier");
  }
}

void ProcessGroup::destroy() {
  impl_->stop_heartbeat();
  impl_->backend.reset();
  impl_->store.reset();
}

void ProcessGroup::fail(const std::exception& error, const std::string& during) {
  if (!impl_->failure.empty()) throw Error(codes::kDistributed, impl_->failure);
  const ProcessGroupOptions& o = impl_->options;
  // Which peers stopped beating: read every counter, wait a few beats, read again.
  std::vector<int> lost;
  try {
    auto probe = connect_store(o, false, std::chrono::milliseconds(3000));
    std::vector<int64_t> before(o.world_size);
    for (int r = 0; r < o.world_size; ++r) {
      if (r != o.rank) before[r] = probe->add(kPrefix + "heartbeat/" + std::to_string(r), 0);
    }
    std::this_thread::sleep_for(kHeartbeatWatch);
    for (int r = 0; r < o.world_size; ++r) {
      if (r != o.rank && probe->add(kPrefix + "heartbeat/" + std::to_string(r), 0) == before[r]) lost.push_back(r);
    }
  } catch (const std::exception&) {
    // The store lives in rank 0's process: unreachable store, lost rank 0.
    if (o.rank != 0) lost.push_back(0);
  }
  std::string message = lost.empty()
                            ? during + " failed on rank " + std::to_string(o.rank) + " (every rank still alive; a rank stalled or the timeout of " +
                                  seconds(o.timeout_ms) + " was reached): " + brief(error)
                            : "lost rank " + join_ranks(lost) + " during " + during + " (its heartbeat stopped; seen from rank " +
                                  std::to_string(o.rank) + "): " + brief(error);
  impl_->failure = message;
  throw Error(codes::kDistributed, message);
}

}  // namespace resnet
