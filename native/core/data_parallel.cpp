#include "data_parallel.h"

#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "distributed_impl.h"

namespace resnet {

namespace {
// DDP's broadcast_bucket_size (parameters at the start, buffers before each forward).
constexpr size_t kBroadcastBucketBytes = 250u * 1024u * 1024u;
}  // namespace

DataParallel::DataParallel(std::shared_ptr<ProcessGroup> group, ResNet& net, const std::vector<std::pair<std::string, at::Tensor>>& params,
                           bool broadcast_buffers, int64_t bucket_cap_bytes)
    : group_(std::move(group)), broadcast_buffers_(broadcast_buffers) {
  ProcessGroup::Impl& g = group_->impl();
  g.live("setting up data-parallel training");
  std::vector<at::Tensor> tensors;
  std::unordered_map<size_t, std::string> names;
  for (const auto& [name, tensor] : params) {
    names[tensors.size()] = name;
    tensors.push_back(tensor);
  }
  for (const auto& item : net->named_buffers(/*recurse=*/true)) buffers_.push_back(item.value());

  try {
    // As DDP's constructor: the same parameter shapes on every rank (else a clear error rather
    // than a hang or garbage), then rank 0's parameters and buffers everywhere.
    c10d::verify_params_across_processes(g.backend, tensors, c10::nullopt);
  } catch (const c10::Error& e) {
    throw Error(codes::kDistributed, std::string("The model differs across ranks (every rank must build the same architecture and freeze the same layers): ") +
                                         e.what_without_backtrace());
  } catch (const std::exception& e) {
    group_->fail(e, "checking the model across ranks");
  }
  std::vector<at::Tensor> state;
  for (const auto& t : tensors) state.push_back(t.detach());
  for (const auto& t : buffers_) state.push_back(t.detach());
  broadcast(state, "broadcasting rank 0's weights");

  // DDP 1.13 with find_unused_parameters=False starts with one bucket holding every gradient
  // (the parameters' order need not be the order backward produces them), and after the first
  // iteration rebuilds buckets of 1 MB, then bucket_cap_bytes, in the order gradients arrived.
  std::vector<bool> expect_sparse(tensors.size(), false);
  auto [indices, limits] = c10d::compute_bucket_assignment_by_size(
      tensors, {static_cast<size_t>(std::numeric_limits<int64_t>::max())}, expect_sparse);
  std::reverse(indices.begin(), indices.end());
  std::reverse(limits.begin(), limits.end());
  reducer_ = std::make_shared<c10d::Reducer>(tensors, indices, limits, g.backend, expect_sparse, bucket_cap_bytes,
                                             /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false, names,
                                             c10d::kDefaultFirstBucketBytes);
}

DataParallel::~DataParallel() = default;

void DataParallel::broadcast(const std::vector<at::Tensor>& tensors, const std::string& during) {
  if (tensors.empty()) return;
  ProcessGroup::Impl& g = group_->impl();
  g.live(during);
  torch::NoGradGuard no_grad;
  try {
    c10d::broadcast_coalesced(g.backend, tensors, kBroadcastBucketBytes, 0);
  } catch (const std::exception& e) {
    group_->fail(e, during);
  }
}

void DataParallel::before_forward(bool sync) {
  group_->impl().live("a training step");
  try {
    if (sync) reducer_->prepare_for_forward();
    reducer_->rebuild_buckets();
  } catch (const std::exception& e) {
    group_->fail(e, "a training step");
  }
  if (broadcast_buffers_ && require_forward_param_sync_) broadcast(buffers_, "broadcasting rank 0's buffers");
}

void DataParallel::after_forward(bool sync) {
  require_forward_param_sync_ = sync;
  if (sync) reducer_->prepare_for_backward({});
}

void DataParallel::sync_buffers() {
  if (broadcast_buffers_ && require_forward_param_sync_) broadcast(buffers_, "broadcasting rank 0's buffers");
}

}  // namespace resnet
