#pragma once
/// \file Device helpers shared by the GPU tests and the profiler (CUDA builds only): owning device
/// buffers, seeded random fills, a bandwidth-ceiling copy kernel and an SM clock reading.

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/bf16.hpp"
#include "kernels/device.hpp"
#include "kernels/internal/cuda_check.hpp"

namespace moesim::kernels {

/// An owning device array of `size()` elements of T (cudaMalloc, 256-byte aligned).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n_ > 0) MOESIM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n_ * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

  /// Copies ordered against every stream, non-blocking ones included: the device is idle before a
  /// download starts (so kernels still writing the buffer on any stream finish first) and after an
  /// upload returns (a pageable upload may return before its DMA lands). Sizes must match (ConfigError).
  void upload(const std::vector<T>& v) {
    if (v.size() != n_) throw ConfigError("DeviceBuffer::upload: size mismatch");
    if (n_ == 0) return;
    MOESIM_CUDA_CHECK(cudaMemcpy(p_, v.data(), bytes(), cudaMemcpyHostToDevice));
    MOESIM_CUDA_CHECK(cudaDeviceSynchronize());
  }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    if (n_ == 0) return v;
    MOESIM_CUDA_CHECK(cudaDeviceSynchronize());
    MOESIM_CUDA_CHECK(cudaMemcpy(v.data(), p_, bytes(), cudaMemcpyDeviceToHost));
    return v;
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

/// Uniform values in [lo, hi) from (seed, index) through splitmix64: the same seed gives the same data.
void fill_uniform(Bf16* p, size_t n, float lo, float hi, uint64_t seed, cudaStream_t stream);
void fill_uniform(float* p, size_t n, float lo, float hi, uint64_t seed, cudaStream_t stream);

/// Router logits with a per-expert profile: logits[t, e] = profile[e] + noise · (G − γ), G ~ Gumbel(0, 1)
/// from (seed, t, e). With noise 1 the top-1 choice is distributed as softmax(profile) (Gumbel-max).
void fill_gumbel_logits(float* logits, int tokens, int experts, const float* profile, float noise,
                        uint64_t seed, cudaStream_t stream);

/// Host: zipf profile over experts, profile[e] = −s · ln(rank(e) + 1), ranks a seeded permutation, so
/// with Gumbel noise the expert of rank r gets top-1 share ∝ (r + 1)^−s.
std::vector<float> zipf_profile(int experts, double s, uint64_t seed);

/// Device-to-device copy with 16-byte loads and stores (the bandwidth ceiling memory-bound kernels
/// are compared against). `bytes` must be a multiple of 16 and both pointers 16-byte aligned.
void copy_bytes(const void* src, void* dst, size_t bytes, cudaStream_t stream);

/// SM clock while a kernel spins for ~2 ms: clock64() cycles over %globaltimer nanoseconds, in MHz.
double measure_sm_clock_mhz();

}  // namespace moesim::kernels
