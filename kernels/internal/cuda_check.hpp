#pragma once
/// \file Turning CUDA runtime and cuBLAS status codes into CudaError (internal to kernels/ and the
/// profiler).

#include <cuda_runtime_api.h>

#include <string>

#include "kernels/device.hpp"

namespace moesim::kernels::internal {

[[noreturn]] inline void throw_cuda(const char* call, const std::string& error, const char* file, int line) {
  throw CudaError(std::string(call) + " failed: " + error + " (" + file + ":" + std::to_string(line) + ")");
}

inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess) throw_cuda(call, cudaGetErrorString(e), file, line);
}

}  // namespace moesim::kernels::internal

/// Throws CudaError when a CUDA runtime call fails.
#define MOESIM_CUDA_CHECK(call) ::moesim::kernels::internal::check_cuda((call), #call, __FILE__, __LINE__)
/// Throws CudaError when the last kernel launch failed.
#define MOESIM_CUDA_CHECK_LAUNCH() MOESIM_CUDA_CHECK(cudaGetLastError())
