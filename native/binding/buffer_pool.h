// Reusable host buffers for the copies of a model's inputs. Each forward or training step copies
// its input out of JavaScript's memory (JavaScript may change it while the job runs); taking those
// copies from a pool instead of malloc keeps the big block from being split by the small native
// allocations that only V8's collector frees, which otherwise made RSS climb by one input size per
// call until the next collection (BENCHMARKS.md, memory).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace resnet::binding {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  // A 64-byte aligned buffer of at least `bytes`, back in the pool once the last owner lets go
  // (from any thread). Reuses a free buffer no more than twice the size asked for.
  std::shared_ptr<void> take(size_t bytes);
  // Pinned (page-locked) buffers for a model on a CUDA device: the input's one copy out of
  // JavaScript is then the staging copy the GPU reads from. They are kept in this pool like the
  // others: on the H200 host the main thread spent ~3 ms per 19 MB input and ~25 ms per 154 MB
  // one whether its copy ran on one core or all of them, which points at a fresh page-locked
  // block per call (LibTorch's pinned allocator not handing the freed one back in time); not yet
  // measured with this pool. Switching frees the buffers of the other kind.
  void set_pinned(bool pinned);
  bool pinned();

 private:
  struct Block {
    std::shared_ptr<void> memory;
    size_t capacity = 0;
    bool pinned = false;
  };
  void give_back(Block block);

  static constexpr size_t kKeep = 4;  // free buffers kept; more are released
  std::mutex mutex_;
  std::vector<Block> free_;
  bool pinned_ = false;
};

}  // namespace resnet::binding
