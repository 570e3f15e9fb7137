// The oneDNN engine's activation memory: one 64-byte aligned block that every plan of an engine
// binds its buffers and scratchpad into (one forward at a time), grown to the largest plan.
#include "onednn_engine.h"

#ifdef RESNET_WITH_ONEDNN

#include <sstream>
#include <unistd.h>

namespace resnet::onednn {

namespace {

uint64_t half_physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 2 : uint64_t{8} << 30;
}

}  // namespace

Arena::Arena(uint64_t max_bytes) : max_bytes_(max_bytes > 0 ? max_bytes : half_physical_memory()) {}

void Arena::bind(Plan& plan) {
  if (plan.arena_bytes > max_bytes_) {
    // Refused, not attempted: a batch this size would take the machine's memory (and 'auto'
    // must not answer it by falling back to an engine that allocates even more).
    std::ostringstream msg;
    msg << "Expected a batch whose activations fit in the inference engine's limit of " << (max_bytes_ >> 20)
        << " MiB (maxActivationBytes) but a batch of " << plan.batch << " needs " << (plan.arena_bytes >> 20)
        << " MiB; split it into smaller batches";
    throw Error(codes::kInvalidArgument, msg.str());
  }
  if (plan.arena_bytes > bytes_) {
    void* p = std::aligned_alloc(64, plan.arena_bytes);
    if (p == nullptr) throw Error(codes::kNative, "inference engine: out of memory for activations");
    memory_.reset(p);
    bytes_ = plan.arena_bytes;
    ++generation_;
  }
  if (plan.bound_to == generation_) return;
  auto* base = static_cast<uint8_t*>(memory_.get());
  for (size_t i = 0; i < plan.values.size(); ++i) {
    const int slot = plan.values[i].slot;
    if (slot >= 0) plan.memories[i].set_data_handle(base + plan.slot_offsets[slot]);
  }
  plan.scratchpad.set_data_handle(base + plan.scratchpad_offset);
  plan.bound_to = generation_;
}

}  // namespace resnet::onednn

#endif  // RESNET_WITH_ONEDNN
