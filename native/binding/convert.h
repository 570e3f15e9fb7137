// Pure conversions between JavaScript values and native/core's plain types. No model logic.
// lib/ has already validated everything; these re-check cheaply and never trust JS.
#pragma once

#include <napi.h>

#include <initializer_list>
#include <utility>

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

// Throws MakeError(kInvalidArgument, message) (executor.h: the binding's one error factory).
[[noreturn]] void ThrowInvalid(Napi::Env env, const std::string& message);

// A string option parsed by a table: the value for `text`, or ThrowInvalid naming what was
// allowed. lib/ has validated the option already; this is the binding's cheap type check.
template <typename T>
T ParseEnum(Napi::Env env, const std::string& what, const std::string& text, std::initializer_list<std::pair<const char*, T>> table) {
  std::string allowed;
  for (const auto& [name, value] : table) {
    if (text == name) return value;
    allowed += (allowed.empty() ? "'" : ", '") + std::string(name) + "'";
  }
  ThrowInvalid(env, "Expected one of " + allowed + " for " + what + " but received '" + text + "'");
}

}  // namespace resnet::binding
