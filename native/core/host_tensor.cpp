#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <sstream>

#include "torch_convert.h"

namespace resnet {

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
  c10::ScalarType scalar_type;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::Float32, "float32", 4, c10::kFloat},  {DType::Float64, "float64", 8, c10::kDouble},
    {DType::Float16, "float16", 2, c10::kHalf},   {DType::BFloat16, "bfloat16", 2, c10::kBFloat16},
    {DType::Int64, "int64", 8, c10::kLong},       {DType::Int32, "int32", 4, c10::kInt},
    {DType::Int16, "int16", 2, c10::kShort},      {DType::Int8, "int8", 1, c10::kChar},
    {DType::UInt8, "uint8", 1, c10::kByte},       {DType::Bool, "bool", 1, c10::kBool},
};

const DTypeInfo& info(DType dtype) {
  for (const auto& entry : kDTypes) {
    if (entry.dtype == dtype) return entry;
  }
  throw Error(codes::kNative, "unknown dtype enum value");
}

}  // namespace

const char* dtype_name(DType dtype) { return info(dtype).name; }
size_t dtype_size(DType dtype) { return info(dtype).size; }

bool dtype_from_name(const std::string& name, DType* out) {
  for (const auto& entry : kDTypes) {
    if (name == entry.name) {
      *out = entry.dtype;
      return true;
    }
  }
  return false;
}

c10::ScalarType to_scalar_type(DType dtype) { return info(dtype).scalar_type; }

DType from_scalar_type(c10::ScalarType type) {
  for (const auto& entry : kDTypes) {
    if (entry.scalar_type == type) return entry.dtype;
  }
  throw Error(codes::kNative, std::string("unsupported tensor dtype ") + c10::toString(type));
}

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

HostTensor allocate_host(DType dtype, const std::vector<int64_t>& shape) {
  return to_host(at::empty(shape, at::TensorOptions().dtype(to_scalar_type(dtype))));
}

void copy_bytes_parallel(void* dst, const void* src, size_t bytes) {
  constexpr size_t kChunk = size_t{1} << 20;
  if (bytes < 8 * kChunk) {
    std::memcpy(dst, src, bytes);
    return;
  }
  auto* out = static_cast<uint8_t*>(dst);
  const auto* in = static_cast<const uint8_t*>(src);
  const auto chunks = static_cast<int64_t>((bytes + kChunk - 1) / kChunk);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const size_t offset = static_cast<size_t>(i) * kChunk;
      std::memcpy(out + offset, in + offset, std::min(kChunk, bytes - offset));
    }
  });
}

int64_t first_non_finite(const float* values, int64_t n) {
  constexpr int64_t kChunk = 1 << 14;
  const auto chunks = (n + kChunk - 1) / kChunk;
  std::atomic<int64_t> first{-1};
  at::parallel_for(0, chunks, 16, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t lo = c * kChunk;
      const int64_t hi = std::min(n, lo + kChunk);
      // Branch-free over the chunk (vectorised), then the exact index only for a chunk that has one.
      uint32_t any = 0;
      for (int64_t i = lo; i < hi; ++i) {
        uint32_t bits;
        std::memcpy(&bits, values + i, sizeof bits);
        any |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
      }
      if (!any) continue;
      for (int64_t i = lo; i < hi; ++i) {
        uint32_t bits;
        std::memcpy(&bits, values + i, sizeof bits);
        if ((bits & 0x7f800000u) != 0x7f800000u) continue;
        int64_t seen = first.load();
        while ((seen < 0 || i < seen) && !first.compare_exchange_weak(seen, i)) {
        }
        break;
      }
    }
  });
  return first.load();
}

std::shared_ptr<void> allocate_pinned(size_t bytes) {
  at::Tensor block = at::empty({static_cast<int64_t>(std::max<size_t>(bytes, 1))},
                               at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  void* data = block.data_ptr();
  // The tensor owns the block; dropping it hands the block back to LibTorch's cache.
  return std::shared_ptr<void>(data, [block](void*) mutable { block.reset(); });
}

at::Tensor view_host(const HostTensor& host) {
  return at::from_blob(host.data, host.shape, at::TensorOptions().dtype(to_scalar_type(host.dtype)));
}

HostTensor to_host(const at::Tensor& tensor) {
  auto owned = std::make_shared<at::Tensor>(tensor.to(at::kCPU).contiguous());
  HostTensor host;
  host.dtype = from_scalar_type(owned->scalar_type());
  host.shape.assign(owned->sizes().begin(), owned->sizes().end());
  host.data = owned->data_ptr();
  host.nbytes = owned->nbytes();
  host.owner = owned;
  return host;
}

std::string format_shape(c10::IntArrayRef shape) {
  std::ostringstream out;
  out << "torch.Size([";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "])";
  return out.str();
}

}  // namespace resnet
