#include "image_wrap.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "convert.h"
#include "jpeg_decode.h"
#include "types.h"

namespace resnet::binding {

namespace {

// A core error as a JavaScript Error with its code (lib/stream reports it with the file's name).
[[noreturn]] void ThrowCoreError(Napi::Env env, const resnet::Error& e) {
  Napi::Error error = Napi::Error::New(env, e.what());
  error.Set("code", Napi::String::New(env, e.code()));
  throw error;
}

Napi::Uint8Array BytesArg(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowInvalid(info.Env(), "Expected a Uint8Array of encoded image bytes");
  }
  return info[0].As<Napi::Uint8Array>();
}

int IntegerAt(Napi::Env env, Napi::Array array, uint32_t i, const char* what) {
  Napi::Value v = array.Get(i);
  if (!v.IsNumber()) ThrowInvalid(env, std::string("Expected integers in ") + what);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int>(d))) {
    ThrowInvalid(env, std::string("Expected integers in ") + what);
  }
  return static_cast<int>(d);
}

Napi::Array IntegersProperty(Napi::Env env, Napi::Object o, const char* name, uint32_t length) {
  Napi::Value v = o.Get(name);
  if (!v.IsArray() || v.As<Napi::Array>().Length() != length) {
    ThrowInvalid(env, std::string("Expected ") + std::to_string(length) + " integers for " + name);
  }
  return v.As<Napi::Array>();
}

Napi::Value JpegDecoderCompiled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), image::jpeg_decoder_compiled());
}

// null when the bytes do not start as a JPEG; {width, height, orientation, components, decodable}.
Napi::Value ReadJpegInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array bytes = BytesArg(info);
  if (!image::looks_like_jpeg(bytes.Data(), bytes.ByteLength())) return env.Null();
  image::JpegInfo header;
  try {
    header = image::read_jpeg_info(bytes.Data(), bytes.ByteLength());
  } catch (const resnet::Error& e) {
    ThrowCoreError(env, e);
  } catch (const std::exception& e) {  // out of memory
    ThrowCoreError(env, resnet::Error(codes::kNative, e.what()));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("width", header.width);
  out.Set("height", header.height);
  out.Set("orientation", header.orientation);
  out.Set("components", header.components);
  out.Set("decodable", header.decodable);
  return out;
}

// decodeJpeg(bytes, {box: [top, left, h, w], resize: [h, w], window: [top, left, h, w], filter,
// flip, tables: Float32Array(768)}, out: Float32Array, offset): 3 x h x w floats at out[offset].
Napi::Value DecodeJpeg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array bytes = BytesArg(info);
  if (!info[1].IsObject()) ThrowInvalid(env, "Expected a transform object");
  Napi::Object o = info[1].As<Napi::Object>();
  image::JpegTransform tf;
  Napi::Array box = IntegersProperty(env, o, "box", 4);
  tf.box_top = IntegerAt(env, box, 0, "box");
  tf.box_left = IntegerAt(env, box, 1, "box");
  tf.box_height = IntegerAt(env, box, 2, "box");
  tf.box_width = IntegerAt(env, box, 3, "box");
  Napi::Array resize = IntegersProperty(env, o, "resize", 2);
  tf.resized_height = IntegerAt(env, resize, 0, "resize");
  tf.resized_width = IntegerAt(env, resize, 1, "resize");
  Napi::Array window = IntegersProperty(env, o, "window", 4);
  tf.window_top = IntegerAt(env, window, 0, "window");
  tf.window_left = IntegerAt(env, window, 1, "window");
  tf.out_height = IntegerAt(env, window, 2, "window");
  tf.out_width = IntegerAt(env, window, 3, "window");
  const std::string filter = o.Get("filter").ToString().Utf8Value();
  if (filter == "bilinear") tf.filter = image::Filter::Bilinear;
  else if (filter == "bicubic") tf.filter = image::Filter::Bicubic;
  else if (filter == "lanczos") tf.filter = image::Filter::Lanczos;
  else ThrowInvalid(env, "Expected 'bilinear', 'bicubic' or 'lanczos' for filter but received '" + filter + "'");
  tf.flip = o.Get("flip").ToBoolean().Value();
  Napi::Value tables = o.Get("tables");
  if (!tables.IsTypedArray() || tables.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
      tables.As<Napi::Float32Array>().ElementLength() != 3 * 256) {
    ThrowInvalid(env, "Expected a Float32Array of 768 floats (3 tables of 256) for tables");
  }
  tf.tables = tables.As<Napi::Float32Array>().Data();
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    ThrowInvalid(env, "Expected a Float32Array for out");
  }
  // Data() comes from the typed array itself, so a view of a SharedArrayBuffer works too.
  Napi::Float32Array out = info[2].As<Napi::Float32Array>();
  if (!info[3].IsNumber()) ThrowInvalid(env, "Expected a number for offset");
  const double offset = info[3].As<Napi::Number>().DoubleValue();
  const double floats = 3.0 * tf.out_height * tf.out_width;
  if (tf.out_height <= 0 || tf.out_width <= 0 || !(offset >= 0) || offset != static_cast<double>(static_cast<size_t>(offset)) ||
      offset + floats > static_cast<double>(out.ElementLength())) {
    ThrowInvalid(env, "Expected offset + 3 x " + std::to_string(tf.out_height) + " x " + std::to_string(tf.out_width) + " to fit in out (" +
                          std::to_string(out.ElementLength()) + " floats)");
  }
  try {
    image::decode_jpeg(bytes.Data(), bytes.ByteLength(), tf, out.Data() + static_cast<size_t>(offset));
  } catch (const resnet::Error& e) {
    ThrowCoreError(env, e);
  } catch (const std::exception& e) {  // out of memory
    ThrowCoreError(env, resnet::Error(codes::kNative, e.what()));
  }
  return env.Undefined();
}

