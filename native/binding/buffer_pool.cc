#include "buffer_pool.h"

#include <algorithm>
#include <cstdlib>
#include <tuple>
#include <new>

#include "types.h"

namespace resnet::binding {

BufferPool::~BufferPool() {
  for (auto& [data, capacity] : free_) std::free(data);
}

void BufferPool::set_pinned(bool pinned) {
  std::lock_guard<std::mutex> lock(mutex_);
  pinned_ = pinned;
}

bool BufferPool::pinned() {
  std::lock_guard<std::mutex> lock(mutex_);
  return pinned_;
}

std::shared_ptr<void> BufferPool::take(size_t bytes) {
  void* data = nullptr;
  size_t capacity = 0;
  if (pinned()) return allocate_pinned(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].second >= bytes && free_[i].second <= 2 * bytes + 64) {
        std::tie(data, capacity) = free_[i];
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
  }
  if (data == nullptr) {
    capacity = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    data = std::aligned_alloc(64, capacity);
    if (data == nullptr) throw std::bad_alloc();
  }
  std::weak_ptr<BufferPool> pool = weak_from_this();
  return std::shared_ptr<void>(data, [pool, capacity](void* p) {
    if (auto alive = pool.lock()) {
      alive->give_back(p, capacity);
    } else {
      std::free(p);
    }
  });
}

void BufferPool::give_back(void* data, size_t capacity) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (free_.size() < kKeep) {
    free_.emplace_back(data, capacity);
    return;
  }
  std::free(data);
}

}  // namespace resnet::binding
