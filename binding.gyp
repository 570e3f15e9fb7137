# node-gyp build of the addon, an alternative to the primary cmake-js build (CMakeLists.txt):
#   node-gyp rebuild
# LibTorch is found by scripts/find-libtorch.mjs, in the same order as cmake/FindLibTorch.cmake
# (LIBTORCH, Torch_DIR / CMAKE_PREFIX_PATH, a PyTorch Python package, the system).
{
  "variables": {
    "libtorch_lib_dir": "<!(node scripts/find-libtorch.mjs --lib-dir)",
    "libtorch_cuda": "<!(node scripts/find-libtorch.mjs --cuda)",
    "libtorch_onednn": "<!(node scripts/find-libtorch.mjs --onednn)",
    "libtorch_gloo": "<!(node scripts/find-libtorch.mjs --gloo)",
    "libjpeg_turbo": "<!(node scripts/find-libtorch.mjs --jpeg)",
  },
  "targets": [
    {
      "target_name": "libtorch_resnet",
      # gyp strips a leading "lib" from module names; keep the cmake-js file name.
      "product_name": "libtorch_resnet",
      "sources": [
        "native/core/resnet.cpp",
        "native/core/model.cpp",
        "native/core/host_tensor.cpp",
        "native/core/runtime.cpp",
        "native/core/trainer.cpp",
        "native/core/distributed.cpp",
        "native/core/data_parallel.cpp",
        "native/core/network.cpp",
        "native/core/engine.cpp",
        "native/core/onednn_engine.cpp",
        "native/core/onednn_fold.cpp",
        "native/core/onednn_plan.cpp",
        "native/core/onednn_arena.cpp",
        "native/core/resample.cpp",
        "native/core/jpeg_decode.cpp",
        "native/binding/addon.cc",
        "native/binding/model_wrap.cc",
        "native/binding/executor.cc",
        "native/binding/convert.cc",
        "native/binding/buffer_pool.cc",
        "native/binding/process_group_wrap.cc",
        "native/binding/network_wrap.cc",
        "native/binding/image_wrap.cc",
      ],
      "include_dirs": [
        "native/core",
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.mjs --include-dirs)",
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "_GLIBCXX_USE_CXX11_ABI=1",
      ],
      # node's common.gypi turns exceptions and RTTI off; LibTorch and node-addon-api need both.
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      # -ffp-contract=off: Pillow's resampler to the byte (native/core/resample.cpp; CMakeLists.txt).
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-ffp-contract=off"],
      # --no-as-needed as TorchConfig.cmake does: LibTorch registers its operators in static
      # initializers, so a library the addon never calls directly must still be loaded.
      "libraries": [
        "-L<(libtorch_lib_dir)",
        "-Wl,--no-as-needed",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
      ],
      "ldflags": [
        # Find LibTorch at run time without LD_LIBRARY_PATH: DT_RPATH (not RUNPATH) so that it
        # also applies to LibTorch's own dependencies on each other.
        "-Wl,-rpath,<(libtorch_lib_dir)",
        "-Wl,--disable-new-dtags",
      ],
      "conditions": [
        ["libtorch_cuda==1", {
          "defines": ["RESNET_WITH_CUDA"],
          # Still under --no-as-needed: otherwise the linker drops torch_cuda (nothing references
          # it directly) and torch::cuda::is_available() silently answers false.
          "libraries": ["-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda"],
        }],
        ["libtorch_gloo==1", {
          # c10d's ProcessGroupGloo.hpp compiles only with USE_C10D_GLOO (CMakeLists.txt).
          "defines": ["RESNET_WITH_GLOO", "USE_C10D_GLOO"],
          # After LibTorch's own include dirs: the stand-in for the dist-autograd header that
          # reducer.hpp includes is used only where LibTorch lacks it (Debian's libtorch-dev).
          "include_dirs": ["native/compat"],
        }],
        ["libjpeg_turbo==1", {
          # The streaming data sets' JPEG fast path (CMakeLists.txt): libjpeg-turbo's libjpeg API.
          "defines": ["RESNET_WITH_LIBJPEG_TURBO"],
          "libraries": ["-ljpeg"],
        }],
        ["libtorch_onednn==1", {
          # The oneDNN inference engine, against the libdnnl LibTorch itself links (CMakeLists.txt).
          "defines": ["RESNET_WITH_ONEDNN"],
          "libraries": ["-l:libdnnl.so.2"],
        }],
        ["OS=='mac'", {
          # ld64 has no --no-as-needed; ldflags (Linux only) are replaced by OTHER_LDFLAGS.
          "libraries!": ["-Wl,--no-as-needed"],
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "GCC_ENABLE_CPP_RTTI": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "11.0",
            "OTHER_LDFLAGS": ["-Wl,-rpath,<(libtorch_lib_dir)"],
          },
        }],
      ],
    },
  ],
}