// Batch-sized blocks for copyToPooled, kept for reuse once JavaScript drops the copy. A fresh
// 38 MB ArrayBuffer (64 images of 3 x 224 x 224) costs a page fault per 4 KiB on its first
// write: 20 ms for the copy of one batch against 2.6 ms into memory already mapped (measured),
// and the streaming data set's main thread copies every batch. Process-wide: an ArrayBuffer may
// be transferred to another thread and finalized there.
class BlockPool {
 public:
  static BlockPool& Get() {
    static BlockPool* pool = new BlockPool();  // never destroyed: finalizers may run during exit
    return *pool;
  }
  void* Take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (size_t i = 0; i < free_.size(); i++) {
        if (free_[i].bytes == bytes) {
          void* data = free_[i].data;
          free_.erase(free_.begin() + static_cast<ptrdiff_t>(i));
          return data;
        }
      }
    }
    void* data = std::malloc(bytes);
    if (data == nullptr) throw std::bad_alloc();
    return data;
  }
  void Give(void* data, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (free_.size() < kKeep) {
        free_.push_back({data, bytes});
        return;
      }
    }
    std::free(data);
  }

 private:
  // The consumer's batch, the next one being copied, and one the collector has not reached yet.
  static constexpr size_t kKeep = 3;
  struct Block {
    void* data;
    size_t bytes;
  };
  std::mutex mutex_;
  std::vector<Block> free_;
};

// copyToPooled(src: Float32Array): a copy of src (a view of a SharedArrayBuffer, say) in an
// ordinary ArrayBuffer whose memory returns to the pool when it is garbage-collected.
Napi::Value CopyToPooled(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    ThrowInvalid(env, "Expected a Float32Array to copy");
  }
  Napi::Float32Array src = info[0].As<Napi::Float32Array>();
  const size_t length = src.ElementLength();
  const size_t bytes = std::max<size_t>(length, 1) * sizeof(float);
  void* data;
  try {
    data = BlockPool::Get().Take(bytes);
  } catch (const std::exception& e) {
    ThrowCoreError(env, resnet::Error(codes::kNative, std::string("Could not allocate a batch: ") + e.what()));
  }
  if (length > 0) std::memcpy(data, src.Data(), length * sizeof(float));
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
      env, data, length * sizeof(float), [](Napi::Env, void* block, size_t* size) {
        BlockPool::Get().Give(block, *size);
        delete size;
      },
      new size_t(bytes));
  return Napi::Float32Array::New(env, length, buffer, 0);
}

}  // namespace

void RegisterImageFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("jpegDecoderCompiled", Napi::Function::New<JpegDecoderCompiled>(env, "jpegDecoderCompiled"));
  exports.Set("jpegInfo", Napi::Function::New<ReadJpegInfo>(env, "jpegInfo"));
  exports.Set("decodeJpeg", Napi::Function::New<DecodeJpeg>(env, "decodeJpeg"));
  exports.Set("copyToPooled", Napi::Function::New<CopyToPooled>(env, "copyToPooled"));
}

}  // namespace resnet::binding
