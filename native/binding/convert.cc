#include "convert.h"

#include <cstring>

#include "executor.h"

namespace resnet::binding {

void ThrowInvalid(Napi::Env env, const std::string& message) { throw MakeError(env, codes::kInvalidArgument, message); }

namespace {

int64_t ToInt(Napi::Env env, Napi::Value value, const std::string& what) {
  if (!value.IsNumber()) ThrowInvalid(env, "Expected integer for " + what);
  const double d = value.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d))) ThrowInvalid(env, "Expected integer for " + what);
  return static_cast<int64_t>(d);
}

std::vector<int64_t> ShapeFromJs(Napi::Env env, Napi::Value value, const std::string& what) {
  if (!value.IsArray()) ThrowInvalid(env, "Expected an array for the shape of " + what);
  Napi::Array array = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const int64_t d = ToInt(env, array.Get(i), "the shape of " + what);
    if (d < 0) ThrowInvalid(env, "Expected non-negative dimensions in the shape of " + what);
    shape.push_back(d);
  }
  return shape;
}

}  // namespace

HostTensor TensorFromJs(Napi::Env env, Napi::Value value, const std::string& what, BufferPool* pool) {
  if (!value.IsObject()) ThrowInvalid(env, "Expected a tensor for " + what);
  Napi::Object object = value.As<Napi::Object>();
  Napi::Value dtype_value = object.Get("dtype");
  DType dtype;
  if (!dtype_value.IsString() || !dtype_from_name(dtype_value.As<Napi::String>().Utf8Value(), &dtype)) {
    ThrowInvalid(env, "Expected a known dtype for " + what);
  }
  const std::vector<int64_t> shape = ShapeFromJs(env, object.Get("shape"), what);
  Napi::Value data = object.Get("data");
  if (!data.IsTypedArray()) ThrowInvalid(env, "Expected a TypedArray as the data of " + what);
  Napi::TypedArray typed = data.As<Napi::TypedArray>();

  // The byte count the shape implies, checked for overflow, and compared with the data before
  // anything is allocated: a shape that does not fit its data is an error, never an allocation.
  size_t nbytes = dtype_size(dtype);
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(nbytes, static_cast<size_t>(d), &nbytes)) {
      ThrowInvalid(env, "Expected a shape whose size fits in memory for " + what);
    }
  }
  if (typed.ByteLength() != nbytes) {
    ThrowInvalid(env, "Expected " + std::to_string(nbytes) + " bytes of data for " + what + " but received " +
                          std::to_string(typed.ByteLength()));
  }
  HostTensor host;
  try {
    if (pool != nullptr) {
      host.dtype = dtype;
      host.shape = shape;
      host.nbytes = nbytes;
      host.owner = pool->take(nbytes);
      host.data = host.owner.get();
    } else {
      host = allocate_host(dtype, shape);
    }
  } catch (const std::exception& e) {  // out of memory: a JavaScript error, not std::terminate
    throw MakeError(env, codes::kNative, "Could not allocate " + std::to_string(nbytes) + " bytes to copy " + what + ": " + e.what());
  }
  if (host.nbytes > 0) {
    const auto* bytes = static_cast<const uint8_t*>(typed.ArrayBuffer().Data()) + typed.ByteOffset();
    // Inputs of a GPU model: the copy is the staging copy into pinned memory (see BufferPool) and
    // is split over threads. A CPU model's executor computes on those threads, so it stays serial.
    if (pool != nullptr && pool->pinned()) {
      copy_bytes_parallel(host.data, bytes, host.nbytes);
    } else {
      std::memcpy(host.data, bytes, host.nbytes);
    }
  }
  return host;
}

Napi::Object TensorToJs(Napi::Env env, const HostTensor& tensor) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("dtype", Napi::String::New(env, dtype_name(tensor.dtype)));
  Napi::Array shape = Napi::Array::New(env, tensor.shape.size());
  for (size_t i = 0; i < tensor.shape.size(); ++i) {
    shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(tensor.shape[i])));
  }
  object.Set("shape", shape);
  Napi::ArrayBuffer buffer;
  if (tensor.nbytes == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    auto* keep = new std::shared_ptr<void>(tensor.owner);
    buffer = Napi::ArrayBuffer::New(
        env, tensor.data, tensor.nbytes,
        [](Napi::Env, void*, std::shared_ptr<void>* owner) { delete owner; }, keep);
  }
  object.Set("buffer", buffer);
  return object;
}

NamedTensors NamedTensorsFromJs(Napi::Env env, Napi::Value value) {
  if (!value.IsArray()) ThrowInvalid(env, "Expected an array of named tensors");
  Napi::Array array = value.As<Napi::Array>();
  NamedTensors out;
  out.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value entry = array.Get(i);
    if (!entry.IsObject() || !entry.As<Napi::Object>().Get("name").IsString()) {
      ThrowInvalid(env, "Expected {name, dtype, shape, data} entries in the state dict");
    }
    const std::string name = entry.As<Napi::Object>().Get("name").As<Napi::String>().Utf8Value();
    out.emplace_back(name, TensorFromJs(env, entry, "state dict entry '" + name + "'"));
  }
  return out;
}

