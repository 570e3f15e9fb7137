// Conversions between resnet::HostTensor / DType and LibTorch tensors. Internal to native/core.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include "types.h"

namespace resnet {

c10::ScalarType to_scalar_type(DType dtype);
// Throws resnet::Error for scalar types a state dict cannot carry across (complex, quantized).
DType from_scalar_type(c10::ScalarType type);

// A CPU tensor viewing the host buffer (no copy). The caller keeps `host` alive while it is used.
at::Tensor view_host(const HostTensor& host);
// Makes `tensor` contiguous on the CPU and hands it over without a further copy: the returned
// HostTensor owns a reference to the tensor's storage.
HostTensor to_host(const at::Tensor& tensor);

std::string format_shape(c10::IntArrayRef shape);  // "torch.Size([10, 512])", as PyTorch prints

}  // namespace resnet
