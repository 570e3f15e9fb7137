// Pure conversions between JavaScript values and native/core's plain types. No model logic.
// lib/ has already validated everything; these re-check cheaply and never trust JS.
#pragma once

#include <napi.h>

#include "buffer_pool.h"
#include "types.h"

namespace resnet::binding {

// {dtype: string, shape: number[], data: TypedArray} -> a host tensor holding a copy of the
// bytes (JavaScript may mutate or detach its buffer as soon as the call returns).
// With a pool, the copy's memory comes from it (inputs of forwards and training steps).
HostTensor TensorFromJs(Napi::Env env, Napi::Value value, const std::string& what, BufferPool* pool = nullptr);

// -> {dtype, shape, buffer}: the ArrayBuffer owns the native memory (its finalizer releases it),
// so the result reaches JavaScript without a copy.
Napi::Object TensorToJs(Napi::Env env, const HostTensor& tensor);

// [{name, dtype, shape, data}, ...] <-> NamedTensors.
NamedTensors NamedTensorsFromJs(Napi::Env env, Napi::Value value);
Napi::Array NamedTensorsToJs(Napi::Env env, const NamedTensors& tensors);

ResNetSpec SpecFromJs(Napi::Env env, Napi::Value value);

// {optimizer: {type, momentum, ...}, labelSmoothing, classWeights, clipGradNorm, freeze, freezeBatchNorm}
TrainOptions TrainOptionsFromJs(Napi::Env env, Napi::Value value);

// Throws a JavaScript TypeError with the binding's invalid-argument code.
[[noreturn]] void ThrowInvalid(Napi::Env env, const std::string& message);

}  // namespace resnet::binding
