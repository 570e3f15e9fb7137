// State of the addon for one Node.js environment (the main thread or one worker_thread), so the
// addon can be loaded in several environments at once.
#pragma once

#include <napi.h>

namespace resnet::binding {

struct AddonData {
  Napi::FunctionReference model_constructor;
  Napi::FunctionReference process_group_constructor;

  static AddonData& Get(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace resnet::binding