Napi::Array NamedTensorsToJs(Napi::Env env, const NamedTensors& tensors) {
  Napi::Array array = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    Napi::Object entry = TensorToJs(env, tensors[i].second);
    entry.Set("name", Napi::String::New(env, tensors[i].first));
    array.Set(static_cast<uint32_t>(i), entry);
  }
  return array;
}

ResNetSpec SpecFromJs(Napi::Env env, Napi::Value value) {
  if (!value.IsObject()) ThrowInvalid(env, "Expected a ResNet spec object");
  Napi::Object o = value.As<Napi::Object>();
  ResNetSpec spec;
  spec.block = ParseEnum<BlockKind>(env, "block", o.Get("block").ToString().Utf8Value(), {{"basic", BlockKind::Basic}, {"bottleneck", BlockKind::Bottleneck}});
  spec.layers = ShapeFromJs(env, o.Get("layers"), "layers");
  spec.widths = ShapeFromJs(env, o.Get("widths"), "widths");
  spec.stem = ParseEnum<Stem>(env, "stem", o.Get("stem").ToString().Utf8Value(), {{"imagenet", Stem::ImageNet}, {"cifar", Stem::Cifar}});
  spec.shortcut = ParseEnum<Shortcut>(env, "shortcut", o.Get("shortcut").ToString().Utf8Value(),
                                      {{"B", Shortcut::Projection}, {"A", Shortcut::ZeroPad}, {"none", Shortcut::None}});
  spec.num_classes = ToInt(env, o.Get("numClasses"), "numClasses");
  spec.zero_init_residual = o.Get("zeroInitResidual").ToBoolean().Value();
  spec.groups = ToInt(env, o.Get("groups"), "groups");
  spec.width_per_group = ToInt(env, o.Get("widthPerGroup"), "widthPerGroup");
  spec.in_channels = ToInt(env, o.Get("inChannels"), "inChannels");
  Napi::Value dilation = o.Get("replaceStrideWithDilation");
  if (!dilation.IsArray()) ThrowInvalid(env, "Expected an array for replaceStrideWithDilation");
  Napi::Array flags = dilation.As<Napi::Array>();
  spec.replace_stride_with_dilation.clear();
  for (uint32_t i = 0; i < flags.Length(); ++i) {
    spec.replace_stride_with_dilation.push_back(flags.Get(i).ToBoolean().Value());
  }
  return spec;
}

namespace {

double NumberOr(Napi::Object o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

}  // namespace

TrainOptions TrainOptionsFromJs(Napi::Env env, Napi::Value value) {
  if (!value.IsObject()) ThrowInvalid(env, "Expected training options");
  Napi::Object o = value.As<Napi::Object>();
  TrainOptions options;
  Napi::Value opt_value = o.Get("optimizer");
  if (!opt_value.IsObject()) ThrowInvalid(env, "Expected an optimizer object");
  Napi::Object opt = opt_value.As<Napi::Object>();
  options.optimizer.kind = ParseEnum<OptimizerOptions::Kind>(env, "optimizer.type", opt.Get("type").ToString().Utf8Value(),
                                                             {{"sgd", OptimizerOptions::Kind::SGD}, {"adamw", OptimizerOptions::Kind::AdamW}});
  options.optimizer.momentum = NumberOr(opt, "momentum", 0);
  options.optimizer.dampening = NumberOr(opt, "dampening", 0);
  options.optimizer.nesterov = opt.Get("nesterov").ToBoolean().Value();
  options.optimizer.weight_decay = NumberOr(opt, "weightDecay", 0);
  options.optimizer.beta1 = NumberOr(opt, "beta1", 0.9);
  options.optimizer.beta2 = NumberOr(opt, "beta2", 0.999);
  options.optimizer.eps = NumberOr(opt, "eps", 1e-8);
  options.optimizer.exclude_norm_and_bias_from_weight_decay = opt.Get("excludeNormAndBiasFromWeightDecay").ToBoolean().Value();
  options.label_smoothing = NumberOr(o, "labelSmoothing", 0);
  options.clip_grad_norm = NumberOr(o, "clipGradNorm", 0);
  options.freeze_batchnorm = o.Get("freezeBatchNorm").ToBoolean().Value();
  Napi::Value weights = o.Get("classWeights");
  if (weights.IsArray()) {
    Napi::Array array = weights.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      options.class_weights.push_back(static_cast<float>(array.Get(i).ToNumber().DoubleValue()));
    }
  }
  Napi::Value freeze = o.Get("freeze");
  if (freeze.IsArray()) {
    Napi::Array array = freeze.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) options.frozen_prefixes.push_back(array.Get(i).ToString().Utf8Value());
  }
  return options;
}

}  // namespace resnet::binding
