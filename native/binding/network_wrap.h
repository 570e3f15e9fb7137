// describeNetwork(spec): the network's description (native/core/network.h) as plain objects, for
// lib/features.ts and lib/options.ts, which derive the feature layout and the dilation checks
// from it instead of re-spelling torchvision's stage arithmetic.
#pragma once

#include <napi.h>

namespace resnet::binding {

void RegisterNetworkFunctions(Napi::Env env, Napi::Object exports);

}  // namespace resnet::binding
