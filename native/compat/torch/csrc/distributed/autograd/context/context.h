// Stand-in for a LibTorch header that Debian's libtorch-dev 1.13 leaves out: c10d's reducer.hpp
// includes it, but only to name two types (a callback signature it checks with static_assert,
// and the shared_ptr its RpcContext member holds). Declaring them is enough to compile against
// the Reducer; nothing here is defined or called, and the member's layout (a shared_ptr and an
// atomic pointer) does not depend on the class. Used only when the real header is absent
// (CMakeLists.txt, binding.gyp); official LibTorch builds ship it.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};

using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
