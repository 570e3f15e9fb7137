// torch.nn.parallel.DistributedDataParallel's training-time behaviour with its defaults, on
// c10d's own Reducer: the model is checked against rank 0's and overwritten by it at the start,
// gradients are averaged in buckets all-reduced while backward still runs, and rank 0's buffers
// (BatchNorm statistics) are broadcast before every synchronised forward (broadcast_buffers).
// Internal to native/core; the Trainer owns one when training is distributed.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "distributed.h"
#include "resnet.h"

namespace c10d {
class Reducer;
}

namespace resnet {

class DataParallel {
 public:
  // `params`: the trainable parameters, in state_dict order (DDP's parameters requiring grad).
  DataParallel(std::shared_ptr<ProcessGroup> group, ResNet& net, const std::vector<std::pair<std::string, at::Tensor>>& params,
               bool broadcast_buffers, int64_t bucket_cap_bytes);
  ~DataParallel();

  // Around a training forward, as DDP.forward: `sync` false is DDP's no_sync() (gradients only
  // accumulate locally; the next synchronised backward all-reduces the sum).
  void before_forward(bool sync);
  void after_forward(bool sync);
  // Rank 0's buffers to every rank, when DDP's next forward would do so (evaluation through the
  // DDP module does): collective, every rank calls it once.
  void sync_buffers();

  ProcessGroup& group() { return *group_; }

 private:
  void broadcast(const std::vector<at::Tensor>& tensors, const std::string& during);

  std::shared_ptr<ProcessGroup> group_;
  std::vector<at::Tensor> buffers_;
  std::shared_ptr<c10d::Reducer> reducer_;
  bool broadcast_buffers_;
  // DDP's require_forward_param_sync: the previous training forward was a synchronised one.
  bool require_forward_param_sync_ = true;
};

}  // namespace resnet
