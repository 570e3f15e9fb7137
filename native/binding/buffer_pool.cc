#include "buffer_pool.h"

#include <algorithm>
#include <cstdlib>
#include <new>

#include "types.h"

namespace resnet::binding {

void BufferPool::set_pinned(bool pinned) {
  std::vector<Block> dropped;  // released outside the lock
  std::lock_guard<std::mutex> lock(mutex_);
  if (pinned_ == pinned) return;
  pinned_ = pinned;
  dropped.swap(free_);
}

bool BufferPool::pinned() {
  std::lock_guard<std::mutex> lock(mutex_);
  return pinned_;
}

std::shared_ptr<void> BufferPool::take(size_t bytes) {
  Block block;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    block.pinned = pinned_;
    for (size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].pinned == pinned_ && free_[i].capacity >= bytes && free_[i].capacity <= 2 * bytes + 64) {
        block = std::move(free_[i]);
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
  }
  if (!block.memory) {
    block.capacity = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    if (block.pinned) {
      block.memory = allocate_pinned(block.capacity);
    } else {
      void* data = std::aligned_alloc(64, block.capacity);
      if (data == nullptr) throw std::bad_alloc();
      block.memory = std::shared_ptr<void>(data, std::free);
    }
  }
  void* data = block.memory.get();
  std::weak_ptr<BufferPool> pool = weak_from_this();
  return std::shared_ptr<void>(data, [pool, block = std::move(block)](void*) mutable {
    if (auto alive = pool.lock()) alive->give_back(std::move(block));
  });
}

void BufferPool::give_back(Block block) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (block.pinned == pinned_ && free_.size() < kKeep) free_.push_back(std::move(block));
  // otherwise `block` is released here, its memory with it
}

}  // namespace resnet::binding
