// The streaming data sets' native helpers: the JPEG fast path of the workers (native/core/
// jpeg_decode.h), synchronous on purpose (they run on a worker thread that has nothing else to
// do, one image per call of about a millisecond, less than a trip through a thread pool), and the
// batch copy of the main thread into recycled memory.
#pragma once

#include <napi.h>

namespace resnet::binding {

// jpegDecoderCompiled(), jpegInfo(bytes), decodeJpeg(bytes, transform, out, offset), copyToPooled(src).
void RegisterImageFunctions(Napi::Env env, Napi::Object exports);

}  // namespace resnet::binding
