# Finds LibTorch in the documented order and sets:
#   TORCH_LIBRARIES, TORCH_CXX_FLAGS_LIST, TORCH_LIB_DIR, RESNET_WITH_CUDA, LIBTORCH_SOURCE
# Stops the build with a message listing every way to provide LibTorch when none is found.

set(LIBTORCH_SOURCE "")

# 1. LIBTORCH: an unpacked LibTorch distribution.
if(NOT LIBTORCH AND DEFINED ENV{LIBTORCH})
  set(LIBTORCH "$ENV{LIBTORCH}")
endif()
if(LIBTORCH)
  find_package(Torch CONFIG QUIET PATHS "${LIBTORCH}" "${LIBTORCH}/share/cmake" NO_DEFAULT_PATH)
  if(NOT Torch_FOUND)
    message(FATAL_ERROR "LIBTORCH is set to '${LIBTORCH}' but no LibTorch (share/cmake/Torch/TorchConfig.cmake) was found there.")
  endif()
  set(LIBTORCH_SOURCE "LIBTORCH=${LIBTORCH}")
endif()

# 2. Torch_DIR / CMAKE_PREFIX_PATH, without the system's default locations.
if(NOT Torch_FOUND AND (Torch_DIR OR CMAKE_PREFIX_PATH OR DEFINED ENV{Torch_DIR} OR DEFINED ENV{CMAKE_PREFIX_PATH}))
  find_package(Torch CONFIG QUIET NO_CMAKE_SYSTEM_PATH NO_SYSTEM_ENVIRONMENT_PATH)
  if(Torch_FOUND)
    set(LIBTORCH_SOURCE "Torch_DIR/CMAKE_PREFIX_PATH (${Torch_DIR})")
  endif()
endif()

# 3. An installed PyTorch Python package carries a full LibTorch.
if(NOT Torch_FOUND)
  set(_resnet_pythons "")
  if(DEFINED ENV{PYTHON})
    list(APPEND _resnet_pythons "$ENV{PYTHON}")
  endif()
  list(APPEND _resnet_pythons python3 /usr/bin/python3)
  foreach(_py IN LISTS _resnet_pythons)
    execute_process(
      COMMAND ${_py} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE _resnet_torch_prefix
      OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _resnet_py_rc
      ERROR_QUIET)
    if(_resnet_py_rc EQUAL 0 AND EXISTS "${_resnet_torch_prefix}/Torch/TorchConfig.cmake")
      find_package(Torch CONFIG QUIET PATHS "${_resnet_torch_prefix}" NO_DEFAULT_PATH)
      if(Torch_FOUND)
        set(LIBTORCH_SOURCE "PyTorch Python package via ${_py} (${_resnet_torch_prefix})")
        break()
      endif()
    endif()
  endforeach()
endif()

# 4. The system's LibTorch.
if(NOT Torch_FOUND)
  find_package(Torch CONFIG QUIET)
  if(Torch_FOUND)
    set(LIBTORCH_SOURCE "system (${Torch_DIR})")
  endif()
endif()

if(NOT Torch_FOUND)
  message(FATAL_ERROR
    "libtorch-resnet: LibTorch was not found. Provide it in one of these ways, then rebuild:\n"
    "  1. LIBTORCH=/path/to/libtorch  (an unpacked LibTorch from pytorch.org, CPU or CUDA)\n"
    "  2. Torch_DIR=/path/to/share/cmake/Torch or CMAKE_PREFIX_PATH=/path/to/libtorch\n"
    "  3. a PyTorch Python package on python3 (pip install torch): its torch.utils.cmake_prefix_path is used\n"
    "  4. the system's LibTorch, e.g. on Debian/Ubuntu: apt-get install libtorch-dev (or bash scripts/install-system-deps.sh)\n")
endif()
message(STATUS "libtorch-resnet: using LibTorch ${Torch_VERSION} from ${LIBTORCH_SOURCE}")

separate_arguments(TORCH_CXX_FLAGS_LIST UNIX_COMMAND "${TORCH_CXX_FLAGS}")

find_library(_resnet_c10 c10 PATHS "${TORCH_INSTALL_PREFIX}/lib" NO_DEFAULT_PATH)
if(NOT _resnet_c10)
  find_library(_resnet_c10 c10)
endif()
get_filename_component(TORCH_LIB_DIR "${_resnet_c10}" DIRECTORY)

set(RESNET_WITH_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(RESNET_WITH_CUDA ON)
  message(STATUS "libtorch-resnet: CUDA build (torch_cuda linked)")
endif()
